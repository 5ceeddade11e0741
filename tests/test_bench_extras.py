"""``keepwarm bench`` without the ``[bench]`` extra: rich, trustme, httpx and aiohttp made
unimportable in a child process (``sys.modules[name] = None``), as on a plain
``pip install keepwarm``. It runs what it can and says what it skipped; asked for only
what cannot run, it fails with the fix."""

from __future__ import annotations

import os
import subprocess
import sys

#: Run keepwarm's command line with the modules named in argv[1] unimportable.
WITHOUT = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "from keepwarm.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)
EXTRA = "rich,trustme,httpx,aiohttp"
FIX = "pip install 'keepwarm[bench]'"
SMALL = ["--requests", "3", "--rounds", "1", "--threads", "2"]


def without_command(blocked: str, *args: str) -> list[str]:
    return [sys.executable, "-c", WITHOUT, blocked, "bench", *args]


def run_without(blocked: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KEEPWARM_")}
    return subprocess.run(
        without_command(blocked, *args), capture_output=True, text=True, timeout=120, env=env
    )


def test_without_the_extra_measures_http_and_says_what_it_skipped() -> None:
    done = run_without(EXTRA, *SMALL)  # default: both schemes, every client
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Sequential, http:" in out and "Concurrent, http:" in out
    assert "https" not in out.split("\n\n", 1)[1].split("https: skipped", 1)[0]
    assert f"https: skipped (HTTPS needs trustme to make a throwaway CA: {FIX})" in out
    assert f"httpx: skipped (not installed: {FIX} (or httpx))" in out
    assert "aiohttp: skipped" in out
    # No CA claimed for a run without TLS.
    assert out.splitlines()[1] == "HTTP only: no TLS, so no certificate is verified"
    assert "CA bundle" not in out and "throwaway CA;" not in out


def test_https_alone_without_trustme_fails_with_the_fix() -> None:
    done = run_without(EXTRA, *SMALL, "--scheme", "https")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and FIX in done.stderr


def test_only_clients_that_cannot_run_is_an_error_not_an_empty_success() -> None:
    for mode in ("sequential", "all"):
        done = run_without(
            "httpx", *SMALL, "--scheme", "http", "--mode", mode, "--clients", "httpx"
        )
        assert done.returncode == 1, (mode, done.stdout)
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("keepwarm bench: error: none of the clients asked for")
        assert FIX in done.stderr
