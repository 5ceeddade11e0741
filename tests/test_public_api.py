"""The public surface is exactly what the docs describe (the httpx rule)."""

from __future__ import annotations

import ast
import importlib
import pathlib
import pickle
import re
import subprocess
import sys

import pytest

import keepwarm
from keepwarm.bench._engine import LocalServer

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTED = (ROOT / "README.md").read_text() + (ROOT / "docs" / "api.md").read_text()


def test_all_has_no_duplicates_and_is_importable() -> None:
    # Order is ruff's (RUF022, checked by the lint step); here: no duplicates.
    assert len(set(keepwarm.__all__)) == len(keepwarm.__all__)
    for name in keepwarm.__all__:
        assert hasattr(keepwarm, name), name


def test_every_public_name_is_documented() -> None:
    missing = [
        n
        for n in keepwarm.__all__
        if n != "__version__" and f"`{n}" not in DOCUMENTED and f"keepwarm.{n}" not in DOCUMENTED
    ]
    assert missing == []


def test_nothing_undocumented_is_public() -> None:
    # "@py_builtins" and "@pytest_ar": pytest rewrites the asserts of every module of a
    # distribution that registers a pytest11 plugin (keepwarm's, once installed from a
    # wheel) and puts its helpers in the module's namespace; not names anyone can import.
    public = {n for n in dir(keepwarm) if not n.startswith(("_", "@"))}
    # Submodules are reachable as attributes once imported; they are not API.
    modules = {"bench", "cli", "lint", "pytest_plugin"}
    assert public - modules - set(keepwarm.__all__) == set()


def _private_modules() -> list[str]:
    """Every module with a private name part, in subpackages too: ``keepwarm._session``,
    ``keepwarm.bench._engine``, the package ``keepwarm._probe`` and its modules."""
    names = []
    for path in sorted((ROOT / "src" / "keepwarm").rglob("*.py")):
        parts = list(path.relative_to(ROOT / "src").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
            names.append(".".join(parts))
    return names


def test_private_modules_declare_all() -> None:
    names = _private_modules()
    # The walk must find the modules it is meant for, in the package and below it.
    assert {"keepwarm._session", "keepwarm.bench._engine"} <= set(names)
    for name in names:
        module = importlib.import_module(name)
        assert isinstance(getattr(module, "__all__", None), list), name


def test_version_matches_changelog() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(keepwarm.__version__)}\b", changelog, re.M)


def _modules_loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(out.split())


def test_import_keepwarm_alone_loads_no_http_stack_and_the_first_name_does() -> None:
    """Public names load on first use (PEP 562): a process that only imports keepwarm
    (the keepwarm command's own, a library importing it at module level) pays nothing."""
    alone = _modules_loaded_by("import keepwarm")
    assert not {"requests", "urllib3", "keepwarm._session"} & alone
    used = _modules_loaded_by("import keepwarm\nkeepwarm.Session")
    assert {"requests", "urllib3", "keepwarm._session"} <= used
    assert {"requests", "keepwarm._install"} <= _modules_loaded_by("from keepwarm import install")


#: What the first session loads, not ``from keepwarm import Session``.
_TRANSPORT_STACK = {
    "keepwarm._upstream.transport",
    "keepwarm._upstream.pool",
    "keepwarm._upstream.connection",
    "keepwarm._upstream.wire",
    "keepwarm._telemetry",
}


@pytest.mark.parametrize(
    "first_use",
    ["keepwarm.Session().close()", "keepwarm.mount(requests.Session()).close()"],
)
def test_the_transport_stack_loads_with_the_first_session(first_use: str) -> None:
    """A program that imports keepwarm and sends nothing on this run (a command-line
    tool's --help) does not pay for the transport; the first session loads it."""
    imported = _modules_loaded_by("import requests\nfrom keepwarm import Session, mount")
    assert "keepwarm._session" in imported
    assert not _TRANSPORT_STACK & imported
    used = _modules_loaded_by(f"import requests, keepwarm\n{first_use}")
    assert used >= _TRANSPORT_STACK


#: What the first session (or transport) loads, not ``from keepwarm import Session``: the
#: request path's own modules, bound by ``_session.load_machinery`` (issue 16).
_SESSION_MACHINERY = {
    "keepwarm._guards",
    "keepwarm._lifecycle",
    "keepwarm._exceptions",
    "keepwarm._deadline",
    "keepwarm._retry",
    "keepwarm._urls",
    "keepwarm._upstream.cookies",
    "keepwarm._upstream.environment",
    "keepwarm._upstream.prepare",
}


def test_the_request_path_loads_with_the_first_session_and_the_hooks_with_keepwarm() -> None:
    imported = _modules_loaded_by("import requests\nfrom keepwarm import Session, mount")
    assert not _SESSION_MACHINERY & imported
    # Captured before a mock or a tracer can replace requests' functions (issue 12).
    assert "keepwarm._upstream.hooks" in imported
    assert _modules_loaded_by("import keepwarm\nkeepwarm.Session().close()") >= _SESSION_MACHINERY


