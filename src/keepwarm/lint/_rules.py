"""The rule registry: every code, its kebab-case name, whether it is on by default and its
one-line summary (the flake8-bugbear pattern: one table, the code first in every message).

Codes are stable: a rule that is retired keeps its code unused. ``KW0xx`` are about the
file itself (it could not be read or parsed), ``KW1xx`` about HTTP client use. A rule that
is a matter of taste is off by default and runs only when selected.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MESSAGES", "RULES", "Finding", "Rule", "UnknownCode", "expand_codes"]


@dataclass(frozen=True)
class Rule:
    """One check: ``code`` (``KW101``), ``name`` (``request-in-loop``), ``default`` (runs
    unless deselected), ``summary`` (what the docs index says)."""

    code: str
    name: str
    default: bool
    summary: str


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at ``path:line:col`` (1-based, as editors count), sortable into the
    stable output order: path, line, column, code."""

    path: str
    line: int
    col: int
    code: str
    message: str

    @property
    def name(self) -> str:
        return RULES[self.code].name


#: Every rule, by code, in code order.
RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "KW001",
            "parse-error",
            True,
            "a file that cannot be read or parsed (the run goes on with the others)",
        ),
        Rule(
            "KW101",
            "request-in-loop",
            True,
            "module-level `requests.get()` & co. in a loop, a comprehension or a function "
            "that runs repeatedly (a route, a task, a `map()`ed function): a new connection and "
            "TLS handshake per call",
        ),
        Rule(
            "KW102",
            "session-per-call",
            True,
            "a `requests.Session()` made for one request, or once per loop iteration, then dropped",
        ),
        Rule(
            "KW103",
            "missing-timeout",
            True,
            "a request without `timeout=`, on the module-level API or a `requests.Session` "
            "the linter can follow",
        ),
        Rule(
            "KW104",
            "verify-disabled",
            True,
            "`verify=False`: TLS certificates are not checked",
        ),
        Rule(
            "KW105",
            "pool-maxsize-alone",
            False,
            "`HTTPAdapter(pool_maxsize=...)` without `pool_connections`, which stays 10",
        ),
        Rule(
            "KW106",
            "adapter-mounted-once",
            False,
            "an adapter mounted on only one of `http://` and `https://`",
        ),
        Rule(
            "KW107",
            "headers-mutated-in-loop",
            True,
            "a shared session's `headers` changed inside a loop or a function that runs "
            "repeatedly, instead of per-request `headers=`",
        ),
        Rule(
            "KW108",
            "use-after-close",
            True,
            "a request on a session after its `close()` or its `with` block",
        ),
        Rule(
            "KW109",
            "session-never-closed",
            False,
            "a `requests.Session()` in a function, a script or a test that is never closed",
        ),
        Rule(
            "KW110",
            "pool-smaller-than-workers",
            True,
            "an `HTTPAdapter` pool (or requests' default of 10) smaller than the "
            "`ThreadPoolExecutor` in the same scope",
        ),
    )
}


#: The message of each finding, by code (a code with variants: ``KW102-loop``...); the
#: checker fills in the ``{placeholders}``.
MESSAGES = {
    "KW101": "`{name}()` in a loop opens a new connection (and TLS handshake) per call; "
    "make one `requests.Session()` (or `keepwarm.session()`) before the loop and call its "
    "`.{method}()`",
    "KW101-repeated": "`{name}()` in `{function}`, which runs {why}: a new connection "
    "(and TLS handshake) on every run; make one `requests.Session()` at module level (or use "
    "`keepwarm.session()`) and call its `.{method}()`",
    "KW101-passed": "`{name}` handed to `{caller}` runs {why}: a new connection (and TLS "
    "handshake) per call; pass a shared session's `.{method}` instead",
    "KW102-call": "`requests.Session()` made for one request and dropped: its connection is "
    "never reused; create the session once and reuse it, or pass it in",
    "KW102-loop": "`requests.Session()` made on each loop iteration: every iteration opens "
    "new connections; create the session once, before the loop",
    "KW103": "`{name}()` without `timeout=`: a server that stops answering hangs this call "
    "forever; pass `timeout=` (or use `keepwarm.session()`, which has a default)",
    "KW104-call": "`verify=False` turns off TLS certificate checks: anyone on the path can "
    "read and change the traffic; pass `verify=` a CA bundle path instead",
    "KW104-attr": "`.verify = False` turns off TLS certificate checks for every request of "
    "the session; set it to a CA bundle path instead",
    "KW105": "`HTTPAdapter(pool_maxsize=...)` leaves `pool_connections` (how many hosts keep "
    "a pool) at 10: with more hosts, pools and their open connections are thrown away; "
    "pass `pool_connections=` too",
    "KW106": "adapter mounted on `{prefix}` only: requests to `{other}` URLs (redirects "
    "included) get a default adapter without this tuning; mount it on both",
    "KW107": "`{target}` changed inside a loop: the session's headers are shared by every "
    "request (and thread) that follows; pass `headers=` to the request instead",
    "KW107-repeated": "`{target}` changed in `{function}`, which runs {why}: the session's "
    "headers are shared by every request (and thread) that uses it; pass `headers=` to the "
    "request instead",
    "KW108": "`{key}.{method}()` after the session was closed on line {line}: requests "
    "silently opens new connections (keepwarm raises `SessionClosedError`); close it after "
    "its last use",
    "KW109": "`requests.Session()` bound to `{var}` is never closed: its connections stay "
    "open until the garbage collector gets to it; use `with requests.Session() as {var}:` "
    "or call `{var}.close()`",
    "KW110": "`pool_maxsize` is {size} but the thread pool on line {line} runs {workers} "
    "workers: connections beyond {size} per host are opened and thrown away (urllib3's "
    '"Connection pool is full, discarding connection"); set `pool_maxsize={workers}`',
    "KW110-default": "`{session}` has requests' default pool of 10 connections per host (no "
    "adapter mounted) but this thread pool runs {workers} workers: connections beyond 10 per "
    "host are opened and thrown away; mount `HTTPAdapter(pool_maxsize={workers})` on "
    "`https://` and `http://`, or use `keepwarm.session()`, whose pool grows",
}


class UnknownCode(ValueError):
    """A ``--select``/``--ignore`` entry (or a pyproject.toml one) that names no rule."""


def expand_codes(entries: list[str] | tuple[str, ...], where: str) -> set[str]:
    """The codes *entries* stand for: a code (``KW101``), a prefix (``KW1``, ``KW``) or
    ``ALL``; anything else raises :class:`UnknownCode`, naming *where* it came from."""
    codes: set[str] = set()
    for raw in entries:
        entry = raw.strip().upper()
        if not entry:
            continue
        if entry == "ALL":
            codes.update(RULES)
            continue
        matched = {code for code in RULES if code.startswith(entry)}
        if not matched:
            known = ", ".join(RULES)
            raise UnknownCode(f"{where}: unknown rule code {raw.strip()!r} (known: {known})")
        codes.update(matched)
    return codes
