"""pytest plugin: run requests' own test suite against ``keepwarm.Session``.

Load it from the root of an unpacked requests sdist, with this directory on ``sys.path``::

    PYTHONPATH=scripts pytest -p requests_suite_plugin --kw-session=keepwarm tests

``scripts/requests_suite.sh`` does all of that; ``docs/COMPATIBILITY.md`` has the results.

Options:

``--kw-session=requests|keepwarm``
    ``requests`` (the default) leaves requests alone: the baseline run. ``keepwarm`` makes
    ``requests.Session``, ``requests.sessions.Session``, ``requests.session()`` and
    ``requests.sessions.session()`` build a ``keepwarm.Session`` before any test module is
    imported; ``requests.get()`` and friends follow, as ``requests.api`` calls
    ``sessions.Session()``.
``--kw-requests-like``
    Neutralise the keepwarm defaults that can be configured: no default timeout, no
    retries, no idle-connection expiry (``keepwarm.configure(...)``), so that what still
    fails is not one of those deliberate differences.
``--kw-mark-known``
    Mark the divergences listed in :data:`KNOWN_DIVERGENCES` ``xfail(strict=True)``: a
    run with this option is green only while exactly those tests fail.

In every run a network guard lets sockets connect only to loopback addresses and resolve
only ``localhost``; anything else fails at once as on a machine without a network, and the
tests that tried are listed at the end. Tests in :data:`NEEDS_INTERNET` are deselected.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, TypeVar

import pytest

#: Deselected in every run: they need a network beyond this machine.
NEEDS_INTERNET: dict[str, str] = {
    "tests/test_requests.py::TestTimeout::test_connect_timeout": (
        "connects to 10.255.255.1 (TARPIT) and expects a connect timeout: a non-loopback target"
    ),
    "tests/test_requests.py::TestTimeout::test_total_timeout_connect": (
        "connects to 10.255.255.1 (TARPIT) and expects a connect timeout: a non-loopback target"
    ),
}

#: Test id (a parametrized test's id without its [...] covers every case) -> (class,
#: reason, strict). A: a deliberate keepwarm difference; B: the test replaces a requests
#: internal that keepwarm does not call; C: a keepwarm bug (none left: fixed, with tests
#: in keepwarm's own suite). ``strict=False`` where the failure depends on timing.
#: Measured with requests 2.34.2; see docs/COMPATIBILITY.md.
_ENV_SNAPSHOT = (
    "A: keepwarm reads proxies, NO_PROXY, netrc and CA-bundle variables when the session is"
    " created (requests reads them on every request, ~125 us each); the test changes"
    " os.environ after creating the session. Session.reload_environment() reads it again."
)
_DEFAULT_TIMEOUT = (
    "A: timeout=None means the session's default (connect 3 s, read 7 s), not 'wait"
    " forever' (keepwarm.NO_TIMEOUT); an earlier test's /delay/10 keeps the single-threaded"
    " httpbin busy for longer than 7 s, and this request gives up. Passes with"
    " --kw-requests-like."
)
KNOWN_DIVERGENCES: dict[str, tuple[str, bool]] = {
    "tests/test_requests.py::TestRequests::test_env_cert_bundles[env1-/some/path]": (
        _ENV_SNAPSHOT,
        True,
    ),
    "tests/test_requests.py::TestRequests::test_env_cert_bundles[env3-/some/path]": (
        _ENV_SNAPSHOT,
        True,
    ),
    "tests/test_requests.py::TestRequests::test_env_cert_bundles[env6-/some/path]": (
        _ENV_SNAPSHOT,
        True,
    ),
    "tests/test_requests.py::TestRequests::test_env_cert_bundles[env7-/curl/path]": (
        _ENV_SNAPSHOT,
        True,
    ),
    "tests/test_requests.py::test_proxy_env_vars_override_default": (_ENV_SNAPSHOT, True),
    "tests/test_requests.py::TestRequests::test_basicauth_with_netrc": (
        "B: the test replaces requests.sessions.get_netrc_auth; keepwarm looks netrc up in"
        " its environment snapshot (read once per session) and never calls that function."
        " A real ~/.netrc works: test_basicauth_with_netrc_leak and keepwarm's own tests.",
        True,
    ),
    "tests/test_requests.py::TestTimeout::test_none_timeout[None]": (_DEFAULT_TIMEOUT, False),
    "tests/test_requests.py::TestTimeout::test_encoded_methods": (_DEFAULT_TIMEOUT, False),
}

_T = TypeVar("_T")
_session_mode = "requests"
_originals: dict[str, Any] = {}
_current_test = "(outside a test)"
_blocked: dict[str, list[str]] = {}
_real: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keepwarm", "requests' suite against keepwarm.Session")
    group.addoption(
        "--kw-session",
        choices=("requests", "keepwarm"),
        default="requests",
        help="which Session class requests.Session() builds (default: requests, unchanged)",
    )
    group.addoption(
        "--kw-requests-like",
        action="store_true",
        help="configure keepwarm with no default timeout, no retries, no keep-alive expiry",
    )
    group.addoption(
        "--kw-mark-known",
        action="store_true",
        help="mark the known divergences xfail(strict=True)",
    )


# The network guard --------------------------------------------------------------------


def _is_local(host: str) -> bool:
    """A connect() target on this machine: loopback, the unspecified address (Linux
    connects it to loopback) or the name localhost."""
    name = host.strip("[]").rstrip(".").lower()
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _resolvable(host: object) -> bool:
    """Names and literals getaddrinfo may look up without sending a DNS query."""
    if host is None or host in ("", b""):
        return True
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    name = name.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True  # a literal: no query; connect() decides whether it is allowed


def _block(what: str) -> None:
    _blocked.setdefault(_current_test, []).append(what)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _resolvable(host):
        _block(f"getaddrinfo({host!r})")
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r}: blocked by requests_suite_plugin")
    return _real["getaddrinfo"](host, *args, **kwargs)


def _guarded_gethostbyname(host: Any) -> Any:
    if not _resolvable(host):
        _block(f"gethostbyname({host!r})")
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r}: blocked by requests_suite_plugin")
    return _real["gethostbyname"](host)


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = str(address[0])
    if not _is_local(host):
        _block(f"connect({host!r}, {address[1]!r})")
        raise OSError(errno.ENETUNREACH, f"{host}: blocked by requests_suite_plugin")


def _guarded(name: str) -> Callable[..., Any]:
    real = _real[name]

    def method(self: socket.socket, address: Any) -> Any:
        _check_address(self, address)
        return real(self, address)

    method.__name__ = name
    return method


def _install_guard() -> None:
    _real.update(
        getaddrinfo=socket.getaddrinfo,
        gethostbyname=socket.gethostbyname,
        connect=socket.socket.connect,
        connect_ex=socket.socket.connect_ex,
    )
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.gethostbyname = _guarded_gethostbyname
    socket.socket.connect = _guarded("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded("connect_ex")  # type: ignore[method-assign]


def _remove_guard() -> None:
    if not _real:
        return
    socket.getaddrinfo = _real["getaddrinfo"]
    socket.gethostbyname = _real["gethostbyname"]
    socket.socket.connect = _real["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _real["connect_ex"]  # type: ignore[method-assign]
    _real.clear()


# The swap -----------------------------------------------------------------------------


def _swap_in_keepwarm(requests_like: bool) -> None:
    import requests
    import requests.sessions

    import keepwarm

    _originals.update(
        Session=requests.Session,
        sessions_Session=requests.sessions.Session,
        session=requests.session,
        sessions_session=requests.sessions.session,
    )
    if not issubclass(keepwarm.Session, _originals["sessions_Session"]):
        raise pytest.UsageError("keepwarm.Session does not subclass requests.sessions.Session")

    def session() -> requests.Session:
        return keepwarm.Session()

    requests.Session = keepwarm.Session  # type: ignore[misc]
    requests.sessions.Session = keepwarm.Session  # type: ignore[misc]
    requests.session = session
    requests.sessions.session = session
    if requests_like:
        keepwarm.configure(timeout=keepwarm.NO_TIMEOUT, max_retries=0, keepalive_expiry=None)


def _restore_requests() -> None:
    if not _originals:
        return
    import requests
    import requests.sessions

    requests.Session = _originals["Session"]  # type: ignore[misc]
    requests.sessions.Session = _originals["sessions_Session"]  # type: ignore[misc]
    requests.session = _originals["session"]
    requests.sessions.session = _originals["sessions_session"]
    _originals.clear()


# Hooks --------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    global _session_mode
    _session_mode = config.getoption("kw_session")
    _install_guard()
    if _session_mode == "keepwarm":
        _swap_in_keepwarm(bool(config.getoption("kw_requests_like")))


def pytest_unconfigure(config: pytest.Config) -> None:
    _restore_requests()
    _remove_guard()


def pytest_report_header(config: pytest.Config) -> list[str]:
    import requests
    import urllib3

    lines = [f"requests {requests.__version__}, urllib3 {urllib3.__version__}"]  # type: ignore[attr-defined]
    if _session_mode == "keepwarm":
        import keepwarm

        probe: Any = requests.session()
        lines.append(
            f"requests.Session() builds {type(probe).__module__}.{type(probe).__qualname__}"
            f" (keepwarm {keepwarm.__version__}): timeout={probe.timeout!r}, "
            f"max_retries={probe.settings.max_retries!r}, "
            f"keepalive_expiry={probe.settings.keepalive_expiry!r}"
        )
        probe.close()
    else:
        lines.append("requests.Session() builds requests.sessions.Session (baseline)")
    return lines


def _listed(nodeid: str, table: Mapping[str, _T]) -> _T | None:
    entry = table.get(nodeid)
    if entry is None and nodeid.endswith("]"):
        entry = table.get(nodeid.split("[", 1)[0])
    return entry


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (dropped if _listed(item.nodeid, NEEDS_INTERNET) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if _session_mode == "keepwarm" and config.getoption("kw_mark_known"):
        for item in items:
            entry = _listed(item.nodeid, KNOWN_DIVERGENCES)
            if entry is not None:
                reason, strict = entry
                item.add_marker(pytest.mark.xfail(reason=reason, strict=strict))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    global _current_test
    _current_test = item.nodeid
    try:
        return (yield)
    finally:
        _current_test = "(between tests)"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    write: Callable[[str], None] = terminalreporter.write_line
    terminalreporter.section("requests_suite_plugin")
    write(f"session class: {_session_mode}")
    if NEEDS_INTERNET:
        write(f"deselected, need the internet: {', '.join(_short(NEEDS_INTERNET))}")
    if not _blocked:
        write("network guard: no test tried to reach a non-loopback address")
        return
    write("network guard: these tests tried to reach beyond loopback (blocked):")
    for nodeid, attempts in sorted(_blocked.items()):
        write(f"  {nodeid}: {', '.join(sorted(set(attempts)))}")


def _short(nodeids: Iterable[str]) -> list[str]:
    return [nodeid.rsplit("::", 1)[-1] for nodeid in nodeids]
