"""keepwarm's pytest plugin (docs/pytest.md), run on small test files with pytester.

Each inner run is in this process; the plugin is named with ``-p`` unless the installed
keepwarm already registers it under the ``pytest11`` entry point (the editable install
of a checkout made before the plugin existed does not).
"""

from __future__ import annotations

import gc
import importlib.metadata
import pathlib
import re
import textwrap
import warnings

import pytest

pytest_plugins = ["pytester"]


def _plugin_args() -> list[str]:
    registered = any(
        ep.name == "keepwarm" for ep in importlib.metadata.entry_points(group="pytest11")
    )
    return [] if registered else ["-p", "keepwarm.pytest_plugin"]


#: How this project runs its tests; the inner runs run alike.
STRICT_RUN = ("-p", "no:cacheprovider", "--strict-markers", "--strict-config", "-W", "error")


#: Closes what an inner test leaked on purpose (a module's ``kept``) once the run is over,
#: so no socket is left for a garbage collection during one of this suite's later tests.
CLEANUP = """
def pytest_sessionfinish(session):
    for item in session.items:
        kept = getattr(getattr(item, "module", None), "kept", None)
        for thing in kept if isinstance(kept, list) else [kept]:
            close = getattr(thing, "close", None)
            if close is not None:
                close()
"""


def inner_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(keepwarm_test_cleanup=CLEANUP)
    pytester.syspathinsert()
    try:
        return pytester.runpytest(
            *STRICT_RUN, *_plugin_args(), "-p", "keepwarm_test_cleanup", *args
        )
    finally:
        # What a leaking inner test left behind goes now, not in a later test of ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gc.collect()


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    return inner_run(pytester, *args)


def run_in_a_process(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    """:func:`run` in a pytest process of its own, as a user's run starts."""
    pytester.makepyfile(test_inner=textwrap.dedent(source), keepwarm_test_cleanup=CLEANUP)
    return pytester.runpytest_subprocess(
        *STRICT_RUN, *_plugin_args(), "-p", "keepwarm_test_cleanup", *args
    )


def line(source: str, text: str) -> int:
    """The line of ``text`` in the test file ``run`` writes from ``source``."""
    lines = textwrap.dedent(source).strip("\n").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


LEAKS = """
    import requests

    def test_leaks_a_session(keepwarm_server):
        s = requests.Session()
        s.get(keepwarm_server.url)

    def test_leaks_a_streamed_response(keepwarm_server, keepwarm_session):
        global kept
        kept = keepwarm_session.get(keepwarm_server.url + "/bytes?n=100000", stream=True)

    def test_closes_everything(keepwarm_server, keepwarm_session):
        with requests.Session() as s:
            s.get(keepwarm_server.url)
        with keepwarm_session.get(keepwarm_server.url, stream=True) as r:
            r.raw.read(1)
        keepwarm_session.get(keepwarm_server.url, stream=True).content
"""


def test_leaks_are_listed_with_where_they_were_made_under_warn(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKS)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*= keepwarm: 2 leaks =*",
            "test_inner.py::test_leaks_a_session: requests.Session created at "
            f"test_inner.py:{line(LEAKS, 's = requests.Session()')} (test_leaks_a_session) "
            "was garbage-collected without close()",
            "test_inner.py::test_leaks_a_streamed_response: streamed response created at "
            f"test_inner.py:{line(LEAKS, 'kept = ')} (test_leaks_a_streamed_response) "
            "still holds its connection*",
        ]
    )
    assert "test_closes_everything:" not in result.stdout.str()


def test_fail_makes_the_leaking_tests_error_and_spares_the_others(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, LEAKS, "--keepwarm-leaks=fail")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_session*",
            f"*requests.Session created at test_inner.py:{line(LEAKS, 's = requests.Session()')} "
            "(test_leaks_a_session)*",
        ]
    )
    assert "ERROR at teardown of test_closes_everything" not in result.stdout.str()


