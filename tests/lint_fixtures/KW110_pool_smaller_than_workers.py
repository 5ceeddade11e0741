"""KW110 pool-smaller-than-workers: more threads than the adapter keeps connections.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

import keepwarm


def fetch_all(urls: list[str]) -> list[requests.Response]:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8)  # expect: KW110
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda u: session.get(u, timeout=5), urls))
    session.close()
    return results


def default_pool_size(urls: list[str]) -> list[requests.Response]:
    with requests.Session() as session:
        adapter = HTTPAdapter(max_retries=3)  # expect: KW110
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            return list(pool.map(lambda u: session.get(u, timeout=5), urls))


SHARED = requests.Session()


def default_pool_module_session(urls: list[str]) -> list[requests.Response]:
    with ThreadPoolExecutor(max_workers=32) as pool:  # expect: KW110
        return list(pool.map(lambda u: SHARED.get(u, timeout=5), urls))


def default_pool_local_session(urls: list[str]) -> None:
    with requests.Session() as session:
        pool = ThreadPoolExecutor(20)  # expect: KW110
        futures = [pool.submit(session.get, u, timeout=5) for u in urls]
        pool.shutdown()
        print(futures)


def default_pool_one_with(urls: list[str]) -> list[requests.Response]:
    with (
        requests.Session() as session,
        ThreadPoolExecutor(max_workers=32) as pool,  # expect: KW110
    ):
        return list(pool.map(lambda u: session.get(u, timeout=5), urls))


class Client:
    def __init__(self) -> None:
        self.session = requests.Session()

    def fetch_all(self, urls: list[str]) -> list[requests.Response]:
        with ThreadPoolExecutor(max_workers=16) as pool:  # expect: KW110
            return list(pool.map(lambda u: self.session.get(u, timeout=5), urls))


# Quiet: a pool as large as the threads, or sizes the linter cannot know.


def big_enough(urls: list[str]) -> list[requests.Response]:
    with requests.Session() as session:
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        with ThreadPoolExecutor(max_workers=32) as pool:
            return list(pool.map(lambda u: session.get(u, timeout=5), urls))


def unknown_sizes(urls: list[str], workers: int, size: int) -> None:
    with requests.Session() as session:
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pool.map(lambda u: session.get(u, timeout=5), urls)
        with ThreadPoolExecutor() as pool:
            pool.map(lambda u: session.get(u, timeout=5), urls)


def make_adapter() -> HTTPAdapter:
    return HTTPAdapter(pool_connections=4, pool_maxsize=8)


def elsewhere(urls: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=64) as pool:
        pool.map(print, urls)


def small_thread_pool(urls: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        pool.map(lambda u: SHARED.get(u, timeout=5), urls)


def keepwarm_sessions_grow(urls: list[str]) -> None:
    with keepwarm.Session() as session, ThreadPoolExecutor(max_workers=64) as pool:
        pool.map(lambda u: session.get(u), urls)


def mounted_elsewhere(urls: list[str]) -> None:
    session = requests.Session()
    configure(session)  # may mount an adapter: not followed
    with ThreadPoolExecutor(max_workers=32) as pool:
        pool.map(lambda u: session.get(u, timeout=5), urls)
    session.close()


def configure(session: requests.Session) -> None:
    session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=64))
    session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=64))


def injected(session: requests.Session, urls: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=32) as pool:  # the caller may have mounted one
        pool.map(lambda u: session.get(u, timeout=5), urls)


def pool_without_the_session(urls: list[str]) -> None:
    with requests.Session() as session, ThreadPoolExecutor(max_workers=32) as pool:
        pool.map(print, urls)
        for url in urls:
            session.get(url, timeout=5)
