"""``keepwarm run``: real programs in real processes against a real local HTTPS server.

Each test runs a program that knows nothing of keepwarm (``tests/run_fixtures/``) under
``python -m keepwarm run`` and, where it says something, without it too, against the
same :class:`LocalServer` on 127.0.0.1 with a trustme CA: connections are counted where
they are accepted, cookies where they arrive. Every subprocess has a timeout.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

import keepwarm
from keepwarm._config import settings_from_environment
from keepwarm._run import BOOTSTRAP_DIR, RunOptions, _running, child_environment
from keepwarm._run._child import SIGTERM_REPORT_WAIT
from keepwarm._run._report import (
    SIGTERM_HINT,
    WIDTH,
    Collected,
    collect,
    format_report,
    merge_documents,
    process_document,
    report_document,
    stats_from_document,
)
from keepwarm._stats import HostStats, Limits, Stats
from servers import LocalServer

TESTS = pathlib.Path(__file__).resolve().parent
FIXTURES = TESTS / "run_fixtures"
SRC = TESTS.parent / "src"
MIXED = FIXTURES / "mixed_client.py"
TIMEOUT = 90


def _env(ca_bundle: str, *, pythonpath: Sequence[str] = (), **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, str(SRC)])
    env["REQUESTS_CA_BUNDLE"] = ca_bundle
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _plain(
    args: Sequence[str], env: Mapping[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, timeout=TIMEOUT, **kwargs
    )


def _kw_run(
    args: Sequence[str], env: Mapping[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "keepwarm", "run", *args],
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        **kwargs,
    )


def _report(path: pathlib.Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


@pytest.fixture
def tls_server(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server(tls=True)


# -- the program ------------------------------------------------------------------


def test_the_mixed_program_under_keepwarm_run(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """The issue's test: 40 requests over at most 2 connections, the same output, no
    cookie across sessions, and a report that names the 40 requests; plain requests,
    same program, same server, for comparison."""
    env = _env(ca_bundle)
    plain = _plain([str(MIXED), tls_server.url], env)
    assert plain.returncode == 0, plain.stderr.decode()
    assert tls_server.wait_for_requests(40)
    plain_connections = tls_server.connections_accepted
    assert tls_server.requests_handled == 40
    assert plain_connections >= 30  # one per requests.get and per Session, as ever
    tls_server.reset()

    kept = _kw_run([sys.executable, str(MIXED), tls_server.url], env)
    assert kept.returncode == 0, kept.stderr.decode()
    assert kept.stdout == plain.stdout
    assert kept.stdout.count(b"\n") == 40
    assert tls_server.requests_handled == 40
    assert tls_server.connections_accepted <= 2
    stderr = kept.stderr.decode()
    assert stderr.startswith(
        f"keepwarm run: 40 requests, {tls_server.connections_accepted} connection"
    )
    assert "processes: 1 reported" in stderr
    assert f"{tls_server.url.rstrip('/')}" in stderr
    assert all(len(line) <= WIDTH for line in stderr.splitlines())

    # The client's cookie went back to the client's session only.
    for request in tls_server.requests:
        cookie = request.headers.get("cookie", "")
        if request.route == "/cookies/set":
            continue  # the client's login, which sets the cookie
        if request.query.get("who") == "client":
            assert cookie == "sid=client-secret"
        else:
            assert cookie == "", (request.path, cookie)
    assert b"client 0 {'sid': 'client-secret'}" in kept.stdout
    assert b"session block 0 {}" in kept.stdout


def test_the_json_report_and_a_nonzero_exit_status(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    report = tmp_path / "report.json"
    result = _kw_run(
        ["--report", str(report), "--", sys.executable, str(MIXED), tls_server.url, "3"],
        _env(ca_bundle),
    )
    assert result.returncode == 3
    assert result.stderr == b""  # the report went to the file
    document = _report(report)
    assert document["exit_status"] == 3
    assert document["requests"] == 40 == tls_server.requests_handled
    assert document["connections_opened"] == tls_server.connections_accepted <= 2
    assert document["reused"] == 40 - document["connections_opened"]
    assert document["tls_handshakes"] == document["connections_opened"]
    assert document["tls_handshakes_saved"] == 40 - document["tls_handshakes"]
    assert document["discarded"] == 0
    assert document["processes"] == {"started": 1, "reported": 1, "unreadable": 0}
    assert document["keepwarm_version"] == keepwarm.__version__
    assert [o["origin"] for o in document["origins"]] == [tls_server.url.rstrip("/")]
    assert document["origins"][0]["requests"] == 40
    assert isinstance(document["advice"], list)


def test_python_dash_m_a_module(tls_server: LocalServer, ca_bundle: str) -> None:
    env = _env(ca_bundle)
    plain = _plain(["-m", "mixed_client", tls_server.url], env, cwd=FIXTURES)
    tls_server.reset()
    kept = _kw_run([sys.executable, "-m", "mixed_client", tls_server.url], env, cwd=FIXTURES)
    assert kept.returncode == 0, kept.stderr.decode()
    assert kept.stdout == plain.stdout != b""
    assert kept.stderr.decode().startswith("keepwarm run: 40 requests")
    assert tls_server.connections_accepted <= 2


def test_a_console_script_by_path_and_on_path(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "weather-cli"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom mixed_client import main\nsys.exit(main())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = _env(ca_bundle, pythonpath=[str(FIXTURES)])
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    for command in (str(script), "weather-cli"):
        tls_server.reset()
        result = _kw_run([command, tls_server.url, "0"], env)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stderr.decode().startswith("keepwarm run: 40 requests"), command
        assert tls_server.requests_handled == 40
        assert tls_server.connections_accepted <= 2


# -- more than one process --------------------------------------------------------------


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_children_report_once(
    method: str, tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """The parent makes 2 requests before it starts 2 children of 5 each: a forked child
    inherits the parent's counters and reports only its own."""
    report = tmp_path / "report.json"
    result = _kw_run(
        [
            "--report",
            str(report),
            sys.executable,
            str(FIXTURES / "mp_client.py"),
            tls_server.url,
            method,
        ],
        _env(ca_bundle),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"children exit codes [0, 0]\n"
    document = _report(report)
    assert tls_server.requests_handled == 12
    assert document["requests"] == 12
    assert document["connections_opened"] == tls_server.connections_accepted
    assert document["processes"]["reported"] == document["processes"]["started"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("preload", [True, False], ids=["preload", "app-per-worker"])
def test_a_preforking_server(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path, preload: bool
) -> None:
    """The mixed program's calls in gunicorn, 2 workers, each app request making 3.
    With --preload the master loads the app (4 requests) before it forks: counted once,
    not again by each worker. Without it (gunicorn's default) each worker loads the app
    after the fork, 4 requests each, and installs keepwarm when it imports requests.
    SIGTERM to keepwarm run reaches gunicorn, which stops its workers; the report adds up
    every process, and the client's cookie never leaves its session."""
    import importlib.util

    assert importlib.util.find_spec("gunicorn"), "pip install gunicorn (the test extra has it)"
    report = tmp_path / "report.json"
    bind = tmp_path / "gunicorn.sock"
    env = _env(ca_bundle, pythonpath=[str(FIXTURES)], UPSTREAM_URL=tls_server.url.rstrip("/"))
    command = ["--report", str(report), sys.executable, "-m", "gunicorn"]
    command += ["--preload"] if preload else []
    command += ["--workers", "2", "--bind", f"unix:{bind}", "--graceful-timeout", "10"]
    process, bodies, stderr = _serve_and_stop([*command, "wsgi_app:app"], env, bind, 10)
    assert process.returncode == 0, stderr.decode()
    # Each worker's per-call session saw no cookie; the client's session saw its own.
    assert all(b.split(" ", 1)[1] == "{} {'sid': 'client-secret'}\n" for b in bodies)
    for request in tls_server.requests:
        if request.route != "/cookies/set":
            expected = "sid=client-secret" if request.query.get("who") == "client" else ""
            assert request.headers.get("cookie", "") == expected, request.path
    document = _report(report)
    loads = 1 if preload else 2  # the app's module-level requests: master, or each worker
    processes = 3 if preload else 2  # the master sends nothing without --preload
    assert tls_server.requests_handled == 4 * loads + 30
    assert document["requests"] == 4 * loads + 30
    assert document["connections_opened"] == tls_server.connections_accepted
    # Each process opened its own connections, at most 2 each.
    assert tls_server.connections_accepted <= 2 * processes
    assert document["processes"] == {
        "started": processes,
        "reported": processes,
        "unreadable": 0,
    }


def _serve_and_stop(
    command: Sequence[str], env: Mapping[str, str], bind: pathlib.Path, requests: int
) -> tuple[subprocess.Popen[bytes], list[str], bytes]:
    """Start a server under keepwarm run, send it ``requests`` GETs over its Unix socket,
    then SIGTERM keepwarm run; the process, the bodies and its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "keepwarm", "run", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    bodies = []
    try:
        deadline = time.monotonic() + 30
        while len(bodies) < requests:
            assert process.poll() is None, process.communicate(timeout=5)[1].decode()
            assert time.monotonic() < deadline, "the server did not answer"
            connection = _UnixHTTPConnection(str(bind))
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
            except OSError:  # not listening yet
                connection.close()
                time.sleep(0.05)
                continue
            assert response.status == 200
            bodies.append(response.read().decode())
            connection.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    return process, bodies, stderr


@pytest.mark.slow
def test_an_asgi_server_with_spawned_workers(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """hypercorn --workers 2 starts its workers with multiprocessing's spawn: each loads
    the app and installs keepwarm itself; SIGTERM reaches hypercorn through keepwarm run,
    the workers shut down and report. Once the first worker has exited, hypercorn's
    master SIGTERMs every worker still running (hypercorn/run.py), and the workers leave
    SIGTERM's default action (they watch a shared event instead): a worker a moment
    slower, on a loaded machine, is killed before its atexit. --sigterm has it report."""
    report = tmp_path / "report.json"
    bind = tmp_path / "hypercorn.sock"
    env = _env(ca_bundle, pythonpath=[str(FIXTURES)], UPSTREAM_URL=tls_server.url.rstrip("/"))
    command = ["--report", str(report), "--sigterm", sys.executable, "-m", "hypercorn"]
    command += ["--workers", "2"]
    command += ["--bind", f"unix:{bind}", "asgi_app:app"]
    process, bodies, stderr = _serve_and_stop(command, env, bind, 10)
    assert process.returncode == 0, stderr.decode()
    assert all(b.split(" ", 1)[1] == "{} {}\n" for b in bodies)  # no cookie, anywhere
    document = _report(report)
    # Which processes reported first: a count short by a worker's requests then says why.
    assert document["processes"] == {"started": 2, "reported": 2, "unreadable": 0}, stderr.decode()
    assert tls_server.requests_handled == 30 == document["requests"]
    assert document["connections_opened"] == tls_server.connections_accepted <= 2 * 2


class _UnixHTTPConnection:
    """http.client over a Unix socket (gunicorn's bind), for the test's own requests."""

    def __new__(cls, path: str) -> Any:
        import http.client
        import socket

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(10)
                self.sock.connect(path)

        return Connection("localhost", timeout=10)


# -- the environment ------------------------------------------------------------------


def test_the_users_sitecustomize_still_runs_and_sys_path_is_unchanged(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    ran = tmp_path / "ran.txt"
    (mine / "sitecustomize.py").write_text(
        f"import os\nwith open({str(ran)!r}, 'a') as f:\n    f.write(f'{{os.getpid()}}\\n')\n"
        "MARK = 'mine'\n"
    )
    program = tmp_path / "show.py"
    program.write_text(
        textwrap.dedent(
            """
            import os, sys, sitecustomize, requests
            print(sitecustomize.MARK)
            sys.stderr.write(f"pid {os.getpid()}\\n")
            print([p for p in sys.path if "keepwarm" in p and "bootstrap" in p])
            print(sys.path[1:3])
            requests.get(sys.argv[1])
            """
        )
    )
    env = _env(ca_bundle, pythonpath=[str(mine)])
    plain = _plain([str(program), tls_server.url], env)
    kept = _kw_run([sys.executable, str(program), tls_server.url], env)
    assert plain.returncode == kept.returncode == 0, kept.stderr.decode()
    assert kept.stdout == plain.stdout
    assert kept.stdout.startswith(b"mine\n[]\n")
    first, report = kept.stderr.decode().split("\n", 1)
    assert first.removeprefix("pid ") in ran.read_text().split()  # the program ran it
    assert report.startswith("keepwarm run: 1 request, 1 connection opened")


def test_the_child_environment_keeps_the_users_pythonpath() -> None:
    options = RunOptions(command=["x"], requests_defaults=True, otel_metrics=True)
    env = child_environment(
        {"PYTHONPATH": os.pathsep.join(["/a", "/b"]), "KEEPWARM_RUN_STRICT": "1"}, options, "/d"
    )
    assert env["PYTHONPATH"] == os.pathsep.join([BOOTSTRAP_DIR, "/a", "/b"])
    assert env["KEEPWARM_RUN_DIR"] == "/d"
    assert env["KEEPWARM_RUN_REQUESTS_DEFAULTS"] == "1"
    assert env["KEEPWARM_OTEL_METRICS"] == "1"
    assert "KEEPWARM_RUN_STRICT" not in env  # not asked for this run
    # keepwarm run's own variables are not session settings; a misspelt setting still fails.
    env.pop("KEEPWARM_OTEL_METRICS")  # part 3's switch, read by its own code
    assert settings_from_environment(env) == {}
    with pytest.raises(ValueError, match="unknown environment variable KEEPWARM_TIMEOUTS"):
        settings_from_environment({"KEEPWARM_TIMEOUTS": "3"})
    empty_entry = child_environment({"PYTHONPATH": os.pathsep + "/a"}, options, "/d")
    assert empty_entry["PYTHONPATH"] == os.pathsep.join([BOOTSTRAP_DIR, "", "/a"])
    assert child_environment({}, options, "/d")["PYTHONPATH"] == BOOTSTRAP_DIR
    # Running keepwarm run under keepwarm run does not put the bootstrap twice.
    again = child_environment(env, RunOptions(command=["x"]), "/e")
    assert again["PYTHONPATH"] == env["PYTHONPATH"]


def _broken_keepwarm(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory with a 'keepwarm' that fails to import, as in another environment."""
    broken = tmp_path / "broken"
    (broken / "keepwarm").mkdir(parents=True)
    (broken / "keepwarm" / "__init__.py").write_text("raise ImportError('broken on purpose')\n")
    return broken


def _run_with_parent_from_src(
    args: Sequence[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[bytes]:
    """keepwarm run whose own process imports keepwarm from src while PYTHONPATH (what
    the program's processes get) names another keepwarm first."""
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); from keepwarm.cli import main; "
    code += "sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, "run", *args],
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
    )


def test_a_broken_keepwarm_does_not_break_the_program(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    env = _env(ca_bundle, pythonpath=[str(_broken_keepwarm(tmp_path))])
    plain = _plain([str(MIXED), tls_server.url], env)
    tls_server.reset()
    result = _run_with_parent_from_src([sys.executable, str(MIXED), tls_server.url], env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == plain.stdout
    lines = result.stderr.decode().splitlines()
    assert lines[0].startswith(f"keepwarm run: keepwarm is not importable in {sys.executable}")
    assert "broken on purpose" in lines[0]
    assert "processes: none reported" in result.stderr.decode()
    assert tls_server.connections_accepted >= 30  # plain requests, as without keepwarm run

    strict = _run_with_parent_from_src(
        ["--strict", sys.executable, str(MIXED), tls_server.url], env
    )
    assert strict.returncode == 1
    assert strict.stdout == b""
    assert b"ImportError: broken on purpose" in strict.stderr


def test_requests_defaults_keeps_no_timeout_and_no_retries(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """A library's installed calls get keepwarm's (3, 7) s timeout and 3 retries, or,
    with --requests-defaults, requests' own: no timeout, no retries."""
    program = tmp_path / "settings.py"
    program.write_text(
        "import sys, requests\nrequests.get(sys.argv[1])\n"
        "import keepwarm\ns = keepwarm.session().settings\n"
        "print(s.timeout is keepwarm.NO_TIMEOUT, s.max_retries.total)\n"
    )
    env = _env(ca_bundle)
    default = _kw_run([sys.executable, str(program), tls_server.url], env)
    kept = _kw_run(["--requests-defaults", sys.executable, str(program), tls_server.url], env)
    assert default.returncode == kept.returncode == 0, kept.stderr.decode()
    assert default.stdout == b"False 3\n"
    assert kept.stdout == b"True 0\n"
    assert kept.stderr.decode().startswith("keepwarm run: 1 request, 1 connection opened")


def test_stdin_and_stdout_pass_through(ca_bundle: str, tmp_path: pathlib.Path) -> None:
    program = tmp_path / "cat.py"
    program.write_text(
        "import sys, requests\ndata = sys.stdin.buffer.read()\n"
        "sys.stdout.buffer.write(data[::-1])\n"
    )
    data = bytes(range(256)) * 1000
    result = _kw_run([sys.executable, str(program)], _env(ca_bundle), input=data)
    assert result.returncode == 0
    assert result.stdout == data[::-1]
    assert result.stderr.decode().startswith("keepwarm run: 0 requests")


def test_no_secret_of_a_url_reaches_the_report(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    program = tmp_path / "secret.py"
    program.write_text(
        "import sys, requests\nbase = sys.argv[1].replace('https://', 'https://user:PASSWORD@')\n"
        "for _ in range(25):\n    requests.get(base + '/private/path?token=TOKEN', timeout=1)\n"
    )
    report = tmp_path / "report.json"
    env = _env(ca_bundle)
    text = _kw_run([sys.executable, str(program), tls_server.url], env)
    as_json = _kw_run(["--report", str(report), sys.executable, str(program), tls_server.url], env)
    assert text.returncode == as_json.returncode == 0, text.stderr.decode()
    for shown in (text.stderr.decode(), report.read_text()):
        assert "25 requests" in shown or '"requests": 25' in shown
        for secret in ("PASSWORD", "TOKEN", "private", "user"):
            assert secret not in shown


# -- exit statuses and signals -------------------------------------------------------------


def test_usage_errors_and_a_missing_command(ca_bundle: str, tmp_path: pathlib.Path) -> None:
    env = _env(ca_bundle)
    nothing = _kw_run([], env)
    assert nothing.returncode == 2
    assert b"no command given" in nothing.stderr
    only_dashes = _kw_run(["--"], env)
    assert only_dashes.returncode == 2
    missing = _kw_run(["no-such-program-here", "arg"], env)
    assert missing.returncode == 127
    assert (
        missing.stderr
        == b"keepwarm run: error: command not found: no-such-program-here (not on PATH)\n"
    )
    not_executable = tmp_path / "data.txt"
    not_executable.write_text("x")
    cannot = _kw_run([str(not_executable)], env)
    assert cannot.returncode == 126
    assert b"cannot execute" in cannot.stderr
    bad_setting = _kw_run(["true"], {**env, "KEEPWARM_TIMEOUT": "soon"})
    assert bad_setting.returncode == 2
    assert bad_setting.stderr.decode().startswith(
        "keepwarm run: error: environment variable KEEPWARM_TIMEOUT='soon' is not valid"
    )
    assert bad_setting.stderr.decode().endswith("(the program was not started)\n")
    bad_report = _kw_run(["--report", str(tmp_path / "nope" / "r.json"), "true"], env)
    assert bad_report.returncode == 2
    assert b"does not exist" in bad_report.stderr


def _start_sleeper(
    env: Mapping[str, str], tmp_path: pathlib.Path, options: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    program = tmp_path / "sleeper.py"
    program.write_text("import sys, time, requests\nprint('ready', flush=True)\ntime.sleep(60)\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "keepwarm", "run", *options, sys.executable, str(program)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


@pytest.mark.parametrize(
    ("signum", "options", "reported"),
    [
        (signal.SIGTERM, [], False),
        (signal.SIGTERM, ["--sigterm"], True),
        (signal.SIGINT, [], True),
    ],
    ids=["SIGTERM", "SIGTERM-with-sigterm", "SIGINT"],
)
def test_signals_reach_the_program_and_its_status_comes_back(
    signum: int, options: list[str], reported: bool, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """SIGTERM kills Python (no atexit): the report says a process did not report, unless
    --sigterm; SIGINT is a KeyboardInterrupt, atexit runs, Python then ends by SIGINT.
    Either way the status is the signal's."""
    process = _start_sleeper(_env(ca_bundle), tmp_path, options)
    try:
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 128 + signum
    text = stderr.decode()
    if reported:
        assert "processes: 1 reported\n" in text
    else:
        assert "processes: none reported" in text


def test_a_killed_process_is_reported_as_missing(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    program = tmp_path / "killed.py"
    program.write_text(
        "import os, signal, subprocess, sys, requests\n"
        "requests.get(sys.argv[1])\n"
        "child = subprocess.run([sys.executable, '-c', "
        "'import os, signal, requests; os.kill(os.getpid(), signal.SIGKILL)'])\n"
        "print(child.returncode)\n"
    )
    result = _kw_run([sys.executable, str(program), tls_server.url], _env(ca_bundle))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"-9\n"
    text = result.stderr.decode()
    assert "processes: 1 reported, 1 did not (killed, or os._exit): counts are partial" in text


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sigterm_lets_a_terminated_worker_report_and_still_end_it(
    method: str, tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """A child ended by SIGTERM (Process.terminate, as a server's master stops a worker)
    ends by SIGTERM with and without keepwarm run, as with plain requests; without
    --sigterm its requests are missing from the report, which says so and how to have
    them; with it, they are counted. fork: the child inherits the parent's handler;
    spawn: the child sets its own."""
    program = [sys.executable, str(FIXTURES / "terminated_child.py"), tls_server.url, method]
    env = _env(ca_bundle)
    plain = _plain(program[1:], env)
    assert plain.returncode == 0, plain.stderr.decode()
    assert plain.stdout == b"child exit code -15\n"
    assert tls_server.requests_handled == 3
    tls_server.reset()

    without = _kw_run(program, env)
    assert without.returncode == 0, without.stderr.decode()
    assert without.stdout == plain.stdout
    text = without.stderr.decode()
    assert text.startswith("keepwarm run: 1 request, "), text
    assert "processes: 1 reported, 1 did not (killed, or os._exit)" in text
    assert SIGTERM_HINT + "\n" in text
    tls_server.reset()

    report = tmp_path / "report.json"
    kept = _kw_run(["--sigterm", "--report", str(report), *program], env)
    assert kept.returncode == 0, kept.stderr.decode()
    assert kept.stdout == plain.stdout
    assert kept.stderr == b""
    document = _report(report)
    assert document["processes"] == {"started": 2, "reported": 2, "unreadable": 0}
    assert document["requests"] == tls_server.requests_handled == 3
    assert document["connections_opened"] == tls_server.connections_accepted


def test_a_second_sigterm_during_the_write_waits_for_it(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """hypercorn's master sends a worker two SIGTERMs a fraction of a millisecond apart
    (Process.terminate(), then multiprocessing's exit terminating daemonic children):
    the second, landing during the report's write, must not end the process halfway
    through it. The process still ends by SIGTERM, its request counted."""
    program = tmp_path / "twice.py"
    program.write_text(
        textwrap.dedent(
            """
            import os, signal, sys, time
            import requests, keepwarm

            counters = keepwarm.stats

            def second_sigterm_then_counters():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)  # delivered by now, to whichever thread
                return counters()

            requests.get(sys.argv[1]).raise_for_status()
            keepwarm.stats = second_sigterm_then_counters
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
            print("not reached", flush=True)
            """
        )
    )
    report = tmp_path / "report.json"
    command = [sys.executable, str(program), tls_server.url]
    kept = _kw_run(["--sigterm", "--report", str(report), *command], _env(ca_bundle))
    assert kept.returncode == 128 + signal.SIGTERM, kept.stderr.decode()
    assert kept.stdout == b""
    document = _report(report)
    assert document["processes"] == {"started": 1, "reported": 1, "unreadable": 0}
    assert document["requests"] == tls_server.requests_handled == 1


def test_sigterm_leaves_a_programs_own_sigterm_handling_alone(
    ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """A program that handles or ignores SIGTERM before importing requests keeps its
    handler; one that handles it after replaces keepwarm's; a thread that first imports
    requests cannot set a handler, and sets none."""
    program = tmp_path / "handlers.py"
    program.write_text(
        textwrap.dedent(
            """
            import signal, sys, threading

            def mine(signum, frame):
                sys.exit(3)

            which = sys.argv[1]
            if which == "before":
                signal.signal(signal.SIGTERM, mine)
            elif which == "ignored":
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if which == "thread":
                importer = threading.Thread(target=__import__, args=("requests",))
                importer.start()
                importer.join(30)
            else:
                import requests
            if which == "after":
                signal.signal(signal.SIGTERM, mine)
            handler = signal.getsignal(signal.SIGTERM)
            print({mine: "mine", signal.SIG_IGN: "ignored", signal.SIG_DFL: "default"}.get(
                handler, getattr(handler, "__qualname__", repr(handler))))
            """
        )
    )
    env = _env(ca_bundle)
    for which, plain_handler, kept_handler in [
        ("before", "mine", "mine"),
        ("ignored", "ignored", "ignored"),
        ("after", "mine", "mine"),
        ("thread", "default", "default"),
        ("none", "default", "_on_sigterm"),
    ]:
        plain = _plain([str(program), which], env)
        assert plain.stdout.decode() == f"{plain_handler}\n", plain.stderr.decode()
        kept = _kw_run(["--sigterm", sys.executable, str(program), which], env)
        assert kept.returncode == 0, kept.stderr.decode()
        assert kept.stdout.decode() == f"{kept_handler}\n", which


def test_sigterm_during_the_write_at_exit_still_leaves_a_report(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """A worker its master SIGTERMs while it is writing its counters at exit (the window
    --sigterm is for): the interrupted write never ends, so the handler writes them
    again; the process still ends by SIGTERM."""
    program = tmp_path / "late.py"
    program.write_text(
        textwrap.dedent(
            """
            import os, signal, sys, threading
            import requests
            from keepwarm._run import _child

            requests.get(sys.argv[1]).raise_for_status()
            original = _child.process_document

            def interrupted(stats, pid):
                if threading.current_thread() is threading.main_thread():
                    os.kill(os.getpid(), signal.SIGTERM)  # the master, mid-write
                return original(stats, pid)

            _child.process_document = interrupted
            """
        )
    )
    report = tmp_path / "report.json"
    env = _env(ca_bundle)
    kept = _kw_run(
        ["--sigterm", "--report", str(report), sys.executable, str(program), tls_server.url], env
    )
    assert kept.returncode == 128 + signal.SIGTERM, kept.stderr.decode()
    document = _report(report)
    assert document["processes"] == {"started": 1, "reported": 1, "unreadable": 0}
    assert document["requests"] == tls_server.requests_handled == 1


def test_sigterm_after_the_write_at_exit_keeps_what_was_written(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """SIGTERM once the counters are written and the sessions closed (their counters
    gone): the handler does not write them again, as zeros."""
    program = tmp_path / "later.py"
    program.write_text(
        textwrap.dedent(
            """
            import atexit, os, signal, sys

            # Registered first, so it runs last: after keepwarm's write and close_all.
            atexit.register(os.kill, os.getpid(), signal.SIGTERM)
            import requests

            requests.get(sys.argv[1]).raise_for_status()
            """
        )
    )
    report = tmp_path / "report.json"
    command = ["--sigterm", "--report", str(report), sys.executable, str(program)]
    kept = _kw_run([*command, tls_server.url], _env(ca_bundle))
    assert kept.returncode == 128 + signal.SIGTERM, kept.stderr.decode()
    document = _report(report)
    assert document["processes"] == {"started": 1, "reported": 1, "unreadable": 0}
    assert document["requests"] == tls_server.requests_handled == 1


def test_with_sigterm_writing_the_report_imports_nothing(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """SIGTERM can interrupt the main thread inside an import, holding that module's lock:
    the handler's writer must not need one. hypercorn's terminated worker was interrupted
    in its own report's first import of statistics (for the percentiles) and ended
    unreported after the writer's wait. Without --sigterm, the report still loads it on
    demand (not at keepwarm's import)."""
    program = tmp_path / "imports.py"
    program.write_text(
        textwrap.dedent(
            """
            import json, sys, requests
            requests.get(sys.argv[1]).raise_for_status()
            requests.get(sys.argv[1]).raise_for_status()  # two samples: percentiles
            from keepwarm._run import _child
            before = set(sys.modules)
            _child.finish()
            print(json.dumps(sorted(set(sys.modules) - before)))
            """
        )
    )
    env = _env(ca_bundle)
    loaded = {}
    for options in ([], ["--sigterm"]):
        done = _kw_run([*options, sys.executable, str(program), tls_server.url], env)
        assert done.returncode == 0, done.stderr.decode()
        loaded[bool(options)] = json.loads(done.stdout)
    assert "statistics" in loaded[False]
    assert loaded[True] == []


def test_sigterm_ends_the_process_even_if_its_report_cannot_be_written(
    ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """The report is written by another thread, waited for SIGTERM_REPORT_WAIT at most:
    code interrupted while holding a lock the report needs cannot keep the process from
    ending by SIGTERM. Meanwhile SIGTERM is ignored: a second one (sent here from the
    stuck writer) waits for the same bounded write, and the process still ends by
    SIGTERM."""
    program = tmp_path / "stuck.py"
    program.write_text(
        textwrap.dedent(
            """
            import os, signal, time
            import requests, keepwarm

            def stuck():
                ignored = signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
                print("writing; SIGTERM ignored meanwhile:", ignored, flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(60)

            keepwarm.stats = stuck
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
            print("not reached", flush=True)
            """
        )
    )
    started = time.monotonic()
    kept = _kw_run(["--sigterm", sys.executable, str(program)], _env(ca_bundle))
    elapsed = time.monotonic() - started
    assert kept.returncode == 128 + signal.SIGTERM, kept.stderr.decode()
    assert kept.stdout == b"writing; SIGTERM ignored meanwhile: True\n"
    assert "processes: none reported" in kept.stderr.decode()
    assert SIGTERM_REPORT_WAIT <= elapsed < SIGTERM_REPORT_WAIT + 30


def test_a_process_that_outlives_the_program_by_seconds_still_reports(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    # A server's worker finishing after its master, on a loaded machine: still running
    # when the program ends, it is waited for (up to LIVE_REPORT_WAIT), not given up on
    # after LATE_REPORT_WAIT.
    program = tmp_path / "outlived.py"
    program.write_text(
        "import subprocess, sys, requests\n"
        "requests.get(sys.argv[1])\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import sys, time, requests; print(1, flush=True); time.sleep(2.5); "
        "requests.get(sys.argv[1])', sys.argv[1]], stdout=subprocess.PIPE)\n"
        "child.stdout.readline()  # its marker is written: it imported requests\n"
    )
    report = tmp_path / "report.json"
    started = time.monotonic()
    result = _kw_run(
        ["--report", str(report), sys.executable, str(program), tls_server.url],
        _env(ca_bundle),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert time.monotonic() - started >= 2.5  # it waited for the child
    document = _report(report)
    assert document["processes"] == {"started": 2, "reported": 2, "unreadable": 0}
    assert document["requests"] == tls_server.requests_handled == 2


def test_only_a_running_process_is_waited_for(tmp_path: pathlib.Path) -> None:
    assert _running(str(os.getpid()))
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait(timeout=TIMEOUT)
    assert not _running(str(ended.pid))
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + TIMEOUT
        while _running(str(zombie.pid)):  # ended, not reaped: a zombie until wait()
            assert time.monotonic() < deadline, "the child did not end"
            time.sleep(0.02)
    finally:
        zombie.wait(timeout=TIMEOUT)
    assert not _running("not-a-pid")


# -- the report, as pure logic ----------------------------------------------------------


def _stats(**hosts: dict[str, int]) -> Stats:
    made = {
        origin.replace("_", "."): HostStats(origin=origin.replace("_", "."), **counts)
        for origin, counts in hosts.items()
    }
    return Stats(hosts=made, limits=Limits(10, 10, 7.0, 60.0), distinct_hosts=len(made))


def test_a_process_document_round_trips_and_merges() -> None:
    one = _stats(**{"https://a:443": {"requests": 5, "connections_opened": 1, "reused": 4}})
    two = _stats(
        **{
            "https://a:443": {"requests": 3, "connections_opened": 2, "reused": 1},
            "http://b:80": {"requests": 1, "connections_opened": 1},
        }
    )
    document = json.loads(json.dumps(process_document(one, 7)))
    assert document["pid"] == 7
    assert stats_from_document(document) == one
    merged = merge_documents([process_document(one, 1), process_document(two, 2)])
    assert merged.requests == 9
    assert merged.hosts["https://a:443"].connections_opened == 3
    assert merged.limits == one.limits
    with pytest.raises(ValueError, match="'hosts' mapping"):
        stats_from_document({"version": 1})


def test_the_text_report_fits_80_columns() -> None:
    long_host = "https://" + "x" * 120 + ".example:443"
    stats = _stats(
        **{
            long_host: {"requests": 40, "connections_opened": 30, "reused": 10, "discarded": 3},
            **{f"https://h{i}:443": {"requests": i} for i in range(7)},
        }
    )
    collected = Collected(stats=stats, started=3, reported=2, unreadable=0)
    text = format_report(collected)
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    assert "2 reported, 1 did not" in text
    assert "pool-full discards: 3" in text
    assert "... and 3 more origins" in text
    assert "advice:" in text  # the discards make advice (pool_maxsize)
    document = report_document(collected, 0)
    assert len(document["origins"]) == 8
    assert document["origins"][0]["origin"] == long_host
    assert document["advice"] == stats.advice()


def test_otel_metrics_sets_the_switch_only_where_keepwarm_reads_it(ca_bundle: str) -> None:
    """--otel-metrics is part 3's KEEPWARM_OTEL_METRICS=1; where this keepwarm does not
    read that variable, setting it would fail every session, so keepwarm run refuses."""
    try:
        settings_from_environment({"KEEPWARM_OTEL_METRICS": "1"})
        known = True
    except ValueError:
        known = False
    program = "import os; print(os.environ.get('KEEPWARM_OTEL_METRICS'))"
    result = _kw_run(["--otel-metrics", sys.executable, "-c", program], _env(ca_bundle))
    if known:
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"1\n"
    else:
        assert result.returncode == 2
        assert result.stdout == b""
        assert b"--otel-metrics: this keepwarm has no OpenTelemetry metrics export" in (
            result.stderr
        )


def test_the_report_example_in_run_md_is_what_format_report_prints() -> None:
    text = (TESTS.parent / "docs" / "run.md").read_text()
    block = text.split("## The report\n", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    example = block.split("...the program's own output...\n", 1)[1].rstrip("\n")
    origin = "https://127.0.0.1:46427"
    host = HostStats(
        origin=origin,
        requests=40,
        connections_opened=1,
        reused=39,
        tls_handshakes=1,
        peak_in_flight=1,
    )
    stats = Stats(hosts={origin: host}, limits=Limits(32, 32, 7.0, 4.0), distinct_hosts=1)
    collected = Collected(stats=stats, started=1, reported=1, unreadable=0)
    assert format_report(collected) == example
    document = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert document == {**report_document(collected, 0), "keepwarm_version": "0.1.0"}


def test_ctrl_c_in_a_terminal_reaches_the_program_once(
    ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """In a terminal, Ctrl-C goes to the whole foreground process group, keepwarm run
    and the program alike: keepwarm run does not pass it on a second time."""
    import fcntl
    import pty
    import select
    import termios

    program = tmp_path / "count_sigint.py"
    program.write_text(
        textwrap.dedent(
            """
            import signal, time, requests
            count = 0
            def on_int(signum, frame):
                global count
                count += 1
            signal.signal(signal.SIGINT, on_int)
            print("ready", flush=True)
            deadline = time.monotonic() + 20
            while count == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)
            print("sigints", count, flush=True)
            """
        )
    )
    master, slave = pty.openpty()

    def take_the_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "keepwarm", "run", sys.executable, str(program)],
        env=_env(ca_bundle),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_the_terminal,
    )
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 30
        sent = False
        while b"sigints" not in output or not output.endswith(b"\n"):
            assert time.monotonic() < deadline, output
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:  # the terminal's other side closed
                    break
            if b"ready" in output and not sent:
                os.write(master, b"\x03")  # Ctrl-C
                sent = True
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(master)
    assert b"sigints 1\r\n" in output


@pytest.mark.parametrize("first", ["import keepwarm", "import keepwarm._config", "import requests"])
def test_installed_whichever_the_program_imports_first(
    first: str, tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """keepwarm imports requests: a program that imports keepwarm first gets keepwarm
    installed once keepwarm's own import is complete, not in the middle of it."""
    program = tmp_path / "first.py"
    program.write_text(
        f"{first}\nimport sys, requests, keepwarm\n"
        "for _ in range(3):\n    requests.get(sys.argv[1])\n"
        "print(keepwarm.installed())\n"
    )
    result = _kw_run([sys.executable, str(program), tls_server.url], _env(ca_bundle))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"True\n"
    assert result.stderr.decode().startswith("keepwarm run: 3 requests, 1 connection opened")
    assert tls_server.connections_accepted == 1


def test_collect_counts_processes_by_what_they_left(tmp_path: pathlib.Path) -> None:
    one = _stats(**{"https://a:443": {"requests": 2, "connections_opened": 1, "reused": 1}})
    (tmp_path / "10-aa.started").touch()
    (tmp_path / "10-aa.json").write_text(json.dumps(process_document(one, 10)))
    # A forked child that exec'd Python again: one pid, two tokens, one document.
    (tmp_path / "11-bb.started").touch()
    (tmp_path / "11-cc.started").touch()
    (tmp_path / "11-cc.json").write_text(json.dumps(process_document(one, 11)))
    # Killed: a marker and nothing else; and a document cut short.
    (tmp_path / "12-dd.started").touch()
    (tmp_path / "13-ee.started").touch()
    (tmp_path / "13-ee.json").write_text('{"version": 1, "ho')
    (tmp_path / "note").touch()
    (tmp_path / ".14-ff.tmp").write_text("{")
    collected = collect(tmp_path)
    assert (collected.started, collected.reported, collected.unreadable) == (4, 2, 1)
    assert collected.stats.requests == 4


def test_a_python_subprocess_started_with_preexec_fn_is_one_process(
    tls_server: LocalServer, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    """preexec_fn makes subprocess fork in Python (fork hooks run) and then exec Python:
    one process, reported once, and not also counted as a fork child that vanished."""
    program = tmp_path / "preexec.py"
    program.write_text(
        "import os, subprocess, sys, requests\n"
        "requests.get(sys.argv[1])\n"
        "code = 'import sys, requests; requests.get(sys.argv[1]); requests.get(sys.argv[1])'\n"
        "subprocess.run([sys.executable, '-c', code, sys.argv[1]], preexec_fn=os.getpid,"
        " check=True)\n"
    )
    result = _kw_run([sys.executable, str(program), tls_server.url], _env(ca_bundle))
    assert result.returncode == 0, result.stderr.decode()
    text = result.stderr.decode()
    assert text.startswith("keepwarm run: 3 requests, 2 connections opened")
    assert "processes: 2 reported\n" in text


def test_a_signal_that_arrives_before_the_command_starts_is_delivered_to_it() -> None:
    from keepwarm._run import _Forwarder

    forwarder = _Forwarder()
    forwarder(signal.SIGTERM, None)  # keepwarm run got it while starting the command
    assert forwarder.pending == [signal.SIGTERM]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        forwarder.attach(child)
        assert child.wait(timeout=30) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert forwarder.pending == []
