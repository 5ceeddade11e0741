# Settings: timeouts, pool sizes, retries, their defaults and where those come from.
#
# A setting is resolved in this order, first match wins:
#
# 1. the keyword given to ``keepwarm.Session(...)`` or ``keepwarm.session(name, ...)``;
# 2. ``keepwarm.configure(...)``, for sessions created after the call;
# 3. a ``KEEPWARM_*`` environment variable, read when the session is created;
# 4. the built-in default below.
#
# Every value is validated once, when a session is created or ``configure()`` is called, so a
# typo fails at start-up with a message that names the setting, not on the first request.

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from http import cookiejar
from typing import Any, Final, Literal, NoReturn, TypeAlias

from requests.auth import AuthBase
from requests.models import PreparedRequest
from urllib3.util import Timeout as Urllib3Timeout
from urllib3.util.retry import Retry

from keepwarm._forks import after_fork_in_child
from keepwarm._validate import check_seconds, fail_type, fail_value
from keepwarm._values import Frozen

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "DEFAULT_POOL_CONNECTIONS",
    "DEFAULT_POOL_MAXSIZE",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "ENVIRONMENT_VARIABLES",
    "NO_TIMEOUT",
    "OTEL_METRICS_VARIABLE",
    "SETTING_NAMES",
    "STATE_OPTIONS",
    "AuthTypes",
    "CertTypes",
    "CookiesTypes",
    "HeadersTypes",
    "NoTimeout",
    "ParamsTypes",
    "PoolMaxsize",
    "ProxiesTypes",
    "RetryTypes",
    "Settings",
    "Timeout",
    "TimeoutTypes",
    "VerifyTypes",
    "check_setting_names",
    "configure",
    "otel_metrics_from_environment",
    "reset_configuration",
    "resolve_settings",
    "to_timeout",
]


class _Unset:
    # Marks a keyword that was not given, which differs from an explicit ``None``.

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<UNSET>"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


class NoTimeout:
    # The explicit opt-out from timeouts: ``timeout=keepwarm.NO_TIMEOUT`` waits forever.
    #
    # ``timeout=None`` does *not* disable timeouts in keepwarm: wrapper functions pass
    # ``timeout=None`` along by accident far more often than anyone wants a request that can
    # hang a worker forever, so ``None`` means "use the session's default".

    _instance: NoTimeout | None = None
    #: No total deadline either (as :attr:`Timeout.total`).
    total: Final = None

    def __new__(cls) -> NoTimeout:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "keepwarm.NO_TIMEOUT"

    def __reduce__(self) -> str:
        return "NO_TIMEOUT"


NO_TIMEOUT: Final = NoTimeout()


