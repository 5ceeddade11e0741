"""keepwarm lint --fix: what --fix makes of timeouts.py.

Formatted by hand, not by ruff (pyproject.toml excludes this directory): trailing commas,
comments and line breaks are what the fix must keep.
"""

import requests

URL = "https://example.com/items"


def simple(url: str) -> None:
    requests.get(url, timeout=10)
    requests.post(url, json={"a": 1}, timeout=10)
    requests.request("GET", url, timeout=10)
    requests.get(timeout=10)


def trailing_comma_on_one_line(url: str) -> None:
    requests.get(url, timeout=10,)
    requests.put(url, data=b"" , timeout=10,)


def magic_trailing_comma(url: str) -> None:
    requests.post(
        url,
        json={"a": 1},
        timeout=10,
    )
    requests.get(
        url,  # the url
        timeout=10,
        # and a comment line
    )
    requests.delete(url,
        timeout=10,
    )


def multi_line_without_trailing_comma(url: str) -> None:
    requests.get(
        url, timeout=10  # the url
    )
    requests.post(url,
                  data=b"x", timeout=10
                  )
    requests.head(
        """a multi-line
        string""", timeout=10
    )


def comments_and_nesting(url: str, s: requests.Session) -> None:
    requests.post(url, data=requests.get(url, timeout=10).content, timeout=10)
    value = requests.get(url, timeout=10).json()  # a comment with a ) in it
    s.get(url, timeout=10)
    s.request("GET", url, timeout=10)
    print(value, {"clé": requests.get("https://exämple.com/ü", timeout=10)})


def left_alone(url: str, s: requests.Session, *args: str, **kwargs: str) -> None:
    requests.get(url, timeout=5)
    requests.get(url, **kwargs)
    requests.get(*args)
    requests.get(url)  # noqa: KW103
    requests.request("GET", url, None)
    s.request("GET", url, None, None, None, None, None, None)
    requests.post(part for part in args)
