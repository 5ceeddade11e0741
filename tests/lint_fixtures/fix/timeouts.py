"""keepwarm lint --fix: the input (timeouts.fixed.py is what --fix must make of it).

Formatted by hand, not by ruff (pyproject.toml excludes this directory): trailing commas,
comments and line breaks are what the fix must keep.
"""

import requests

URL = "https://example.com/items"


def simple(url: str) -> None:
    requests.get(url)
    requests.post(url, json={"a": 1})
    requests.request("GET", url)
    requests.get()


def trailing_comma_on_one_line(url: str) -> None:
    requests.get(url,)
    requests.put(url, data=b"" ,)


def magic_trailing_comma(url: str) -> None:
    requests.post(
        url,
        json={"a": 1},
    )
    requests.get(
        url,  # the url
        # and a comment line
    )
    requests.delete(url,
    )


def multi_line_without_trailing_comma(url: str) -> None:
    requests.get(
        url  # the url
    )
    requests.post(url,
                  data=b"x"
                  )
    requests.head(
        """a multi-line
        string"""
    )


def comments_and_nesting(url: str, s: requests.Session) -> None:
    requests.post(url, data=requests.get(url).content)
    value = requests.get(url).json()  # a comment with a ) in it
    s.get(url)
    s.request("GET", url)
    print(value, {"clé": requests.get("https://exämple.com/ü")})


def left_alone(url: str, s: requests.Session, *args: str, **kwargs: str) -> None:
    requests.get(url, timeout=5)
    requests.get(url, **kwargs)
    requests.get(*args)
    requests.get(url)  # noqa: KW103
    requests.request("GET", url, None)
    s.request("GET", url, None, None, None, None, None, None)
    requests.post(part for part in args)