class Timeout:
    """Connect and read timeouts in seconds, like requests' ``(connect, read)`` tuple, and
    an optional total deadline for the whole call.

    ``Timeout(5)`` sets both phases to 5 s, ``Timeout(3, 7)`` connect 3 s and read 7 s;
    ``Timeout(connect=1)`` changes only the connect phase and keeps the default read
    timeout. ``None`` for one phase means no limit for
    that phase (an explicit choice, visible in the code that makes it).

    The read timeout bounds the wait for *each* read from the socket, not the whole
    download: a server that trickles one byte every few seconds is not cut off by it.

    ``total`` (keyword-only, seconds; default ``None``: no total) bounds the whole call:
    name resolution, connecting, every read of the response head and, with
    ``stream=False``, of the body, every retry with its backoff and ``Retry-After``
    sleep (never slept past the deadline: a wait that would pass it returns the
    retryable response, or raises, at once), and every redirect hop. When it passes,
    :class:`keepwarm.DeadlineExceeded` (a ``requests.Timeout``). With ``stream=True`` it
    covers the call until the response is returned, not the later reads of its body.

    Why no total by default: requests, urllib3 (``Timeout(total=None)``), httpx (per-phase
    5 s, no total), Go's ``http.Client`` (``Timeout`` 0: none) and curl (``--max-time``
    unset) have none; aiohttp's ``ClientTimeout(total=300)`` is the one that does. A
    total is a budget for *a* call: 30 s is right for an API call and cuts off a large
    download; 300 s lets every download through and bounds nothing an API caller's own
    load balancer has not given up on long before. The application knows which it
    makes; ``Timeout(3, 7, total=30)`` as the session default is a good start for APIs.
    """

    __slots__ = ("connect", "read", "total")

    connect: float | None
    read: float | None
    total: float | None

    def __init__(
        self,
        timeout: float | _Unset | None = UNSET,
        read_timeout: float | _Unset | None = UNSET,
        *,
        connect: float | _Unset | None = UNSET,
        read: float | _Unset | None = UNSET,
        total: float | None = None,
    ) -> None:
        if not isinstance(read_timeout, _Unset):
            # Timeout(3, 7): (connect, read), as requests' pair.
            if not isinstance(read, _Unset):
                raise TypeError("Timeout() got the read timeout twice (positional and read=)")
            read = read_timeout
        both: float | _Unset | None = UNSET
        if not isinstance(timeout, _Unset):
            both = check_seconds("timeout", timeout, allow_none=True)
        default_connect: float | None = DEFAULT_CONNECT_TIMEOUT
        default_read: float | None = DEFAULT_READ_TIMEOUT
        if not isinstance(both, _Unset):
            default_connect = default_read = both
        self.connect = (
            default_connect
            if isinstance(connect, _Unset)
            else check_seconds("connect timeout", connect, allow_none=True)
        )
        self.read = (
            default_read
            if isinstance(read, _Unset)
            else check_seconds("read timeout", read, allow_none=True)
        )
        self.total = check_seconds("total timeout", total, allow_none=True)

    def as_urllib3(self) -> Urllib3Timeout:
        """The same limits as the object requests' HTTPAdapter hands to urllib3 (the
        total is keepwarm's own: urllib3's ``total`` bounds one attempt only)."""
        return Urllib3Timeout(connect=self.connect, read=self.read)

    def as_tuple(self) -> tuple[float | None, float | None]:
        """``(connect, read)``, as requests takes it (the total is not in it)."""
        return (self.connect, self.read)

    def _key(self) -> tuple[float | None, float | None, float | None]:
        return (self.connect, self.read, self.total)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Timeout):
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        total = "" if self.total is None else f", total={self.total!r}"
        return f"Timeout(connect={self.connect!r}, read={self.read!r}{total})"


# Defaults ---------------------------------------------------------------------------------

#: 3 s connect: a TCP handshake that has not completed in 3 s has lost its SYN at least
#: once (Linux retransmits the SYN after 1 s, then 3 s), so waiting longer rarely helps.
DEFAULT_CONNECT_TIMEOUT: Final = 3.0
#: 7 s read: long enough for a slow API call, short enough that a dead server frees the
#: worker well inside common 30 s proxy and load-balancer limits. (3, 7) is the pair the
#: source article recommends.
DEFAULT_READ_TIMEOUT: Final = 7.0
DEFAULT_TIMEOUT: Final = Timeout(connect=DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_READ_TIMEOUT)

#: Host pools kept (urllib3 ``num_pools``). requests' 10 evicts, and so closes, the warm
#: connections of the least recently used host as soon as an application talks to an 11th
#: host; 32 covers the API fan-out of typical services at a cost of an empty dict each.
DEFAULT_POOL_CONNECTIONS: Final = 32
#: Connections kept per host. Python's ``ThreadPoolExecutor`` defaults to
#: ``min(32, os.cpu_count() + 4)`` workers, so 32 is the largest number of threads a
#: default thread pool runs at once: with requests' 10, threads 11..32 open a connection,
#: use it once and throw it away ("Connection pool is full, discarding connection").
#: Idle connections cost one file descriptor each and nothing on the wire.
DEFAULT_POOL_MAXSIZE: Final = 32
#: With ``pool_block=True``, the longest wait for a free connection: the connect plus read
#: default (3 + 7 s), since a request that waited longer than that is already late.
DEFAULT_POOL_TIMEOUT: Final = 10.0

