# The process environment a session depends on, read once when the session is created.
#
# Plain requests re-reads proxies, ``NO_PROXY``, ``~/.netrc`` and the CA bundle variables on
# *every* request (125-250 us each here, seconds where the platform's proxy bypass lookup is
# slow: requests issues 2988 and 5891). httpx reads them once per client; keepwarm does the
# same per session. ``Session.reload_environment()`` reads them again.
#
# What is read, with the same meaning as in requests:
#
# * proxies: ``http_proxy``, ``https_proxy``, ``all_proxy`` (either case) via
#   ``urllib.request.getproxies()``, and ``no_proxy``;
# * credentials: the netrc file named by ``NETRC``, else ``~/.netrc`` or ``~/_netrc``;
# * CA bundle: ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``.

from __future__ import annotations

import os
import sys
import threading
import urllib.request
from typing import TYPE_CHECKING, Final
from urllib.parse import urlparse

from requests.utils import address_in_network, is_ipv4_address, is_valid_cidr

from keepwarm._bounded import remember
from keepwarm._values import Mutable

__all__ = ["EnvironmentSnapshot"]

if TYPE_CHECKING:
    import netrc as netrc_module

_NETRC_FILES: Final = (".netrc", "_netrc")
#: Bypass decisions remembered per (host, port); bounded so a crawler cannot grow it.
_BYPASS_CACHE_MAX: Final = 4096


def _find_netrc() -> str | None:
    named = os.environ.get("NETRC")
    candidates = (named,) if named is not None else tuple(f"~/{f}" for f in _NETRC_FILES)
    for candidate in candidates:
        path = os.path.expanduser(candidate)
        if os.path.exists(path):
            return path
    return None


def _load_netrc(path: str | None) -> netrc_module.netrc | None:
    if path is None:
        return None
    import netrc as netrc_module  # on demand (with shlex): only a netrc file needs it

    try:
        return netrc_module.netrc(path)
    except (netrc_module.NetrcParseError, OSError):
        # requests ignores an unreadable netrc file in the same way.
        return None


class EnvironmentSnapshot(Mutable):
    # Proxies, netrc credentials and CA bundle variables as they were at one moment.

    __match_args__ = (
        "proxies",
        "no_proxy",
        "ca_bundle",
        "netrc_path",
        "_netrc",
        "from_variables",
        "_bypass",
        "_lock",
    )

    def __init__(
        self,
        proxies: dict[str, str],
        no_proxy: str | None,
        ca_bundle: str | None,
        netrc_path: str | None,
        _netrc: netrc_module.netrc | None,
        from_variables: bool = True,
        _bypass: dict[tuple[str, int | None, str | None], bool] | None = None,
        _lock: threading.Lock | None = None,
    ) -> None:
        self.proxies = proxies
        self.no_proxy = no_proxy
        self.ca_bundle = ca_bundle
        self.netrc_path = netrc_path
        self._netrc = _netrc
        #: True when the proxies came from *_proxy variables, not the platform's settings.
        self.from_variables = from_variables
        self._bypass = {} if _bypass is None else _bypass
        self._lock = threading.Lock() if _lock is None else _lock

    @classmethod
    def capture(cls) -> EnvironmentSnapshot:
        proxies = urllib.request.getproxies()
        if urllib.request.getproxies is urllib.request.getproxies_environment:
            # Where the platform has no proxy settings of its own (everywhere but macOS
            # and Windows, and unless something replaced getproxies) its proxies are the
            # variables': each call walks the whole environment twice (~33 us with 39
            # variables), a fifth of what making a session cost.
            from_variables = bool(proxies)
        else:
            from_variables = bool(urllib.request.getproxies_environment())
        netrc_path = _find_netrc()
        return cls(
            proxies=dict(proxies),
            no_proxy=proxies.get("no"),
            ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"),
            netrc_path=netrc_path,
            _netrc=_load_netrc(netrc_path),
            from_variables=from_variables,
        )

    @classmethod
    def empty(cls) -> EnvironmentSnapshot:
        # What a session with ``trust_env=False`` sees.
        return cls(proxies={}, no_proxy=None, ca_bundle=None, netrc_path=None, _netrc=None)

    def netrc_auth(self, url: str) -> tuple[str, str] | None:
        # requests' ``get_netrc_auth(url)``, answered from the file read at capture.
        if self._netrc is None:
            return None
        host = urlparse(url).hostname
        if host is None:
            return None
        entry = self._netrc.authenticators(host)
        if entry and any(entry):
            login_i = 0 if entry[0] else 1
            password = entry[2]
            return (entry[login_i] or "", password or "")
        return None

    def should_bypass(self, url: str, no_proxy: str | None = None) -> bool:
        # requests' ``should_bypass_proxies(url, no_proxy)`` (2.34's host matching, with
        # every requests version) against this snapshot.
        parsed = urlparse(url)
        hostname = parsed.hostname
        if hostname is None:
            return True
        try:
            port = parsed.port
        except ValueError:
            port = None
        key = (hostname, port, no_proxy)
        cached = self._bypass.get(key)
        if cached is not None:
            return cached
        result = self._decide_bypass(hostname, port, no_proxy)
        with self._lock:
            remember(self._bypass, key, result, _BYPASS_CACHE_MAX)
        return result

    def _decide_bypass(self, hostname: str, port: int | None, no_proxy_arg: str | None) -> bool:
        no_proxy = no_proxy_arg if no_proxy_arg is not None else self.no_proxy
        if no_proxy:
            entries = [h for h in no_proxy.replace(" ", "").split(",") if h]
            if is_ipv4_address(hostname):
                for entry in entries:
                    if is_valid_cidr(entry):
                        if address_in_network(hostname, entry):
                            return True
                    elif hostname == entry:
                        return True
            else:
                # requests >= 2.34 (requests 7427): an entry matches the host (or host:port)
                # itself or a subdomain of it, not any host that ends in the same letters
                # (no_proxy=example.com used to bypass the proxy for notexample.com too).
                host_with_port = hostname + (f":{port}" if port else "")
                for entry in entries:
                    entry = entry.lstrip(".")
                    if hostname == entry or host_with_port == entry:
                        return True
                    dotted = "." + entry
                    if hostname.endswith(dotted) or host_with_port.endswith(dotted):
                        return True
        try:
            if no_proxy:
                bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
                return bool(bypass(hostname, {"no": no_proxy}))
            if sys.platform in ("darwin", "win32") and not self.from_variables:
                # The platform's own proxy settings (System Configuration, registry): the
                # slow lookup of requests issue 2988, done once per host here.
                return bool(urllib.request.proxy_bypass(hostname))
        except (TypeError, OSError):
            return False
        return False

    def reset_after_fork(self) -> None:
        # A fresh lock for a forked child (the parent's may have been held mid-fork).
        self._lock = threading.Lock()

    def environ_proxies(self, url: str, no_proxy: str | None = None) -> dict[str, str]:
        # requests' ``get_environ_proxies(url, no_proxy)`` against this snapshot.
        if self.should_bypass(url, no_proxy):
            return {}
        return dict(self.proxies)
