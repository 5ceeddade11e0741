"""The transport: requests' ``HTTPAdapter`` with keepwarm's pools, TLS cache and limits.

What it changes, and why:

* **Bounded pool wait.** requests never passes a pool timeout to urllib3, so with
  ``pool_block=True`` a request waits forever for a free connection (requests 3825). Here
  the wait is bounded by ``pool_timeout`` and ends in :class:`keepwarm.PoolTimeout`.
* **Shared SSL contexts.** See ``_tls``: the CA bundle is loaded once per process instead
  of once per connection, and the context is part of the pool key, so connections made
  with one TLS configuration never serve a request made with another (CVE-2024-35195).
* **Fork safety.** :meth:`KeepwarmAdapter.reset_after_fork` drops, without closing, every
  pool inherited from the parent: the child's first request opens its own connection
  instead of writing into the parent's TLS stream (requests 1906, 4323; urllib3 850).
"""

from __future__ import annotations

import threading
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import EmptyPoolError
from urllib3.poolmanager import PoolManager

from keepwarm import _tls
from keepwarm._config import Settings
from keepwarm._exceptions import PoolTimeout

__all__ = ["KeepwarmAdapter"]


class _BoundedWaitHTTPPool(HTTPConnectionPool):
    #: Seconds to wait for a free connection when the pool blocks; set per adapter.
    pool_wait: float | None = None

    def _get_conn(self, timeout: float | None = None) -> Any:
        return super()._get_conn(self.pool_wait if timeout is None else timeout)


class _BoundedWaitHTTPSPool(HTTPSConnectionPool):
    pool_wait: float | None = None

    def _get_conn(self, timeout: float | None = None) -> Any:
        return super()._get_conn(self.pool_wait if timeout is None else timeout)


class KeepwarmAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` built from :class:`keepwarm._config.Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        wait = settings.pool_timeout if settings.pool_block else None
        # Pool classes that carry this adapter's wait bound; urllib3 builds every pool,
        # direct or through a proxy, from the manager's pool_classes_by_scheme.
        self._pool_classes: dict[str, type[HTTPConnectionPool]] = {
            "http": type("HTTPConnectionPool", (_BoundedWaitHTTPPool,), {"pool_wait": wait}),
            "https": type("HTTPSConnectionPool", (_BoundedWaitHTTPSPool,), {"pool_wait": wait}),
        }
        self._proxy_lock = threading.Lock()
        super().__init__(
            pool_connections=settings.pool_connections,
            pool_maxsize=settings.pool_maxsize,
            max_retries=settings.max_retries,
            pool_block=settings.pool_block,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Rebuilt from its settings: pools, locks and pool classes are not picklable.
        self.__init__(state["settings"])  # type: ignore[misc]

    # Pools ---------------------------------------------------------------------------

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # requests checks and fills its proxy dict without a lock; two threads meeting
        # the same new proxy would each build a manager and leak one.
        with self._proxy_lock:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, PoolManager):
            manager.pool_classes_by_scheme = self._pool_classes
        return manager

    def reset_after_fork(self) -> None:
        """Forget the parent's pools without closing them (closing could shut down the
        parent's TLS sessions); the child opens its own connections from here on."""
        self._proxy_lock = threading.Lock()
        self.proxy_manager = {}
        self.init_poolmanager(self._pool_connections, self._pool_maxsize, self._pool_block)

    # TLS -----------------------------------------------------------------------------

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] != "https":
            return host_params, {}
        # The context already holds the CA bundle and client certificate: leaving their
        # paths in the pool kwargs would make urllib3 load them again for every connection.
        return host_params, {
            "ssl_context": _tls.context_for(verify, cert),
            "cert_reqs": "CERT_REQUIRED" if verify is not False else "CERT_NONE",
        }

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # requests would copy the CA path and client cert onto the pool here; the pool's
        # context carries them already (see build_connection_pool_key_attributes).
        conn.cert_reqs = "CERT_REQUIRED" if verify is not False else "CERT_NONE"
        conn.ca_certs = None
        conn.ca_cert_dir = None
        conn.cert_file = None
        conn.key_file = None

    # Sending -------------------------------------------------------------------------

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        try:
            return super().send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        except EmptyPoolError as exc:
            raise PoolTimeout(
                f"no connection to {exc.pool.host}:{exc.pool.port} became free within "
                f"pool_timeout={self.settings.pool_timeout:g} s: all {self._pool_maxsize} "
                f"connections of the pool are busy (pool_block=True). Raise pool_maxsize, "
                f"raise pool_timeout, close streamed responses sooner, or set "
                f"pool_block=False to open extra connections instead of waiting.",
                request=request,
            ) from exc