#: Pooled connections idle longer than this are closed instead of reused. Servers close
#: idle keep-alive connections after their own timeout, and a request sent on a connection
#: the server is closing at that moment fails. The shortest common defaults are 5 s
#: (Apache httpd ``KeepAliveTimeout``, Node.js ``keepAliveTimeout``, uvicorn); nginx keeps
#: 75 s, AWS ALB 60 s, AWS NAT gateways 350 s. 4 s stays below all of them; a server's
#: ``Keep-Alive: timeout=N`` header shortens it further for that host. Reconnecting after 4 s
#: of silence costs one handshake, which is nothing next to a failed request.
DEFAULT_KEEPALIVE_EXPIRY: Final = 4.0

# What the keywords accept ------------------------------------------------------------------
# The annotations of Session(), keepwarm.session() and keepwarm.configure(), so that a type
# checker rejects what the validators below would reject at run time (bool passes where int
# or float does, as in every annotation; the validators still refuse it).

#: ``timeout=``: seconds, a ``(connect, read)`` pair (``None`` for one phase: no limit for
#: that phase), a :class:`Timeout`, ``NO_TIMEOUT``, or a urllib3 ``Timeout`` without ``total``.
TimeoutTypes: TypeAlias = (
    float | tuple[float | None, float | None] | Timeout | NoTimeout | Urllib3Timeout
)
#: ``pool_maxsize=``: connections kept per host, or ``"auto"`` to grow instead of discarding.
PoolMaxsize: TypeAlias = int | Literal["auto"]
#: ``max_retries=``: a number of retries (0: none), a :class:`RetryPolicy` or a urllib3 ``Retry``.
RetryTypes: TypeAlias = int | Retry

# Session state, as requests types the attributes they set.
HeadersTypes: TypeAlias = Mapping[str, str]
CookiesTypes: TypeAlias = Mapping[str, str] | cookiejar.CookieJar
AuthTypes: TypeAlias = tuple[str, str] | AuthBase | Callable[[PreparedRequest], PreparedRequest]
_ParamValue: TypeAlias = str | bytes | int | float | Iterable[str | bytes | int | float] | None
ParamsTypes: TypeAlias = Mapping[str, _ParamValue]
ProxiesTypes: TypeAlias = Mapping[str, str]
#: ``True``, ``False``, or the path of a CA bundle file or directory.
VerifyTypes: TypeAlias = bool | str
#: A client certificate file, or a ``(certificate, key)`` pair of files.
CertTypes: TypeAlias = str | tuple[str, str]


# Validation -------------------------------------------------------------------------------


#: Handed to urllib3 for keepwarm.NO_TIMEOUT: no limit on connect or read.
NO_LIMIT: Final = Urllib3Timeout(connect=None, read=None)


def urllib3_timeout(timeout: Timeout | NoTimeout) -> Urllib3Timeout:
    # A session default as urllib3 takes it (the total is kept apart: see Timeout).
    return NO_LIMIT if isinstance(timeout, NoTimeout) else timeout.as_urllib3()


def call_timeout(
    timeout: object, default: Urllib3Timeout, default_total: float | None
) -> tuple[Any, float | None]:
    # What one call's ``timeout=`` means: the timeout to hand the adapter and the call's
    # total deadline (None: no total). ``None`` is the default (and its total); a
    # :class:`Timeout` replaces the whole default, its total included; NO_TIMEOUT is no
    # limit; seconds and ``(connect, read)`` pairs go on as requests takes them, with no
    # total.
    if timeout is None:
        return default, default_total
    if isinstance(timeout, Timeout):
        return timeout.as_urllib3(), timeout.total
    if isinstance(timeout, NoTimeout):
        return NO_LIMIT, None
    return timeout, None


