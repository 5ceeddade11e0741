"""The servers ``keepwarm bench`` measures against, each in its own process(es).

* :class:`ServerProcess`: the embedded HTTP/1.1 keep-alive server
  (:mod:`keepwarm.bench._server`, TCP_NODELAY, one thread per connection) in a child
  Python process. It counts the connections it accepts and the requests it handles, and
  OpenSSL counts its TLS handshakes.
* :class:`NginxServer`: a real nginx from ``PATH`` with a generated minimal configuration
  in a temporary directory: keep-alive on, the same certificate, a fixed body ``ok``.
  Connections, requests and TLS handshakes are counted from its access log
  (``$connection``, ``$connection_requests``, ``$ssl_protocol``, ``$ssl_session_reused``).

Both listen on 127.0.0.1 only, and both answer ``GET /`` with ``200 ok``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from keepwarm.bench._child import BenchError, ChildProcess

__all__ = [
    "NGINX_MISSING",
    "TRUSTME_MISSING",
    "BenchServer",
    "NginxServer",
    "ServerCounts",
    "ServerProcess",
    "TlsFiles",
    "nginx_version",
    "open_server",
    "tls_files",
    "trustme_missing",
]

NGINX_MISSING = (
    "--server nginx needs nginx on PATH: install nginx, e.g. apt-get install nginx-light"
)

_NGINX_START_SECONDS = 10.0
_NGINX_STOP_SECONDS = 5.0
_LOG_SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class ServerCounts:
    """What a server counted since it started."""

    connections: int
    requests: int
    #: Completed TLS handshakes (0 for plain HTTP).
    tls_handshakes: int


class BenchServer(Protocol):
    """What the scenarios need from a server."""

    name: str
    scheme: str
    port: int

    def counts(self, *, expect_requests: int | None = None) -> ServerCounts:
        """The counters, once at least *expect_requests* requests have been counted
        (bounded wait: a server that logs after answering may lag a little)."""
        ...

    def latency_path(self, seconds: float) -> str:
        """A path answered ``200 ok`` after *seconds* (``/`` when 0)."""
        ...

    def close(self) -> None: ...


# -- TLS material ---------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A CA bundle the size of certifi's, and the server certificate it verifies."""

    bundle: str
    #: Private key and certificate chain in one PEM (the embedded server's ``--cert``).
    chain: str | None
    #: Certificate chain and private key apart (nginx's ``ssl_certificate[_key]``).
    cert: str | None
    key: str | None
    certificates: int


TRUSTME_MISSING = "HTTPS needs trustme to make a throwaway CA: pip install 'keepwarm[bench]'"


def trustme_missing() -> str | None:
    """Why the local HTTPS server cannot run here (trustme missing), or None."""
    try:
        import trustme  # noqa: F401
    except ImportError:
        return TRUSTME_MISSING
    return None


@contextlib.contextmanager
def tls_files(schemes: Sequence[str], *, extra_ca: str | None = None) -> Iterator[TlsFiles]:
    """certifi's bundle plus, for HTTPS, a throwaway CA that signed the server's
    certificate (or plus *extra_ca*, a PEM file, for ``--url``); in a temporary directory
    removed afterwards."""
    import certifi

    with tempfile.TemporaryDirectory(prefix="keepwarm-bench-") as tmp:
        bundle_text = pathlib.Path(certifi.where()).read_text(encoding="ascii")
        chain = cert = key = None
        if extra_ca is not None:
            try:
                extra = pathlib.Path(extra_ca).read_text(encoding="ascii")
            except (OSError, UnicodeError) as exc:
                raise BenchError(f"cannot read --cacert {extra_ca}: {exc}") from None
            if "-----BEGIN CERTIFICATE-----" not in extra:
                raise BenchError(f"--cacert {extra_ca} holds no PEM certificate")
            bundle_text = bundle_text.rstrip("\n") + "\n" + extra
        elif "https" in schemes:
            try:
                import trustme
            except ImportError:
                raise BenchError(TRUSTME_MISSING) from None
            ca = trustme.CA()
            leaf = ca.issue_cert("127.0.0.1")
            chain = os.path.join(tmp, "server.pem")
            cert = os.path.join(tmp, "server-cert.pem")
            key = os.path.join(tmp, "server-key.pem")
            leaf.private_key_and_cert_chain_pem.write_to_path(chain)
            leaf.private_key_pem.write_to_path(key)
            pathlib.Path(cert).write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
            bundle_text = bundle_text.rstrip("\n") + "\n" + ca.cert_pem.bytes().decode("ascii")
        bundle = os.path.join(tmp, "bundle.pem")
        pathlib.Path(bundle).write_text(bundle_text, encoding="ascii")
        count = bundle_text.count("-----BEGIN CERTIFICATE-----")
        yield TlsFiles(bundle, chain, cert, key, count)


