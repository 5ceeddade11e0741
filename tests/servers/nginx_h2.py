"""nginx over HTTP/2 (TLS, ALPN h2 and http/1.1) for the HTTP/2 client tests.

A test-only cousin of :class:`keepwarm.bench._servers.NginxServer` (same start, stop and
port handling): ``listen ... ssl http2`` (the nginx 1.22 syntax), ``keepalive_requests N``
(after N requests on a connection nginx sends GOAWAY: the pass bar of issue 15 is 500/500
through a GOAWAY every 10 requests), ``http2_max_concurrent_streams``, and an access log
with ``$server_protocol``, ``$connection`` and ``$connection_requests`` so a test can
assert that every request arrived as HTTP/2.0 and count connections.

Routes: ``/`` (and any path) answers ``200 ok`` to any method, *without reading a request
body*: nginx answers at once, then sends RST_STREAM(NO_ERROR) for the unread rest (RFC
9113 8.1: the client must keep that response). ``/files/NAME`` serves the *files* given to
the constructor, and where nginx has the dav module (``has_put``), ``PUT /files/NAME``
reads a whole upload and stores it there (201), to be read back with GET.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from keepwarm.bench._servers import _free_port, _stop, launch_nginx, wait_listening

__all__ = ["NginxH2", "NginxRequest", "find_nginx", "nginx_h2_missing"]

_START_SECONDS = 10.0
_LOG_SECONDS = 5.0


def find_nginx() -> str | None:
    """nginx on PATH, or Debian's /usr/sbin/nginx (not on a non-root PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


def nginx_h2_missing(binary: str | None = None) -> str | None:
    """Why nginx over HTTP/2 cannot run here, or None."""
    found = binary or find_nginx()
    if not found:
        return "nginx is not installed (e.g. apt-get install nginx-light)"
    try:
        build = subprocess.run(
            [found, "-V"], capture_output=True, text=True, timeout=10, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {found} -V: {exc}"
    if "--with-http_v2_module" not in build:
        return f"{found} was built without the http_v2_module (nginx -V)"
    if "--with-http_ssl_module" not in build:
        return f"{found} was built without the http_ssl_module (nginx -V)"
    return None


@dataclass(frozen=True)
class NginxRequest:
    """One access-log line."""

    connection: int  # nginx's connection serial number ($connection)
    connection_requests: int  # this request's number on its connection, from 1
    protocol: str  # "HTTP/2.0" or "HTTP/1.1"
    status: int
    method: str
    uri: str
    request_length: int
    bytes_sent: int


def _config(
    tmp: str,
    port: int,
    cert: str,
    key: str,
    keepalive: int,
    streams: int,
    build: str,
    upstream: str | None = None,
) -> str:
    dav = "            dav_methods PUT;\n" if "--with-http_dav_module" in build else ""
    temp_paths = "".join(
        f"    {module}_temp_path {tmp}/{module};\n"
        for module in ("proxy", "fastcgi", "uwsgi", "scgi")
        if f"--without-http_{module}_module" not in build
    )
    # /up/... proxied to an HTTP/1.1 upstream over kept-alive connections (a benchmark's
    # server latency, behind nginx's TLS and HTTP/2).
    proxied = (
        "        location /up/ {\n"
        "            proxy_pass http://kwup/;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "        }\n"
        if upstream
        else ""
    )
    upstream_block = (
        f"    upstream kwup {{ server {upstream}; keepalive 64; }}\n" if upstream else ""
    )
    return (
        "worker_processes 1;\n"
        f"pid {tmp}/nginx.pid;\n"
        f"error_log {tmp}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    log_format kwh2 '$connection $connection_requests $server_protocol $status "
        '$request_method "$request_uri" $request_length $bytes_sent\';\n'
        f"    access_log {tmp}/access.log kwh2;\n"
        f"    client_body_temp_path {tmp}/body;\n"
        f"{temp_paths}"
        "    server_tokens off;\n"
        "    tcp_nodelay on;\n"
        "    keepalive_timeout 75s;\n"
        f"    keepalive_requests {keepalive};\n"
        f"    http2_max_concurrent_streams {streams};\n"
        f"{upstream_block}"
        "    client_max_body_size 64m;\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port} ssl http2;\n"
        f"        ssl_certificate {cert};\n"
        f"        ssl_certificate_key {key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        location /files/ {\n"
        f"            alias {tmp}/files/;\n"
        f"{dav}"
        "        }\n"
        f"{proxied}"
        "        location / {\n"
        "            default_type text/plain;\n"
        '            return 200 "ok";\n'
        "        }\n"
        "    }\n"
        "}\n"
    )