def to_timeout(value: object, setting: str = "timeout") -> Timeout | NoTimeout:
    # Normalise what users pass as a timeout: seconds, a (connect, read) pair, a Timeout.
    if isinstance(value, (Timeout, NoTimeout)):
        return value
    if isinstance(value, Urllib3Timeout):
        if value.total is not None:
            fail_value(
                setting,
                value,
                "a timeout without total= (a session default applies per connect and per "
                "read); pass keepwarm.Timeout(connect=..., read=...) or a (connect, read) pair",
            )
        phases = {"connect": value._connect, "read": value._read}
        return Timeout(
            **{
                phase: check_seconds(f"{setting} ({phase})", v, allow_none=True)
                for phase, v in phases.items()
                if v is None or isinstance(v, (int, float))
            }
        )
    if isinstance(value, tuple):
        if len(value) != 2:
            fail_value(setting, value, "a (connect, read) pair of seconds")
        return Timeout(
            connect=check_seconds(f"{setting} (connect)", value[0], allow_none=True),
            read=check_seconds(f"{setting} (read)", value[1], allow_none=True),
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail_type(
            setting,
            value,
            "seconds, a (connect, read) pair, a keepwarm.Timeout, or keepwarm.NO_TIMEOUT",
        )
    return Timeout(check_seconds(setting, value))


def _positive_int(setting: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail_type(setting, value, "a whole number >= 1")
    if value < 1:
        fail_value(setting, value, "a whole number >= 1")
    return value


def _pool_maxsize(setting: str, value: object) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        fail_type(setting, value, 'a whole number >= 1 or "auto"')
    if value < 1:
        fail_value(setting, value, 'a whole number >= 1 or "auto"')
    return value


def _bool(setting: str, value: object) -> bool:
    if not isinstance(value, bool):
        fail_type(setting, value, "True or False")
    return value


def _retries(setting: str, value: object) -> Retry:
    if isinstance(value, Retry):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        fail_type(
            setting,
            value,
            "a whole number of retries >= 0, a keepwarm.RetryPolicy or a urllib3 Retry",
        )
    if value < 0:
        fail_value(setting, value, "a whole number of retries >= 0")
    if value == 0:
        # What requests does for max_retries=0: no retry of any kind.
        return Retry(0, read=False)
    # _retry and _urls (and _deadline, which _retry needs) load when a setting needs
    # them, not with ``import keepwarm`` (issue 16).
    from keepwarm._retry import RetryPolicy

    return RetryPolicy(total=value)


def _base_url(setting: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        fail_type(setting, value, "a URL string such as 'https://api.example.com/v1/'")
    from keepwarm._urls import URLProblem, check_http_url, redact_url

    # Shown without its password, token or query values (a base URL may carry them).
    shown = redact_url(value)
    try:
        parts = check_http_url(value)
    except URLProblem:
        fail_value(setting, shown, "an absolute http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        fail_value(setting, shown, "a URL without ?query or #fragment")
    # Like httpx: a base URL always ends with "/" so relative paths are appended to it.
    return value if value.endswith("/") else value + "/"


def _timeout_setting(setting: str, value: object) -> Timeout | NoTimeout:
    if value is None:
        fail_type(
            setting,
            value,
            "seconds, a (connect, read) pair or keepwarm.Timeout; "
            "pass keepwarm.NO_TIMEOUT to disable timeouts",
        )
    return to_timeout(value, setting)


_VALIDATORS: Final[dict[str, Any]] = {
    "timeout": _timeout_setting,
    "pool_connections": _positive_int,
    "pool_maxsize": _pool_maxsize,
    "pool_block": _bool,
    "pool_timeout": lambda s, v: check_seconds(s, v),
    "max_retries": _retries,
    "base_url": _base_url,
    "telemetry": _bool,
    "keepalive_expiry": lambda s, v: check_seconds(s, v, allow_none=True),
    "max_connection_age": lambda s, v: check_seconds(s, v, allow_none=True),
    "guards": _bool,
    "strict": _bool,
    "http2": _bool,
}
SETTING_NAMES: Final = tuple(_VALIDATORS)


#: Keywords of ``Session`` that set requests' session attributes rather than tuning knobs.
STATE_OPTIONS: Final = (
    "headers",
    "cookies",
    "auth",
    "params",
    "proxies",
    "verify",
    "cert",
    "trust_env",
)


#: Names people reach for that spelling alone would map to the wrong knob (difflib's
#: nearest name for ``connect_timeout`` is ``pool_timeout``, for ``max_connections``
#: ``max_connection_age``), and the keyword they mean.
_MEANT: Final = {
    "connect_timeout": "timeout=(connect, read)",
    "read_timeout": "timeout=(connect, read)",
    "timeouts": "timeout=(connect, read)",
    "total_timeout": "timeout=keepwarm.Timeout(total=...)",
    "deadline": "timeout=keepwarm.Timeout(total=...)",
    "idle_timeout": "keepalive_expiry",
    "keepalive": "keepalive_expiry",
    "keep_alive": "keepalive_expiry",
    "keepalive_timeout": "keepalive_expiry",
    "keep_alive_timeout": "keepalive_expiry",
    "max_connections": "pool_maxsize",
    "max_connections_per_host": "pool_maxsize",
    "pool_size": "pool_maxsize",
    "maxsize": "pool_maxsize",
    "max_hosts": "pool_connections",
    "num_pools": "pool_connections",
    "retries": "max_retries",
    "retry": "max_retries",
    "ssl_verify": "verify",
    "verify_ssl": "verify",
    "ssl": "verify",
    "base": "base_url",
    "baseurl": "base_url",
    "base_uri": "base_url",
    "max_age": "max_connection_age",
    "connection_max_age": "max_connection_age",
}


def did_you_mean(name: str, known: Collection[str]) -> str | None:
    # The knob a misspelt or misremembered setting name most likely means.
    key = name.lower().replace("-", "_")
    meant = _MEANT.get(key.removeprefix("keepwarm_"))
    if meant is not None and meant.split("=")[0] in known:
        return meant
    import difflib  # on demand: only a misspelt name needs it

    close = difflib.get_close_matches(key, known, n=1)
    return close[0] if close else None


def check_setting_names(names: Collection[str], where: str, extra: Collection[str] = ()) -> None:
    # Reject unknown keywords with the knob they most likely mean as a hint.
    known = (*SETTING_NAMES, *extra)
    for name in names:
        if name not in known:
            meant = did_you_mean(name, known)
            shown = repr(meant) if meant and meant.isidentifier() else meant
            hint = f"; did you mean {shown}?" if meant else "."
            raise TypeError(
                f"{where} got an unknown setting {name!r}{hint} Known settings: {', '.join(known)}"
            )


def validate(values: Mapping[str, object], where: str) -> dict[str, Any]:
    # Check names and values; return the normalised values.
    check_setting_names(values, where)
    return {name: _VALIDATORS[name](name, value) for name, value in values.items()}


# Environment variables --------------------------------------------------------------------


def _env_timeout(raw: str) -> object:
    text = raw.strip().lower()
    if text in ("none", "off", "no_timeout"):
        return NO_TIMEOUT
    parts = [p.strip() for p in text.split(",")]
    numbers = tuple(float(p) for p in parts)
    if len(numbers) == 1:
        return numbers[0]
    if len(numbers) == 2:
        return numbers
    if len(numbers) == 3:
        connect, read, total = numbers
        return Timeout(connect=connect, read=read, total=total)
    raise ValueError("expected one, two or three numbers")


def _env_int(raw: str) -> object:
    return int(raw.strip())


def _env_maxsize(raw: str) -> object:
    text = raw.strip()
    return "auto" if text.lower() == "auto" else int(text)


def _env_seconds_or_none(raw: str) -> object:
    text = raw.strip().lower()
    return None if text in ("none", "off") else float(text)


def _env_float(raw: str) -> object:
    return float(raw.strip())


def _env_bool(raw: str) -> object:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _env_str(raw: str) -> object:
    return raw.strip()


#: Environment variable -> (setting, parser, what the value looks like).
ENVIRONMENT_VARIABLES: Final[dict[str, tuple[str, Any, str]]] = {
    "KEEPWARM_TIMEOUT": (
        "timeout",
        _env_timeout,
        "'5', '3,7' (connect,read), '3,7,30' (connect,read,total) or 'none'",
    ),
    "KEEPWARM_POOL_CONNECTIONS": ("pool_connections", _env_int, "a whole number >= 1"),
    "KEEPWARM_POOL_MAXSIZE": ("pool_maxsize", _env_maxsize, "a whole number >= 1 or 'auto'"),
    "KEEPWARM_POOL_BLOCK": ("pool_block", _env_bool, "true or false"),
    "KEEPWARM_POOL_TIMEOUT": ("pool_timeout", _env_float, "a positive number of seconds"),
    "KEEPWARM_MAX_RETRIES": ("max_retries", _env_int, "a whole number >= 0"),
    "KEEPWARM_BASE_URL": ("base_url", _env_str, "an absolute http(s) URL"),
    "KEEPWARM_TELEMETRY": ("telemetry", _env_bool, "true or false"),
    "KEEPWARM_KEEPALIVE_EXPIRY": (
        "keepalive_expiry",
        _env_seconds_or_none,
        "a positive number of seconds or 'none'",
    ),
    "KEEPWARM_MAX_CONNECTION_AGE": (
        "max_connection_age",
        _env_seconds_or_none,
        "a positive number of seconds or 'none'",
    ),
    "KEEPWARM_GUARDS": ("guards", _env_bool, "true or false"),
    "KEEPWARM_STRICT": ("strict", _env_bool, "true or false"),
    "KEEPWARM_HTTP2": ("http2", _env_bool, "true or false"),
}


#: Variables ``keepwarm run`` sets for the processes under it (not session settings).
RUN_VARIABLE_PREFIX: Final = "KEEPWARM_RUN_"


#: The variable that turns OpenTelemetry metrics on for the process (not a session
#: setting: acted on when the process's first keepwarm transport is made, see ``_metrics``).
OTEL_METRICS_VARIABLE: Final = "KEEPWARM_OTEL_METRICS"


def otel_metrics_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    # Whether ``KEEPWARM_OTEL_METRICS`` asks for OpenTelemetry metrics; unset or empty:
    # no. A value that is not a yes or a no raises ValueError naming the variable.
    environ = os.environ if environ is None else environ
    raw = environ.get(OTEL_METRICS_VARIABLE, "")
    if not raw.strip():
        return False
    try:
        return bool(_env_bool(raw))
    except ValueError as exc:
        raise ValueError(
            f"environment variable {OTEL_METRICS_VARIABLE}={raw!r} is not valid: "
            f"expected true or false ({exc})"
        ) from None


def settings_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    # Read and validate every ``KEEPWARM_*`` variable; an unknown one is an error.
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    # Names first: os.environ decodes a value only when it is asked for (every session
    # reads this; over items(), 15 us with 39 variables, 5 us over the names).
    for var in environ:
        if not var.startswith("KEEPWARM_"):
            continue
        raw = environ.get(var)
        if raw is None:
            continue  # unset by another thread since the names were read
        if not raw.strip() or var.startswith(RUN_VARIABLE_PREFIX):
            # `KEEPWARM_TIMEOUT= cmd` is the shell's way to say "not set"; KEEPWARM_RUN_*
            # are keepwarm run's own (docs/run.md), read by its bootstrap, not settings.
            continue
        if var == OTEL_METRICS_VARIABLE:
            # A process switch, not a session setting; a bad value fails here as well,
            # as a bad value of any KEEPWARM_* variable does.
            otel_metrics_from_environment(environ)
            continue
        if var not in ENVIRONMENT_VARIABLES:
            meant = did_you_mean(var.removeprefix("KEEPWARM_").lower(), SETTING_NAMES)
            variable = f"KEEPWARM_{meant.split('=')[0].upper()}" if meant else None
            hint = f"; did you mean {variable}?" if variable in ENVIRONMENT_VARIABLES else ""
            raise ValueError(
                # Not its value: a variable keepwarm does not know may hold anything.
                f"unknown environment variable {var}{hint or '.'} "
                f"keepwarm reads: {', '.join([*ENVIRONMENT_VARIABLES, OTEL_METRICS_VARIABLE])}"
            )
        setting, parse, looks_like = ENVIRONMENT_VARIABLES[var]
        try:
            value = parse(raw)
            found[setting] = _VALIDATORS[setting](setting, value)
        except (TypeError, ValueError) as exc:
            from keepwarm._urls import redact_url

            shown = redact_url(raw) if setting == "base_url" else raw
            raise ValueError(
                f"environment variable {var}={shown!r} is not valid: expected {looks_like} ({exc})"
            ) from None
    return found


# Resolved settings ------------------------------------------------------------------------


_SETTINGS_FIELDS: Final = (
    "timeout",
    "pool_connections",
    "pool_maxsize",
    "pool_block",
    "pool_timeout",
    "max_retries",
    "base_url",
    "telemetry",
    "keepalive_expiry",
    "max_connection_age",
    "guards",
    "strict",
    "http2",
)


class Settings(Frozen):
    # Every tuning knob of one session, validated and with defaults filled in.

    __slots__ = _SETTINGS_FIELDS
    __match_args__ = _SETTINGS_FIELDS

    timeout: Timeout | NoTimeout
    pool_connections: int
    #: A number, or "auto": start at DEFAULT_POOL_MAXSIZE and grow instead of discarding.
    pool_maxsize: int | str
    pool_block: bool
    pool_timeout: float
    max_retries: Retry
    base_url: str | None
    #: Count connections and time requests (see keepwarm.stats()).
    telemetry: bool
    #: Close pooled connections idle longer than this (None: until the server closes them).
    keepalive_expiry: float | None
    #: Close connections older than this at their next checkout (None: no limit).
    max_connection_age: float | None
    #: Check for the silent pitfalls of session reuse (docs/guards/).
    guards: bool
    #: Raise the guards' warnings as exceptions.
    strict: bool
    #: Offer HTTP/2 by ALPN on HTTPS (needs the h2 package: keepwarm[http2]).
    http2: bool

    def __init__(
        self,
        timeout: Timeout | NoTimeout = DEFAULT_TIMEOUT,
        pool_connections: int = DEFAULT_POOL_CONNECTIONS,
        pool_maxsize: int | str = DEFAULT_POOL_MAXSIZE,
        pool_block: bool = False,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        max_retries: Retry | None = None,
        base_url: str | None = None,
        telemetry: bool = True,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        max_connection_age: float | None = None,
        guards: bool = True,
        strict: bool = False,
        http2: bool = False,
    ) -> None:
        if pool_maxsize == "auto" and pool_block:
            raise ValueError(
                'pool_maxsize="auto" grows the pool instead of waiting, so it cannot be '
                "combined with pool_block=True; give pool_maxsize a number to cap the "
                "connections, or set pool_block=False"
            )
        if max_retries is None:
            from keepwarm._retry import RetryPolicy

            max_retries = RetryPolicy()
        set_field = object.__setattr__
        set_field(self, "timeout", timeout)
        set_field(self, "pool_connections", pool_connections)
        set_field(self, "pool_maxsize", pool_maxsize)
        set_field(self, "pool_block", pool_block)
        set_field(self, "pool_timeout", pool_timeout)
        set_field(self, "max_retries", max_retries)
        set_field(self, "base_url", base_url)
        set_field(self, "telemetry", telemetry)
        set_field(self, "keepalive_expiry", keepalive_expiry)
        set_field(self, "max_connection_age", max_connection_age)
        set_field(self, "guards", guards)
        set_field(self, "strict", strict)
        set_field(self, "http2", http2)

    @property
    def initial_pool_maxsize(self) -> int:
        # The pool size to start with ("auto" starts at the default and grows).
        return self.pool_maxsize if isinstance(self.pool_maxsize, int) else DEFAULT_POOL_MAXSIZE

    @property
    def read_timeout(self) -> float | None:
        return self.timeout.read if isinstance(self.timeout, Timeout) else None

    def __repr__(self) -> str:
        # The fields' repr, with base_url shown without its password or token.
        parts = []
        for name in _SETTINGS_FIELDS:
            value = getattr(self, name)
            if name == "base_url" and value is not None:
                from keepwarm._urls import redact_url

                value = redact_url(value)
            parts.append(f"{name}={value!r}")
        return f"Settings({', '.join(parts)})"

    def comparable(self, name: str) -> object:
        value = getattr(self, name)
        if isinstance(value, Retry):
            from keepwarm._retry import retry_signature

            return retry_signature(value)
        return value

    def differences(self, other: Settings, names: Collection[str]) -> list[str]:
        return [n for n in names if self.comparable(n) != other.comparable(n)]


_configured: dict[str, Any] = {}
_configured_lock = threading.Lock()


def configure(
    *,
    timeout: TimeoutTypes | _Unset = UNSET,
    pool_connections: int | _Unset = UNSET,
    pool_maxsize: PoolMaxsize | _Unset = UNSET,
    pool_block: bool | _Unset = UNSET,
    pool_timeout: float | _Unset = UNSET,
    max_retries: RetryTypes | _Unset = UNSET,
    base_url: str | _Unset | None = UNSET,
    telemetry: bool | _Unset = UNSET,
    keepalive_expiry: float | _Unset | None = UNSET,
    max_connection_age: float | _Unset | None = UNSET,
    guards: bool | _Unset = UNSET,
    strict: bool | _Unset = UNSET,
    http2: bool | _Unset = UNSET,
    **unknown: NoReturn,
) -> None:
    """Set defaults for every keepwarm session created after this call.

    Takes the same keywords as :class:`keepwarm.Session`'s tuning knobs; only the ones
    given change (``keepalive_expiry=None`` sets "no limit", leaving it out keeps the
    current default). Sessions that already exist keep their settings;
    ``keepwarm.close_all()`` and ask again to rebuild the shared ones.
    """
    arguments = locals()
    defaults = {name: arguments[name] for name in SETTING_NAMES if arguments[name] is not UNSET}
    # Typed NoReturn so type checkers flag a misspelt knob; at run time it gets a hint.
    defaults.update(unknown)
    values = validate(defaults, "keepwarm.configure()")
    with _configured_lock:
        _configured.update(values)


def _after_fork_in_child() -> None:
    # Another thread may have held the lock at fork(); the child has one thread now.
    global _configured_lock
    _configured_lock = threading.Lock()


after_fork_in_child(_after_fork_in_child)


def reset_configuration() -> None:
    # Forget everything ``configure()`` set (used by the tests; ``close_all()`` keeps it).
    with _configured_lock:
        _configured.clear()


def resolve_settings(overrides: Mapping[str, Any], where: str) -> Settings:
    # Layer explicit keywords over configure(), KEEPWARM_* variables and the defaults.
    explicit = validate(overrides, where)
    merged = settings_from_environment()
    with _configured_lock:
        merged.update(_configured)
    merged.update(explicit)
    # max_retries left unset is Settings' own default, keepwarm's RetryPolicy().
    return Settings(**merged)
