"""KW104 verify-disabled: TLS certificate checks turned off.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import argparse
from typing import Any

import requests

import keepwarm

URL = "https://example.com/items"


def module_api() -> None:
    requests.get(URL, timeout=5, verify=False)  # expect: KW104
    requests.request(
        "POST",
        URL,
        timeout=5,
        verify=False,  # expect: KW104
    )


def sessions(client: Any) -> None:
    s = requests.Session()
    s.verify = False  # expect: KW104
    s.post(URL, timeout=5, verify=False)  # expect: KW104
    s.get(URL, timeout=5)
    client.get(URL, timeout=5, verify=False)  # expect: KW104
    s.close()


def keepwarm_sessions() -> None:
    own = keepwarm.Session(verify=False)  # expect: KW104
    own.close()
    keepwarm.session("internal", verify=False)  # expect: KW104


class Api:
    def __init__(self) -> None:
        self.session = requests.Session()
        self.session.verify = False  # expect: KW104


def configure(http_session: Any) -> None:
    http_session.verify = False  # expect: KW104


# Quiet: verification on, or not an HTTP client's switch.


def verified(ca_bundle: str) -> None:
    requests.get(URL, timeout=5, verify=ca_bundle)
    requests.get(URL, timeout=5, verify=True)
    requests.get(URL, timeout=5, verify="/etc/ssl/certs/ca-certificates.crt")


def defaults(verify: bool = False) -> bool:
    return verify


def unrelated(parser: argparse.ArgumentParser, checker: Any, token: str) -> None:
    parser.set_defaults(verify=False)
    checker.decode(token, verify=False)
    checker.verify = False
    options = {"verify": False}
    print(options)
