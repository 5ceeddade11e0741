"""keepwarm run, inside each Python process: install keepwarm, report at the end.

``start()`` runs once per process, when the program first imports ``requests`` (see
``bootstrap/sitecustomize.py``). It calls ``keepwarm.install(sessions=True)``, marks
the process as started in the run directory (``KEEPWARM_RUN_DIR``) and arranges for the
process's counters to be written there when it ends:

* a normal exit (end of the program, ``sys.exit``, an uncaught exception; gunicorn's
  workers, ``multiprocessing`` spawn children) runs ``atexit``;
* a ``multiprocessing`` fork or forkserver child ends with ``os._exit()`` after
  ``multiprocessing.util._exit_function()``, which runs the finalizers registered in
  that child: :func:`_after_multiprocessing_fork` registers one, through
  ``multiprocessing.util.register_after_fork`` in a child forked from a process that
  had keepwarm (it runs after ``_bootstrap`` has cleared the finalizers the parent had),
  or at :func:`start` in a child that imports requests itself (a forkserver child:
  there both now and after ``_bootstrap``, since the import may come before it);
* a process killed by a signal, or ending with a bare ``os._exit()``, writes nothing:
  its started marker without a document lets the report say so;
* with ``KEEPWARM_RUN_SIGTERM=1`` (``keepwarm run --sigterm``), a process whose SIGTERM
  had its default action (it ends the process) writes its document first, then ends as
  SIGTERM ends it (:func:`_on_sigterm`). A server's master often stops a worker that way
  (hypercorn's stops every worker still running once the first has exited). Opt-in, as
  coverage.py's ``[run] sigterm``: Python runs the handler between bytecodes of the main
  thread, so a SIGTERM that arrives during a long call into C waits for it to return.

A forked child reports only what it did itself: the transport zeroes a child's counters
at the fork (``KeepwarmAdapter.reset_after_fork``), and ``_forked`` gives it a token of
its own, so nothing is counted twice.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import Final

import keepwarm
from keepwarm._forks import after_fork_in_child
from keepwarm._run._report import REPORT_SUFFIX, STARTED_SUFFIX, process_document

__all__ = ["start"]

#: Priority of the multiprocessing finalizer that writes the document: after every
#: finalizer of the program's own (they run highest first).
_FINALIZER_PRIORITY: Final = -1000

#: How long a process ended by SIGTERM waits for its document to be written, at most
#: (with ``--sigterm``): the code the signal interrupted may hold a lock the document
#: needs, so it is written by another thread, and the process ends regardless.
SIGTERM_REPORT_WAIT: Final = 2.0


class _State:
    """This process's part of the run."""

    def __init__(self) -> None:
        self.token = ""
        #: The process whose document a write has begun for, and has been written for.
        self.finished_pid: int | None = None
        self.written_pid: int | None = None
        self.note: Callable[[str], None] = lambda message: None


_state = _State()
_started = False


def _directory() -> pathlib.Path | None:
    value = os.environ.get("KEEPWARM_RUN_DIR", "")
    return pathlib.Path(value) if value else None


def _new_token() -> str:
    _state.token = f"{os.getpid()}-{os.urandom(4).hex()}"
    directory = _directory()
    if directory is not None:
        try:
            (directory / (_state.token + STARTED_SUFFIX)).touch(mode=0o600)
        except OSError:
            pass  # the run is over (the directory is gone): nothing will read it
    return _state.token


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def start(*, strict: bool, note: Callable[[str], None]) -> None:
    """Install keepwarm in this process and report its counters when it ends."""
    global _started
    if _started:
        return
    _started = True
    _state.note = note
    try:
        keepwarm.install(sessions=True, requests_defaults=_flag("KEEPWARM_RUN_REQUESTS_DEFAULTS"))
    except Exception as exc:
        if strict:
            raise
        note(
            f"keepwarm could not be installed ({type(exc).__name__}: {exc}); "
            "this program runs without it"
        )
        return
    _new_token()
    # Registered after keepwarm's own close_all (at its import): atexit runs this first,
    # while the shared sessions still hold their counters.
    atexit.register(finish)
    after_fork_in_child(_forked)
    if _flag("KEEPWARM_RUN_SIGTERM"):
        _watch_sigterm()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        # A multiprocessing child that imports requests itself (a forkserver child, a
        # fork child of a parent without requests) ends with os._exit() too: a finalizer
        # now (requests imported by the target), and again after _bootstrap has cleared
        # the finalizers (requests imported while the process object was unpickled).
        _after_multiprocessing_fork(_state)
        util.register_after_fork(_state, _after_multiprocessing_fork)