@pytest.mark.parametrize("mode", ["warn", "fail"])
def test_under_xdist_the_controller_reports_every_workers_leaks(
    pytester: pytest.Pytester, mode: str
) -> None:
    # A pytest-xdist worker's terminal summary reaches no terminal: its leaks go to the
    # controller, which lists them all once. The leaking tests may run in either worker,
    # so the lines are looked for in any order. (A failing teardown travels as a report.)
    result = run_in_a_process(pytester, LEAKS, "-n", "2", f"--keepwarm-leaks={mode}")
    out = result.stdout.str()
    made = {
        "test_leaks_a_session": f"requests.Session created at test_inner.py:"
        f"{line(LEAKS, 's = requests.Session()')} (test_leaks_a_session) "
        "was garbage-collected without close()",
        "test_leaks_a_streamed_response": "streamed response created at test_inner.py:"
        f"{line(LEAKS, 'kept = ')} (test_leaks_a_streamed_response) still holds its connection",
    }
    if mode == "warn":
        result.assert_outcomes(passed=3)
        assert out.count("= keepwarm: 2 leaks =") == 1
        for test, message in made.items():
            assert out.count(f"test_inner.py::{test}: {message}") == 1, out
    else:
        result.assert_outcomes(passed=3, errors=2)
        assert "keepwarm: 2 leaks" not in out
        for test, message in made.items():
            assert f"ERROR at teardown of {test}" in out
            assert message in out
    assert "test_closes_everything:" not in out


def test_off_looks_at_nothing(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKS, "--keepwarm-leaks=off")
    result.assert_outcomes(passed=3)
    assert "keepwarm:" not in result.stdout.str()


FIRST_USE = """
    import keepwarm

    def test_makes_the_first_session(keepwarm_server):
        global kept
        s = keepwarm.Session()
        kept = [s, s.get(keepwarm_server.url + "/bytes?n=100000", stream=True)]
"""


#: An import hook of another tool put in front of every finder after pytest started (an
#: instrumenting tool's, say), which finds keepwarm's modules itself.
FRONT_HOOK = """
    import importlib.machinery
    import sys

    class FindsKeepwarm:
        def find_spec(self, name, path, target=None):
            if name.startswith("keepwarm."):
                return importlib.machinery.PathFinder.find_spec(name, path, target)
            return None

    def pytest_collection_finish(session):
        sys.meta_path.insert(0, FindsKeepwarm())
"""


@pytest.mark.parametrize("front_hook", [False, True], ids=["alone", "another-import-hook"])
def test_a_test_that_loads_keepwarms_session_is_tracked(
    pytester: pytest.Pytester, front_hook: bool
) -> None:
    # keepwarm loads its Session class and transport on first use: in a fresh process the
    # test that makes the first keepwarm.Session() loads them, and its session and
    # streamed response are tracked all the same (a process of its own, as a user's run),
    # also when another tool's import hook went in front of the plugin's.
    if front_hook:
        pytester.makeconftest(textwrap.dedent(FRONT_HOOK))
    result = run_in_a_process(pytester, FIRST_USE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= keepwarm: 2 leaks =*",
            "test_inner.py::test_makes_the_first_session: keepwarm.Session created at "
            f"test_inner.py:{line(FIRST_USE, 's = keepwarm.Session()')} *is not closed*",
            "test_inner.py::test_makes_the_first_session: streamed response created at "
            f"test_inner.py:{line(FIRST_USE, 'kept = ')} *still holds its connection*",
        ]
    )


MARKED = """
    import pytest
    import requests

    @pytest.mark.keepwarm_leaks("off")
    def test_leaks_on_purpose(keepwarm_server):
        s = requests.Session()
        s.get(keepwarm_server.url)

    @pytest.mark.keepwarm_leaks("warn")
    def test_leaks_and_is_listed(keepwarm_server):
        s = requests.Session()
        s.get(keepwarm_server.url)

    @pytest.mark.keepwarm_leaks("fail")
    def test_leaks_and_errors(keepwarm_server):
        s = requests.Session()
        s.get(keepwarm_server.url)

    def test_leaks_as_the_run_says(keepwarm_server):
        s = requests.Session()
        s.get(keepwarm_server.url)
"""