_READ_SIDE = """
import sys, keepwarm
with keepwarm.Session() as session:
    assert session.get(sys.argv[1] + "/echo").status_code == 200
    assert "keepwarm._stats" not in sys.modules, "loaded before the counters were read"
    stats = session.stats()
    assert stats.requests == 1 and stats.limits.pool_maxsize == 32, stats
    session.reset_stats()
    assert session.stats().requests == 0
print("ok")
"""


def _runs_ok(script: str, *args: str) -> None:
    """``script`` in a fresh interpreter, with ``args``: it must print ``ok`` and exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok"]


_TLS_SIDE = """
import sys, requests, keepwarm
with keepwarm.Session() as session:
    assert session.get(sys.argv[1] + "/echo").status_code == 200
    assert "keepwarm._upstream.tls" not in sys.modules, "TLS loaded for plain HTTP"
    try:
        session.get("https://127.0.0.1:1/", timeout=1)  # refused: nothing listens there
    except requests.ConnectionError:
        pass
    assert "keepwarm._upstream.tls" in sys.modules
print("ok")
"""


def test_the_shared_tls_contexts_load_with_the_first_https_origin(
    http_server: LocalServer,
) -> None:
    """A plain-HTTP program never loads ``keepwarm._upstream.tls`` (~20 KiB); the first
    HTTPS request does (tests/test_tls.py checks what it then does)."""
    _runs_ok(_TLS_SIDE, http_server.url)


_OWN_CONTEXT = """
import ssl, sys, keepwarm
from keepwarm._upstream.transport import KeepwarmAdapter
context = ssl.create_default_context(cafile=sys.argv[2])


class OwnContext(KeepwarmAdapter):
    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, _ = super(KeepwarmAdapter, self).build_connection_pool_key_attributes(
            request, verify, cert
        )
        return host_params, {"ssl_context": context}


with keepwarm.Session() as session:
    session.mount("https://", OwnContext(session.settings))
    for _ in range(3):  # the second and third find the pool key the first left
        assert session.get(sys.argv[1] + "/echo").status_code == 200
    assert "keepwarm._upstream.tls" not in sys.modules
print("ok")
"""


def test_an_adapter_with_its_own_tls_context_needs_not_the_shared_ones(
    https_server: LocalServer, ca_bundle: str
) -> None:
    """A transport whose subclass gives its pools its own SSLContext never loads the
    shared contexts, and its pool keys are found again without them."""
    _runs_ok(_OWN_CONTEXT, https_server.url, ca_bundle)


def test_the_read_side_of_telemetry_loads_when_first_read(http_server: LocalServer) -> None:
    """Requests count into the live counters; the ``Stats`` snapshots and their report
    code (``keepwarm._stats``, ~45 KiB of memory) load with the first ``stats()``."""
    _runs_ok(_READ_SIDE, http_server.url)


#: Run in a fresh interpreter by each way a session can first come to exist: whatever
#: the request path uses must be there, though nothing loaded it before.
_EXERCISE = """
import pickle, sys, warnings
import requests, keepwarm
url = sys.argv[1]
machinery = [m for m in sys.argv[2].split(",") if m in sys.modules]
assert not machinery, machinery


def exercise(session):
    assert session.get(url + "/cookies/set?flavour=oat").status_code == 200
    assert session.get(url + "/cookies").json() == {"flavour": "oat"}
    assert session.get(url + "/redirect?to=/echo").json()["path"] == "/echo"
    assert session.get(url + "/echo", params={"q": "1"}).json()["query"] == {"q": "1"}
    assert session.post(url + "/echo", data=b"body").json()["body"] == "body"
    assert session.get(url + "/status/503").status_code == 503


how = sys.argv[3]
if how == "Session":
    with keepwarm.Session(timeout=keepwarm.Timeout(5, total=10)) as session:
        exercise(session)
        session.headers["X-Team"] = "a"
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            session.get(url + "/echo", headers={"X-Team": "b"})
        assert [w.category for w in seen] == [keepwarm.HeaderOverrideWarning], seen
    try:
        session.get(url + "/echo")
    except keepwarm.SessionClosedError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed session sent a request")
elif how == "unpickled":
    with pickle.loads(sys.stdin.buffer.read()) as session:
        exercise(session)
elif how == "mount":
    with keepwarm.mount(requests.Session(), max_retries=2) as session:
        exercise(session)
        # A total timeout given to a plain session's call: the transport keeps it.
        within = keepwarm.Timeout(5, total=10)
        assert session.get(url + "/echo", timeout=within).json()["path"] == "/echo"
elif how == "install":
    keepwarm.install()
    try:
        assert requests.get(url + "/cookies/set?flavour=oat").status_code == 200
        assert requests.get(url + "/cookies").json() == {}
        assert requests.post(url + "/echo", data=b"body").json()["body"] == "body"
    finally:
        keepwarm.uninstall()