def _forked() -> None:
    """In a child just forked: a token of its own (its counters start from zero: the
    transport's own after-fork handler, whichever of the two runs first)."""
    _state.finished_pid = None
    _new_token()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(_state, _after_multiprocessing_fork)


def _after_multiprocessing_fork(state: _State) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(None, finish, exitpriority=_FINALIZER_PRIORITY)


def _watch_sigterm() -> None:
    """Write the document before SIGTERM ends this process, where SIGTERM would end it:
    its handler is the default one. A program that handles or ignores SIGTERM keeps its
    own handler (it ends normally, through ``atexit``, or not at all); one that sets a
    handler later replaces this one. Only the main thread can set a handler: a process
    that first imports requests in another thread is not watched."""
    if not hasattr(signal, "SIGTERM") or os.name != "posix":
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    # The handler's writer must import nothing. SIGTERM can land while this thread is in
    # the middle of an import, holding that module's lock: a first report (at exit, say)
    # imports statistics (with decimal's C module) for the percentiles, and a writer that
    # needed that module waited on the lock until SIGTERM_REPORT_WAIT ran out, and the
    # process ended unreported (hypercorn's terminated worker, tests/test_run.py).
    import statistics  # noqa: F401

    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: object) -> None:
    """Write the document, then end the process by SIGTERM, as it would have ended."""
    # A second SIGTERM during the write waits for it too (bounded by SIGTERM_REPORT_WAIT):
    # hypercorn's master sends two at once (Process.terminate(), then multiprocessing's
    # exit terminates its daemonic workers again), and with the default action back the
    # second ended the worker mid-write, unreported. Ignored, not blocked: with the
    # default action, a SIGTERM delivered to any other thread would end the process.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        # again=True: the signal may have interrupted this thread's own write at exit,
        # which will never end now; a written document is not written twice.
        writer = threading.Thread(
            target=finish, kwargs={"again": True}, name="keepwarm-run-sigterm", daemon=True
        )
        writer.start()
        writer.join(SIGTERM_REPORT_WAIT)
    except BaseException:  # no thread (interpreter shutdown), SIGINT's KeyboardInterrupt
        pass  # in the join: the process ends by SIGTERM regardless, as it would have
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def finish(*, again: bool = False) -> None:
    """Write this process's document (once per process). ``again``: even if a write has
    begun and not ended (the SIGTERM handler's, for the write it interrupted)."""
    pid = os.getpid()
    directory = _directory()
    if directory is None or _state.written_pid == pid:
        return
    if _state.finished_pid == pid and not again:
        return
    _state.finished_pid = pid
    try:
        document = process_document(keepwarm.stats(), pid)
        target = directory / (_state.token + REPORT_SUFFIX)
        temporary = directory / f".{_state.token}{'.again' if again else ''}.tmp"
        temporary.write_text(json.dumps(document), encoding="utf-8")
        os.replace(temporary, target)
        _state.written_pid = pid
    except FileNotFoundError:
        pass  # the run directory is gone: keepwarm run ended before this process did
    except Exception as exc:
        _state.note(f"process {pid} could not report its counters ({type(exc).__name__}: {exc})")
