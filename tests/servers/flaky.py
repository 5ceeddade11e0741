"""A handler for the tests only: :class:`Flaky` fails a route's first requests, then recovers."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from keepwarm.bench._engine import Handler, ServerRequest, ServerResponse
from keepwarm.bench._routes import default_handler

__all__ = ["Flaky"]


class Flaky:
    """A handler that fails the first *times* requests to each path, then recovers.

    Requests are counted per route (path without query). The failing answer is *status*
    (with ``Retry-After`` when *retry_after* is given, plus *headers*); once a route has
    failed *times* times, its requests go to *then* (default :func:`default_handler`,
    so ``/`` answers 200 ``ok`` and ``/echo`` shows what the retry sent). Thread-safe.
    """

    def __init__(
        self,
        times: int = 1,
        status: int = 503,
        *,
        retry_after: int | str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        then: Handler | None = None,
    ) -> None:
        if times < 0:
            raise ValueError(f"times must be >= 0, got {times}")
        self.times = times
        self.status = status
        self._headers = list(headers)
        if retry_after is not None:
            self._headers.append(("Retry-After", str(retry_after)))
        self._then: Handler = then if then is not None else default_handler
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def __call__(self, request: ServerRequest) -> ServerResponse:
        with self._lock:
            count = self._counts.get(request.route, 0) + 1
            self._counts[request.route] = count
        if count <= self.times:
            return ServerResponse(self.status, list(self._headers), b"")
        return self._then(request)

    def count(self, path: str) -> int:
        """How many requests the route *path* has received."""
        with self._lock:
            return self._counts.get(path.partition("?")[0], 0)

    @property
    def counts(self) -> dict[str, int]:
        """Requests received per route (a copy)."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Forget the counts, so every route fails *times* times again."""
        with self._lock:
            self._counts.clear()
