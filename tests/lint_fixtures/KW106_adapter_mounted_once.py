"""KW106 adapter-mounted-once: an adapter mounted on ``https://`` but not ``http://``, or
the other way round.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRIES = Retry(total=3, backoff_factor=0.5)


def https_only() -> requests.Session:
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=RETRIES))  # expect: KW106
    return session


class Client:
    def __init__(self) -> None:
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(max_retries=RETRIES))  # expect: KW106


# Quiet: both schemes, a loop over prefixes, or a host-specific prefix.


def both() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=RETRIES)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def looped() -> requests.Session:
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(max_retries=RETRIES))
    return session


def one_host() -> requests.Session:
    session = requests.Session()
    session.mount("https://api.example.com/", HTTPAdapter(max_retries=RETRIES))
    return session


def mixed() -> requests.Session:
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=RETRIES))
    session.mount("https://internal.example.com/", HTTPAdapter(max_retries=0))
    return session


class Split:
    def __init__(self) -> None:
        self.http = requests.Session()
        self.http.mount("https://", HTTPAdapter(max_retries=RETRIES))

    def plain(self) -> None:
        self.http.mount("http://", HTTPAdapter(max_retries=RETRIES))


class SSLAdapter(HTTPAdapter):
    """An adapter about TLS itself (an SSL version, a client certificate, SNI)."""


def tls_only() -> requests.Session:  # requests-toolbelt, streamlink: https-only by nature
    session = requests.Session()
    session.mount("https://", SSLAdapter())
    return session


def tls_tweak(no_dh: bool) -> requests.Session:
    session = requests.Session()
    adapter = SSLAdapter() if no_dh else HTTPAdapter()
    session.mount("https://", adapter)
    return session
