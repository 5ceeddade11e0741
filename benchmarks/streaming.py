"""Streaming a large body: ``for chunk in r.iter_content(65536)`` with ``stream=True``.

Issue 16's target: keepwarm.Session, with its default read timeout, streams a 100 MB body
at least as fast as plain ``requests.Session()`` with no timeout at all, over HTTP and
HTTPS. A socket with a timeout costs CPython a ``poll()`` before every ``recv``, so three
clients run in each round, in an order that rotates from round to round:

* ``requests``: ``requests.Session()``, no timeout (the target);
* ``requests+timeout``: the same with ``timeout=(3, 7)``, keepwarm's default: what a read
  timeout costs by itself;
* ``keepwarm``: ``keepwarm.Session()`` with its defaults.

Each client downloads the body ``DOWNLOADS`` times per round, each on a new connection
(the server closes it; ``--keep-alive`` to keep one per client: a kept connection's
receive buffer, as TCP autotuned it, then favours one client over the others for the
whole run); only the body loop is timed, from the response head to the last chunk. With
two CPUs or more the server is pinned to the first and the client to the second
(``--no-pin`` to leave them to the scheduler): a 100 MB download over HTTP takes ~20 ms,
and a migration of either process halves the rate. Figures: MB/s (wall) and client CPU
per 100 MB, medians over rounds with the lowest and highest; ratios are medians of
per-round ratios (a client's MB/s over plain requests' in the same round, its CPU over
plain requests'). Then, per client, how many of its connections kept a small receive
buffer (the kernel's autotuning, decided early in each connection: over loopback TLS such
a connection runs 11-22 % slower whatever the client), and each client's speed over plain
requests' among the connections whose buffer grew: like against like. The server is a
small dedicated one in a child process (this script with ``--serve``): it sends the body
from one buffer in 1 MiB ``sendall`` calls.

``--server nginx`` serves the body from a file with a real nginx instead (one worker,
pinned as the dedicated server is; ``sendfile on`` as distributions ship it, which
nginx leaves aside over TLS; ``keepalive_timeout 0`` for a connection per download): a
production server, whose cost per byte depends less on how the client reads.

Two more figures per client say what its reading costs the other side. Its *waits*: the
voluntary context switches of the client process per 100 MB, each a time it had read all
that had come and slept until more did. And the *server's CPU* per 100 MB while that
client downloads (the server process's CPU clock, asked over its stdin between batches;
nginx's worker's run time from ``/proc/PID/schedstat``):
over loopback Linux runs the client's TCP receive, and the wake-up of a client that
waits, in the sender's system call, so a client that waits more costs the server more.

The speed ratios come with a 90 % bootstrap interval of their median and the verdict on
the target (at least 1: as fast as plain requests): "met" when the whole interval is at
or above it, "not met" when it is all below, "undecided" when it straddles it. The JSON
output keeps every round's ratios; ``--pool`` reads several runs' JSON files and gives
the interval and verdict over all their rounds together (runs of the same code, to decide
what one run cannot).

    PYTHONPATH=src .venv/bin/python benchmarks/streaming.py [--rounds 15] [--mb 100]
        [--scheme http|https|both] [--downloads 3] [--no-pin]
        [--keep-alive] [--server dedicated|nginx] [--json]
    .venv/bin/python benchmarks/streaming.py --pool run1.json run2.json ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from _paired import median_interval, verdict

ROUNDS = 15
BODY_MB = 100
#: Downloads per client per round, timed together (one 100 MB download takes ~20 ms over
#: HTTP here: too short to time alone on a shared machine).
DOWNLOADS = 3
CHUNK = 65536
#: keepwarm's default (connect, read) timeout, given to plain requests in the middle client.
TIMEOUT = (3, 7)
#: Server side: the slice of the body per ``sendall``, the most requests per connection,
#: the largest body served, and how long a connection may sit idle.
SEND_SLICE = 1 << 20
MAX_REQUESTS_PER_CONNECTION = 10_000
MAX_BODY = 1 << 32
SERVER_IDLE_SECONDS = 120.0
MAX_HEAD = 64 * 1024

CLIENTS = ("requests", "requests+timeout", "keepwarm")
#: The clients compared with plain requests, and the target of their speed over its.
COMPARED = ("requests+timeout", "keepwarm")
TARGET = 1.0


# -- the server (a child process) ---------------------------------------------------------


def _read_head(conn: socket.socket, buffered: bytearray) -> bytes | None:
    """One request head from *conn* (None at end of stream or on an oversized head)."""
    while b"\r\n\r\n" not in buffered:
        if len(buffered) > MAX_HEAD:
            return None
        data = conn.recv(65536)
        if not data:
            return None
        buffered += data
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    buffered[:] = rest
    return head


def _serve_connection(conn: socket.socket, body: memoryview) -> None:
    """``GET /N`` -> N bytes, kept alive, until the client closes or a bound is hit;
    ``GET /N?close``: N bytes, then the connection is closed."""
    buffered = bytearray()
    with conn:
        conn.settimeout(SERVER_IDLE_SECONDS)
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                head = _read_head(conn, buffered)
                if head is None:
                    return
                path, _, query = head.split(b" ", 2)[1].partition(b"?")
                size = int(path.strip(b"/") or b"0")
                if not 0 <= size <= MAX_BODY:
                    return
                close = query == b"close"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: %d\r\n%s\r\n"
                    % (size, b"Connection: close\r\n" if close else b"")
                )
                left = size
                while left:
                    step = min(left, len(body))
                    conn.sendall(body[:step])
                    left -= step
                if close:
                    return
        except (OSError, ValueError, IndexError):
            return


def _body_slice() -> bytes:
    """What both servers send, repeated to the body's size: bytes 0-255 over and over,
    :data:`SEND_SLICE` of them."""
    return bytes(range(256)) * (SEND_SLICE // 256)


def serve(cert_chain: str | None, cpu: int | None) -> int:
    """Print the port, serve until stdin closes."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    body = memoryview(_body_slice())
    context: ssl.SSLContext | None = None
    if cert_chain:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_chain)
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)

    def accept() -> None:
        while True:  # a daemon thread: ends with the process (stdin closed)
            try:
                conn, _ = listener.accept()
                if context is not None:
                    conn.settimeout(SERVER_IDLE_SECONDS)
                    conn = context.wrap_socket(conn, server_side=True)
            except OSError:
                continue
            threading.Thread(target=_serve_connection, args=(conn, body), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    for line in sys.stdin:  # until the parent closes it
        if line.strip() == "cpu":
            print(time.process_time_ns(), flush=True)
    return 0


class Server(NamedTuple):
    """A running server child: its port, and its CPU clock (ns, every thread's, through
    its stdin: no connection, so the asking costs it next to nothing)."""

    port: int
    cpu_ns: Callable[[], int]


@contextlib.contextmanager
def server(cert_chain: str | None, cpu: int | None = None) -> Iterator[Server]:
    """A server child process (pinned to *cpu* if given), stopped on exit."""
    args = [sys.executable, __file__, "--serve"]
    if cert_chain:
        args += ["--cert", cert_chain]
    if cpu is not None:
        args += ["--cpu", str(cpu)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if not line.strip():
            raise RuntimeError("the streaming server did not start")
        stdin, stdout = proc.stdin, proc.stdout

        def cpu_ns() -> int:
            stdin.write(b"cpu\n")
            stdin.flush()
            answer = stdout.readline()
            if not answer.strip():
                raise RuntimeError("the streaming server stopped answering")
            return int(answer)

        yield Server(int(line), cpu_ns)
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        finally:
            proc.stdout.close()


@contextlib.contextmanager
def nginx(
    cert_chain: str | None, key: str | None, size: int, cpu: int | None, keep_alive: bool
) -> Iterator[Server]:
    """A real nginx serving a *size*-byte file at ``/<size>`` (one worker, on *cpu* if
    given), with its worker's run time as the server's CPU."""
    from keepwarm.bench._servers import BenchError, _free_port, _stop, launch_nginx, wait_listening

    binary = shutil.which("nginx")
    if binary is None:
        raise SystemExit("--server nginx needs nginx on PATH (apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="keepwarm-streaming-") as tmp:
        os.chmod(tmp, 0o755)  # nginx's worker may run as another user (nobody under root)
        root = pathlib.Path(tmp, "www")
        root.mkdir(mode=0o755)
        with open(root / str(size), "wb") as f:
            block = _body_slice()
            for start in range(0, size, len(block)):
                f.write(block[: size - start])
        tls = (
            f"        ssl_certificate {cert_chain};\n        ssl_certificate_key {key};\n"
            if cert_chain
            else ""
        )
        port = _free_port()
        config = (
            "worker_processes 1;\n"
            + (f"worker_cpu_affinity {1 << cpu:b};\n" if cpu is not None else "")
            + f"pid {tmp}/nginx.pid;\nevents {{ worker_connections 64; }}\nhttp {{\n"
            f"    access_log off;\n    client_body_temp_path {tmp}/body;\n"
            f"    keepalive_timeout {'75s' if keep_alive else '0'};\n"
            "    keepalive_requests 1000000;\n    tcp_nodelay on;\n"
            "    sendfile on;\n    tcp_nopush on;\n"  # as Debian's nginx.conf has them
            f"    server {{\n        listen 127.0.0.1:{port}{' ssl' if cert_chain else ''};\n"
            f"{tls}        root {root};\n        default_type application/octet-stream;\n"
            "    }\n}\n"
        )
        proc = launch_nginx(binary, tmp, config)
        try:
            if not wait_listening(proc, port, 10.0):
                raise BenchError(f"nginx did not start: see {tmp}/error.log")
            worker = _child_of(proc.pid)
            schedstat = f"/proc/{worker}/schedstat"

            def cpu_ns() -> int:
                with open(schedstat) as stat:
                    return int(stat.read().split()[0])

            yield Server(port, cpu_ns)
        finally:
            _stop(proc)


def _child_of(pid: int) -> int:
    """The one child process of *pid* (nginx's worker), found in ``/proc``."""
    for _ in range(100):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rpartition(")")[2].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    return int(entry)
        time.sleep(0.05)
    raise RuntimeError(f"no child of process {pid} (nginx's worker) found")


# -- the clients --------------------------------------------------------------------------


class Download(NamedTuple):
    """One streamed download: wall and client CPU seconds, its receive buffer, and how
    many times the client slept in its body loop (voluntary context switches)."""

    wall: float
    cpu: float
    buffer: int
    waits: int


def _socket_of(response: Any) -> socket.socket | None:
    """The socket under a streamed response (through urllib3's and http.client's readers),
    or None where it cannot be found."""
    try:
        sock = response.raw._fp.fp.raw._sock
    except AttributeError:
        return None
    return sock if isinstance(sock, socket.socket) else None


def _receive_buffer(sock: socket.socket | None) -> int:
    """The kernel's receive buffer of *sock* now (``SO_RCVBUF``), -1 if unknown."""
    if sock is None:
        return -1
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    except OSError:
        return -1


def _download(get: Callable[[], Any], size: int, times: int = 1) -> list[Download]:
    """The body loops of *times* streamed downloads of *size* bytes, each timed from the
    response head to the last chunk (the connection, the TLS handshake and the request are
    not timed), with its receive buffer once nine tenths of the body have been read (read
    outside the timing; see :func:`regimes`)."""
    done = []
    late = size * 9 // 10
    for _ in range(times):
        got = 0
        with get() as r:
            r.raise_for_status()
            sock = _socket_of(r)
            buffer = -1
            switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for chunk in r.iter_content(CHUNK):
                got += len(chunk)
                if got >= late and buffer < 0:
                    wall1, cpu1 = time.perf_counter(), time.process_time()
                    buffer = _receive_buffer(sock)
                    wall0 += time.perf_counter() - wall1
                    cpu0 += time.process_time() - cpu1
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            waits = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches
            done.append(Download(wall, cpu, buffer, waits))
        if got != size:
            raise RuntimeError(f"read {got} bytes of {size}")
    return done


#: A connection whose receive buffer, nine tenths into its body, is under this many times
#: the kernel's initial one (``net.ipv4.tcp_rmem``'s default) kept a small buffer: on the
#: build machine such connections ran a 100 MB body over loopback TLS 11-22 % slower, for
#: every client, and their share moved from run to run (docs/PERFORMANCE.md, sixteenth
#: stop, "Two things move the HTTPS figure"). The two groups lay at 1.3-2.0 and 2.6-17
#: times.
SMALL_BUFFER = 2.3


def _initial_receive_buffer() -> int | None:
    """The kernel's initial TCP receive buffer (Linux), or None."""
    try:
        with open("/proc/sys/net/ipv4/tcp_rmem") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def regimes(each: dict[str, list[Download]], size: int) -> dict[str, Any] | None:
    """Per client: how many of its connections kept a small receive buffer, and its speed
    (MB/s) and CPU (seconds per 100 MB) over each group; then each client's speed over
    plain requests' among connections whose buffer grew. None where a buffer is unknown.

    The buffer's growth is the kernel's (receive autotuning), decided early in each
    connection, and moves every client's figure; comparing like with like tells a
    client's own cost from that."""
    initial = _initial_receive_buffer()
    if initial is None or any(d.buffer < 0 for done in each.values() for d in done):
        return None
    limit = int(initial * SMALL_BUFFER)
    out: dict[str, Any] = {"limit": limit}
    for name, done in each.items():
        row: dict[str, Any] = {"downloads": len(done)}
        for group, members in (
            ("small", [d for d in done if d.buffer < limit]),
            ("grown", [d for d in done if d.buffer >= limit]),
        ):
            row[group] = len(members)
            row[f"mb_s_{group}"] = (
                statistics.median(size / 1e6 / d.wall for d in members) if members else None
            )
            row[f"cpu_{group}"] = (
                statistics.median(d.cpu * 100e6 / size for d in members) if members else None
            )
        out[name] = row
    base = out["requests"]
    for name in COMPARED:
        row = out[name]
        if row["mb_s_grown"] and base["mb_s_grown"]:
            out[f"{name}/requests grown"] = {
                "speed": row["mb_s_grown"] / base["mb_s_grown"],
                "cpu": row["cpu_grown"] / base["cpu_grown"],
            }
    return out


def compare(
    speed: list[float], cpu: list[float], server_cpu: list[float] | None = None
) -> dict[str, Any]:
    """What per-round ratios over plain requests say: each one's median and range, the
    speed's 90 % interval and verdict on :data:`TARGET`, and the rounds themselves; the
    same for the server's CPU where given."""
    interval = median_interval(speed)
    out = {
        "speed": statistics.median(speed),
        "speed_range": (min(speed), max(speed)),
        "speed_interval": interval,
        "verdict": verdict(interval, TARGET, at_least=True),
        "cpu": statistics.median(cpu),
        "cpu_range": (min(cpu), max(cpu)),
        "rounds": len(speed),
        "speed_rounds": [round(x, 4) for x in speed],
        "cpu_rounds": [round(x, 4) for x in cpu],
    }
    if server_cpu:
        out |= {
            "server_cpu": statistics.median(server_cpu),
            "server_cpu_interval": median_interval(server_cpu),
            "server_cpu_rounds": [round(x, 4) for x in server_cpu],
        }
    return out


def pool(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scheme and compared client, :func:`compare` over the rounds of every run in
    *runs* (``--json`` outputs) together. A run without per-round ratios (from before
    they were kept) is refused: its medians cannot be pooled."""
    out: dict[str, dict[str, Any]] = {}
    for scheme in ("http", "https"):
        found = [r[scheme] for r in runs if scheme in r]
        if not found:
            continue
        out[scheme] = {"runs": len(found)}
        for name in COMPARED:
            speed: list[float] = []
            cpu: list[float] = []
            server_cpu: list[float] | None = []
            for r in found:
                q = r[f"{name}/requests"]
                if "speed_rounds" not in q:
                    raise ValueError(
                        f"a {scheme} run has no per-round ratios for {name}: pool only"
                        " runs written by this version of streaming.py with --json"
                    )
                speed += q["speed_rounds"]
                cpu += q["cpu_rounds"]
                if server_cpu is not None and "server_cpu_rounds" in q:
                    server_cpu += q["server_cpu_rounds"]
                else:
                    server_cpu = None  # pooled only if every run has it
            out[scheme][name] = compare(speed, cpu, server_cpu)
    return out


def _print_comparison(name: str, q: dict[str, Any]) -> None:
    low, high = q["speed_interval"]
    print(
        f"  {name} vs requests: speed {q['speed']:.3f} [{low:.3f}, {high:.3f}] {q['verdict']}"
        f" (rounds {q['speed_range'][0]:.3f}-{q['speed_range'][1]:.3f}),"
        f" CPU {q['cpu']:.3f} ({q['cpu_range'][0]:.3f}-{q['cpu_range'][1]:.3f})"
    )
    if "server_cpu" in q:
        low, high = q["server_cpu_interval"]
        print(f"    the server's CPU meanwhile: {q['server_cpu']:.3f} [{low:.3f}, {high:.3f}]")


def _loads() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


#: The CPUs this process may run on, before it pins itself to one of them.
_ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _cpus(pin: bool) -> tuple[int | None, int | None]:
    """``(server CPU, client CPU)``: the first two this process may run on, or Nones."""
    allowed = _ALLOWED
    if not pin or len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


def run_scheme(
    scheme: str,
    rounds: int,
    size: int,
    downloads: int = DOWNLOADS,
    pin: bool = True,
    keep_alive: bool = False,
    server_kind: str = "dedicated",
) -> dict[str, Any]:
    import requests

    import keepwarm
    from keepwarm.bench._servers import tls_files

    with tls_files([scheme]) as tls:
        verify: Any = tls.bundle if scheme == "https" else True
        server_cpu, client_cpu = _cpus(pin)
        running = (
            nginx(
                tls.cert if scheme == "https" else None,
                tls.key,
                size,
                server_cpu,
                keep_alive,
            )
            if server_kind == "nginx"
            else server(tls.chain if scheme == "https" else None, server_cpu)
        )
        with running as served:
            if client_cpu is not None:
                os.sched_setaffinity(0, {client_cpu})
            close = "" if keep_alive or server_kind == "nginx" else "?close"
            url = f"{scheme}://127.0.0.1:{served.port}/{size}{close}"
            plain, timed, kw = requests.Session(), requests.Session(), keepwarm.Session()
            gets: dict[str, Callable[[], Any]] = {
                "requests": lambda: plain.get(url, stream=True, verify=verify),
                "requests+timeout": lambda: timed.get(
                    url, stream=True, verify=verify, timeout=TIMEOUT
                ),
                "keepwarm": lambda: kw.get(url, stream=True, verify=verify),
            }
            walls: dict[str, list[float]] = {name: [] for name in CLIENTS}
            cpus: dict[str, list[float]] = {name: [] for name in CLIENTS}
            servers: dict[str, list[float]] = {name: [] for name in CLIENTS}
            each: dict[str, list[Download]] = {name: [] for name in CLIENTS}
            load_before = _loads()
            try:
                for name in CLIENTS:
                    _download(gets[name], size)  # connect, warm up
                for i in range(rounds):
                    order = CLIENTS[i % 3 :] + CLIENTS[: i % 3]
                    for name in order:
                        before = served.cpu_ns()
                        done = _download(gets[name], size, downloads)
                        servers[name].append((served.cpu_ns() - before) / 1e9)
                        walls[name].append(sum(d.wall for d in done))
                        cpus[name].append(sum(d.cpu for d in done))
                        each[name] += done
            finally:
                plain.close()
                timed.close()
                kw.close()
            load_after = _loads()
    mb = size * downloads / 1e6
    result: dict[str, Any] = {
        "server": server_kind,
        "load": f"{load_before} -> {load_after}",
        "rounds": rounds,
        "downloads": downloads,
        "pinned": client_cpu is not None,
        "keep_alive": keep_alive,
    }
    for name in CLIENTS:
        rates = [mb / w for w in walls[name]]
        cpu_per_100 = [c * 100 / mb for c in cpus[name]]
        result[name] = {
            "mb_s": statistics.median(rates),
            "mb_s_range": (min(rates), max(rates)),
            "cpu_s_per_100mb": statistics.median(cpu_per_100),
            "cpu_range": (min(cpu_per_100), max(cpu_per_100)),
            "server_cpu_s_per_100mb": statistics.median(c * 100 / mb for c in servers[name]),
            "waits_per_100mb": statistics.median(d.waits * 100e6 / size for d in each[name]),
        }
    for name in COMPARED:
        speed = [p / o for p, o in zip(walls["requests"], walls[name], strict=True)]
        cpu = [o / p for p, o in zip(cpus["requests"], cpus[name], strict=True)]
        server_cpu = [o / p for p, o in zip(servers["requests"], servers[name], strict=True)]
        result[f"{name}/requests"] = compare(speed, cpu, server_cpu)
    result["regimes"] = regimes(each, size)
    return result


def _main_pool(paths: list[str], as_json: bool) -> int:
    runs = []
    for path in paths:
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as e:
            print(f"streaming.py: cannot read {path}: {e}", file=sys.stderr)
            return 2
    try:
        pooled = pool(runs)
    except (KeyError, TypeError, ValueError) as e:
        print(f"streaming.py: cannot pool these runs: {e}", file=sys.stderr)
        return 2
    if as_json:
        json.dump(pooled, sys.stdout, indent=2)
        print()
        return 0
    for scheme, p in pooled.items():
        rounds = p[COMPARED[0]]["rounds"]
        print(f"{scheme}: {rounds} rounds of {p['runs']} runs, pooled")
        for name in COMPARED:
            _print_comparison(name, p[name])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--mb", type=int, default=BODY_MB, help="body size in MB (10**6 bytes)")
    parser.add_argument("--scheme", choices=("http", "https", "both"), default="both")
    parser.add_argument("--downloads", type=int, default=DOWNLOADS)
    parser.add_argument("--no-pin", action="store_true", help="leave CPUs to the scheduler")
    parser.add_argument(
        "--keep-alive", action="store_true", help="one connection per client for every download"
    )
    parser.add_argument("--server", choices=("dedicated", "nginx"), default="dedicated")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--pool", nargs="+", metavar="JSON", help="decide over the rounds of these runs' --json"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.cert, args.cpu)
    if args.pool:
        return _main_pool(args.pool, args.json)
    schemes = ["http", "https"] if args.scheme == "both" else [args.scheme]
    results = {
        s: run_scheme(
            s,
            args.rounds,
            args.mb * 1_000_000,
            args.downloads,
            not args.no_pin,
            args.keep_alive,
            args.server,
        )
        for s in schemes
    }
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    for scheme, r in results.items():
        print(
            f"{scheme}: {args.downloads} x {args.mb} MB per client per round, {r['rounds']} rounds,"
            f" the {r['server']} server, {'pinned' if r['pinned'] else 'not pinned'},"
            f" {'kept-alive connections' if r['keep_alive'] else 'a connection per download'},"
            f" load {r['load']}"
        )
        for name in CLIENTS:
            c = r[name]
            lo, hi = c["mb_s_range"]
            clo, chi = c["cpu_range"]
            print(
                f"  {name:17} {c['mb_s']:7.0f} MB/s ({lo:.0f}-{hi:.0f}),"
                f" CPU {c['cpu_s_per_100mb'] * 1e3:.1f} ms/100 MB ({clo * 1e3:.1f}-{chi * 1e3:.1f})"
            )
            print(
                f"  {'':17} {c['waits_per_100mb']:.0f} waits/100 MB;"
                f" the server's CPU {c['server_cpu_s_per_100mb'] * 1e3:.1f} ms/100 MB"
            )
        for name in COMPARED:
            _print_comparison(name, r[f"{name}/requests"])
        g = r["regimes"]
        if g is None:
            continue
        print(f"  receive buffers 9/10 into the body, small = under {g['limit']} bytes:")
        for name in CLIENTS:
            c = g[name]
            small = f"{c['mb_s_small']:.0f}" if c["mb_s_small"] else "-"
            grown = f"{c['mb_s_grown']:.0f}" if c["mb_s_grown"] else "-"
            print(
                f"  {name:17} {c['small']} of {c['downloads']} small;"
                f" MB/s {small} small, {grown} grown"
            )
        for name in COMPARED:
            q = g.get(f"{name}/requests grown")
            if q:
                print(
                    f"  {name} vs requests, grown buffers only: speed {q['speed']:.3f},"
                    f" CPU {q['cpu']:.3f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
