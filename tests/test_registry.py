"""keepwarm.session(name): one shared Session per name, per process.

Covers identity across calls and threads, conflicts between differently tuned requests
for the same name, close()/close_all() and rebuilding, name validation, and the atexit
handler that closes shared sessions when the interpreter exits.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests

import keepwarm
import keepwarm._config
from servers import LocalServer

# -- identity ----------------------------------------------------------------------------


def test_session_returns_the_same_object_every_time() -> None:
    first = keepwarm.session()
    assert isinstance(first, keepwarm.Session)
    assert isinstance(first, requests.Session)
    for _ in range(10):
        assert keepwarm.session() is first
    # "default" is the name used when none is given.
    assert keepwarm.session("default") is first


def test_64_threads_released_together_get_one_identical_session() -> None:
    n_threads = 64
    barrier = threading.Barrier(n_threads)
    results: list[keepwarm.Session] = []
    errors: list[BaseException] = []
    results_lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            got = keepwarm.session("barrier")
            with results_lock:
                results.append(got)
        except BaseException as exc:  # collected and asserted below
            with results_lock:
                errors.append(exc)

    previous_interval = sys.getswitchinterval()
    # Switch threads as often as possible so the threads really race into session().
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
    finally:
        sys.setswitchinterval(previous_interval)

    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(results) == n_threads
    # Exactly one Session was created: every thread holds the very same object...
    assert len({id(s) for s in results}) == 1
    # ...and it is the one the registry hands out afterwards.
    assert results[0] is keepwarm.session("barrier")


def test_threads_racing_with_different_settings_one_wins_the_rest_conflict() -> None:
    n_threads = 32
    barrier = threading.Barrier(n_threads)
    got: dict[int, list[keepwarm.Session]] = {5: [], 6: []}
    conflicts: dict[int, list[BaseException]] = {5: [], 6: []}
    other_errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(timeout: int) -> None:
        try:
            barrier.wait(timeout=10)
            s = keepwarm.session("race", timeout=timeout)
            with lock:
                got[timeout].append(s)
        except keepwarm.SessionConflictError as exc:
            with lock:
                conflicts[timeout].append(exc)
        except BaseException as exc:  # collected and asserted below
            with lock:
                other_errors.append(exc)

    threads = [threading.Thread(target=worker, args=(5 + i % 2,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    assert not any(t.is_alive() for t in threads)
    assert other_errors == []
    winner = keepwarm.session("race")
    won = 5 if winner.timeout == keepwarm.Timeout(5) else 6
    lost = 11 - won
    # Everybody who asked for the winning settings got the one session...
    assert len(got[won]) == n_threads // 2
    assert all(s is winner for s in got[won])
    assert conflicts[won] == []
    # ...everybody who asked for the others was told so, and got nothing.
    assert got[lost] == []
    assert len(conflicts[lost]) == n_threads // 2


def test_different_names_give_different_sessions() -> None:
    a = keepwarm.session("a")
    b = keepwarm.session("b")
    assert a is not b
    assert keepwarm.session("a") is a
    assert keepwarm.session("b") is b
    assert keepwarm.session() is not a


# -- settings and conflicts --------------------------------------------------------------


def test_settings_are_applied_when_the_session_is_created() -> None:
    s = keepwarm.session("tuned", timeout=5, pool_maxsize=4)
    assert s.timeout == keepwarm.Timeout(5)
    assert s.settings.pool_maxsize == 4


def test_asking_again_with_different_settings_raises_a_helpful_conflict() -> None:
    keepwarm.session("tuned", timeout=5)
    with pytest.raises(keepwarm.SessionConflictError) as info:
        keepwarm.session("tuned", timeout=10)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, keepwarm.KeepwarmError)
    message = str(info.value)
    assert "'tuned'" in message
    # Names the setting, the value asked for and the value the session has...
    assert "timeout=10" in message
    assert "Timeout(connect=5.0, read=5.0)" in message
    # ...and how to fix it.
    assert "another name" in message
    assert "close" in message
    # The existing session is untouched.
    assert keepwarm.session("tuned").timeout == keepwarm.Timeout(5)


def test_conflict_on_a_session_state_option_names_it() -> None:
    # Header values are not shown (they carry tokens): the names that differ are.
    keepwarm.session("hdr", headers={"X-Team": "a"})
    with pytest.raises(
        keepwarm.SessionConflictError, match=r"asked for headers \(X-Team; values not shown\)"
    ) as info:
        keepwarm.session("hdr", headers={"X-Team": "b"})
    assert "'b'" not in str(info.value)


def test_conflict_on_a_tuning_setting_against_a_default_session() -> None:
    keepwarm.session("plain")
    with pytest.raises(keepwarm.SessionConflictError, match="pool_maxsize=3"):
        keepwarm.session("plain", pool_maxsize=3)


def test_asking_again_with_the_same_settings_returns_the_existing_session() -> None:
    s = keepwarm.session("same", timeout=5, headers={"X-Team": "a"})
    assert keepwarm.session("same", timeout=5, headers={"X-Team": "a"}) is s
    # The same timeout spelled differently is the same setting.
    assert keepwarm.session("same", timeout=(5, 5)) is s
    assert keepwarm.session("same", timeout=keepwarm.Timeout(5)) is s
    assert keepwarm.session("same") is s


def test_asking_for_the_default_tuning_explicitly_is_not_a_conflict() -> None:
    s = keepwarm.session("defaults")
    assert keepwarm.session("defaults", timeout=keepwarm.DEFAULT_TIMEOUT) is s
    assert keepwarm.session("defaults", pool_maxsize=keepwarm.DEFAULT_POOL_MAXSIZE) is s


def test_asking_for_the_default_state_explicitly_is_not_a_conflict() -> None:
    # The session *has* verify=True and trust_env=True; asking for exactly that is the
    # "same settings" case and must hand back the existing session.
    s = keepwarm.session("state-defaults")
    assert s.verify is True
    assert keepwarm.session("state-defaults", verify=True) is s
    assert keepwarm.session("state-defaults", trust_env=True) is s


def test_asking_again_with_the_same_retry_settings_returns_the_existing_session() -> None:
    s = keepwarm.session("retries", max_retries=2)
    assert keepwarm.session("retries", max_retries=2) is s
    policy = keepwarm.RetryPolicy(total=5)
    t = keepwarm.session("policy", max_retries=policy)
    assert keepwarm.session("policy", max_retries=policy) is t
    assert keepwarm.session("policy", max_retries=keepwarm.RetryPolicy(total=5)) is t


def test_asking_again_with_retries_off_returns_the_existing_session() -> None:
    # max_retries=0 ("no retries") asked twice is the same setting, not a conflict.
    s = keepwarm.session("no-retries", max_retries=0)
    assert keepwarm.session("no-retries", max_retries=0) is s


def test_unknown_setting_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="timout"):
        keepwarm.session("typo", timout=5)
    # Nothing was registered under that name by the failed call.
    assert keepwarm.session("typo").timeout == keepwarm.DEFAULT_TIMEOUT


# -- closing -----------------------------------------------------------------------------


def test_closing_a_shared_session_removes_it(http_server: LocalServer) -> None:
    old = keepwarm.session("closing", timeout=5)
    with old.get(http_server.url + "/") as r:
        assert r.status_code == 200
    old.close()
    assert old.closed
    new = keepwarm.session("closing")
    assert new is not old
    assert not new.closed
    # Rebuilt from scratch: the old session's settings are not a constraint any more.
    assert new.timeout == keepwarm.DEFAULT_TIMEOUT
    assert keepwarm.session("closing") is new
    with new.get(http_server.url + "/") as r:
        assert r.text == "ok"
    with pytest.raises(keepwarm.SessionClosedError):
        old.get(http_server.url + "/")


def test_a_closed_session_can_be_rebuilt_with_other_settings() -> None:
    keepwarm.session("rebuild", timeout=5).close()
    assert keepwarm.session("rebuild", timeout=9).timeout == keepwarm.Timeout(9)


def test_close_all_closes_every_shared_session(http_server: LocalServer) -> None:
    sessions = [keepwarm.session(name) for name in ("default", "one", "two")]
    for s in sessions:
        with s.get(http_server.url + "/") as r:
            assert r.status_code == 200
    keepwarm.close_all()
    for s in sessions:
        assert s.closed
        with pytest.raises(keepwarm.SessionClosedError, match="closed"):
            s.get(http_server.url + "/")
        # SessionClosedError is also a RuntimeError.
        with pytest.raises(RuntimeError):
            s.post(http_server.url + "/echo", data=b"x")
    fresh = [keepwarm.session(name) for name in ("default", "one", "two")]
    for old, new in zip(sessions, fresh, strict=True):
        assert new is not old
        assert not new.closed
    # The server saw one connection per session: close_all() did close their pools,
    # and the fresh sessions did not send anything.
    assert http_server.connections_accepted == 3


def test_close_all_with_nothing_open_is_harmless() -> None:
    keepwarm.close_all()
    keepwarm.close_all()


def test_closing_twice_is_harmless() -> None:
    s = keepwarm.session("twice")
    s.close()
    replacement = keepwarm.session("twice")
    s.close()  # must not remove the replacement
    assert keepwarm.session("twice") is replacement
    assert not replacement.closed


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", None, 0, b"default"])
def test_bad_names_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="name"):
        keepwarm.session(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", None])
def test_bad_names_raise_type_error_with_settings_too(bad: object) -> None:
    with pytest.raises(TypeError, match="non-empty string"):
        keepwarm.session(bad, timeout=5)  # type: ignore[arg-type]


# -- interpreter exit ---------------------------------------------------------------------

_EXIT_SCRIPT = """
import atexit
import sys