elif how == "shared":
    exercise(keepwarm.session("fresh"))
elif how == "install_sessions":
    keepwarm.install(sessions=True)
    try:
        with requests.Session() as session:
            exercise(session)
    finally:
        keepwarm.uninstall()
elif how == "threads":
    import threading
    start, failures = threading.Barrier(16), []

    def first_session():
        start.wait(timeout=30)
        try:
            with keepwarm.Session() as session:
                exercise(session)
        except BaseException as exc:
            failures.append(repr(exc))

    workers = [threading.Thread(target=first_session) for _ in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not failures and not any(w.is_alive() for w in workers), failures
print("ok")
"""


@pytest.mark.parametrize(
    "how", ["Session", "unpickled", "mount", "install", "install_sessions", "shared", "threads"]
)
def test_each_way_a_session_first_exists_loads_what_its_requests_use(
    how: str, http_server: LocalServer
) -> None:
    """The request path's modules load with the first session (``load_machinery``). A
    session that came to exist another way than ``__init__`` (unpickled, or the per-call
    sessions of ``install()``), a transport mounted on a plain ``requests.Session``, and
    sixteen threads making their first sessions at once find them loaded too: each runs
    in an interpreter that loaded nothing else first."""
    pickled = b""
    if how == "unpickled":
        with keepwarm.Session(guards=False) as session:
            pickled = pickle.dumps(session)
    done = subprocess.run(
        [sys.executable, "-c", _EXERCISE, http_server.url, ",".join(_SESSION_MACHINERY), how],
        input=pickled,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["ok"]


def test_every_public_name_loads_from_the_module_it_is_listed_under() -> None:
    assert set(keepwarm._ON_DEMAND) == set(keepwarm.__all__)
    for name, module in keepwarm._ON_DEMAND.items():
        source = importlib.import_module(f"keepwarm.{module}")
        assert getattr(keepwarm, name) is getattr(source, name), name
    assert set(keepwarm.__all__) <= set(dir(keepwarm))
    with pytest.raises(AttributeError, match="no attribute 'Sesion'"):
        keepwarm.Sesion  # noqa: B018


def test_the_keepwarm_command_loads_no_http_stack_to_run_a_program() -> None:
    loaded = _modules_loaded_by(
        "import sys\nfrom keepwarm.cli import main\n"
        "assert main(['run', '--', sys.executable, '-c', 'pass']) == 0"
    )
    assert not {"requests", "urllib3", "ssl", "keepwarm._config"} & loaded


#: Module docstrings a session's modules keep: the package's, and the exception tree's
#: (docs/STYLE: the module docstring draws the tree; test_docs reads it).
_MODULE_DOCS_KEPT = {"keepwarm", "keepwarm._exceptions"}


def _internal_docstrings(module_name: str, public: set[int]) -> list[str]:
    """Where ``module_name`` has a docstring that is not public API: the module's own,
    or a class's or function's that ``keepwarm.__all__`` does not reach (a public
    class's public methods and properties are public)."""
    module = importlib.import_module(module_name)
    tree = ast.parse(pathlib.Path(module.__file__ or "").read_text(encoding="utf-8"))
    found = []
    if ast.get_docstring(tree) is not None and module_name not in _MODULE_DOCS_KEPT:
        found.append(f"{module_name} (the module's)")

    def walk(body: list[ast.stmt], owner_public: bool, top: bool, prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.If, ast.Try)):
                walk(node.body + node.orelse, owner_public, top, prefix)
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if top:
                is_public = id(getattr(module, node.name, None)) in public
            else:
                is_public = owner_public and not node.name.startswith("_")
            if ast.get_docstring(node) is not None and not is_public:
                found.append(f"{module_name}.{prefix}{node.name}")
            if isinstance(node, ast.ClassDef):
                walk(node.body, is_public, False, f"{prefix}{node.name}.")

    walk(tree.body, True, True, "")
    return found


def test_what_every_session_loads_documents_its_internals_in_comments(
    http_server: LocalServer,
) -> None:
    """Every module a session loads is in every program's memory: a docstring there is
    a string object kept for good, where a comment costs nothing once compiled. So their
    internal classes and functions (and the private modules themselves) are documented
    in comments; docstrings are for the public API, where ``help()`` and editors read
    them (issue 16: 89 KiB of a session's memory were internal docstrings)."""
    session = f"""
import keepwarm
with keepwarm.Session() as session:
    assert session.get({http_server.url + "/echo"!r}).status_code == 200
"""
    loaded = sorted(m for m in _modules_loaded_by(session) if m.startswith("keepwarm"))
    assert {"keepwarm._session", "keepwarm._upstream.transport"} <= set(loaded)
    public = {id(getattr(keepwarm, name)) for name in keepwarm.__all__}
    found = [where for name in loaded for where in _internal_docstrings(name, public)]
    assert found == [], "make these docstrings comments: " + ", ".join(found)
