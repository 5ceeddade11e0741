"""Settings: validation, KEEPWARM_* variables, precedence, Timeout and RetryPolicy objects.

A setting is resolved keyword > ``keepwarm.configure()`` > ``KEEPWARM_*`` > default, and a
bad value fails when the session is created (or ``configure()`` is called) with a message
that names the setting. Behavioural checks run against real local servers.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

import keepwarm
from keepwarm._config import ENVIRONMENT_VARIABLES, Settings, reset_configuration
from keepwarm._retry import IDEMPOTENT_METHODS
from servers import Flaky, LocalServer, RawServer, ServerResponse, silent

NAME = "test-config"
#: What urllib3 raises when the server drops the connection after the request was sent.
_DROPPED = ProtocolError("Connection aborted.", ConnectionResetError())


def _make_session(**kwargs: Any) -> None:
    keepwarm.Session(**kwargs).close()


def _make_shared(**kwargs: Any) -> None:
    keepwarm.session(NAME, **kwargs).close()


ENTRY_POINTS: dict[str, Callable[..., None]] = {
    "Session": _make_session,
    "session": _make_shared,
    "configure": keepwarm.configure,
}

# (keywords, exception, regex the message must match: it names the setting and the value)
INVALID: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"timeout": -1}, ValueError, r"timeout=-1 is not valid"),
    ({"timeout": 0}, ValueError, r"timeout=0 is not valid"),
    ({"timeout": -0.5}, ValueError, r"timeout=-0\.5 is not valid"),
    ({"timeout": math.nan}, ValueError, r"timeout=nan is not valid.*NO_TIMEOUT"),
    ({"timeout": math.inf}, ValueError, r"timeout=inf is not valid.*NO_TIMEOUT"),
    ({"timeout": "5"}, TypeError, r"timeout='5' is not valid"),
    ({"timeout": None}, TypeError, r"timeout=None is not valid.*NO_TIMEOUT"),
    ({"timeout": True}, TypeError, r"timeout=True is not valid"),
    ({"timeout": (1, 2, 3)}, ValueError, r"timeout=\(1, 2, 3\) is not valid"),
    ({"timeout": (-1, 5)}, ValueError, r"timeout \(connect\)=-1 is not valid"),
    ({"timeout": (3, 0)}, ValueError, r"timeout \(read\)=0 is not valid"),
    ({"timeout": (3, "7")}, TypeError, r"timeout \(read\)='7' is not valid"),
    ({"pool_maxsize": 0}, ValueError, r"pool_maxsize=0 is not valid"),
    ({"pool_maxsize": -4}, ValueError, r"pool_maxsize=-4 is not valid"),
    ({"pool_maxsize": 1.5}, TypeError, r"pool_maxsize=1\.5 is not valid"),
    ({"pool_maxsize": "32"}, TypeError, r"pool_maxsize='32' is not valid"),
    ({"pool_connections": True}, TypeError, r"pool_connections=True is not valid"),
    ({"pool_connections": 0}, ValueError, r"pool_connections=0 is not valid"),
    ({"pool_block": "yes"}, TypeError, r"pool_block='yes' is not valid"),
    ({"pool_block": 1}, TypeError, r"pool_block=1 is not valid"),
    ({"pool_block": None}, TypeError, r"pool_block=None is not valid"),
    ({"pool_timeout": -1}, ValueError, r"pool_timeout=-1 is not valid"),
    ({"pool_timeout": 0}, ValueError, r"pool_timeout=0 is not valid"),
    ({"pool_timeout": math.nan}, ValueError, r"pool_timeout=nan is not valid"),
    ({"pool_timeout": "1"}, TypeError, r"pool_timeout='1' is not valid"),
    ({"pool_timeout": None}, TypeError, r"pool_timeout=None is not valid"),
    ({"max_retries": -1}, ValueError, r"max_retries=-1 is not valid"),
    ({"max_retries": None}, TypeError, r"max_retries=None is not valid"),
    ({"max_retries": True}, TypeError, r"max_retries=True is not valid"),
    ({"max_retries": 2.0}, TypeError, r"max_retries=2\.0 is not valid"),
    ({"base_url": "ftp://x"}, ValueError, r"base_url='ftp://x' is not valid"),
    ({"base_url": "not a url"}, ValueError, r"base_url='not a url' is not valid"),
    ({"base_url": "http://"}, ValueError, r"base_url='http://' is not valid"),
    ({"base_url": "http://h/api?x=1"}, ValueError, r"base_url=.* is not valid.*query"),
    ({"base_url": "http://h/api#top"}, ValueError, r"base_url=.* is not valid.*fragment"),
    ({"base_url": b"http://h/"}, TypeError, r"base_url=b'http://h/' is not valid"),
    ({"pool_size": 4}, TypeError, r"'pool_size'.*did you mean 'pool_maxsize'"),
    ({"timout": 4}, TypeError, r"'timout'.*did you mean 'timeout'"),
    ({"max_retry": 4}, TypeError, r"'max_retry'.*did you mean 'max_retries'"),
    # Spelling alone points these at the wrong knob (pool_timeout, max_connection_age).
    ({"connect_timeout": 4}, TypeError, r"did you mean timeout=\(connect, read\)\?"),
    ({"read_timeout": 4}, TypeError, r"did you mean timeout=\(connect, read\)\?"),
    ({"idle_timeout": 4}, TypeError, r"did you mean 'keepalive_expiry'"),
    ({"keep_alive_timeout": 4}, TypeError, r"did you mean 'keepalive_expiry'"),
    ({"max_connections": 4}, TypeError, r"did you mean 'pool_maxsize'"),
    ({"retries": 4}, TypeError, r"did you mean 'max_retries'"),
]


def _case_id(case: tuple[dict[str, Any], type[Exception], str]) -> str:
    ((name, value),) = case[0].items()
    return f"{name}={value!r}"


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("case", INVALID, ids=_case_id)
def test_invalid_setting_fails_with_a_message_naming_it(
    entry: str, case: tuple[dict[str, Any], type[Exception], str]
) -> None:
    kwargs, exc_type, pattern = case
    with pytest.raises(exc_type, match=pattern):
        ENTRY_POINTS[entry](**kwargs)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_invalid_setting_errors_say_what_is_allowed(entry: str) -> None:
    with pytest.raises(ValueError, match=r"pool_maxsize must be a whole number >= 1"):
        ENTRY_POINTS[entry](pool_maxsize=0)
    with pytest.raises(TypeError, match=r"pool_block must be True or False"):
        ENTRY_POINTS[entry](pool_block="yes")
    with pytest.raises(ValueError, match=r"http:// or https://"):
        ENTRY_POINTS[entry](base_url="ftp://x")


def test_unknown_setting_lists_the_known_ones() -> None:
    with pytest.raises(TypeError) as info:
        keepwarm.configure(colour="blue")
    message = str(info.value)
    assert "keepwarm.configure()" in message
    assert "'colour'" in message
    for name in ("timeout", "pool_connections", "pool_maxsize", "pool_block", "pool_timeout"):
        assert name in message


def test_failed_configure_changes_nothing() -> None:
    with pytest.raises(ValueError, match="timeout"):
        keepwarm.configure(pool_maxsize=5, timeout=-1)
    with keepwarm.Session() as s:
        assert s.settings.pool_maxsize == keepwarm.DEFAULT_POOL_MAXSIZE


def test_failed_shared_session_is_not_registered() -> None:
    with pytest.raises(ValueError, match="pool_maxsize"):
        keepwarm.session(NAME, pool_maxsize=0)
    shared = keepwarm.session(NAME)
    assert shared.settings.pool_maxsize == keepwarm.DEFAULT_POOL_MAXSIZE
    assert keepwarm.session(NAME) is shared


def test_retry_policy_validates_retry_after_max() -> None:
    with pytest.raises(ValueError, match=r"retry_after_max=-1 is not valid"):
        keepwarm.RetryPolicy(retry_after_max=-1)
    with pytest.raises(ValueError, match=r"retry_after_max=nan is not valid"):
        keepwarm.RetryPolicy(retry_after_max=math.nan)
    assert keepwarm.RetryPolicy(retry_after_max=0).retry_after_max == 0.0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"timeout": -1}, r"timeout=-1 is not valid"),
        ({"connect": 0}, r"connect timeout=0 is not valid"),
        ({"read": math.inf}, r"read timeout=inf is not valid.*NO_TIMEOUT"),
        ({"connect": math.nan}, r"connect timeout=nan is not valid"),
    ],
)
def test_timeout_object_validates(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        keepwarm.Timeout(**kwargs)


def test_timeout_object_rejects_strings() -> None:
    with pytest.raises(TypeError, match=r"connect timeout='1' is not valid"):
        keepwarm.Timeout(connect="1")  # type: ignore[arg-type]


# -- defaults -------------------------------------------------------------------------


def test_defaults() -> None:
    assert keepwarm.Timeout(connect=3, read=7) == keepwarm.DEFAULT_TIMEOUT
    assert keepwarm.DEFAULT_POOL_CONNECTIONS == 32
    assert keepwarm.DEFAULT_POOL_MAXSIZE == 32
    assert keepwarm.DEFAULT_POOL_TIMEOUT == 10.0
    with keepwarm.Session() as s:
        settings = s.settings
        assert settings.timeout == keepwarm.Timeout(connect=3, read=7)
        assert s.timeout == keepwarm.Timeout(connect=3, read=7)
        assert settings.pool_connections == 32
        assert settings.pool_maxsize == 32
        assert settings.pool_block is False
        assert settings.pool_timeout == 10.0
        assert settings.base_url is None
        assert s.base_url is None
        assert isinstance(settings.max_retries, keepwarm.RetryPolicy)
        assert settings.max_retries.total == 3
        # ... and the transport really is built with them
        adapter = s.get_adapter("http://127.0.0.1/")
        manager = adapter.poolmanager
        assert manager.connection_pool_kw["maxsize"] == 32
        assert manager.connection_pool_kw["block"] is False
        assert manager.pools._maxsize == 32
        assert adapter.max_retries is settings.max_retries
        assert s.get_adapter("https://127.0.0.1/") is adapter


def test_settings_are_read_only() -> None:
    with keepwarm.Session() as s, pytest.raises(dataclasses.FrozenInstanceError):
        s.settings.pool_maxsize = 1  # type: ignore[misc]


def test_timeout_keyword_forms() -> None:
    cases: list[tuple[Any, keepwarm.Timeout]] = [
        (5, keepwarm.Timeout(connect=5, read=5)),
        (2.5, keepwarm.Timeout(connect=2.5, read=2.5)),
        ((1, 9), keepwarm.Timeout(connect=1, read=9)),
        ((1, None), keepwarm.Timeout(connect=1, read=None)),
        (keepwarm.Timeout(connect=2), keepwarm.Timeout(connect=2, read=7)),
        (urllib3.Timeout(connect=1, read=2), keepwarm.Timeout(connect=1, read=2)),
    ]
    for given, expected in cases:
        with keepwarm.Session(timeout=given) as s:
            assert s.timeout == expected, given
    with keepwarm.Session(timeout=keepwarm.NO_TIMEOUT) as s:
        assert s.timeout is keepwarm.NO_TIMEOUT


def test_urllib3_timeout_with_total_is_accepted_or_rejected_cleanly() -> None:
    """keepwarm converts urllib3.Timeout objects; one built with a total (what
    ``urllib3.Timeout(5)`` means) must not escape as urllib3's internal
    TimeoutStateError ("timer that has not started")."""
    try:
        s = keepwarm.Session(timeout=urllib3.Timeout(total=5))
    except (TypeError, ValueError) as exc:
        assert "timeout" in str(exc)
    else:
        with s:
            assert isinstance(s.timeout, keepwarm.Timeout)
            assert s.timeout.connect is not None and s.timeout.connect <= 5
            assert s.timeout.read is not None and s.timeout.read <= 5


def test_max_retries_keyword_forms() -> None:
    with keepwarm.Session(max_retries=5) as s:
        retries = s.settings.max_retries
        assert isinstance(retries, keepwarm.RetryPolicy)
        assert retries.total == 5
    with keepwarm.Session(max_retries=0) as s:
        retries = s.settings.max_retries
        assert retries.total == 0
        assert retries.read is False
    custom = Retry(total=1)
    with keepwarm.Session(max_retries=custom) as s:
        assert s.settings.max_retries is custom
        assert s.get_adapter("http://127.0.0.1/").max_retries is custom


def test_base_url_gets_a_trailing_slash() -> None:
    with keepwarm.Session(base_url="http://127.0.0.1:1/api") as s:
        assert s.base_url == "http://127.0.0.1:1/api/"
    with keepwarm.Session(base_url="https://127.0.0.1:1/api/") as s:
        assert s.base_url == "https://127.0.0.1:1/api/"
    with keepwarm.Session(base_url=None) as s:
        assert s.base_url is None


# -- environment variables ------------------------------------------------------------

# (variable, value, setting, expected resolved value)
ENV_CASES: list[tuple[str, str, str, Any]] = [
    ("KEEPWARM_TIMEOUT", "3,7", "timeout", keepwarm.Timeout(connect=3, read=7)),
    ("KEEPWARM_TIMEOUT", "2,9", "timeout", keepwarm.Timeout(connect=2, read=9)),
    ("KEEPWARM_TIMEOUT", " 1.5 , 4 ", "timeout", keepwarm.Timeout(connect=1.5, read=4)),
    ("KEEPWARM_TIMEOUT", "5", "timeout", keepwarm.Timeout(connect=5, read=5)),
    ("KEEPWARM_TIMEOUT", "none", "timeout", keepwarm.NO_TIMEOUT),
    ("KEEPWARM_TIMEOUT", "None", "timeout", keepwarm.NO_TIMEOUT),
    ("KEEPWARM_POOL_MAXSIZE", "5", "pool_maxsize", 5),
    ("KEEPWARM_POOL_CONNECTIONS", "4", "pool_connections", 4),
    ("KEEPWARM_POOL_BLOCK", "true", "pool_block", True),
    ("KEEPWARM_POOL_BLOCK", "1", "pool_block", True),
    ("KEEPWARM_POOL_BLOCK", "off", "pool_block", False),
    ("KEEPWARM_POOL_TIMEOUT", "2.5", "pool_timeout", 2.5),
    ("KEEPWARM_MAX_RETRIES", "5", "max_retries", 5),
    ("KEEPWARM_MAX_RETRIES", "0", "max_retries", 0),
    ("KEEPWARM_BASE_URL", "http://127.0.0.1:1/api", "base_url", "http://127.0.0.1:1/api/"),
    ("KEEPWARM_POOL_MAXSIZE", "auto", "pool_maxsize", "auto"),
    ("KEEPWARM_TELEMETRY", "false", "telemetry", False),
    ("KEEPWARM_TELEMETRY", "1", "telemetry", True),
    ("KEEPWARM_GUARDS", "0", "guards", False),
    ("KEEPWARM_STRICT", "yes", "strict", True),
    ("KEEPWARM_HTTP2", "1", "http2", True),
    ("KEEPWARM_KEEPALIVE_EXPIRY", "2.5", "keepalive_expiry", 2.5),
    ("KEEPWARM_KEEPALIVE_EXPIRY", "none", "keepalive_expiry", None),
    ("KEEPWARM_MAX_CONNECTION_AGE", "300", "max_connection_age", 300.0),
]


def test_env_cases_cover_every_documented_variable() -> None:
    assert {var for var, *_ in ENV_CASES} == set(ENVIRONMENT_VARIABLES)
    for var, (setting, _, _) in ENVIRONMENT_VARIABLES.items():
        assert var == "KEEPWARM_" + setting.upper()


@pytest.mark.parametrize(("var", "raw", "setting", "expected"), ENV_CASES)
def test_environment_variable_takes_effect(
    monkeypatch: pytest.MonkeyPatch, var: str, raw: str, setting: str, expected: Any
) -> None:
    monkeypatch.setenv(var, raw)
    with keepwarm.Session() as s:
        value = getattr(s.settings, setting)
        if setting == "max_retries":
            assert value.total == expected
            if expected == 0:
                assert value.read is False
        else:
            assert value == expected
        adapter = s.get_adapter("http://127.0.0.1/")
        if setting == "pool_maxsize":
            # "auto" starts at the default size and grows on demand.
            initial = keepwarm.DEFAULT_POOL_MAXSIZE if expected == "auto" else expected
            assert adapter.poolmanager.connection_pool_kw["maxsize"] == initial
        if setting == "pool_connections":
            assert adapter.poolmanager.pools._maxsize == expected
        if setting == "pool_block":
            assert adapter.poolmanager.connection_pool_kw["block"] is expected
        if setting == "max_retries":
            assert adapter.max_retries is value
    # The shared sessions read the variables too.
    shared_value = getattr(keepwarm.session(NAME).settings, setting)
    if setting == "max_retries":
        assert shared_value.total == expected
    else:
        assert shared_value == expected


def test_environment_is_read_when_the_session_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    with keepwarm.Session() as before:
        monkeypatch.setenv("KEEPWARM_POOL_MAXSIZE", "3")
        with keepwarm.Session() as after:
            assert before.settings.pool_maxsize == 32
            assert after.settings.pool_maxsize == 3


MALFORMED_ENV: list[tuple[str, str]] = [
    ("KEEPWARM_TIMEOUT", "abc"),
    ("KEEPWARM_TIMEOUT", "0"),
    ("KEEPWARM_TIMEOUT", "-1"),
    ("KEEPWARM_TIMEOUT", "nan"),
    ("KEEPWARM_TIMEOUT", "inf"),
    ("KEEPWARM_TIMEOUT", "1,2,3,4"),
    ("KEEPWARM_TIMEOUT", "1,2,0"),
    ("KEEPWARM_TIMEOUT", "3;7"),
    ("KEEPWARM_POOL_MAXSIZE", "0"),
    ("KEEPWARM_POOL_MAXSIZE", "ten"),
    ("KEEPWARM_POOL_MAXSIZE", "1.5"),
    ("KEEPWARM_POOL_CONNECTIONS", "-3"),
    ("KEEPWARM_POOL_BLOCK", "maybe"),
    ("KEEPWARM_POOL_BLOCK", "2"),
    ("KEEPWARM_POOL_TIMEOUT", "-1"),
    ("KEEPWARM_POOL_TIMEOUT", "soon"),
    ("KEEPWARM_MAX_RETRIES", "-1"),
    ("KEEPWARM_MAX_RETRIES", "three"),
    ("KEEPWARM_BASE_URL", "ftp://x"),
    ("KEEPWARM_BASE_URL", "not a url"),
    ("KEEPWARM_POOL_MAXSIZE", "automatic"),
    ("KEEPWARM_TELEMETRY", "sometimes"),
    ("KEEPWARM_KEEPALIVE_EXPIRY", "-1"),
    ("KEEPWARM_MAX_CONNECTION_AGE", "forever"),
]


@pytest.mark.parametrize("var", sorted(ENVIRONMENT_VARIABLES))
def test_an_empty_environment_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    """`KEEPWARM_TIMEOUT= cmd` is how a shell unsets a variable for one command."""
    monkeypatch.setenv(var, "  ")
    with keepwarm.Session() as s:
        assert s.settings == Settings()


@pytest.mark.parametrize(("var", "raw"), MALFORMED_ENV)
def test_malformed_environment_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, raw: str
) -> None:
    monkeypatch.setenv(var, raw)
    pattern = re.escape(f"{var}={raw!r}")
    with pytest.raises(ValueError, match=pattern):
        keepwarm.Session()
    with pytest.raises(ValueError, match=pattern):
        keepwarm.session(NAME)


def test_unknown_environment_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPWARM_POOL_MAX_SIZE", "64")
    with pytest.raises(ValueError, match=r"KEEPWARM_POOL_MAX_SIZE.*KEEPWARM_POOL_MAXSIZE"):
        keepwarm.Session()
    monkeypatch.delenv("KEEPWARM_POOL_MAX_SIZE")
    monkeypatch.setenv("KEEPWARM_CONNECT_TIMEOUT", "1")
    with pytest.raises(
        ValueError, match=r"KEEPWARM_CONNECT_TIMEOUT.*did you mean KEEPWARM_TIMEOUT"
    ):
        keepwarm.Session()
    monkeypatch.delenv("KEEPWARM_CONNECT_TIMEOUT")
    monkeypatch.setenv("KEEPWARM_MAX_CONNECTIONS", "1")
    with pytest.raises(ValueError, match=r"did you mean KEEPWARM_POOL_MAXSIZE"):
        keepwarm.Session()
    monkeypatch.delenv("KEEPWARM_MAX_CONNECTIONS")
    monkeypatch.setenv("KEEPWARM_SOMETHING_ELSE", "1")
    with pytest.raises(ValueError, match=r"unknown environment variable KEEPWARM_SOMETHING_ELSE"):
        keepwarm.Session()


# -- precedence -----------------------------------------------------------------------


def test_precedence_keyword_over_configure_over_env_over_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolved(**kwargs: Any) -> tuple[int, Any]:
        with keepwarm.Session(**kwargs) as s:
            return s.settings.pool_maxsize, s.timeout

    assert resolved() == (32, keepwarm.Timeout(connect=3, read=7))
    monkeypatch.setenv("KEEPWARM_POOL_MAXSIZE", "4")
    monkeypatch.setenv("KEEPWARM_TIMEOUT", "1,2")
    assert resolved() == (4, keepwarm.Timeout(connect=1, read=2))
    keepwarm.configure(pool_maxsize=8, timeout=(2, 3))
    assert resolved() == (8, keepwarm.Timeout(connect=2, read=3))
    assert resolved(pool_maxsize=16, timeout=9) == (16, keepwarm.Timeout(9))
    # configure() only sets what it was given; the rest still comes from the environment.
    reset_configuration()
    keepwarm.configure(pool_maxsize=8)
    assert resolved() == (8, keepwarm.Timeout(connect=1, read=2))
    reset_configuration()
    assert resolved() == (4, keepwarm.Timeout(connect=1, read=2))
    monkeypatch.delenv("KEEPWARM_POOL_MAXSIZE")
    monkeypatch.delenv("KEEPWARM_TIMEOUT")
    assert resolved() == (32, keepwarm.Timeout(connect=3, read=7))


def test_precedence_for_shared_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPWARM_POOL_TIMEOUT", "4")
    keepwarm.configure(pool_timeout=5)
    assert keepwarm.session(NAME).settings.pool_timeout == 5.0
    assert keepwarm.session(NAME + "-2", pool_timeout=6).settings.pool_timeout == 6.0


def test_configure_only_affects_sessions_created_afterwards() -> None:
    with keepwarm.Session() as before:
        keepwarm.configure(pool_maxsize=7, base_url="http://127.0.0.1:1/")
        with keepwarm.Session() as after:
            assert before.settings.pool_maxsize == 32
            assert before.base_url is None
            assert after.settings.pool_maxsize == 7
            assert after.base_url == "http://127.0.0.1:1/"


def test_configure_accumulates() -> None:
    keepwarm.configure(pool_maxsize=7)
    keepwarm.configure(pool_connections=3)
    with keepwarm.Session() as s:
        assert (s.settings.pool_maxsize, s.settings.pool_connections) == (7, 3)


# -- behaviour of settings that came from the environment / configure() --------------


def test_env_timeout_reaches_the_socket(
    monkeypatch: pytest.MonkeyPatch, raw_server: Callable[..., RawServer]
) -> None:
    server = raw_server(silent)
    monkeypatch.setenv("KEEPWARM_TIMEOUT", "2,0.3")
    with keepwarm.Session() as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0


def test_env_base_url_and_retries_reach_requests(
    monkeypatch: pytest.MonkeyPatch, make_server: Callable[..., LocalServer]
) -> None:
    flaky = Flaky(times=2, status=503, then=lambda req: ServerResponse.json({"path": req.path}))
    server = make_server(flaky)
    monkeypatch.setenv("KEEPWARM_BASE_URL", server.url + "/api")
    monkeypatch.setenv("KEEPWARM_MAX_RETRIES", "0")
    with keepwarm.Session() as s:
        r = s.get("echo")
        assert r.status_code == 503
        assert flaky.count("/api/echo") == 1
    monkeypatch.setenv("KEEPWARM_MAX_RETRIES", "1")
    with keepwarm.Session() as s:
        r = s.get("echo")
        assert r.status_code == 200
        assert r.json()["path"] == "/api/echo"
        assert flaky.count("/api/echo") == 3


def test_env_pool_settings_reach_the_pool(
    monkeypatch: pytest.MonkeyPatch, http_server: LocalServer
) -> None:
    monkeypatch.setenv("KEEPWARM_POOL_MAXSIZE", "1")
    monkeypatch.setenv("KEEPWARM_POOL_BLOCK", "yes")
    monkeypatch.setenv("KEEPWARM_POOL_TIMEOUT", "0.3")
    with keepwarm.Session() as s:
        held = s.get(http_server.url + "/", stream=True)
        try:
            start = time.monotonic()
            with pytest.raises(keepwarm.PoolTimeout, match=r"pool_timeout=0\.3"):
                s.get(http_server.url + "/")
            assert 0.25 <= time.monotonic() - start < 2.0
        finally:
            held.close()


def test_configured_timeout_reaches_the_socket(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(silent)
    keepwarm.configure(timeout=0.3)
    with keepwarm.Session() as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0


# -- Timeout, NO_TIMEOUT and RetryPolicy objects --------------------------------------


def test_timeout_equality_and_hash() -> None:
    assert keepwarm.Timeout(5) == keepwarm.Timeout(connect=5, read=5)
    assert keepwarm.Timeout(connect=3, read=7) == keepwarm.DEFAULT_TIMEOUT
    assert keepwarm.Timeout(connect=1) == keepwarm.Timeout(connect=1, read=7)
    assert keepwarm.Timeout(read=1) == keepwarm.Timeout(connect=3, read=1)
    assert keepwarm.Timeout(4, read=1) == keepwarm.Timeout(connect=4, read=1)
    assert keepwarm.Timeout() == keepwarm.DEFAULT_TIMEOUT
    assert keepwarm.Timeout(None) == keepwarm.Timeout(connect=None, read=None)
    assert keepwarm.Timeout(5) != keepwarm.Timeout(connect=5, read=6)
    assert keepwarm.Timeout(5) != (5.0, 5.0)
    assert keepwarm.Timeout(5) != keepwarm.NO_TIMEOUT
    assert hash(keepwarm.Timeout(5)) == hash(keepwarm.Timeout(connect=5.0, read=5.0))
    assert len({keepwarm.Timeout(5), keepwarm.Timeout(connect=5, read=5)}) == 1
    assert keepwarm.Timeout(connect=1, read=2).as_tuple() == (1.0, 2.0)


def test_timeout_repr_round_trips() -> None:
    t = keepwarm.Timeout(connect=1.5, read=None)
    assert repr(t) == "Timeout(connect=1.5, read=None)"
    assert eval(repr(t), {"Timeout": keepwarm.Timeout}) == t
    assert repr(keepwarm.DEFAULT_TIMEOUT) == "Timeout(connect=3.0, read=7.0)"


def test_timeout_as_urllib3() -> None:
    u = keepwarm.Timeout(connect=1, read=2).as_urllib3()
    assert isinstance(u, urllib3.Timeout)
    assert (u.connect_timeout, u.read_timeout) == (1.0, 2.0)


def test_timeout_and_no_timeout_pickle() -> None:
    t = keepwarm.Timeout(connect=1, read=2)
    assert pickle.loads(pickle.dumps(t)) == t
    assert pickle.loads(pickle.dumps(keepwarm.NO_TIMEOUT)) is keepwarm.NO_TIMEOUT
    assert repr(keepwarm.NO_TIMEOUT) == "keepwarm.NO_TIMEOUT"
    assert type(keepwarm.NO_TIMEOUT)() is keepwarm.NO_TIMEOUT


def test_retry_policy_defaults() -> None:
    policy = keepwarm.RetryPolicy()
    assert isinstance(policy, Retry)
    assert policy.total == 3
    assert policy.backoff_factor == 0.5
    assert policy.backoff_max == 10.0
    assert set(policy.status_forcelist or ()) == {429, 502, 503, 504}
    assert set(policy.allowed_methods or ()) == {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
    assert set(policy.allowed_methods or ()) == IDEMPOTENT_METHODS
    assert "POST" not in (policy.allowed_methods or ())
    assert "PATCH" not in (policy.allowed_methods or ())
    assert policy.raise_on_status is False
    assert policy.respect_retry_after_header is True
    assert policy.retry_after_max == 30.0
    assert policy.retry_read_timeouts is False


def test_retry_policy_backoff_is_0_1_2() -> None:
    policy = keepwarm.RetryPolicy()
    waits = []
    for _ in range(3):
        policy = policy.increment(method="GET", url="/", error=_DROPPED)
        waits.append(policy.get_backoff_time())
    assert waits == [0, 1.0, 2.0]


def test_retry_policy_new_keeps_its_additions() -> None:
    policy = keepwarm.RetryPolicy(total=5, retry_after_max=2.5, retry_read_timeouts=True)
    copy = policy.new(total=1)
    assert isinstance(copy, keepwarm.RetryPolicy)
    assert copy.total == 1
    assert copy.retry_after_max == 2.5
    assert copy.retry_read_timeouts is True
    assert policy.new(retry_after_max=9).retry_after_max == 9
    # increment() goes through new(): the additions survive a retry.
    after = policy.increment(method="GET", url="/", error=_DROPPED)
    assert isinstance(after, keepwarm.RetryPolicy)
    assert after.total == 4
    assert after.retry_after_max == 2.5
    assert after.retry_read_timeouts is True


def test_retry_policy_comparison_and_repr() -> None:
    a = keepwarm.RetryPolicy(total=5, retry_after_max=60)
    b = keepwarm.RetryPolicy(total=5, retry_after_max=60)
    assert a.signature() == b.signature()
    assert a.signature() != keepwarm.RetryPolicy(total=5).signature()
    assert a.signature() != keepwarm.RetryPolicy(total=5, retry_read_timeouts=True).signature()
    text = repr(a)
    assert text.startswith("RetryPolicy(")
    assert "total=5" in text
    assert "retry_after_max=60.0" in text
    assert "status_forcelist=[429, 502, 503, 504]" in text
    assert pickle.loads(pickle.dumps(a)).signature() == a.signature()


def test_equal_retry_policies_do_not_conflict_in_the_registry() -> None:
    first = keepwarm.session(NAME, max_retries=keepwarm.RetryPolicy(total=2))
    again = keepwarm.session(NAME, max_retries=keepwarm.RetryPolicy(total=2))
    assert again is first
    with pytest.raises(keepwarm.SessionConflictError, match="max_retries"):
        keepwarm.session(NAME, max_retries=keepwarm.RetryPolicy(total=4))
