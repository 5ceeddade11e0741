"""keepwarm under real locust: users ride keepwarm's pools, failures stay visible.

Each test runs locust itself (headless, a few seconds, on 127.0.0.1 only) as a
subprocess against a :class:`LocalServer` in this process. The locustfile, written from
here, mounts keepwarm on every user's ``HttpSession`` in ``on_start`` (or not, for the
plain-locust baseline) and, when locust quits, writes a JSON document: the keepwarm
counters summed over every user's session, the requests and failures locust's ``request``
event reported in that process, and locust's own totals (``environment.stats.total``; on
a master, what its workers reported). Users stop gracefully (``--stop-timeout``), so no
request is cut off between keepwarm counting it and locust recording it, and the counts
can be compared exactly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import pytest

from servers import LocalServer, ServerRequest, ServerResponse, default_handler

# Never import locust here: importing it monkey-patches this process for gevent.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="needs locust"),
]

#: The src directory of the checkout these tests belong to: the subprocesses import the
#: keepwarm under test, not whichever one is installed.
SRC = pathlib.Path(__file__).resolve().parents[1] / "src"

USERS = 4
RUN_TIME = "3s"
#: Longest a single locust run may take (startup, 3 s of load, graceful stop).
RUN_TIMEOUT = 30.0

LOCUSTFILE = '''
"""Written by tests/test_locust.py: every user GETs /, with keepwarm mounted as KW_MOUNT
says ("off", "default", or a number of retries); at quit writes KW_OUT."""

import json
import os

from locust import HttpUser, constant, events, task

import keepwarm

MOUNT = os.environ["KW_MOUNT"]
OUT = os.environ["KW_OUT"]
COUNTERS = ("requests", "reused", "connections_opened", "retries", "stale_retries",
            "discarded", "dropped", "idle_expired")

sessions = []
seen = {"requests": 0, "failures": 0}


@events.request.add_listener
def count(exception=None, **kwargs):
    seen["requests"] += 1
    if exception is not None:
        seen["failures"] += 1


class Visitor(HttpUser):
    wait_time = constant(0.002)

    def on_start(self):
        if MOUNT == "default":
            keepwarm.mount(self.client)
        elif MOUNT != "off":
            keepwarm.mount(self.client, max_retries=int(MOUNT))
        sessions.append(self.client)

    @task
    def visit(self):
        self.client.get("/")


@events.quitting.add_listener
def write(environment, **kwargs):
    totals = dict.fromkeys(COUNTERS, 0)
    for session in sessions:
        counters = keepwarm.stats(session).as_dict()
        for name in COUNTERS:
            totals[name] += counters[name]
    adapters = {type(a).__name__ for s in sessions for a in s.adapters.values()}
    document = {
        "role": type(environment.runner).__name__,
        "sessions": len(sessions),
        "adapters": sorted(adapters),
        "keepwarm": totals,
        "seen": seen,
        "locust": {
            "requests": environment.stats.total.num_requests,
            "failures": environment.stats.total.num_failures,
        },
    }
    with open(OUT + ".part", "w") as f:
        json.dump(document, f)
    os.replace(OUT + ".part", OUT)
'''


@dataclass
class Run:
    """One locust process: its exit code, its JSON document, how long it took."""

    returncode: int
    document: dict[str, Any]
    seconds: float
    log: str

    @property
    def keepwarm(self) -> dict[str, int]:
        return dict(self.document["keepwarm"])

    @property
    def locust(self) -> dict[str, int]:
        return dict(self.document["locust"])

    @property
    def seen(self) -> dict[str, int]:
        return dict(self.document["seen"])


def _env(out: pathlib.Path, mount: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.update(KW_MOUNT=mount, KW_OUT=str(out), PYTHONUNBUFFERED="1")
    return env


def _locustfile(tmp_path: pathlib.Path) -> pathlib.Path:
    """The locustfile in *tmp_path* (written atomically: runs may start side by side)."""
    file = tmp_path / "kw_locustfile.py"
    if not file.exists():
        part = tmp_path / f"kw_locustfile.{threading.get_ident()}.part"
        part.write_text(LOCUSTFILE)
        os.replace(part, file)
    return file


def _common(tmp_path: pathlib.Path) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(_locustfile(tmp_path))]


def _read(out: pathlib.Path, log: str) -> dict[str, Any]:
    assert out.exists(), f"locust wrote no {out.name}; its output:\n{log[-3000:]}"
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def run_locust(tmp_path: pathlib.Path, server: LocalServer, name: str, mount: str) -> Run:
    """Run locust headless, standalone, against *server*; return what it wrote."""
    out = tmp_path / f"{name}.json"
    command = [
        *_common(tmp_path),
        "--headless",
        "--only-summary",
        *("-u", str(USERS), "-r", str(USERS), "-t", RUN_TIME, "--stop-timeout", "5"),
        *("--host", server.url),
    ]
    started = time.monotonic()
    done = subprocess.run(
        command,
        env=_env(out, mount),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - started
    log = done.stdout + done.stderr
    # A task or listener that raised is logged, not fatal: make it fail the test.
    assert "Traceback" not in log, log[-3000:]
    return Run(done.returncode, _read(out, log), seconds, log)


def _report(label: str, run: Run, server: LocalServer | None = None) -> None:
    where = (
        f", server: {server.requests_handled} requests on {server.connections_accepted} connections"
        if server is not None
        else ""
    )
    print(
        f"\n{label}: {run.seconds:.1f} s, rc {run.returncode}, locust {run.locust}, "
        f"seen {run.seen}, keepwarm {run.keepwarm}{where}"
    )


# -- 1 and 4: reuse, against plain locust on the same server ------------------------------


def test_locust_users_ride_keepwarm_pools_no_worse_than_plain_locust(
    tmp_path: pathlib.Path, http_server: LocalServer
) -> None:
    plain = run_locust(tmp_path, http_server, "plain", "off")
    plain_connections = http_server.connections_accepted
    plain_handled = http_server.requests_handled
    _report("plain locust", plain, http_server)
    http_server.reset()

    warm = run_locust(tmp_path, http_server, "keepwarm", "default")
    warm_connections = http_server.connections_accepted
    _report("keepwarm.mount", warm, http_server)

    # Plain locust: its own adapter, no keepwarm counters, no failures.
    assert plain.returncode == 0, plain.log[-3000:]
    assert plain.document["adapters"] == ["LocustHttpAdapter"]
    assert plain.keepwarm["requests"] == 0
    assert plain.locust["failures"] == 0
    assert plain.locust["requests"] == plain.seen["requests"] == plain_handled > 0

    # keepwarm: every user's session went through keepwarm's transport...
    assert warm.returncode == 0, warm.log[-3000:]
    assert warm.document["sessions"] == USERS
    assert warm.document["adapters"] == ["KeepwarmAdapter"]
    n = warm.locust["requests"]
    assert n > 100, warm.log[-3000:]
    assert warm.locust["failures"] == 0
    assert warm.seen == {"requests": n, "failures": 0}
    # ...which counted exactly the requests locust counted, and the server saw.
    assert warm.keepwarm["requests"] == n == http_server.requests_handled
    assert warm.keepwarm["retries"] == warm.keepwarm["stale_retries"] == 0
    # Reuse really happened: a connection per user, not per request.
    assert warm.keepwarm["reused"] == n - warm.keepwarm["connections_opened"] > 0
    assert warm.keepwarm["connections_opened"] == warm_connections
    assert warm_connections <= 2 * USERS < n // 10
    # Plain locust also reuses within a user's session; keepwarm must not be worse.
    assert plain_connections <= 2 * USERS
    assert warm_connections <= plain_connections + 2


# -- 2: retries off by default on locust's HttpSession, an explicit choice wins ----------


class EveryThird:
    """Answers 503 to every third request (counted over all connections), else the
    default routes; counts the 503s it sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.unavailable = 0

    def __call__(self, request: ServerRequest) -> ServerResponse:
        with self._lock:
            self.requests += 1
            failing = self.requests % 3 == 0
            if failing:
                self.unavailable += 1
        if failing:
            return ServerResponse(503, [("Content-Type", "text/plain")], b"busy")
        return default_handler(request)