@pytest.mark.parametrize("run_mode", ["warn", "fail"])
def test_the_marker_sets_one_tests_leak_mode(pytester: pytest.Pytester, run_mode: str) -> None:
    # A test that leaks on purpose (one that checks what happens to a dropped session)
    # says so and is not reported; "warn" and "fail" apply to one test whatever the run's
    # mode.
    result = run(pytester, MARKED, f"--keepwarm-leaks={run_mode}")
    out = result.stdout.str()
    assert "test_leaks_on_purpose" not in out
    assert "*= keepwarm: * =*" not in out
    listed = "test_inner.py::test_leaks_and_is_listed: requests.Session created at"
    if run_mode == "warn":
        result.assert_outcomes(passed=4, errors=1)
        result.stdout.fnmatch_lines(["*= keepwarm: 2 leaks =*"])
        assert out.count(listed) == 1
        assert "test_inner.py::test_leaks_as_the_run_says: requests.Session" in out
    else:
        result.assert_outcomes(passed=4, errors=2)
        result.stdout.fnmatch_lines(["*= keepwarm: 1 leak =*"])
        assert out.count(listed) == 1
        result.stdout.fnmatch_lines(
            ["*ERROR at teardown of test_leaks_as_the_run_says*", "*--keepwarm-leaks=fail*"]
        )
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_leaks_and_errors*", "*keepwarm_leaks('fail')*"]
    )


def test_the_marker_cannot_turn_on_what_the_run_turned_off(pytester: pytest.Pytester) -> None:
    result = run(pytester, MARKED, "--keepwarm-leaks=off")
    result.assert_outcomes(passed=4)
    assert "keepwarm:" not in result.stdout.str()


@pytest.mark.parametrize("args", ["", "'loud'", "'off', 'warn'", "level='off'"])
def test_a_marker_without_a_mode_says_what_it_takes(pytester: pytest.Pytester, args: str) -> None:
    source = f"""
        import pytest

        @pytest.mark.keepwarm_leaks({args})
        def test_marked():
            pass
    """
    result = run(pytester, source)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.keepwarm_leaks takes one of 'off', 'warn', 'fail'*"]
    )


def test_a_session_left_open_and_referenced_is_a_leak_and_subclasses_count(
    pytester: pytest.Pytester,
) -> None:
    source = """
        import keepwarm, requests

        class Mine(requests.Session):
            def __init__(self):
                super().__init__()

        kept = []

        def test_open_keepwarm_session():
            kept.append(keepwarm.Session())

        def test_open_subclass():
            kept.append(Mine())

        def test_shared_sessions_are_not_leaks():
            keepwarm.session().headers["x"] = "y"
    """
    result = run(pytester, source, "--keepwarm-leaks=fail")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*keepwarm.Session created at test_inner.py:{line(source, 'keepwarm.Session()')} "
            "(test_open_keepwarm_session) is not closed*",
            f"*test_inner.Mine (a requests.Session) created at test_inner.py:"
            f"{line(source, 'kept.append(Mine())')} (test_open_subclass) is not closed*",
        ]
    )


def test_the_lifecycle_guard_still_names_the_line_that_made_a_subclass(
    pytester: pytest.Pytester,
) -> None:
    """The wrapped ``__init__`` must not become the creation site keepwarm's own
    UnclosedSessionWarning reports (it skips ``__init__`` frames of the session)."""
    source = """
        import gc, warnings, keepwarm

        class Client(keepwarm.Session):
            def __init__(self):
                super().__init__()

        def test_site(keepwarm_server):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                client = Client()
                client.get(keepwarm_server.url)
                del client
                gc.collect()
            [w] = [w for w in caught if w.category is keepwarm.UnclosedSessionWarning]
            assert w.lineno == LINE
    """
    source = source.replace("LINE", str(line(source, "client = Client()")))
    run(pytester, source).assert_outcomes(passed=1)


