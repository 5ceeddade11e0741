"""KW101 request-in-loop, in a function that runs repeatedly: a route handler, a task, a
scheduled job, a request-handler method, a function handed to ``map()`` (the notion is
defined in src/keepwarm/lint/_repeated.py).

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests

URLS = ["https://example.com/a", "https://example.com/b"]


class App:  # stands for Flask, FastAPI, Celery, APScheduler... (only the names count)
    def route(self, *a: object, **k: object) -> Any: ...
    def get(self, *a: object, **k: object) -> Any: ...
    def task(self, *a: object, **k: object) -> Any: ...
    def scheduled_job(self, *a: object, **k: object) -> Any: ...
    def add_job(self, *a: object, **k: object) -> Any: ...
    def add_url_rule(self, *a: object, **k: object) -> Any: ...


app = router = celery = scheduler = App()


def shared_task(f: Any) -> Any: ...
def api_view(methods: list[str]) -> Any: ...
def every(n: int) -> Any: ...


@app.route("/users/<name>")
def user(name: str) -> bytes:
    return requests.get(f"https://api.example.com/{name}", timeout=5).content  # expect: KW101


@router.get("")
async def index() -> int:
    return requests.head(URLS[0], timeout=5).status_code  # expect: KW101


@api_view(["POST"])
def forward(request: object) -> None:
    requests.post(URLS[0], data=b"x", timeout=5)  # expect: KW101


@celery.task(bind=True)
def refresh(task: object, account_id: int) -> None:
    requests.get(URLS[0], timeout=5)  # expect: KW101


@shared_task
def notify(user_id: int) -> None:
    requests.post(URLS[1], timeout=5)  # expect: KW101


@scheduler.scheduled_job("interval", seconds=30)
def poll() -> None:
    requests.get(URLS[0], timeout=5)  # expect: KW101


class Proxy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = requests.get(URLS[0], timeout=5).content  # expect: KW101
        self.wfile.write(body)


class View:  # stands for Django's
    pass


class Lookup(View):
    def get(self, request: object) -> object:
        return requests.get(URLS[0], timeout=5)  # expect: KW101


def fetch_one(url: str) -> bytes:
    return requests.get(url, timeout=5).content  # expect: KW101


def fetch_in_thread(url: str) -> None:
    requests.get(url, timeout=5)  # expect: KW101


def on_timer() -> None:
    requests.get(URLS[0], timeout=5)  # expect: KW101


def every_minute() -> None:
    requests.get(URLS[0], timeout=5)  # expect: KW101


def proxied(path: str) -> bytes:
    return requests.get(URLS[0] + path, timeout=5).content  # expect: KW101


def fan_out() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fetch_one, URLS))
        list(pool.map(lambda u: requests.get(u, timeout=5), URLS))  # expect: KW101
        list(pool.map(requests.get, URLS))  # expect: KW101
        for url in URLS:
            pool.submit(fetch_in_thread, url)
    threads = [threading.Thread(target=fetch_in_thread, args=(u,)) for u in URLS]
    print(list(map(functools.partial(requests.get, timeout=5), URLS)), threads)  # expect: KW101
    every(10).seconds.do(on_timer)
    scheduler.add_job(every_minute, "interval", minutes=1)
    app.add_url_rule("/proxy/<path>", view_func=proxied)


# Quiet: functions that run once, or that the linter cannot tell run repeatedly.


def main() -> None:  # a script's entry point
    requests.get(URLS[0], timeout=5)


def helper_called_from_a_loop() -> None:  # no call graph: a miss, not a false alarm
    requests.get(URLS[0], timeout=5)


def submitted_once() -> None:
    requests.get(URLS[0], timeout=5)


def started_once() -> None:
    requests.get(URLS[0], timeout=5)


def scheduled_once() -> None:
    requests.get(URLS[0], timeout=5)


def hourly() -> None:  # the connection would be closed by the next run anyway
    requests.get(URLS[0], timeout=5)


def daily() -> None:
    requests.get(URLS[0], timeout=5)


def nightly() -> None:
    requests.get(URLS[0], timeout=5)


@celery.task()
def fetch_rates() -> None:  # no event to handle: a periodic job (pretix)
    requests.get(URLS[0], timeout=5)


@celery.task(bind=True)
def refresh_all(task: object) -> None:
    requests.get(URLS[0], timeout=5)


@scheduler.scheduled_job("interval", minutes=5)
def every_five_minutes() -> None:
    requests.get(URLS[0], timeout=5)


def once_more() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        pool.submit(submitted_once)
    threading.Thread(target=started_once).start()
    scheduler.add_job(scheduled_once, "date")
    scheduler.add_job(hourly, "interval", hours=1)
    scheduler.add_job(nightly, "cron", hour=3)
    every().day.at("10:30").do(daily)
    for _ in range(3):
        helper_called_from_a_loop()


@app.route("users")  # not a path: some other `route`
def not_a_route() -> None:
    requests.get(URLS[0], timeout=5)


def task(f: Any) -> Any: ...


@task  # Invoke, Fabric, Prefect and Airflow spell theirs so: often run once
def deploy() -> None:
    requests.post(URLS[0], timeout=5)


class Tool(View):
    def setup(self) -> None:  # not a request method
        requests.get(URLS[0], timeout=5)


class NotAHandler:
    def do_GET(self) -> None:
        requests.get(URLS[0], timeout=5)


def run_on_a_shared_session(session: requests.Session) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda u: session.get(u, timeout=5), URLS))
