"""The cookie-scope guard (docs/guards/cookie-scope.md), next to plain requests.

Two pitfalls plain requests lets pass without a word, each shown with plain requests and
keepwarm on the same server:

* a cookie stored on the session without a domain goes to every host the session calls;
* a host-only cookie (``Set-Cookie`` without ``Domain=``) from ``a.kw-test.localhost`` is
  not sent to its sibling ``b.kw-test.localhost``.

keepwarm sends exactly what requests sends; it warns. ``keepwarm.share_cookies`` shares a
host-only cookie across the parent domain on purpose.

One :class:`LocalServer` on 127.0.0.1 answers every name: ``socket.getaddrinfo`` is
wrapped for each test (:func:`names`) to answer the fake ``*.kw-test.localhost`` names
(which do not resolve here) as 127.0.0.1 and to refuse any other lookup but IP literals,
so no DNS query leaves the machine.
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from requests.cookies import RequestsCookieJar, create_cookie

import keepwarm
from keepwarm import _guards
from keepwarm._upstream.cookies import ThreadSafeCookieJar, shared_parent
from servers import LocalServer, ServerRequest, ServerResponse, default_handler

PARENT = "kw-test.localhost"
A = f"a.{PARENT}"
B = f"b.{PARENT}"
SECRET = "s3cr3t-value"


@pytest.fixture(autouse=True)
def _fresh_sites() -> Iterator[None]:
    _guards.forget_sites()
    yield
    _guards.forget_sites()


@pytest.fixture(autouse=True)
def names(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.kw-test.localhost`` and ``localhost`` -> 127.0.0.1; IP literals pass; any
    other name fails."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith("." + PARENT) or name == "localhost":
            if family not in (socket.AF_UNSPEC, socket.AF_INET):
                return []
            return real("127.0.0.1", port, socket.AF_INET, *args, **kwargs)
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
        except OSError:
            raise socket.gaierror(socket.EAI_NONAME, f"test: no DNS lookup of {name}") from None
        return real(host, port, family, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def server(http_server: LocalServer) -> LocalServer:
    return http_server


def at(server: LocalServer, host: str) -> str:
    return at_port(server.port, host)


def at_port(port: int, host: str) -> str:
    return f"http://{host}:{port}"


def cookies_seen(session: requests.Session, url: str) -> dict[str, str]:
    """The cookies the server received with a GET of ``url``/cookies."""
    with session.get(url + "/cookies", timeout=5) as response:
        response.raise_for_status()
        seen: dict[str, str] = response.json()
    return seen


def line_of(text: str) -> int:
    """The number of the one line of this file that holds ``text``."""
    with open(__file__) as f:
        (found,) = [i for i, line in enumerate(f, 1) if text in line and "line_of(" not in line]
    return found


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    """Any warning inside is an error (the suite's -W error, made explicit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# A cookie without a domain: sent to every host ------------------------------------------


def test_plain_requests_sends_a_domainless_cookie_to_every_host_keepwarm_warns(
    server: LocalServer,
) -> None:
    with requests.Session() as plain:
        plain.cookies.set("token", SECRET)
        # The pitfall: the cookie meant for one host reaches any host.
        assert cookies_seen(plain, at(server, A)) == {"token": SECRET}
        assert cookies_seen(plain, at(server, "127.0.0.1")) == {"token": SECRET}
    with keepwarm.Session() as session:
        with pytest.warns(keepwarm.CookieScopeWarning) as record:
            session.cookies.set("token", SECRET)  # the warned line
        # keepwarm sends what requests sends; it warns.
        assert cookies_seen(session, at(server, A)) == {"token": SECRET}
        assert cookies_seen(session, at(server, "127.0.0.1")) == {"token": SECRET}
    (warning,) = record
    message = str(warning.message)
    assert warning.filename == __file__
    assert warning.lineno == line_of("# the warned line")
    assert "'token'" in message
    assert "every host" in message
    assert "domain='api.example.com'" in message
    assert "base_url" in message
    assert SECRET not in message


def _set(session: keepwarm.Session) -> None:
    session.cookies.set("n", SECRET)


def _setitem(session: keepwarm.Session) -> None:
    session.cookies["n"] = SECRET


def _update(session: keepwarm.Session) -> None:
    session.cookies.update({"n": SECRET})


def _set_cookie(session: keepwarm.Session) -> None:
    session.cookies.set_cookie(create_cookie("n", SECRET, domain=""))


def _add_dict(session: keepwarm.Session) -> None:
    requests.utils.add_dict_to_cookiejar(session.cookies, {"n": SECRET})


@pytest.mark.parametrize("store", [_set, _setitem, _update, _set_cookie, _add_dict])
def test_every_way_to_store_a_domainless_cookie_warns_at_the_users_line(store: Any) -> None:
    with keepwarm.Session() as session, pytest.warns(keepwarm.CookieScopeWarning) as record:
        store(session)
    (warning,) = record
    assert warning.filename == __file__
    assert warning.lineno == store.__code__.co_firstlineno + 1
    assert "'n'" in str(warning.message)
    assert SECRET not in str(warning.message)


def test_a_jar_given_to_the_session_with_a_domainless_cookie_warns() -> None:
    jar = RequestsCookieJar()
    jar.set("n", SECRET)
    with pytest.warns(keepwarm.CookieScopeWarning, match="'n'") as record:
        session = keepwarm.Session(cookies=jar)
    session.close()
    assert record[0].filename == __file__


def test_cookies_with_a_domain_are_quiet(server: LocalServer) -> None:
    with keepwarm.Session(base_url=at(server, A)) as session, no_warnings():
        session.cookies.set("n", "1", domain=A)
        session.cookies.update({})
        keepwarm.Session(base_url=at(server, A), cookies={"d": "2"}).close()
        with keepwarm.Session(base_url=at(server, A) + "/", cookies={"d": "2"}) as other:
            assert cookies_seen(other, at(server, A)) == {"d": "2"}
        assert cookies_seen(session, at(server, A)) == {"n": "1"}
        assert cookies_seen(session, at(server, B)) == {}


def test_jars_that_are_no_sessions_own_stay_quiet() -> None:
    with no_warnings():
        ThreadSafeCookieJar().set("n", SECRET)
        with keepwarm.Session(guards=False) as off:
            off.cookies.set("n", SECRET)
        with keepwarm.Session() as session:
            # requests copies jars (redirects): a copy is nobody's session jar.
            session.cookies.copy().set("n", SECRET)
            # A jar the user put in place of the session's own.
            session.cookies = RequestsCookieJar()
            session.cookies.set("n", SECRET)


# A host-only cookie not sent to a sibling host --------------------------------------------


def test_neither_sends_a_host_only_cookie_to_a_sibling_keepwarm_warns(server: LocalServer) -> None:
    with requests.Session() as plain:
        plain.get(at(server, A) + f"/cookies/set?sid={SECRET}", timeout=5).close()
        assert cookies_seen(plain, at(server, A)) == {"sid": SECRET}
        assert cookies_seen(plain, at(server, B)) == {}  # silently without it
    with keepwarm.Session() as session:
        session.get(at(server, A) + f"/cookies/set?sid={SECRET}").close()
        assert cookies_seen(session, at(server, A)) == {"sid": SECRET}
        with pytest.warns(keepwarm.CookieScopeWarning) as record:
            assert cookies_seen(session, at(server, B)) == {}  # the same request as requests'
    (warning,) = record
    message = str(warning.message)
    assert warning.filename == __file__
    for part in ("'sid'", A, B, f"Domain={PARENT}", "keepwarm.share_cookies", "silence"):
        assert part in message
    assert SECRET not in message


def test_share_cookies_sends_it_to_the_sibling(server: LocalServer) -> None:
    """With plain requests and keepwarm alike: the copy for the parent domain reaches b;
    keepwarm warns about what is left unshared only."""
    for session in (requests.Session(), keepwarm.Session()):
        with session:
            session.get(at(server, A) + "/cookies/set?sid=1&other=2", timeout=5).close()
            assert keepwarm.share_cookies(session, PARENT, names=["sid"]) == 1
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert cookies_seen(session, at(server, B)) == {"sid": "1"}
            if isinstance(session, keepwarm.Session):
                (warning,) = caught
                assert "'other'" in str(warning.message)
                assert "'sid'" not in str(warning.message)
            else:
                assert caught == []
            # a still gets its own host-only cookies (and the shared copy of sid).
            assert cookies_seen(session, at(server, A))["other"] == "2"
            assert keepwarm.share_cookies(session, domain="." + PARENT) == 2
            with no_warnings():
                assert cookies_seen(session, at(server, B)) == {"sid": "1", "other": "2"}
                # Sharing is not leaking: a host outside the domain gets nothing.
                assert cookies_seen(session, at(server, "127.0.0.1")) == {}
            if isinstance(session, keepwarm.Session):
                # Nothing left to watch: the per-request check is off again.
                assert not session.cookies.kw_host_only  # type: ignore[attr-defined]


def test_the_sibling_guard_warns_once_per_call_site(server: LocalServer) -> None:
    with keepwarm.Session() as session:
        session.get(at(server, A) + "/cookies/set?sid=1").close()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                session.get(at(server, B) + "/").close()  # one site
            session.get(at(server, B) + "/").close()  # another
    assert [w.category for w in caught] == [keepwarm.CookieScopeWarning] * 2
    assert caught[0].lineno != caught[1].lineno
    assert {w.filename for w in caught} == {__file__}


def test_the_domainless_guard_warns_once_per_call_site() -> None:
    with keepwarm.Session() as session, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            session.cookies.set(f"n{i}", "v")
    assert [w.category for w in caught] == [keepwarm.CookieScopeWarning]


def test_strict_raises_and_stores_or_sends_nothing(server: LocalServer) -> None:
    with keepwarm.Session(strict=True) as session:
        for _ in range(2):  # every time
            with pytest.raises(keepwarm.CookieScopeWarning, match="'n'"):
                session.cookies.set("n", SECRET)
        assert "n" not in session.cookies
        session.get(at(server, A) + "/cookies/set?sid=1").close()
        before = server.requests_handled
        with pytest.raises(keepwarm.CookieScopeWarning, match="'sid'"):
            session.get(at(server, B) + "/")
        assert server.requests_handled == before


def test_silence_and_guards_off_quiet_both(server: LocalServer) -> None:
    with no_warnings(), keepwarm.Session() as session:
        with keepwarm.silence(keepwarm.CookieScopeWarning):
            session.cookies.set("n", "v")
            session.get(at(server, A) + "/cookies/set?sid=1").close()
            session.get(at(server, B) + "/").close()
        with keepwarm.Session(guards=False) as off:
            off.cookies.set("n", "v")
            off.get(at(server, A) + "/cookies/set?sid=1").close()
            off.get(at(server, B) + "/").close()
            # Nothing noted: the per-request check never runs.
            assert not off.cookies.kw_host_only  # type: ignore[attr-defined]


def test_quiet_once_the_sibling_has_the_cookie_or_it_is_gone(server: LocalServer) -> None:
    with no_warnings():
        with keepwarm.Session() as session:
            with keepwarm.silence(keepwarm.CookieScopeWarning):
                session.get(at(server, A) + "/cookies/set?sid=1").close()
                session.get(at(server, B) + "/cookies/set?sid=2").close()
            # b set its own sid: b's requests carry one, and a's theirs.
            assert cookies_seen(session, at(server, B)) == {"sid": "2"}
            assert cookies_seen(session, at(server, A)) == {"sid": "1"}
        with keepwarm.Session() as session:
            session.get(at(server, A) + "/cookies/set?sid=1").close()
            session.cookies.clear(A, "/", "sid")  # this one gone
            assert cookies_seen(session, at(server, B)) == {}
            # ... and no longer watched: the per-request check is off again.
            assert not session.cookies.kw_host_only  # type: ignore[attr-defined]
            session.get(at(server, A) + "/cookies/set?sid=1").close()
            session.cookies.clear()  # all gone
            assert not session.cookies.kw_host_only  # type: ignore[attr-defined]
            assert cookies_seen(session, at(server, B)) == {}


def test_ip_addresses_and_localhost_are_no_siblings(server: LocalServer) -> None:
    with no_warnings(), keepwarm.Session() as session:
        session.get(at(server, "127.0.0.1") + "/cookies/set?ip=1").close()
        session.get(at(server, "localhost") + "/cookies/set?name=1").close()
        assert cookies_seen(session, at(server, "localhost")) == {"name": "1"}
        assert cookies_seen(session, at(server, "127.0.0.1")) == {"ip": "1"}
        assert not session.cookies.kw_host_only  # type: ignore[attr-defined]
    assert shared_parent("a.example.com") == "example.com"
    assert shared_parent("a.b.example.com") == "b.example.com"
    for host in ("example.com", "127.0.0.1", "[::1].local", "localhost.local", "a.localhost"):
        assert shared_parent(host) is None, host


def test_share_cookies_refuses_domains_shared_by_strangers() -> None:
    with keepwarm.Session() as session:
        for domain in ("com", ".com", "", "127.0.0.1", "localhost"):
            with pytest.raises(ValueError, match="domain="):
                keepwarm.share_cookies(session, domain)
        with pytest.raises(TypeError, match="names="):
            keepwarm.share_cookies(session, "example.com", names="sid")
        with pytest.raises(TypeError, match=r"requests\.Session"):
            keepwarm.share_cookies(session.cookies, "example.com")  # type: ignore[arg-type]
        assert keepwarm.share_cookies(session, "example.com") == 0


def test_the_guard_survives_pickling(server: LocalServer) -> None:
    with keepwarm.Session() as session:
        session.get(at(server, A) + "/cookies/set?sid=1").close()
        copy = pickle.loads(pickle.dumps(session))
    with copy, pytest.warns(keepwarm.CookieScopeWarning, match="'sid'"):
        copy.get(at(server, B) + "/").close()


def test_a_login_redirect_to_a_sibling_warns_at_the_call(
    make_server: Callable[..., LocalServer],
) -> None:
    """a sets the cookie on its redirect to b (a login hop): neither client sends it to b;
    keepwarm warns at the line that made the call."""
    port: list[int] = []

    def handler(request: ServerRequest) -> ServerResponse:
        if request.route == "/login":
            to = at_port(port[0], B) + "/cookies"
            return ServerResponse(302, [("Location", to), ("Set-Cookie", "sid=1; Path=/")])
        return default_handler(request)

    server = make_server(handler)
    port.append(server.port)
    with requests.Session() as plain:
        assert plain.get(at(server, A) + "/login", timeout=5).json() == {}
    with keepwarm.Session() as session, pytest.warns(keepwarm.CookieScopeWarning) as record:
        assert session.get(at(server, A) + "/login").json() == {}  # the call
    (warning,) = record
    assert warning.lineno == line_of("# the call")
    assert "'sid'" in str(warning.message)
