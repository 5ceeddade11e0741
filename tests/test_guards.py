"""How every guard speaks (keepwarm._guards): once per call site, strict, silence."""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

import keepwarm
from keepwarm import _guards


@pytest.fixture(autouse=True)
def _fresh_sites() -> Iterator[None]:
    _guards.forget_sites()
    yield
    _guards.forget_sites()


def trip(strict: bool = False) -> None:
    """Stands for a guard deep inside keepwarm: the call site is the caller's line."""
    site = _guards.call_site(sys._getframe(1))  # as if this function were keepwarm's
    _guards.warn(keepwarm.NoTimeoutWarning, "no timeout: pass timeout=", strict=strict, site=site)


def test_warns_once_per_call_site_at_the_callers_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            trip()  # one site, three trips
        trip()  # another site
    assert [w.category for w in caught] == [keepwarm.NoTimeoutWarning] * 2
    assert {w.filename for w in caught} == {__file__}
    assert caught[0].lineno != caught[1].lineno
    assert str(caught[0].message) == "no timeout: pass timeout="


def test_strict_raises_every_time() -> None:
    for _ in range(2):
        with pytest.raises(keepwarm.NoTimeoutWarning, match="pass timeout="):
            trip(strict=True)


def test_silence_is_scoped_to_the_block_and_the_thread() -> None:
    seen: list[type[Warning]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with keepwarm.silence(keepwarm.NoTimeoutWarning):
            trip()
            trip(strict=True)  # strict is silenced too
            other = threading.Thread(target=trip)
            other.start()
            other.join(5)
        with keepwarm.silence():  # every guard
            trip()
        with keepwarm.silence(keepwarm.HeaderOverrideWarning):  # another guard only
            trip()
        seen = [w.category for w in caught]
    # The thread and the last block warned; the silenced code did not.
    assert seen == [keepwarm.NoTimeoutWarning, keepwarm.NoTimeoutWarning]


def test_silence_takes_only_guard_classes() -> None:
    with pytest.raises(TypeError, match="warning classes"), keepwarm.silence(UserWarning):  # type: ignore[arg-type]
        pass


def test_warning_filters_apply_as_to_any_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=keepwarm.NoTimeoutWarning)
        trip()
    assert caught == []
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=keepwarm.KeepwarmWarning)
        with pytest.raises(keepwarm.NoTimeoutWarning):
            trip()


def test_every_guard_class_is_a_keepwarm_warning_exported() -> None:
    guards = set(_guards._ALL) - {keepwarm.KeepwarmWarning}
    assert len(guards) == 7
    for cls in guards:
        assert getattr(keepwarm, cls.__name__) is cls
        assert issubclass(cls, keepwarm.KeepwarmWarning) and cls.__doc__