class NginxH2:
    """nginx with HTTP/2 on 127.0.0.1, one worker, in a temporary prefix (module doc)."""

    def __init__(
        self,
        certfile: str,
        keyfile: str,
        *,
        keepalive_requests: int = 1000,
        max_concurrent_streams: int = 128,
        files: Mapping[str, bytes] | None = None,
        binary: str | None = None,
        upstream: str | None = None,
    ) -> None:
        self._binary = binary or find_nginx() or "nginx"
        #: "host:port" of an HTTP/1.1 server that /up/... is proxied to (kept alive).
        self.upstream = upstream
        self.certfile = certfile
        self.keyfile = keyfile
        self.keepalive_requests = keepalive_requests
        self.max_concurrent_streams = max_concurrent_streams
        self.files = dict(files or {})
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._pending = b""
        self._requests: list[NginxRequest] = []
        self.has_put = False

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> NginxH2:
        self._tmp = tempfile.TemporaryDirectory(prefix="keepwarm-nginx-h2-")
        tmp = self._tmp.name
        os.mkdir(os.path.join(tmp, "files"))
        for name, data in self.files.items():
            pathlib.Path(tmp, "files", name).write_bytes(data)
            os.chmod(os.path.join(tmp, "files", name), 0o644)
        # Started as root, nginx's worker runs as an unprivileged user: let it read files.
        os.chmod(tmp, 0o755)
        # and, for PUT, write them.
        os.chmod(os.path.join(tmp, "files"), 0o777)
        build = subprocess.run(
            [self._binary, "-V"], capture_output=True, text=True, timeout=10, check=False
        ).stderr
        self.has_put = "--with-http_dav_module" in build
        error = "no attempt"
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            text = _config(
                tmp,
                self.port,
                self.certfile,
                self.keyfile,
                self.keepalive_requests,
                self.max_concurrent_streams,
                build,
                self.upstream,
            )
            self._proc = launch_nginx(self._binary, tmp, text)
            if self._wait_ready():
                self._log = open(os.path.join(tmp, "access.log"), "rb")  # noqa: SIM115
                return self
            error = self._stop_and_read_error()
            if "Address already in use" not in error:
                break
        self.close()
        raise RuntimeError(f"nginx did not start: {error}")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        return wait_listening(self._proc, self.port, _START_SECONDS)

    def _stop_and_read_error(self) -> str:
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)
        text = ""
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                path = pathlib.Path(self._tmp.name if self._tmp else "", name)
                text += path.read_text(encoding="utf-8", errors="replace")
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return (lines or ["no output"])[-1]

    def _read_log(self) -> None:
        if self._log is None:
            raise RuntimeError("nginx is not running")
        data = self._pending + self._log.read()
        *lines, self._pending = data.split(b"\n")
        for line in lines:
            fields = line.decode("latin-1").split()
            if len(fields) < 8:
                continue
            self._requests.append(
                NginxRequest(
                    connection=int(fields[0]),
                    connection_requests=int(fields[1]),
                    protocol=fields[2],
                    status=int(fields[3]),
                    method=fields[4],
                    uri=fields[5].strip('"'),
                    request_length=int(fields[6]),
                    bytes_sent=int(fields[7]),
                )
            )

    def requests(self, *, expect: int | None = None) -> list[NginxRequest]:
        """The access log so far, parsed; with *expect*, first wait (bounded) until that
        many requests are logged (nginx logs a request after answering it)."""
        deadline = time.monotonic() + _LOG_SECONDS
        self._read_log()
        while expect is not None and len(self._requests) < expect:
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
            self._read_log()
        return list(self._requests)

    def connections(self, *, expect: int | None = None) -> int:
        """How many connections the logged requests came on."""
        return len({entry.connection for entry in self.requests(expect=expect)})

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

    def __enter__(self) -> NginxH2:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
