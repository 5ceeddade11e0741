"""The keywords of Session(), keepwarm.session() and keepwarm.configure() are typed, so a
user's type checker catches a misspelt or mistyped knob before anything runs.

One ``mypy --strict`` run, with no project configuration, checks a file per snippet as a
user's code that imports the installed keepwarm. Each snippet is also run, so the types
and the run-time validation agree on it: good code type-checks and works, bad code fails
both ways.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import inspect
import os
import re
import subprocess
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import keepwarm
from keepwarm import _config, _registry
from keepwarm._config import SETTING_NAMES, STATE_OPTIONS, UNSET, _Unset

GOOD = """\
import urllib3

import keepwarm

keepwarm.Session(timeout=(3, 10), pool_maxsize="auto")
keepwarm.session("api", base_url="https://x/")
keepwarm.configure(timeout=5)

keepwarm.Session(timeout=2.5)
keepwarm.Session(timeout=(1, None))
keepwarm.Session(timeout=keepwarm.Timeout(connect=1))
keepwarm.Session(timeout=keepwarm.NO_TIMEOUT)
keepwarm.Session(timeout=urllib3.Timeout(connect=1, read=5))
keepwarm.Session(max_retries=0)
keepwarm.Session(max_retries=keepwarm.RetryPolicy(total=5, retry_read_timeouts=True))
keepwarm.Session(max_retries=urllib3.Retry(2))
keepwarm.Session(
    pool_connections=8,
    pool_maxsize=4,
    pool_block=True,
    pool_timeout=1,
    base_url=None,
    telemetry=False,
    keepalive_expiry=None,
    max_connection_age=300,
    headers={"User-Agent": "me"},
    auth=("user", "pass"),
    params={"q": "x", "page": 2, "tag": ["a", "b"]},
    proxies={},
    verify=False,
    cert=None,
    trust_env=False,
)
keepwarm.session(
    "state",
    base_url="https://api.example.com/v1",
    cookies={"sid": "1"},
    verify="/etc/ssl/certs",
    keepalive_expiry=None,
)
keepwarm.session(name="default")
keepwarm.configure(pool_maxsize="auto", max_retries=3, keepalive_expiry=None, base_url=None)


def make(timeout: float, retries: int) -> keepwarm.Session:
    return keepwarm.Session(timeout=timeout, max_retries=retries)


make(1.5, 2).close()
"""

#: What only type-checks where requests is typed (its own types, or types-requests).
GOOD_WITH_REQUESTS_TYPES = """\
from requests.auth import HTTPBasicAuth

import keepwarm

keepwarm.session("auth", auth=HTTPBasicAuth("user", "pass"))
"""


def _requests_is_typed() -> bool:
    if (importlib.resources.files("requests") / "py.typed").is_file():
        return True
    try:
        importlib.metadata.distribution("types-requests")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


REQUESTS_TYPED = _requests_is_typed()
needs_requests_types = pytest.mark.skipif(
    not REQUESTS_TYPED, reason="requests is untyped here: no py.typed, no types-requests"
)


@dataclass(frozen=True)
class Bad:
    """A user's line that mypy must reject, and the exception it raises when run."""

    code: str
    #: What mypy's message says (the argument it names).
    says: str
    raises: type[Exception] | None = TypeError
    #: Only caught where requests is typed (AuthBase is Any otherwise).
    needs_requests_types: bool = False