# -- the embedded server --------------------------------------------------------------


class ServerProcess(ChildProcess):
    """The embedded benchmark server in a child process (see :mod:`keepwarm.bench._server`)."""

    what = "benchmark server"
    name = "embedded"

    def __init__(self, *, cert_chain: str | None = None) -> None:
        args = ["--tls", "--cert", cert_chain] if cert_chain else []
        super().__init__("keepwarm.bench._server", args)
        self._tls = cert_chain is not None
        self.scheme = "https" if self._tls else "http"

    def __enter__(self) -> ServerProcess:
        super().__enter__()
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stats(self) -> tuple[int, int]:
        """``(connections_accepted, requests_handled)`` since the server started."""
        answer = json.loads(self.command("stats"))
        return int(answer["connections_accepted"]), int(answer["requests_handled"])

    def counts(self, *, expect_requests: int | None = None) -> ServerCounts:
        # The server counts a request before answering it: no wait needed.
        connections, requests = self.stats()
        handshakes = 0
        if self._tls:
            handshakes = int(json.loads(self.command("tls_stats"))["handshakes"])
        return ServerCounts(connections, requests, handshakes)

    def latency_path(self, seconds: float) -> str:
        return f"/sleep?s={seconds:.6f}" if seconds > 0 else "/"


# -- nginx ----------------------------------------------------------------------------


def nginx_version(binary: str) -> str:
    """``1.22.1`` from ``nginx -v`` (``unknown`` if it cannot be read)."""
    try:
        done = subprocess.run(
            [binary, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stderr or done.stdout).strip()
    return text.rpartition("/")[2] or "unknown"


def launch_nginx(binary: str, prefix: str, config: str) -> subprocess.Popen[bytes]:
    """nginx in the foreground with *config* written to ``nginx.conf`` in *prefix*, an
    empty ``access.log`` there, its error log and stderr (``stderr.log``) there too."""
    path = os.path.join(prefix, "nginx.conf")
    pathlib.Path(path).write_text(config, encoding="utf-8")
    pathlib.Path(prefix, "access.log").touch()
    command = [binary, "-p", prefix, "-e", f"{prefix}/error.log", "-c", path, "-g", "daemon off;"]
    with open(os.path.join(prefix, "stderr.log"), "wb") as stderr:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )


