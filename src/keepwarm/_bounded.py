# Bounded caches of answers that can be worked out again.
#
# keepwarm remembers, per process or per object, what depends on a few strings alone (a
# request target's encoding, a header line's parse, a URL's origin, a TLS context for a
# setting...). Each cache is a plain ``dict`` read with ``get`` on the hot path; a full
# one starts over instead of tracking which entry is oldest: what it held is worked out
# again on the next miss.
#
# A cache keyed by a URL never keeps one with a query or userinfo (:func:`keepable`):
# query values and ``user:password@`` are the caller's secrets, and need not linger here.

from __future__ import annotations

from typing import TypeVar

__all__ = ["keepable", "remember"]

_K = TypeVar("_K")
_V = TypeVar("_V")


def remember(cache: dict[_K, _V], key: _K, value: _V, limit: int) -> _V:
    # ``cache[key] = value``, the cache emptied first when it holds ``limit`` entries.
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


def keepable(url: str) -> bool:
    # Whether a cache may keep ``url`` (or what is worked out of it, when that holds the
    # same parts): not with a query, nor with an ``@`` anywhere (userinfo; a path with an
    # ``@`` is worked out every time, as requests does).
    return "?" not in url and "@" not in url