BAD = {
    "session_timeout_str": Bad('keepwarm.Session(timeout="x")', '"timeout"'),
    "session_timeout_none": Bad("keepwarm.Session(timeout=None)", '"timeout"'),
    "session_misspelt": Bad("keepwarm.Session(pool_maxsiz=3)", '"pool_maxsiz"'),
    "session_max_retries_str": Bad('keepwarm.Session(max_retries="3")', '"max_retries"'),
    "session_keepalive_str": Bad('keepwarm.Session(keepalive_expiry="4")', '"keepalive_expiry"'),
    # requests would only fail at the first request, calling the string.
    "session_auth_str": Bad(
        'keepwarm.Session(auth="user:pass")', '"auth"', raises=None, needs_requests_types=True
    ),
    "shared_misspelt": Bad("keepwarm.session(pool_maxsiz=3)", '"pool_maxsiz"'),
    "shared_timeout_str": Bad('keepwarm.session("api", timeout="x")', '"timeout"'),
    "shared_verify_none": Bad('keepwarm.session("api", verify=None)', '"verify"'),
    "configure_pool_maxsize_str": Bad('keepwarm.configure(pool_maxsize="big")', '"pool_maxsize"'),
    "configure_misspelt": Bad("keepwarm.configure(timout=5)", '"timout"'),
    "configure_positional": Bad("keepwarm.configure(5)", "positional"),
}
#: Each BAD file is this header and the bad call, on BAD_LINE.
BAD_HEADER = "import keepwarm\n"
BAD_LINE = BAD_HEADER.count("\n") + 1

_MYPY_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+): (?P<severity>\w+): (?P<message>.*)$")


@dataclass
class MypyRun:
    errors: dict[str, list[tuple[int, str]]]
    output: str


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory) -> MypyRun:
    pytest.importorskip("mypy")
    root = tmp_path_factory.mktemp("typing")
    files = {"good.py": GOOD, "good_with_requests_types.py": GOOD_WITH_REQUESTS_TYPES}
    files.update({f"{name}.py": f"{BAD_HEADER}{bad.code}\n" for name, bad in BAD.items()})
    for file, text in files.items():
        (root / file).write_text(text)
    # Run as a user would, outside this project: its [tool.mypy] (files = src) and cache
    # are not read; no cache is written either.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            os.devnull,
            "--cache-dir",
            os.devnull,
            "--strict",
            "--no-color-output",
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            *sorted(files),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    errors: dict[str, list[tuple[int, str]]] = {file: [] for file in files}
    for line in result.stdout.splitlines():
        match = _MYPY_LINE.match(line)
        if match and match["severity"] == "error":
            errors.setdefault(match["file"], []).append((int(match["line"]), match["message"]))
    assert result.returncode in (0, 1), output  # 2: mypy itself failed
    assert set(errors) == set(files), output  # nothing reported outside the snippets
    return MypyRun(errors, output)


# One cold mypy run for all of them: ~1.5 s with mypy 2.x, 10-20 s with older releases.
@pytest.mark.slow
def test_good_code_type_checks(mypy_run: MypyRun) -> None:
    assert mypy_run.errors["good.py"] == [], mypy_run.output


@pytest.mark.slow
@needs_requests_types
def test_good_code_with_requests_types_type_checks(mypy_run: MypyRun) -> None:
    assert mypy_run.errors["good_with_requests_types.py"] == [], mypy_run.output


@pytest.mark.keepwarm_leaks("off")  # builds sessions only to run their signatures
@pytest.mark.parametrize("code", [GOOD, GOOD_WITH_REQUESTS_TYPES], ids=["good", "requests"])
def test_good_code_runs(code: str) -> None:
    exec(compile(code, "good.py", "exec"), {})


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_code_fails_type_checking_on_its_line(mypy_run: MypyRun, name: str) -> None:
    if BAD[name].needs_requests_types and not REQUESTS_TYPED:
        pytest.skip("requests is untyped here: no py.typed, no types-requests")
    errors = mypy_run.errors[f"{name}.py"]
    assert errors, f"mypy accepted {BAD[name].code}\n{mypy_run.output}"
    assert {line for line, _ in errors} == {BAD_LINE}, mypy_run.output
    assert any(BAD[name].says in message for _, message in errors), mypy_run.output


@pytest.mark.parametrize("name", [name for name in sorted(BAD) if BAD[name].raises])
def test_bad_code_fails_when_run(name: str) -> None:
    bad = BAD[name]
    assert bad.raises is not None
    with pytest.raises(bad.raises):
        exec(compile(bad.code, f"{name}.py", "exec"), {"keepwarm": keepwarm})


# The three signatures agree -----------------------------------------------------------


def _parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    # eval_str: the annotations are real objects at run time too (get_type_hints works).
    return dict(inspect.signature(function, eval_str=True).parameters)