def test_locust_sees_every_503_unless_retries_are_chosen(
    tmp_path: pathlib.Path, make_server: Callable[..., LocalServer]
) -> None:
    default_503s = EveryThird()
    explicit_503s = EveryThird()
    default_server = make_server(default_503s)
    explicit_server = make_server(explicit_503s)
    # The two runs use different servers, so they can run side by side.
    results: dict[str, Run] = {}
    errors: list[BaseException] = []

    def run(name: str, server: LocalServer, mount: str) -> None:
        try:
            results[name] = run_locust(tmp_path, server, name, mount)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("default", default_server, "default")),
        threading.Thread(target=run, args=("explicit", explicit_server, "2")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_TIMEOUT + 5)
    if errors:
        raise errors[0]
    default, explicit = results["default"], results["explicit"]
    _report("mount() default (503 every 3rd)", default, default_server)
    _report("mount(max_retries=2) (503 every 3rd)", explicit, explicit_server)

    # Default on a locust HttpSession: no retries, every 503 is a locust failure (and
    # locust exits 1, its exit code for a run with failures).
    assert default.returncode == 1, default.log[-3000:]
    n = default.locust["requests"]
    assert n > 100
    assert default.keepwarm["retries"] == 0
    assert default.keepwarm["requests"] == n == default_503s.requests
    assert default.locust["failures"] == default_503s.unavailable == n // 3
    assert default.seen == {"requests": n, "failures": n // 3}
    assert default.keepwarm["reused"] > 0

    # max_retries=2 given explicitly wins: 503s are retried (each counted by keepwarm as
    # an attempt), and locust, which sees only the final responses, sees far fewer
    # failures than the server sent 503s.
    m = explicit.locust["requests"]
    assert m > 100
    retries = explicit.keepwarm["retries"]
    assert retries > 0
    assert explicit.keepwarm["requests"] == m + retries == explicit_503s.requests
    assert explicit.locust["failures"] < explicit_503s.unavailable
    assert explicit.keepwarm["retries"] <= explicit_503s.unavailable


# -- 3: distributed: a master and a worker ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_locust_worker_rides_keepwarm_and_master_totals_match(
    tmp_path: pathlib.Path, http_server: LocalServer
) -> None:
    port = _free_port()
    master_out, worker_out = tmp_path / "master.json", tmp_path / "worker.json"
    master_command = [
        *_common(tmp_path),
        *("--master", "--headless", "--only-summary", "--expect-workers", "1"),
        *("--expect-workers-max-wait", "20"),
        *("-u", str(USERS), "-r", str(USERS), "-t", RUN_TIME, "--stop-timeout", "5"),
        *("--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)),
        *("--host", http_server.url),
    ]
    worker_command = [
        *_common(tmp_path),
        *("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
    ]
    logs: list[TextIO] = []
    processes: list[subprocess.Popen[str]] = []
    started = time.monotonic()
    try:
        for role, command, out in (
            ("master", master_command, master_out),
            ("worker", worker_command, worker_out),
        ):
            log = (tmp_path / f"{role}.log").open("w")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    command,
                    env=_env(out, "default"),
                    cwd=tmp_path,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        master, worker = processes
        master_rc = master.wait(timeout=RUN_TIMEOUT)
        worker_rc = worker.wait(timeout=10)
        seconds = time.monotonic() - started
    finally:
        for process in processes:
            _stop(process)
        for log in logs:
            log.close()
    master_log = (tmp_path / "master.log").read_text()
    worker_log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in master_log + worker_log, (master_log + worker_log)[-3000:]
    master_doc = _read(master_out, master_log)
    worker_doc = _read(worker_out, worker_log)
    print(
        f"\ndistributed: {seconds:.1f} s, rc master {master_rc} worker {worker_rc}; "
        f"master {master_doc}; worker {worker_doc}; server: "
        f"{http_server.requests_handled} requests on {http_server.connections_accepted} "
        "connections"
    )

    assert master_rc == 0, master_log[-3000:]
    assert worker_rc == 0, worker_log[-3000:]
    assert master_doc["role"] == "MasterRunner"
    assert worker_doc["role"] == "WorkerRunner"
    # The master ran no users; the worker ran them all, through keepwarm.
    assert master_doc["sessions"] == 0
    assert worker_doc["sessions"] == USERS
    assert worker_doc["adapters"] == ["KeepwarmAdapter"]
    n = worker_doc["seen"]["requests"]
    assert n > 100
    counters = worker_doc["keepwarm"]
    assert counters["requests"] == n == http_server.requests_handled
    assert counters["reused"] > 0
    assert counters["retries"] == 0
    assert http_server.connections_accepted == counters["connections_opened"] <= 2 * USERS
    # What the worker reported is what the master counted.
    assert master_doc["locust"] == {"requests": n, "failures": 0}
    assert worker_doc["seen"]["failures"] == 0
