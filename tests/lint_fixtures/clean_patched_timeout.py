"""Quiet: a file that gives its sessions a default timeout by patching ``request`` (the
recipe instaloader uses): a session parameter may be one of those, so requests on it are
not reported as missing a timeout (KW103); nor is the patched session itself.
"""

from __future__ import annotations

import functools

import requests

TIMEOUT = 300.0


def patched_request(url: str) -> None:
    s = requests.Session()
    s.request = functools.partial(s.request, timeout=5)  # type: ignore[method-assign]
    s.get(url)
    s.get(url)
    s.close()


def anonymous_session() -> requests.Session:
    session = requests.Session()
    session.request = functools.partial(  # type: ignore[method-assign]
        session.request, timeout=TIMEOUT
    )
    return session


def get_page(session: requests.Session, path: str) -> str:
    return session.get(f"https://www.example.com/{path}", allow_redirects=False).text