def wait_listening(proc: subprocess.Popen[Any], port: int, seconds: float) -> bool:
    """Whether ``proc`` accepts connections on 127.0.0.1:``port`` within ``seconds`` (False
    as soon as it exits)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        time.sleep(0.02)
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _nginx_config(tmp: str, port: int, tls: TlsFiles | None, build_options: str) -> str:
    # Modules compiled out of a small nginx must not get a temp path directive.
    temp_paths = "".join(
        f"    {module}_temp_path {tmp}/{module};\n"
        for module in ("proxy", "fastcgi", "uwsgi", "scgi")
        if f"--without-http_{module}_module" not in build_options
    )
    listen = f"127.0.0.1:{port}" + (" ssl" if tls else "")
    ssl_lines = (
        f"        ssl_certificate {tls.cert};\n"
        f"        ssl_certificate_key {tls.key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        if tls is not None
        else ""
    )
    return (
        "worker_processes 1;\n"
        f"pid {tmp}/nginx.pid;\n"
        f"error_log {tmp}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    log_format kwbench '$connection $connection_requests $ssl_protocol "
        "$ssl_session_reused';\n"
        f"    access_log {tmp}/access.log kwbench;\n"
        f"    client_body_temp_path {tmp}/body;\n"
        f"{temp_paths}"
        "    server_tokens off;\n"
        "    tcp_nodelay on;\n"
        "    keepalive_timeout 75s;\n"
        "    keepalive_requests 1000000;\n"
        "    server {\n"
        f"        listen {listen};\n"
        f"{ssl_lines}"
        "        location / {\n"
        "            default_type text/plain;\n"
        '            return 200 "ok";\n'
        "        }\n"
        "    }\n"
        "}\n"
    )


class NginxServer:
    """A real nginx on 127.0.0.1, one worker, in a temporary prefix (see module doc)."""

    name = "nginx"

    def __init__(self, *, tls: TlsFiles | None = None, binary: str | None = None) -> None:
        found = binary or shutil.which("nginx")
        if not found:
            raise BenchError(NGINX_MISSING)
        self._binary = found
        self._tls = tls
        self.scheme = "https" if tls is not None else "http"
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._pending = b""
        self._requests = 0
        self._connections = 0
        self._handshakes = 0

    def __enter__(self) -> NginxServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="keepwarm-nginx-")
        tmp = self._tmp.name
        try:
            build = subprocess.run(
                [self._binary, "-V"], capture_output=True, text=True, timeout=10, check=False
            ).stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BenchError(f"cannot run {self._binary} -V: {exc}") from None
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            self._proc = launch_nginx(
                self._binary, tmp, _nginx_config(tmp, self.port, self._tls, build)
            )
            if self._wait_ready():
                self._log = open(os.path.join(tmp, "access.log"), "rb")  # noqa: SIM115
                return
            error = self._stop_and_read_error()
            if "Address already in use" not in error:
                raise BenchError(f"nginx did not start: {error}")
        raise BenchError("nginx did not start: no free port on 127.0.0.1 after 3 attempts")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        return wait_listening(self._proc, self.port, _NGINX_START_SECONDS)

    def _stop_and_read_error(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return "not started"
        _stop(proc)
        text = ""
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                path = pathlib.Path(self._tmp.name if self._tmp else "", name)
                text += path.read_text(encoding="utf-8", errors="replace")
        lines = [line for line in text.strip().splitlines() if line.strip()]
        emergencies = [line for line in lines if "[emerg]" in line]
        return (emergencies or lines or ["no output"])[-1]

    def _read_log(self) -> None:
        if self._log is None:
            raise BenchError("nginx is not running")
        data = self._pending + self._log.read()
        *lines, self._pending = data.split(b"\n")
        for line in lines:
            fields = line.split()
            if len(fields) < 4:
                continue
            self._requests += 1
            if fields[1] == b"1":  # the first request of its connection
                self._connections += 1
                if fields[2] != b"-" and fields[3] == b".":  # TLS, full handshake
                    self._handshakes += 1

    def counts(self, *, expect_requests: int | None = None) -> ServerCounts:
        # nginx logs a request after answering it: wait (bounded) for the lines to land.
        deadline = time.monotonic() + _LOG_SETTLE_SECONDS
        self._read_log()
        while expect_requests is not None and self._requests < expect_requests:
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
            self._read_log()
        return ServerCounts(self._connections, self._requests, self._handshakes)

    def latency_path(self, seconds: float) -> str:
        if seconds > 0:
            raise BenchError("--server-latency needs the embedded server, not nginx")
        return "/"

    def close(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            _stop(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Graceful quit (SIGQUIT), then fast shutdown (SIGTERM), then SIGKILL: all bounded."""
    for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=_NGINX_STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def open_server(kind: str, scheme: str, tls: TlsFiles) -> ServerProcess | NginxServer:
    """A started server of *kind* (``embedded`` or ``nginx``) for *scheme*."""
    https = scheme == "https"
    server: ServerProcess | NginxServer
    if kind == "nginx":
        server = NginxServer(tls=tls if https else None)
    else:
        server = ServerProcess(cert_chain=tls.chain if https else None)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server
