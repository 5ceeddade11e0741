"""keepwarm's pytest plugin: leaked sessions and responses, a cap on TCP connections,
loopback servers that count connections, strict guards (docs/pytest.md).

Registered under the ``pytest11`` entry point ``keepwarm``, so installing keepwarm
activates it (``-p no:keepwarm`` turns it off). It must cost nothing for a test suite that
does not use it and never break one:

* importing it imports pytest and the standard library only; requests, urllib3 and
  keepwarm are looked up in ``sys.modules`` (never imported) until a fixture needs them;
* leak tracking (``--keepwarm-leaks``, default ``warn``) wraps ``__init__``/``close`` of
  ``requests.Session`` and ``keepwarm.Session`` and ``build_response`` of the two
  adapters, once those modules are loaded (an import hook, first on ``sys.meta_path``
  while tracking is on, wraps those that load during a test as they load), and puts them
  back at the end of the run; it never touches ``Session.send`` (keepwarm tells a tool
  that replaced it by identity); ``@pytest.mark.keepwarm_leaks(mode)`` sets one test's
  mode;
* ``warn`` writes a summary section at the end of the run, never a Python warning (a
  ``filterwarnings = error`` suite would turn that into errors), under pytest-xdist on
  the controller with every worker's leaks; ``fail`` makes the leaking test error in its
  teardown;
* the ``socket.connect`` audit hook is added the first time a ``max_connections`` test
  runs (an audit hook cannot be removed) and counts only while one runs;
* between tests, keepwarm's guards forget the call sites they warned about, so a test
  that trips a guard sees the warning even when an earlier test tripped it at that line.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.abc
import importlib.machinery
import os
import sys
import threading
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from keepwarm._session import Session
    from keepwarm.bench._engine import LocalServer

__all__ = ["KeepwarmServer"]

LEAK_MODES: Final = ("off", "warn", "fail")

# -- options, marker -------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keepwarm", "keepwarm: connection reuse and leaks (docs/pytest.md)")
    group.addoption(
        "--keepwarm-leaks",
        choices=LEAK_MODES,
        default=None,
        help="requests/keepwarm sessions left unclosed and streamed responses left holding "
        "a connection by a test: off, warn (default: a summary at the end) or fail (the test "
        "errors in its teardown).",
    )
    group.addoption(
        "--keepwarm-strict",
        action="store_true",
        default=None,
        help="keepwarm's guards raise their warnings as exceptions inside tests.",
    )
    parser.addini("keepwarm_leaks", "default of --keepwarm-leaks (off, warn, fail)", default="warn")
    parser.addini("keepwarm_strict", "default of --keepwarm-strict", type="bool", default=False)


_STATE: pytest.StashKey[_State] = pytest.StashKey()


@dataclasses.dataclass
class _State:
    leaks: str
    strict: bool
    #: The tracker that records, None with --keepwarm-leaks=off.
    tracker: _Tracker | None
    pushed: _Tracker
    #: (nodeid, message) of every leak reported as ``warn``, for the summary.
    reported: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "max_connections(n): fail the test when it opens more than n TCP connections "
        "(every client in the process; keepwarm's pytest plugin, docs/pytest.md)",
    )
    config.addinivalue_line(
        "markers",
        "keepwarm_leaks(mode): this test's leaks are off (not reported: it leaks on "
        "purpose), warn or fail, whatever --keepwarm-leaks says, unless that is off "
        "(keepwarm's pytest plugin, docs/pytest.md)",
    )
    leaks = config.getoption("keepwarm_leaks") or str(config.getini("keepwarm_leaks")).strip()
    if leaks not in LEAK_MODES:
        raise pytest.UsageError(
            f"keepwarm_leaks = {leaks!r} is not valid: expected one of {', '.join(LEAK_MODES)}"
        )
    strict = config.getoption("keepwarm_strict")
    if strict is None:
        strict = bool(config.getini("keepwarm_strict"))
    # Pushed with "off" too, never started: a pytester run inside a test records for
    # itself, or not at all, and never into the run around it.
    tracker = _Tracker()
    _push(tracker)
    config.stash[_STATE] = _State(
        leaks=leaks,
        strict=bool(strict),
        tracker=tracker if leaks != "off" else None,
        pushed=tracker,
    )
    if leaks != "off":
        _watch_loads(+1)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        if state.tracker is not None:
            _watch_loads(-1)
        _pop(state.pushed)


# -- per test: strict mode, guard call sites, leaks --------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    state = item.config.stash.get(_STATE, None)
    if state is None:  # pragma: no cover - configured by this module
        return (yield)
    guards = sys.modules.get("keepwarm._guards")
    if guards is not None:
        guards.forget_sites()
    tracker = state.tracker
    if tracker is not None:
        _finder_first()
        _ensure_wrapped()
        tracker.begin(item.nodeid)
    strict = _Strict() if state.strict else None
    try:
        if strict is not None:
            strict.enter()
        return (yield)
    finally:
        if strict is not None:
            strict.leave()
        if tracker is not None:
            tracker.end()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    state = item.config.stash.get(_STATE, None)
    if state is not None and state.strict:
        _configure_strict()  # again: a fixture may have reset keepwarm.configure()
    marker = item.get_closest_marker("max_connections")
    if marker is None:
        return (yield)
    limit = _limit(marker.args, marker.kwargs)
    with _counting() as counted:
        result = yield
    if len(counted) > limit:
        pytest.fail(_too_many(limit, counted), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """Sessions a fixture wider than a test makes belong to it, not to the test that
    happened to set it up (they stay open on purpose until the fixture's teardown)."""
    state = request.config.stash.get(_STATE, None)
    tracker = state.tracker if state is not None else None
    if tracker is None or fixturedef.scope == "function":
        return (yield)
    tracker.wide_fixtures += 1
    try:
        return (yield)
    finally:
        tracker.wide_fixtures -= 1


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    state = item.config.stash.get(_STATE, None)
    if state is not None and state.tracker is not None:
        leaks = state.tracker.collect()
        mode, how = _leak_mode(item, state.leaks)
        if mode == "warn":
            state.reported.extend((item.nodeid, message) for message in leaks)
        elif leaks and mode == "fail":
            pytest.fail(
                f"keepwarm: this test leaked ({how}):\n" + "\n".join(f"  {m}" for m in leaks),
                pytrace=False,
            )
    return result


def _leak_mode(item: pytest.Item, default: str) -> tuple[str, str]:
    # The test's leak mode, and what set it: its ``keepwarm_leaks`` marker, or the run.
    marker = item.get_closest_marker("keepwarm_leaks")
    if marker is None:
        return default, f"--keepwarm-leaks={default}"
    values = [*marker.args, *marker.kwargs.values()]
    if len(values) != 1 or set(marker.kwargs) - {"mode"} or values[0] not in LEAK_MODES:
        pytest.fail(
            f"@pytest.mark.keepwarm_leaks takes one of {', '.join(map(repr, LEAK_MODES))}: "
            "keepwarm_leaks('off') for a test that leaks on purpose",
            pytrace=False,
        )
    mode: str = values[0]
    return mode, f"keepwarm_leaks({mode!r})"


#: Where a pytest-xdist worker hands its ``warn`` leaks to the controller.
_WORKER_LEAKS: Final = "keepwarm_leaks"


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist a worker's terminal summary reaches no terminal: a worker hands its
    # leaks to the controller (``workeroutput`` travels with xdist's "workerfinished"
    # event), which writes the one summary (pytest_testnodedown, below).
    config = session.config
    output = getattr(config, "workeroutput", None)
    state = config.stash.get(_STATE, None)
    if isinstance(output, dict) and state is not None:
        output[_WORKER_LEAKS] = [[nodeid, message] for nodeid, message in state.reported]
        state.reported.clear()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    # pytest-xdist's controller: a worker is done; its leaks join the run's summary. (A
    # worker that crashed sends none: its crash is what the run reports.)
    state = node.config.stash.get(_STATE, None)
    output = getattr(node, "workeroutput", None)
    if state is None or not isinstance(output, dict):
        return
    state.reported.extend(
        (str(nodeid), str(message)) for nodeid, message in output.get(_WORKER_LEAKS, ())
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.reported:
        return
    count = len(state.reported)
    terminalreporter.write_sep("=", f"keepwarm: {count} leak{'s' * (count != 1)}", yellow=True)
    for nodeid, message in state.reported:
        terminalreporter.write_line(f"{nodeid}: {message}")
    terminalreporter.write_line(
        "Close sessions (with requests.Session() as s: ...) and streamed responses "
        "(with s.get(url, stream=True) as r: ...); --keepwarm-leaks=fail fails these "
        "tests, =off stops looking (docs/pytest.md)."
    )


# -- strict mode ----------------------------------------------------------------------


def _configure_strict() -> None:
    config = sys.modules.get("keepwarm._config")
    if config is not None:
        config.configure(strict=True)


class _Strict:
    """``keepwarm.configure(strict=True)`` for one test, what was configured put back."""

    _MISSING: Final = object()

    def __init__(self) -> None:
        self._before: object = self._MISSING

    def enter(self) -> None:
        config = sys.modules.get("keepwarm._config")
        if config is None:
            return
        with config._configured_lock:
            self._before = config._configured.get("strict", self._MISSING)
        config.configure(strict=True)

    def leave(self) -> None:
        config = sys.modules.get("keepwarm._config")
        if config is None:
            return
        with config._configured_lock:
            if self._before is self._MISSING:
                config._configured.pop("strict", None)
            else:
                config._configured["strict"] = self._before


# -- leaks ----------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Created:
    """One session or response made during a test: where, and what became of it."""

    kind: str
    #: file, line, function
    site: tuple[str, int, str]
    ref: weakref.ref[Any] | None = None
    closed: bool = False
    #: A response's urllib3 response, held until the response is gone or checked.
    raw: Any = None
    #: Set when a response died still holding its connection.
    died_holding: bool = False

    def forget(self) -> None:
        # Also ends the cycle record -> weakref -> its callback -> record.
        self.ref = None
        self.raw = None


_PRUNE_EVERY: Final = 256


class _Tracker:
    """What one pytest run made in its current test (only the innermost run records:
    a pytester run inside a test has its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodeid: str | None = None
        self._sessions: dict[int, _Created] = {}
        self._responses: dict[int, _Created] = {}
        self.wide_fixtures = 0
        self._built = 0

    def begin(self, nodeid: str) -> None:
        with self._lock:
            self._nodeid = nodeid
            self._forget_all()
            self.wide_fixtures = 0

    def end(self) -> None:
        with self._lock:
            self._nodeid = None
            self._forget_all()

    def _forget_all(self) -> None:
        for created in self._responses.values():
            created.forget()
        self._sessions.clear()
        self._responses.clear()

    def _recording(self) -> bool:
        return self._nodeid is not None and not self.wide_fixtures

    def session_created(self, session: object) -> None:
        if not self._recording():
            return
        created = _Created(_kind(session), _creation_site(session))
        created.ref = weakref.ref(session)
        with self._lock:
            self._sessions[id(session)] = created

    def session_closed(self, session: object) -> None:
        with self._lock:
            created = self._sessions.get(id(session))
            if created is not None and created.ref is not None and created.ref() is session:
                created.closed = True

    def response_built(self, response: object) -> None:
        raw = getattr(response, "raw", None)
        if not self._recording() or not _holds_connection(raw):
            return
        created = _Created("response", _creation_site(None), raw=raw)

        def gone(_: object) -> None:
            # Runs wherever the response dies (a garbage collection included): touches
            # only its own record, takes no lock.
            created.died_holding = _holds_connection(created.raw)
            created.raw = None

        created.ref = weakref.ref(response, gone)
        with self._lock:
            self._responses[id(response)] = created
            self._built += 1
            if self._built % _PRUNE_EVERY == 0:
                # Responses read to the end (every non-streamed one) gave their
                # connection back: forget them, so a long test does not pile them up.
                kept = {}
                for key, c in self._responses.items():
                    if c.died_holding or (c.raw is not None and _holds_connection(c.raw)):
                        kept[key] = c
                    else:
                        c.forget()
                self._responses = kept

    def collect(self) -> list[str]:
        """The leaks of the test that is ending (then forgets them)."""
        with self._lock:
            sessions = list(self._sessions.values())
            responses = list(self._responses.values())
            self._sessions.clear()
            self._responses.clear()
        shared = _shared_sessions()
        leaks = []
        for created in sessions:
            session = created.ref() if created.ref is not None else None
            if created.closed or _is_closed(session) or any(s is session for s in shared):
                continue
            what = "was garbage-collected without close()" if session is None else "is not closed"
            leaks.append(f"{created.kind} created at {_site(created.site)} {what}")
        for created in responses:
            response = created.ref() if created.ref is not None else None
            if created.died_holding or (response is not None and _holds_connection(created.raw)):
                leaks.append(
                    f"streamed response created at {_site(created.site)} "
                    + (
                        "was garbage-collected still holding its connection"
                        if response is None
                        else "still holds its connection"
                    )
                    + ": read it or close it (with s.get(url, stream=True) as r: ...)"
                )
            created.forget()
        return leaks


def _holds_connection(raw: object) -> bool:
    return getattr(raw, "connection", None) is not None


def _is_closed(session: object) -> bool:
    # keepwarm.Session knows; a plain one is seen closing through the wrapped close().
    return session is not None and getattr(session, "_closed", False) is True


def _shared_sessions() -> list[object]:
    registry = sys.modules.get("keepwarm._registry")
    if registry is None:
        return []
    with registry._lock:
        return list(registry._sessions.values())


def _kind(session: object) -> str:
    cls = type(session)
    if cls.__module__ == "requests.sessions":
        return "requests.Session"
    if cls.__module__ == "keepwarm._session":
        return "keepwarm.Session"
    return f"{cls.__module__}.{cls.__qualname__} (a requests.Session)"


#: Whether a code file is keepwarm's, requests' or urllib3's (cached: the walk runs for
#: every session and response made during a test).
_in_library: dict[str, bool] = {}


def _is_library(filename: str) -> bool:
    known = _in_library.get(filename)
    if known is None:
        dirs = [os.path.dirname(os.path.abspath(__file__)) + os.sep]
        for name in ("requests", "urllib3"):
            path = getattr(sys.modules.get(name), "__file__", None)
            if path:
                dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
        known = filename.startswith("<frozen") or os.path.abspath(filename).startswith(tuple(dirs))
        _in_library[filename] = known
    return known


def _creation_site(created: object) -> tuple[str, int, str]:
    """File, line and function of the first frame outside keepwarm, requests and
    urllib3, skipping the ``__init__`` of a subclass of the session being created."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if not (
            _is_library(code.co_filename)
            or (
                created is not None
                and code.co_name == "__init__"
                and frame.f_locals.get("self") is created
            )
        ):
            return (code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return ("?", 0, "?")


def _site(where: tuple[str, int, str]) -> str:
    filename, lineno, function = where
    return f"{_relative(filename)}:{lineno} ({function})"


def _relative(filename: str) -> str:
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # pragma: no cover - another drive on Windows
        return filename
    return filename if relative.startswith("..") else relative


# The trackers of the pytest runs in this process, innermost last; the wrappers record
# into the innermost one.
_trackers: list[_Tracker] = []
_wrapped: dict[tuple[type, str], Callable[..., Any]] = {}
_wrapped_lock = threading.Lock()

#: (module, class, method, what the wrapper tells the tracker)
_TARGETS: Final = (
    ("requests.sessions", "Session", "__init__", "session_created"),
    ("requests.sessions", "Session", "close", "session_closed"),
    ("keepwarm._session", "Session", "__init__", "session_created"),
    ("keepwarm._session", "Session", "close", "session_closed"),
    ("requests.adapters", "HTTPAdapter", "build_response", "response_built"),
    ("keepwarm._upstream.transport", "KeepwarmAdapter", "build_response", "response_built"),
)


def _push(tracker: _Tracker) -> None:
    with _wrapped_lock:
        _trackers.append(tracker)


def _pop(tracker: _Tracker) -> None:
    with _wrapped_lock:
        if tracker in _trackers:
            _trackers.remove(tracker)
        if _trackers:
            return
        for (cls, name), wrapper in list(_wrapped.items()):
            # Put the original back only if nobody wrapped ours since (then ours stays,
            # recording nothing: no tracker is left).
            if cls.__dict__.get(name) is wrapper:
                setattr(cls, name, wrapper.__wrapped__)
            del _wrapped[(cls, name)]


#: The modules of :data:`_TARGETS`.
_TARGET_MODULES: Final = frozenset(module for module, _, _, _ in _TARGETS)


class _WrapOnLoad(importlib.abc.MetaPathFinder):
    """Wraps the targets of a module of :data:`_TARGETS` that loads during a test as soon
    as it has run, so that test is tracked too: keepwarm loads its ``Session`` class and
    transport on first use (``import keepwarm`` loads neither), so in a fresh process the
    test that makes the first ``keepwarm.Session()`` loads them, after the test's start
    wrapped what was loaded. Finds nothing itself: the next finder's spec is returned
    with its loader behind :class:`_WrapAfterExec`. Kept first on ``sys.meta_path`` at the
    start of every test (pytest's assertion rewriter claims the modules of installed
    plugins' packages, keepwarm's among them, and a pytester run puts another in front)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _TARGET_MODULES:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _WrapAfterExec(spec.loader)
        return spec


class _WrapAfterExec(importlib.abc.Loader):
    """A module's own loader, then :func:`_ensure_wrapped` once the module has run.
    Anything else (``get_source``, ``get_data``, ``is_package``...) is the loader's."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        if _watching:
            _ensure_wrapped()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


_FINDER: Final = _WrapOnLoad()
#: How many pytest runs in this process track leaks (a pytester run inside a test is one).
_watching = 0


def _watch_loads(change: int) -> None:
    global _watching
    with _wrapped_lock:
        _watching += change
        if _watching:
            _finder_first()
        elif _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)


def _finder_first() -> None:
    if not sys.meta_path or sys.meta_path[0] is not _FINDER:
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        sys.meta_path.insert(0, _FINDER)


def _ensure_wrapped() -> None:
    """Wrap what is loaded by now (never imports requests or keepwarm itself). A module
    loaded again has new classes, wrapped in their turn: a pytester run inside a test
    drops the modules it imported when it ends."""
    with _wrapped_lock:
        for module_name, class_name, name, event in _TARGETS:
            module: ModuleType | None = sys.modules.get(module_name)
            cls = getattr(module, class_name, None)
            if not isinstance(cls, type) or (cls, name) in _wrapped:
                continue
            original = cls.__dict__.get(name)
            if original is None:
                continue
            wrapper = _wrap(original, event)
            setattr(cls, name, wrapper)
            _wrapped[(cls, name)] = wrapper


def _tell(event: str, obj: object) -> None:
    """Record ``obj`` in the innermost run's tracker; whatever goes wrong in the
    recording, the user's code goes on (a missed leak is better than a broken test)."""
    try:
        if _trackers:
            getattr(_trackers[-1], event)(obj)
    except Exception:  # pragma: no cover - defensive
        pass


def _wrap(original: Callable[..., Any], event: str) -> Callable[..., Any]:
    # Each wrapper is named as what it wraps, frame included: keepwarm's lifecycle guard
    # skips __init__ frames of the session being made to find the line that made it.
    if event == "session_created":

        @functools.wraps(original)
        def __init__(self: object, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            _tell(event, self)

        return __init__
    if event == "session_closed":

        @functools.wraps(original)
        def close(self: object, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            _tell(event, self)
            return result

        return close

    @functools.wraps(original)
    def build_response(self: object, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        _tell(event, response)
        return response

    return build_response


# -- max_connections ------------------------------------------------------------------

#: Lists that the audit hook appends each TCP connect's address to (one per running
#: max_connections test; several when pytester runs one inside another).
_counters: list[list[str]] = []
_hook_added = False
#: (TCP address families, SOCK_STREAM), read from the socket module when the hook is added:
#: importing it with the plugin would load it into every pytest run (CPython 3.13's
#: pytest does not import it).
_tcp: tuple[tuple[int, ...], int] = ((), 0)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _counters or event != "socket.connect":
        return
    sock, address = args[0], args[1]
    families, stream = _tcp
    try:
        if sock.family not in families or sock.type != stream:
            return
    except Exception:  # pragma: no cover - never break a connect
        return
    where = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
    for counted in list(_counters):
        counted.append(where)


@functools.lru_cache(maxsize=1)
def _add_audit_hook() -> None:
    global _tcp
    import socket

    _tcp = ((socket.AF_INET, socket.AF_INET6), socket.SOCK_STREAM)
    sys.addaudithook(_audit)


def _counting() -> _CountingContext:
    return _CountingContext()


class _CountingContext:
    def __enter__(self) -> list[str]:
        _add_audit_hook()
        self._counted: list[str] = []
        _counters.append(self._counted)
        return self._counted

    def __exit__(self, *exc_info: object) -> None:
        _counters.remove(self._counted)


def _limit(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    values = [*args, *kwargs.values()]
    if len(values) != 1 or set(kwargs) - {"n"}:
        pytest.fail(
            "@pytest.mark.max_connections takes one number: max_connections(1)", pytrace=False
        )
    (value,) = values
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        pytest.fail(
            f"@pytest.mark.max_connections({value!r}): the limit must be a whole number >= 0",
            pytrace=False,
        )
    return value


def _too_many(limit: int, counted: list[str]) -> str:
    per_address: dict[str, int] = {}
    for where in counted:
        per_address[where] = per_address.get(where, 0) + 1
    listed = ", ".join(f"{where} x{n}" for where, n in per_address.items())
    return (
        f"max_connections({limit}): the test opened {len(counted)} TCP connections ({listed}). "
        "A session per call (requests.get() in a loop, a Session made and dropped per "
        "request) opens one each time; reuse one session (keepwarm.session(), or "
        "keepwarm.install() for requests.get())."
    )


# -- fixtures -------------------------------------------------------------------------


class KeepwarmServer:
    """A keep-alive HTTP/1.1 server on loopback that counts what reaches it.

    ``url`` (no trailing slash), ``connections`` (TCP connections accepted),
    ``requests`` (requests received), ``reset()`` (zero both); ``ca_bundle`` is the PEM
    file to pass as ``verify=`` for the HTTPS one (None for HTTP); ``server`` is the
    underlying ``keepwarm.bench._engine.LocalServer``. Routes: ``/`` (``ok``),
    ``/bytes?n=N``, ``/echo``, ``/headers``, ``/cookies``, ``/cookies/set?a=1``,
    ``/status/<code>``, ``/sleep?s=F``, ``/redirect?to=/path``, ``/close`` (answers, then
    closes the connection).
    """

    def __init__(self, server: LocalServer, ca_bundle: str | None = None) -> None:
        self.server = server
        self.ca_bundle = ca_bundle

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def connections(self) -> int:
        return self.server.connections_accepted

    @property
    def requests(self) -> int:
        return self.server.requests_handled

    def reset(self) -> None:
        self.server.reset()

    def __repr__(self) -> str:
        return (
            f"<KeepwarmServer {self.url} connections={self.connections} requests={self.requests}>"
        )


def _serve(ssl_context: Any = None, ca_bundle: str | None = None) -> Iterator[KeepwarmServer]:
    from keepwarm.bench._engine import LocalServer
    from keepwarm.bench._routes import default_handler

    with LocalServer(default_handler, ssl_context=ssl_context) as server:
        yield KeepwarmServer(server, ca_bundle)


@pytest.fixture
def keepwarm_server() -> Iterator[KeepwarmServer]:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 that counts connections and requests
    (``.url``, ``.connections``, ``.requests``); closed after the test."""
    yield from _serve()


@pytest.fixture(scope="session")
def _keepwarm_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    try:
        import trustme
    except ImportError:
        pytest.skip(
            "keepwarm_https_server needs trustme for its throwaway CA: "
            "pip install trustme (or 'keepwarm[bench]')"
        )
    import ssl

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path_factory.mktemp("keepwarm-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return context, str(bundle)


@pytest.fixture
def keepwarm_https_server(_keepwarm_tls: tuple[Any, str]) -> Iterator[KeepwarmServer]:
    """:func:`keepwarm_server` over TLS; its certificate is signed by a throwaway CA whose
    PEM file is ``.ca_bundle`` (pass ``verify=keepwarm_https_server.ca_bundle``)."""
    context, bundle = _keepwarm_tls
    yield from _serve(context, bundle)


@pytest.fixture
def keepwarm_session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A fresh ``keepwarm.Session()`` (strict with ``--keepwarm-strict``), closed after
    the test."""
    import keepwarm

    state = request.config.stash.get(_STATE, None)
    strict = state is not None and state.strict
    with keepwarm.Session(strict=True) if strict else keepwarm.Session() as session:
        yield session