def report():
    # Registered before keepwarm is imported, so it runs after keepwarm's own atexit
    # handler (atexit runs handlers last-in, first-out).
    session = globals().get("SESSION")
    print("closed-at-exit:", None if session is None else session.closed, flush=True)


atexit.register(report)

import keepwarm  # noqa: E402
import keepwarm._registry  # noqa: E402

if sys.argv[2] == "unregister":
    atexit.unregister(keepwarm._registry.close_all)

SESSION = keepwarm.session()
with SESSION.get(sys.argv[1] + "/") as response:
    assert response.status_code == 200, response.status_code
pool = SESSION.get_adapter(sys.argv[1]).poolmanager.connection_from_url(sys.argv[1])
print("pooled-connections-opened:", pool.num_connections, flush=True)
"""


def _run_exit_script(url: str, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error::ResourceWarning",
            "-c",
            _EXIT_SCRIPT,
            url,
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_shared_sessions_are_closed_at_interpreter_exit(http_server: LocalServer) -> None:
    started = time.monotonic()
    result = _run_exit_script(http_server.url, "keep")
    assert result.returncode == 0, result.stderr
    # The session held an open pooled connection when the script ended...
    assert "pooled-connections-opened: 1" in result.stdout, result.stdout
    # ...and keepwarm's atexit handler closed it before the interpreter went away.
    assert "closed-at-exit: True" in result.stdout, result.stdout
    assert "ResourceWarning" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    assert http_server.connections_accepted == 1
    assert time.monotonic() - started < 60


def test_exit_check_fails_without_the_atexit_handler(http_server: LocalServer) -> None:
    # Control for the test above: with keepwarm's handler unregistered the session is
    # still open when the interpreter exits, so "closed-at-exit: True" proves the handler.
    result = _run_exit_script(http_server.url, "unregister")
    assert result.returncode == 0, result.stderr
    assert "closed-at-exit: False" in result.stdout, result.stdout
