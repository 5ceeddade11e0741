"""keepwarm under ``gevent.monkey.patch_all()``, next to plain requests.

gevent must patch ``socket``, ``threading`` and ``queue`` before anything imports them,
so each run is a child process (``python -c``) that patches first, then runs a few
hundred concurrent greenlets of GETs through ``keepwarm.Session`` and through
``requests.Session`` against one :class:`LocalServer` of the test (127.0.0.1), and
prints what it saw as JSON. Under gevent urllib3's pool queue is gevent's
``LifoQueue`` (``maxsize`` a property, no ``mutex``): ``pool_maxsize="auto"`` grows it
all the same.

Also here: a pool queue that refuses to grow loses no response (both clients, in this
process).
"""

from __future__ import annotations

import pathlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3.connectionpool

import keepwarm
from children import run_python
from servers import LocalServer, ServerRequest, ServerResponse

pytest.importorskip("gevent")

ServerFactory = Callable[..., LocalServer]

#: Concurrent greenlets per round, and rounds per client (the second round finds the
#: connections the first one left in the pool).
GREENLETS = 300
ROUNDS = 2

SCRIPT = r"""
from gevent import monkey

monkey.patch_all()

import json
import sys

import gevent
import requests
import urllib3.connectionpool

import keepwarm

url, maxsize, greenlets, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def run(session):
    errors = []

    def get():
        try:
            with session.get(url, timeout=20) as response:
                response.raise_for_status()
                if response.content != b"ok":
                    errors.append(f"body {response.content[:40]!r}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    for _ in range(rounds):
        spawned = [gevent.spawn(get) for _ in range(greenlets)]
        gevent.joinall(spawned, timeout=60)
        unfinished = [g for g in spawned if not g.ready()]
        errors.extend("unfinished after 60 s" for _ in unfinished)
        gevent.killall(unfinished, timeout=5)
    return errors


kwargs = {} if maxsize == "default" else {"pool_maxsize": "auto"}
# 300 greenlets saturate a pool of 32 (and "auto"'s cap of 256) on purpose: the guard's
# PoolSaturationWarning would be an error under -W error; this test is about the pool.
with keepwarm.Session(guards=False, **kwargs) as session:
    keepwarm_errors = run(session)
    stats = session.stats()
    pool = session.get_adapter(url).poolmanager.connection_from_url(url)
    kept = pool.pool.maxsize
    pool_queue = type(pool.pool).__module__
with requests.Session() as session:
    requests_errors = run(session)
print(
    json.dumps(
        {
            "queue": urllib3.connectionpool.HTTPConnectionPool.QueueCls.__module__,
            "keepwarm": keepwarm.__file__,
            "keepwarm_errors": keepwarm_errors,
            "requests_errors": requests_errors,
            "requests": stats.requests,
            "reused": stats.reused,
            "connections_opened": stats.connections_opened,
            "discarded": stats.discarded,
            "peak_in_flight": stats.peak_in_flight,
            "maxsize": kept,
            "pool_queue": pool_queue,
        }
    )
)
"""


def answer_ok_slowly(request: ServerRequest) -> ServerResponse:
    """200 ``ok`` after a short delay, so a round's greenlets overlap."""
    return ServerResponse(200, [("Content-Type", "text/plain")], b"ok", delay=0.05)


def run_under_gevent(server: LocalServer, maxsize: str) -> dict[str, Any]:
    """Run :data:`SCRIPT` in a child process against *server*; its report."""
    args = [server.url, maxsize, str(GREENLETS), str(ROUNDS)]
    report: dict[str, Any] = run_python(SCRIPT, *args, timeout=240)
    # The child ran this keepwarm, with gevent's queue in urllib3's pools.
    assert pathlib.Path(report["keepwarm"]).resolve() == pathlib.Path(keepwarm.__file__).resolve()
    assert report["queue"].startswith("gevent"), report["queue"]
    return report


@pytest.mark.slow
def test_gevent_auto_pool_maxsize_grows_and_loses_no_response(
    make_server: ServerFactory,
) -> None:
    server = make_server(answer_ok_slowly)
    report = run_under_gevent(server, "auto")
    assert report["keepwarm_errors"] == [], report["keepwarm_errors"][:5]
    assert report["requests_errors"] == [], report["requests_errors"][:5]
    assert report["requests"] == GREENLETS * ROUNDS
    # The pool grew past its starting size and kept what it grew to: the second round
    # reused the connections the first one opened.
    assert report["peak_in_flight"] > keepwarm.DEFAULT_POOL_MAXSIZE
    assert keepwarm.DEFAULT_POOL_MAXSIZE < report["maxsize"] <= report["connections_opened"]
    assert report["reused"] > keepwarm.DEFAULT_POOL_MAXSIZE
    assert report["connections_opened"] + report["reused"] == GREENLETS * ROUNDS
    assert server.wait_for_requests(2 * GREENLETS * ROUNDS, timeout=10)
    assert server.requests_handled == 2 * GREENLETS * ROUNDS


@pytest.mark.slow
def test_gevent_default_pool_maxsize(make_server: ServerFactory) -> None:
    server = make_server(answer_ok_slowly)
    report = run_under_gevent(server, "default")
    assert report["keepwarm_errors"] == [], report["keepwarm_errors"][:5]
    assert report["requests_errors"] == [], report["requests_errors"][:5]
    assert report["requests"] == GREENLETS * ROUNDS
    # A fixed-size pool keeps its size and discards the rest, as requests' does.
    assert report["maxsize"] == keepwarm.DEFAULT_POOL_MAXSIZE
    # keepwarm's pools keep gevent's queue class (not keepwarm's PoolQueue, which is the
    # standard library's).
    assert report["pool_queue"] == report["queue"] != "queue"
    assert report["discarded"] > 0
    assert report["reused"] > 0
    assert server.wait_for_requests(2 * GREENLETS * ROUNDS, timeout=10)
    assert server.requests_handled == 2 * GREENLETS * ROUNDS


class _RefusesToGrow(queue.LifoQueue):  # type: ignore[type-arg]
    """A pool queue whose ``maxsize`` cannot change after it is made."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "maxsize" and "maxsize" in self.__dict__:
            raise RuntimeError("this queue does not grow")
        super().__setattr__(name, value)


def test_a_pool_that_cannot_grow_loses_no_response(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Growing fails: the extra connection is closed, as urllib3 does when a pool is
    full, and every response still reaches its caller (keepwarm and requests alike)."""
    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "QueueCls", _RefusesToGrow)
    server = make_server(answer_ok_slowly)
    threads = keepwarm.DEFAULT_POOL_MAXSIZE + 16
    discarded = 0
    for session in (keepwarm.Session(pool_maxsize="auto"), requests.Session()):
        with session:
            errors = burst(session, server.url, threads)
            assert errors == [], errors[:5]
            if isinstance(session, keepwarm.Session):
                stats = session.stats()
                assert stats.requests == threads
                discarded = stats.discarded
                pool = session.get_adapter(server.url).poolmanager.connection_from_url(server.url)
                assert pool.pool is not None
                assert type(pool.pool) is _RefusesToGrow
                assert pool.pool.maxsize == keepwarm.DEFAULT_POOL_MAXSIZE
    assert discarded > 0
    assert server.requests_handled == 2 * threads


def burst(session: requests.Session, url: str, threads: int) -> list[BaseException]:
    """*threads* threads released together, one GET each; the errors they met."""
    barrier = threading.Barrier(threads, timeout=10)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            with session.get(url, timeout=10) as response:
                response.raise_for_status()
                assert response.content == b"ok"
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not any(worker.is_alive() for worker in workers)
    return errors
