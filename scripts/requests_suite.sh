#!/usr/bin/env bash
# Run requests' own test suite twice: as released (the baseline), then with
# requests.Session() building a keepwarm.Session, and report what differs.
#
#   make requests-suite                  # baseline and "known" runs, summary at the end
#   scripts/requests_suite.sh keepwarm   # one run: requests | keepwarm | keepwarm-like | known
#
# Modes: requests = baseline; keepwarm = keepwarm with its defaults; keepwarm-like = keepwarm
# configured like requests (no default timeout, no retries, no idle expiry); known = like
# keepwarm, with the divergences listed in scripts/requests_suite_plugin.py marked
# xfail(strict=True): green only while exactly those tests fail.
#
# Everything it installs goes to a throwaway virtualenv outside the repository
# ($KW_SUITE_DIR, default /tmp/keepwarm-requests-suite): requests' test dependencies
# (Flask, httpbin, ...) never enter keepwarm's own environment. The requests version is
# the one keepwarm's .venv has, so the suite tests the code keepwarm runs on. Traffic
# stays on loopback: the plugin blocks any other address (see its docstring), and the
# CA-bundle variables these machines export are removed, as they change what requests'
# TLS tests see.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
work="${KW_SUITE_DIR:-/tmp/keepwarm-requests-suite}"
version="${REQUESTS_VERSION:-$("$here/.venv/bin/python" -c 'import requests; print(requests.__version__)' 2>/dev/null || echo 2.34.2)}"
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(requests known)

venv="$work/venv"
src="$work/requests-$version"
stamp="$work/.installed-$version"
install() {
    # Each step checked by hand: set -e does not apply inside an if condition.
    rm -rf "$venv" "$src" && mkdir -p "$work/sdist" || return 1
    "$python" -m venv "$venv" || return 1
    "$venv/bin/python" -m pip install --quiet --upgrade pip || return 1
    "$venv/bin/python" -m pip download --quiet --no-deps --no-binary :all: \
        --dest "$work/sdist" "requests==$version" || return 1
    tar -xzf "$work/sdist/requests-$version.tar.gz" -C "$work" || return 1
    # requests' requirements-dev.txt, minus coverage; pytest-timeout bounds every test.
    "$venv/bin/python" -m pip install --quiet "$src[socks]" "pytest>=8,<10" \
        "pytest-httpbin==2.1.0" "httpbin~=0.10.0" pytest-mock trustme pytest-timeout || return 1
    "$venv/bin/python" -m pip install --quiet --no-deps -e "$here" || return 1
}
if [ ! -f "$stamp" ]; then
    mkdir -p "$work"
    echo "== installing requests $version and its test dependencies in $venv"
    if ! install >"$work/install.log" 2>&1; then
        tail -20 "$work/install.log" >&2
        echo "installation failed; the whole log: $work/install.log" >&2
        exit 1
    fi
    touch "$stamp"
fi

unset_ca=()
for name in REQUESTS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS \
    GIT_SSL_CAINFO AWS_CA_BUNDLE HTTPLIB2_CA_CERTS NIX_SSL_CERT_FILE \
    HTTP_PROXY HTTPS_PROXY ALL_PROXY NO_PROXY http_proxy https_proxy all_proxy no_proxy; do
    unset_ca+=(-u "$name")
done

status=0
for mode in "${modes[@]}"; do
    case "$mode" in
        requests) opts=(--kw-session=requests) ;;
        keepwarm) opts=(--kw-session=keepwarm) ;;
        keepwarm-like) opts=(--kw-session=keepwarm --kw-requests-like) ;;
        known) opts=(--kw-session=keepwarm --kw-mark-known) ;;
        *) echo "unknown mode '$mode': use requests, keepwarm, keepwarm-like or known" >&2; exit 2 ;;
    esac
    log="$work/$mode.log"
    echo "== requests $version test suite, mode $mode (log: $log)"
    (
        cd "$src"
        env "${unset_ca[@]}" PYTHONPATH="$here/scripts" PYTHONDONTWRITEBYTECODE=1 \
            timeout 1200 "$venv/bin/python" -m pytest -p no:cacheprovider \
            -p requests_suite_plugin --timeout 60 -q -rfEx --durations=5 "${opts[@]}" tests
    ) >"$log" 2>&1 || status=$?
    sed -n '/= requests_suite_plugin =/,$p' "$log" | grep -v '^SKIPPED' || tail -5 "$log"
done
exit "$status"