def test_sessions_of_wider_fixtures_belong_to_them(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, requests

        @pytest.fixture(scope="module")
        def shared():
            with requests.Session() as s:
                yield s

        @pytest.fixture
        def own():
            s = requests.Session()
            yield s
            s.close()

        def test_one(shared, own):
            pass

        def test_two(shared, own):
            pass
        """,
        "--keepwarm-leaks=fail",
    )
    result.assert_outcomes(passed=2)


# -- max_connections ------------------------------------------------------------------

CONNECTIONS = """
    import pytest, requests

    @pytest.mark.max_connections(1)
    def test_reuses(keepwarm_server, keepwarm_session):
        for _ in range(3):
            keepwarm_session.get(keepwarm_server.url)

    @pytest.mark.max_connections(1)
    def test_a_connection_per_call(keepwarm_server):
        for _ in range(3):
            requests.get(keepwarm_server.url)

    @pytest.mark.max_connections(3)
    def test_within_the_limit(keepwarm_server):
        for _ in range(3):
            requests.get(keepwarm_server.url)

    def test_unmarked(keepwarm_server):
        requests.get(keepwarm_server.url)
"""


def test_max_connections_fails_only_the_test_that_opens_more(pytester: pytest.Pytester) -> None:
    result = run(pytester, CONNECTIONS, "--strict-markers")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a_connection_per_call*",
            "*max_connections(1): the test opened 3 TCP connections (127.0.0.1:* x3)*",
        ]
    )


def test_max_connections_counts_other_threads_and_checks_its_argument(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import threading, pytest, requests

        @pytest.mark.max_connections(0)
        def test_in_a_thread(keepwarm_server):
            t = threading.Thread(target=requests.get, args=(keepwarm_server.url,))
            t.start()
            t.join()

        @pytest.mark.max_connections("two")
        def test_bad_limit():
            pass
        """,
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*max_connections(0): the test opened 1 TCP connections*",
            "*max_connections('two'): the limit must be a whole number >= 0*",
        ]
    )


# -- fixtures -------------------------------------------------------------------------


def test_the_servers_count_connections_and_requests(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import requests

        def test_one_session_one_connection(keepwarm_server, keepwarm_session):
            for _ in range(3):
                assert keepwarm_session.get(keepwarm_server.url).text == "ok"
            assert keepwarm_server.connections == 1
            assert keepwarm_server.requests == 3

        def test_requests_get_a_connection_each(keepwarm_server):
            for _ in range(3):
                requests.get(keepwarm_server.url)
            assert keepwarm_server.connections == 3
            assert keepwarm_server.requests == 3

        def test_https(keepwarm_https_server, keepwarm_session):
            url, bundle = keepwarm_https_server.url, keepwarm_https_server.ca_bundle
            assert url.startswith("https://127.0.0.1:")
            for _ in range(2):
                keepwarm_session.get(url, verify=bundle).raise_for_status()
            assert keepwarm_https_server.connections == 1

        def test_the_session_is_closed_afterwards(keepwarm_session):
            global seen
            seen = keepwarm_session

        def test_it_was(keepwarm_session):
            assert seen.closed and not keepwarm_session.closed
        """,
        "--keepwarm-leaks=fail",
    )
    result.assert_outcomes(passed=5)


def test_the_https_server_is_skipped_without_trustme(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys
        sys.modules["trustme"] = None
        """
    )
    result = run(
        pytester,
        """
        def test_https(keepwarm_https_server):
            pass
        """,
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*keepwarm_https_server needs trustme*pip install trustme*"])


# -- strict ---------------------------------------------------------------------------


def test_strict_makes_the_tests_sessions_strict_and_only_during_tests(
    pytester: pytest.Pytester,
) -> None:
    source = """
        import keepwarm

        def test_strict(keepwarm_session):
            assert keepwarm.Session()._settings.strict is True
            assert keepwarm_session._settings.strict is True

        def test_configure_reset_by_a_fixture_is_strict_again(reset_config):
            s = keepwarm.Session()
            assert s._settings.strict is True
            s.close()
    """
    pytester.makeconftest(
        """
        import pytest
        from keepwarm._config import reset_configuration

        @pytest.fixture
        def reset_config():
            reset_configuration()
        """
    )
    run(pytester, source, "--keepwarm-strict").assert_outcomes(passed=2)
    run(pytester, source).assert_outcomes(failed=2)
    import keepwarm

    with keepwarm.Session() as after:
        assert after._settings.strict is False


NO_TIMEOUT = """
    import keepwarm, pytest

    def call(server, session):
        return session.get(server.url, timeout=keepwarm.NO_TIMEOUT)

    @pytest.mark.parametrize("n", [1, 2])
    def test_no_timeout(keepwarm_server, keepwarm_session, request, n):
        if request.config.getoption("keepwarm_strict"):
            with pytest.raises(keepwarm.NoTimeoutWarning):
                call(keepwarm_server, keepwarm_session)
        else:
            with pytest.warns(keepwarm.NoTimeoutWarning):
                call(keepwarm_server, keepwarm_session)
"""


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "not-strict"])
def test_a_guard_raises_under_strict_and_warns_in_every_test_otherwise(
    pytester: pytest.Pytester, strict: bool
) -> None:
    """The same call site in two tests: raised in both under --keepwarm-strict; warned
    in both without it (the guards' once-per-site memory is cleared between tests)."""
    args = ["--keepwarm-strict"] if strict else []
    run(pytester, NO_TIMEOUT, *args).assert_outcomes(passed=2)


