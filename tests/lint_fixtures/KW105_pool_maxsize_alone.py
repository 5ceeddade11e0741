"""KW105 pool-maxsize-alone: ``pool_maxsize`` tuned, ``pool_connections`` left at 10.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

from typing import Any

import requests
import requests.adapters
from requests.adapters import HTTPAdapter


def build() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=50)  # expect: KW105
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    small = requests.adapters.HTTPAdapter(pool_maxsize=8, max_retries=3)  # expect: KW105
    session.mount("https://", small)
    return session


# Quiet: both sizes given, or given by position or by **kwargs.


def tuned(options: dict[str, Any]) -> list[HTTPAdapter]:
    return [
        HTTPAdapter(pool_connections=20, pool_maxsize=50),
        HTTPAdapter(20, 50),
        HTTPAdapter(pool_maxsize=50, **options),
        HTTPAdapter(max_retries=3),
        HTTPAdapter(),
    ]