def _members(annotation: object) -> set[object]:
    return set(typing.get_args(annotation)) or {annotation}


SIGNATURES = {
    "Session": _parameters(keepwarm.Session.__init__),
    "session": _parameters(keepwarm.session),
    "configure": _parameters(keepwarm.configure),
}


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_every_knob_is_the_same_typed_keyword_everywhere(name: str) -> None:
    parameters = {where: params[name] for where, params in SIGNATURES.items()}
    for where, parameter in parameters.items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, where
        assert parameter.default is UNSET, where
        assert _Unset in _members(parameter.annotation), where
        assert typing.Any not in _members(parameter.annotation), where
    annotations = {where: _members(p.annotation) for where, p in parameters.items()}
    assert annotations["Session"] == annotations["session"] == annotations["configure"]


@pytest.mark.parametrize("name", STATE_OPTIONS)
def test_every_state_keyword_of_session_is_the_same_type_as_sessions(name: str) -> None:
    own = SIGNATURES["Session"][name]
    shared = SIGNATURES["session"][name]
    assert shared.kind is inspect.Parameter.KEYWORD_ONLY
    assert shared.default is UNSET  # given as None differs from not given
    assert _members(shared.annotation) == _members(own.annotation) | {_Unset}
    assert typing.Any not in _members(own.annotation)
    assert name not in SIGNATURES["configure"]


def test_unknown_keywords_are_typed_noreturn() -> None:
    for where, parameters in SIGNATURES.items():
        last = list(parameters.values())[-1]
        assert last.kind is inspect.Parameter.VAR_KEYWORD, where
        assert last.annotation is typing.NoReturn, where


@pytest.mark.parametrize("given", [None, "value"], ids=["None", "value"])
@pytest.mark.parametrize("name", (*SETTING_NAMES, *STATE_OPTIONS))
def test_session_sees_every_keyword_given_even_none(
    monkeypatch: pytest.MonkeyPatch, name: str, given: Any
) -> None:
    # session() skips its checks when no keyword is given; each one must count as given.
    existing = keepwarm.session("typed")
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(
        _registry, "_conflicts", lambda _name, _s, overrides: seen.append(overrides)
    )
    assert keepwarm.session("typed", **{name: given}) is existing
    assert seen == [{name: given}]
    assert keepwarm.session("typed") is existing
    assert len(seen) == 1


def test_configure_records_only_the_keywords_given() -> None:
    keepwarm.configure(keepalive_expiry=None)
    assert _config._configured == {"keepalive_expiry": None}
    keepwarm.configure()
    assert _config._configured == {"keepalive_expiry": None}


def _public_callables() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in keepwarm.__all__:
        value = getattr(keepwarm, name)
        if inspect.isfunction(value):
            found.append((name, value))
        elif inspect.isclass(value) and value.__module__.startswith("keepwarm"):
            for attribute, member in vars(value).items():
                if attribute.startswith("_") and attribute != "__init__":
                    continue
                function = member.fget if isinstance(member, property) else member
                if inspect.isfunction(function):
                    found.append((f"{name}.{attribute}", function))
    return found


@pytest.mark.parametrize(
    ("name", "value"), [pytest.param(*pair, id=pair[0]) for pair in _public_callables()]
)
def test_every_public_annotation_resolves_at_run_time(name: str, value: object) -> None:
    """typing.get_type_hints (pydantic, typer, sphinx-autodoc-typehints, FastAPI's
    dependencies) reads every annotation of the public API: a name the annotations use is
    imported where they are, not only for type checkers, even where the module it comes
    from otherwise loads later (with the first session)."""
    typing.get_type_hints(value, localns=_optional_types(name))


def _optional_types(name: str) -> dict[str, object]:
    """An optional dependency's types that ``name``'s annotations use, imported there
    for type checkers only (keepwarm imports without the dependency): supplied here from
    the dependency, which the test environment has, so the annotations are still checked."""
    if name == "enable_metrics":
        from opentelemetry.metrics import MeterProvider

        return {"MeterProvider": MeterProvider}
    return {}
