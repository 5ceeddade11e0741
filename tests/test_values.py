"""The value classes (Stats, HostStats, Timings, and the private Settings, Limits,
PoolPolicy, EnvironmentSnapshot): construction and defaults, repr, equality, hashing,
read-only fields, pickling and copying, pattern matching.

These were dataclasses; issue 16 made them plain classes (``import dataclasses`` and the
generated code cost ~6 ms of ``import keepwarm``). These tests were written against the
dataclasses first, so they pin what users and the code saw then.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import keepwarm
from keepwarm._config import DEFAULT_TIMEOUT, Settings
from keepwarm._retry import RetryPolicy
from keepwarm._stats import Limits
from keepwarm._upstream.environment import EnvironmentSnapshot
from keepwarm._upstream.pool import PoolPolicy

HOST_FIELDS = (
    "origin",
    "requests",
    "connections_opened",
    "reused",
    "tls_handshakes",
    "discarded",
    "pools_evicted",
    "dropped",
    "idle_expired",
    "retired",
    "retries",
    "stale_retries",
    "http2_connections",
    "refused_resends",
    "pool_wait",
    "peak_in_flight",
    "keep_alive_timeout",
    "ttfb_p50",
    "ttfb_p99",
    "ttfb_max",
)


def _host(**changes: Any) -> keepwarm.HostStats:
    return keepwarm.HostStats(origin="http://a.test", **{"requests": 3, **changes})


def _frozen_values() -> list[tuple[Any, Any, Any]]:
    """(value, an equal value built separately, a different value)."""
    limits = Limits(pool_connections=1, pool_maxsize=2, read_timeout=3.0)
    return [
        (_host(), _host(), _host(reused=1)),
        (
            keepwarm.Stats({"http://a.test": _host()}, limits, 1),
            keepwarm.Stats(hosts={"http://a.test": _host()}, limits=limits, distinct_hosts=1),
            keepwarm.Stats({"http://a.test": _host()}, limits, 2),
        ),
        (limits, Limits(1, 2, 3.0, None), Limits(1, 2, 3.0, 4.0)),
        (Settings(), Settings(), Settings(pool_maxsize=5)),
        (PoolPolicy(), PoolPolicy(wait=None), PoolPolicy(grow_to=3)),
    ]


def test_host_stats_constructor_defaults_and_repr() -> None:
    h = keepwarm.HostStats("http://a.test", 3, ttfb_p50=0.5)
    assert (h.origin, h.requests, h.connections_opened, h.pool_wait) == ("http://a.test", 3, 0, 0.0)
    assert (h.keep_alive_timeout, h.ttfb_p50, h.ttfb_p99, h.ttfb_max) == (None, 0.5, None, None)
    assert keepwarm.HostStats.__match_args__ == HOST_FIELDS
    assert repr(h) == (
        "HostStats(origin='http://a.test', requests=3, connections_opened=0, reused=0, "
        "tls_handshakes=0, discarded=0, pools_evicted=0, dropped=0, idle_expired=0, "
        "retired=0, retries=0, stale_retries=0, http2_connections=0, refused_resends=0, "
        "pool_wait=0.0, peak_in_flight=0, keep_alive_timeout=None, ttfb_p50=0.5, "
        "ttfb_p99=None, ttfb_max=None)"
    )
    with pytest.raises(TypeError):
        keepwarm.HostStats()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        keepwarm.HostStats("http://a.test", colour=1)  # type: ignore[call-arg]


def test_stats_constructor_defaults_repr_and_output() -> None:
    empty = keepwarm.Stats()
    assert (dict(empty.hosts), empty.limits, empty.distinct_hosts) == ({}, None, 0)
    assert keepwarm.Stats().hosts is not keepwarm.Stats().hosts  # a new dict each time
    assert keepwarm.Stats.__match_args__ == ("hosts", "limits", "distinct_hosts")
    limits = Limits(1, 2, 3.0)
    s = keepwarm.Stats({"http://a.test": _host(reused=2)}, limits, 1)
    assert repr(s) == (
        f"Stats(hosts={{'http://a.test': {_host(reused=2)!r}}}, limits=Limits("
        "pool_connections=1, pool_maxsize=2, read_timeout=3.0, keepalive_expiry=None), "
        "distinct_hosts=1)"
    )
    assert s.requests == 3 and s.reused == 2
    as_dict = s.as_dict()
    assert as_dict["hosts"] == {
        "http://a.test": dict(zip(HOST_FIELDS, _values(_host(reused=2)), strict=True))
    }
    assert list(as_dict["hosts"]["http://a.test"]) == list(HOST_FIELDS)
    assert str(s).splitlines() == [
        "origin         requests  opened  reused  tls  discarded  dropped  expired  retries  "
        "stale  peak",
        "http://a.test         3       0       2    0          0        0        0        0  "
        "    0     0",
    ]


def _values(h: keepwarm.HostStats) -> tuple[Any, ...]:
    return tuple(getattr(h, name) for name in HOST_FIELDS)


def test_private_value_reprs() -> None:
    assert repr(Limits(1, 2, None)) == (
        "Limits(pool_connections=1, pool_maxsize=2, read_timeout=None, keepalive_expiry=None)"
    )
    assert repr(PoolPolicy()) == (
        "PoolPolicy(wait=None, telemetry=None, grow_to=0, keepalive_expiry=None, "
        "max_age=None, resend_stale=True, saturation_guard=None)"
    )
    assert repr(Settings(base_url="https://user:secret@api.test/v1/")) == (
        f"Settings(timeout={DEFAULT_TIMEOUT!r}, pool_connections=32, pool_maxsize=32, "
        f"pool_block=False, pool_timeout=10.0, max_retries={RetryPolicy()!r}, "
        "base_url='https://user:***@api.test/v1/', telemetry=True, keepalive_expiry=4.0, "
        "max_connection_age=None, guards=True, strict=False, http2=False)"
    )


@pytest.mark.parametrize("value, same, other", _frozen_values())
def test_frozen_values_compare_by_fields(value: Any, same: Any, other: Any) -> None:
    assert value == same
    assert (value != same) is False
    assert value != other
    assert (value == other) is False
    assert value != tuple(getattr(value, n) for n in type(value).__match_args__)
    assert (value == object()) is False
    if not isinstance(value, keepwarm.Stats):  # its hosts are a dict
        assert hash(value) == hash(same)
        assert {value, same, other} == {value, other}


def test_stats_are_unhashable_like_their_hosts_dict() -> None:
    with pytest.raises(TypeError, match="dict"):
        hash(keepwarm.Stats())


@pytest.mark.parametrize("value, same, other", _frozen_values())
def test_frozen_values_are_read_only(value: Any, same: Any, other: Any) -> None:
    name = type(value).__match_args__[-1]
    before = getattr(value, name)
    with pytest.raises(AttributeError, match=f"cannot assign to field '{name}'"):
        setattr(value, name, 1)
    with pytest.raises(AttributeError, match=f"cannot delete field '{name}'"):
        delattr(value, name)
    with pytest.raises(AttributeError):
        value.not_a_field = 1
    assert getattr(value, name) == before


@pytest.mark.parametrize("value, same, other", _frozen_values())
def test_frozen_values_pickle_and_copy(value: Any, same: Any, other: Any) -> None:
    for clone in (
        pickle.loads(pickle.dumps(value)),
        pickle.loads(pickle.dumps(value, protocol=2)),
        copy.copy(value),
        copy.deepcopy(value),
    ):
        assert type(clone) is type(value)
        assert clone == value
        assert repr(clone) == repr(value)


def test_settings_still_validate_and_replace() -> None:
    with pytest.raises(ValueError, match="auto"):
        Settings(pool_maxsize="auto", pool_block=True)
    assert isinstance(Settings().max_retries, RetryPolicy)
    assert Settings().max_retries is not Settings().max_retries
    with keepwarm.Session(pool_maxsize=5) as session:
        session.base_url = "http://b.test/"  # type: ignore[misc]
        assert session.settings.base_url == "http://b.test/"
        assert session.settings.pool_maxsize == 5


def test_timings_constructor_repr_and_equality() -> None:
    t = keepwarm.Timings(dns=0.1234567891, reused=True, _started=3.0)
    assert repr(t) == (
        "Timings(dns=0.123457, connect=None, tls=None, send=None, wait=None, receive=None, "
        "total=None, reused=True, http_version=None, tls_version=None, retries=0)"
    )
    assert list(t.as_dict()) == [
        "dns",
        "connect",
        "tls",
        "send",
        "wait",
        "receive",
        "total",
        "reused",
        "http_version",
        "tls_version",
        "retries",
    ]
    assert t == keepwarm.Timings(dns=0.1234567891, reused=True, _started=3.0)
    assert t != keepwarm.Timings(dns=0.1234567891, reused=True, _started=4.0)
    assert (t == object()) is False
    with pytest.raises(TypeError, match="unhashable"):
        hash(t)
    t.total = 1.5  # mutable: the transport fills it in as the request goes
    t.finish(10.0)
    assert t.total == 1.5
    u = keepwarm.Timings(_started=2.0, _headers_at=4.0)
    u.finish(5.0)
    assert (u.total, u.receive) == (3.0, 1.0)
    for clone in (pickle.loads(pickle.dumps(u)), copy.copy(u), copy.deepcopy(u)):
        assert clone == u and clone is not u
    assert keepwarm.Timings(1.0).dns == 1.0
    changed = u.__replace__(dns=0.5)
    assert (changed.dns, changed.total, changed._started, u.dns) == (0.5, 3.0, 2.0, None)
    with pytest.raises(TypeError, match="no field 'colour'"):
        u.__replace__(colour=1)


def test_environment_snapshot_fields_and_repr() -> None:
    empty = EnvironmentSnapshot.empty()
    assert (empty.proxies, empty.no_proxy, empty.ca_bundle, empty.netrc_path) == (
        {},
        None,
        None,
        None,
    )
    assert empty.from_variables is True
    assert repr(empty).startswith(
        "EnvironmentSnapshot(proxies={}, no_proxy=None, ca_bundle=None, netrc_path=None, "
        "_netrc=None, from_variables=True, _bypass={}, _lock=<unlocked _thread.lock"
    )
    assert empty == empty
    assert empty != EnvironmentSnapshot.empty()  # each has its own lock
    with pytest.raises(TypeError, match="unhashable"):
        hash(empty)
    empty.from_variables = False
    assert empty.from_variables is False


@pytest.mark.parametrize("value, same, other", _frozen_values())
def test_assignment_raises_what_the_dataclasses_raised(value: Any, same: Any, other: Any) -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError, match="read-only"):
        setattr(value, type(value).__match_args__[0], None)
    assert issubclass(dataclasses.FrozenInstanceError, AttributeError)


def test_import_keepwarm_does_not_import_dataclasses() -> None:
    import subprocess
    import sys

    code = "import sys, keepwarm; print('dataclasses' in sys.modules, 'inspect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_replace_builds_a_checked_copy() -> None:
    settings = Settings(pool_maxsize="auto")
    changed = settings.__replace__(base_url="http://b.test/")
    assert (changed.base_url, changed.pool_maxsize, settings.base_url) == (
        "http://b.test/",
        "auto",
        None,
    )
    with pytest.raises(ValueError, match="auto"):
        settings.__replace__(pool_block=True)
    with pytest.raises(TypeError, match="no field 'colour'"):
        settings.__replace__(colour=1)


def test_values_match_by_position() -> None:
    match keepwarm.HostStats("http://a.test", 3, 2):
        case keepwarm.HostStats(origin, requests, opened):
            assert (origin, requests, opened) == ("http://a.test", 3, 2)
        case _:
            pytest.fail("no match")
