"""The loop the replaced-step tests share (tests only).

keepwarm answers some upstream steps in place; while a tool has replaced one, the
replacement must be called as under plain requests. :func:`seen_while_replaced` runs the
same requests through plain requests and then keepwarm with the step replaced, and gives
what the replacement recorded and the bodies, per client, for the test to compare.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

import keepwarm

__all__ = ["seen_while_replaced"]


def seen_while_replaced(
    url: str,
    verify: Any,
    owner: type,
    attribute: str,
    replacement: Any,
    calls: list[Any],
) -> list[tuple[list[Any], list[bytes]]]:
    """Plain requests, then keepwarm: each connects, then makes three GETs of ``url``
    while ``owner.attribute`` is ``replacement`` (which appends to ``calls``); what the
    replacement recorded and the bodies, per client. The step is restored after each
    client's GETs, before its session closes."""
    seen = []
    for client in (requests.Session(), keepwarm.Session()):
        with client, pytest.MonkeyPatch.context() as patch:
            client.get(url, verify=verify, timeout=5)  # connected before counting
            patch.setattr(owner, attribute, replacement)
            bodies = [client.get(url, verify=verify, timeout=5).content for _ in range(3)]
        seen.append((list(calls), bodies))
        calls.clear()
    return seen
