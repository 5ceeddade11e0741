"""nghttpd (nghttp2's reference HTTP/2 server) serving a temporary directory over TLS.

ALPN offers ``h2`` only: a client offering only ``http/1.1`` completes the handshake with
no protocol selected, and its HTTP/1.1 request is met with a closed connection (nghttpd
1.52 waits for the HTTP/2 preface); an h2-only server for fallback tests.

Options the client tests need: ``max_concurrent_streams`` (``-m``), ``window_bits``
(``-w``: every stream's receive window is 2**N - 1) and ``connection_window_bits``
(``-W``). With ``echo_upload`` (the default) a POST or PUT is answered with its own body,
so uploads are checked against a real flow-controlling receiver. Debian package:
nghttp2-server.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping

from keepwarm.bench._servers import _free_port, wait_listening

__all__ = ["NghttpdServer", "find_nghttpd", "nghttpd_missing"]

_START_SECONDS = 10.0
_STOP_SECONDS = 5.0


def find_nghttpd() -> str | None:
    """nghttpd on PATH, or in /usr/sbin (Debian's place, not on a non-root PATH)."""
    return shutil.which("nghttpd") or shutil.which("nghttpd", path="/usr/sbin")


def nghttpd_missing() -> str | None:
    """Why nghttpd cannot run here, or None."""
    if find_nghttpd() is None:
        return "nghttpd is not installed (e.g. apt-get install nghttp2-server)"
    return None


class NghttpdServer:
    """nghttpd on 127.0.0.1 serving *files* (name -> bytes) from a temporary directory."""

    def __init__(
        self,
        certfile: str,
        keyfile: str,
        *,
        files: Mapping[str, bytes] | None = None,
        max_concurrent_streams: int | None = None,
        window_bits: int | None = None,
        connection_window_bits: int | None = None,
        echo_upload: bool = True,
        binary: str | None = None,
    ) -> None:
        self._binary = binary or find_nghttpd() or "nghttpd"
        self.certfile = certfile
        self.keyfile = keyfile
        self.files = dict(files or {})
        options: list[str] = []
        if max_concurrent_streams is not None:
            options.append(f"--max-concurrent-streams={max_concurrent_streams}")
        if window_bits is not None:
            options.append(f"--window-bits={window_bits}")
        if connection_window_bits is not None:
            options.append(f"--connection-window-bits={connection_window_bits}")
        if echo_upload:
            options.append("--echo-upload")
        self.options = options
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def htdocs(self) -> str:
        assert self._tmp is not None, "start() first"
        return os.path.join(self._tmp.name, "htdocs")

    def start(self) -> NghttpdServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="keepwarm-nghttpd-")
        os.mkdir(self.htdocs)
        for name, data in self.files.items():
            pathlib.Path(self.htdocs, name).write_bytes(data)
        error = "no attempt"
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            log = os.path.join(self._tmp.name, "nghttpd.log")
            command = [self._binary, "--address=127.0.0.1", f"--htdocs={self.htdocs}"]
            command += [*self.options, str(self.port), self.keyfile, self.certfile]
            with open(log, "wb") as output:
                self._proc = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
                )
            if self._wait_ready():
                return self
            self._stop()
            error = pathlib.Path(log).read_text(errors="replace").strip()[-500:] or "no output"
            if "in use" not in error:
                break
        self.close()
        raise RuntimeError(f"nghttpd did not start: {error}")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        return wait_listening(self._proc, self.port, _START_SECONDS)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                return
            with contextlib.suppress(OSError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_STOP_SECONDS)

    def close(self) -> None:
        self._stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NghttpdServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