def test_guard_call_sites_are_forgotten_between_tests(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest
        from keepwarm import KeepwarmWarning
        from keepwarm._guards import warn

        def trip():
            warn(KeepwarmWarning, "tripped", strict=False)

        @pytest.mark.parametrize("n", [1, 2])
        def test_warned_each_time(n):
            with pytest.warns(KeepwarmWarning, match="tripped"):
                trip()
        """,
    )
    result.assert_outcomes(passed=2)


def test_the_plugin_checks_its_ini_value(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkeepwarm_leaks = loud\n")
    result = run(pytester, "def test_x(): pass\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*keepwarm_leaks = 'loud' is not valid*"])


def test_importing_the_plugin_imports_nothing_keepwarm_does_not() -> None:
    """The entry point imports the keepwarm package (and so requests); the plugin itself
    adds nothing: the servers, trustme and the bench load when a fixture asks."""
    import subprocess
    import sys

    code = (
        "import sys, pytest, keepwarm; before = set(sys.modules); "
        "import keepwarm.pytest_plugin; print(sorted(set(sys.modules) - before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "['keepwarm.pytest_plugin']"


# -- docs/pytest.md -------------------------------------------------------------------

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "pytest.md"


def _doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_the_docs_leak_example_prints_what_the_docs_show(pytester: pytest.Pytester) -> None:
    example = next(b for b in _doc_blocks("python") if "def test_leaky(" in b)
    shown = next(b for b in _doc_blocks("text") if "keepwarm: 2 leaks" in b).splitlines()
    pytester.makepyfile(test_x=example)
    result = inner_run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= keepwarm: 2 leaks =*", *shown[1:]])


def test_the_docs_marker_example_leaks_unreported(pytester: pytest.Pytester) -> None:
    example = next(b for b in _doc_blocks("python") if 'keepwarm_leaks("off")' in b)
    result = run(pytester, example, "--keepwarm-leaks=fail")
    result.assert_outcomes(passed=1)
    assert "keepwarm:" not in result.stdout.str()


def test_the_docs_max_connections_example_fails_as_the_docs_show(
    pytester: pytest.Pytester,
) -> None:
    example = next(b for b in _doc_blocks("python") if "max_connections(1)" in b)
    (shown,) = [b.strip() for b in _doc_blocks("text") if b.startswith("max_connections(")]
    result = run(pytester, example)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:*", shown)])


def test_the_docs_fixture_examples_pass(pytester: pytest.Pytester) -> None:
    examples = [b for b in _doc_blocks("python") if "assert keepwarm_" in b]
    assert len(examples) == 2
    result = run(pytester, "\n\n".join(examples), "--keepwarm-leaks=fail")
    result.assert_outcomes(passed=3)


def test_the_docs_strict_example_raises(pytester: pytest.Pytester) -> None:
    example = next(b for b in _doc_blocks("python") if "NoTimeoutWarning" in b)
    run(pytester, example, "--keepwarm-strict").assert_outcomes(passed=1)


def test_a_run_inside_a_test_records_for_itself_or_not_at_all(pytester: pytest.Pytester) -> None:
    """pytester inside a test: the inner run's sessions are never the outer test's, even
    with the inner run's tracking off."""
    inner = textwrap.dedent(
        """
        import requests

        def test_leaks():
            requests.Session()
        """
    )
    result = run(
        pytester,
        f"""
        import pytest

        pytest_plugins = ["pytester"]

        @pytest.mark.parametrize("mode", ["off", "warn"])
        def test_runs_a_leaky_run(pytester, mode):
            pytester.makepyfile(test_deeper={inner!r})
            result = pytester.runpytest_inprocess(
                "-p", "no:cacheprovider", *{_plugin_args()!r}, "--keepwarm-leaks=" + mode
            )
            result.assert_outcomes(passed=1)
            assert ("keepwarm: 1 leak" in result.stdout.str()) == (mode == "warn")
        """,
        "--keepwarm-leaks=fail",
    )
    result.assert_outcomes(passed=2)
