"""keepwarm's quick path for received HTTP/2 frames (``h2conn._Client.receive_data``) is
h2's own, frame for frame: the same events, errors and connection and stream state, for
every way a server's bytes can be cut into reads (pure logic, no network: the frames are
built with hyperframe and hpack, as a server would send them, good and bad)."""

from __future__ import annotations

from typing import Any

import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from h2_clients import h2_client
from keepwarm._upstream import h2conn

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")]


def _event(event: Any) -> Any:
    """An event as comparable data: its type and every attribute, nested events too."""
    if isinstance(event, list):
        return [_event(e) for e in event]
    if isinstance(event, dict):
        return {_event(k): _event(v) for k, v in event.items()}
    if isinstance(event, tuple):  # a header field: its type says whether it is indexable
        return (type(event).__name__, *event)
    if isinstance(event, (h2.events.Event, h2.settings.ChangedSetting, h2conn._Malformed)):
        names = sorted(
            vars(event) if hasattr(event, "__dict__") else getattr(type(event), "__slots__", ())
        )
        return (type(event).__name__, {n: _event(getattr(event, n)) for n in names})
    return event


def _state(client: Any) -> Any:
    streams = {}
    for stream_id, stream in sorted(client.streams.items()):
        machine = stream.state_machine
        streams[stream_id] = (
            machine.state,
            machine.headers_received,
            getattr(machine, "trailers_received", None),
            machine.stream_closed_by,
            stream._expected_content_length,
            stream._actual_content_length,
            stream._inbound_window_manager.current_window_size,
            stream.outbound_flow_control_window,
        )
    return (
        client.state_machine.state,
        streams,
        client._inbound_flow_control_window_manager.current_window_size,
        client.outbound_flow_control_window,
        list(client.decoder.header_table.dynamic_entries),
        bytes(client.data_to_send()),
        len(client.incoming_buffer._headers_buffer),
        dict(client.remote_settings),
    )


def _fields(status: bytes, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(b":status", status), *extra] if status else extra


# A response, as a server may send it, good or bad: informational heads, the head (its
# status, a Content-Length that is right, absent, too short, too long, not a number or
# given twice, other fields), the body in DATA frames, where the stream ends (on the head,
# on the last DATA, on trailers, not at all), and how the frames are dressed (padding,
# priority, CONTINUATION, literal fields or the dynamic table).
responses = st.fixed_dictionaries(
    {
        "informational": st.lists(st.sampled_from([b"100", b"103"]), max_size=1),
        "status": st.sampled_from([b"200", b"200", b"200", b"204", b"404", b"2000", b""]),
        "body": st.lists(st.sampled_from([0, 1, 5, 100, 1000, 16384, 16385]), max_size=4),
        "length": st.sampled_from(
            ["exact", "exact", "exact", None, "short", "long", "abc", "twice"]
        ),
        "extra": st.lists(
            st.sampled_from(
                [
                    (b"server", b"nginx"),
                    (b"cookie", b"a=1"),
                    (b"cookie", b"b=2"),
                    (b"set-cookie", b"s=1"),
                    (b"x-upper", b"Value"),
                    (b"Upper", b"x"),
                    (b"connection", b"close"),
                ]
            ),
            max_size=3,
        ),
        "end": st.sampled_from(["data", "data", "data", "head", "trailers", "open-trailers", None]),
        "head_padding": st.sampled_from([0, 0, 0, 3]),
        "priority": st.sampled_from([False, False, False, True]),
        "continuation": st.sampled_from([False, False, False, True]),
        "indexing": st.booleans(),
        "data_padding": st.sampled_from([None, None, None, None, 0, 4]),
    }
)
#: Frames between the responses' frames: (kind, which stream, where in the sequence).
noise = st.tuples(
    st.sampled_from(
        [
            "rst",
            "rst-refused",
            "window",
            "ping",
            "settings",
            "goaway",
            "data-unopened",
            "data-early",
            "close",
        ]
    ),
    st.integers(0, 5),
    st.integers(0, 40),
)


def _head(stream_id: int, block: bytes, end: bool, response: dict[str, Any]) -> list[bytes]:
    frame = HeadersFrame(stream_id)
    if end:
        frame.flags.add("END_STREAM")
    if response["head_padding"]:
        frame.flags.add("PADDED")
        frame.pad_length = response["head_padding"]
    if response["priority"]:
        frame.flags.add("PRIORITY")
        frame.depends_on, frame.stream_weight, frame.exclusive = 0, 15, False
    if response["continuation"] and len(block) > 1:
        frame.data = block[:1]
        tail = ContinuationFrame(stream_id, data=block[1:])
        tail.flags.add("END_HEADERS")
        return [frame.serialize(), tail.serialize()]
    frame.data = block
    frame.flags.add("END_HEADERS")
    return [frame.serialize()]


def _response(stream_id: int, response: dict[str, Any], encoder: hpack.Encoder) -> list[bytes]:
    def encode(fields: list[tuple[bytes, bytes]]) -> bytes:
        if response["indexing"]:
            return bytes(encoder.encode(fields))
        return bytes(hpack.Encoder().encode(fields, huffman=False))  # literals, no table

    out = []
    for status in response["informational"]:
        out += _head(stream_id, encode([(b":status", status)]), False, response)
    body = response["body"]
    fields = list(response["extra"])
    total = sum(body)
    length = response["length"]
    if length == "twice":
        fields += [(b"content-length", b"5"), (b"content-length", b"6")]
    elif length == "abc":
        fields.append((b"content-length", b"abc"))
    elif length is not None:
        declared = total + {"exact": 0, "short": -1, "long": 1}[length]
        fields.append((b"content-length", str(max(declared, 0)).encode()))
    if response["status"]:
        fields.insert(0, (b":status", response["status"]))
    end = response["end"]
    out += _head(stream_id, encode(fields), end == "head", response)
    for i, size in enumerate(body):
        frame = DataFrame(stream_id, data=b"x" * size)
        if end == "data" and i == len(body) - 1:
            frame.flags.add("END_STREAM")
        if response["data_padding"] is not None:
            frame.flags.add("PADDED")
            frame.pad_length = response["data_padding"]
        out.append(frame.serialize())
    if end in ("trailers", "open-trailers"):
        frame = HeadersFrame(stream_id, data=encode([(b"x-t", b"1")]))
        frame.flags.add("END_HEADERS")
        if end == "trailers":
            frame.flags.add("END_STREAM")
        out.append(frame.serialize())
    return out


def _noise(kind: str, which: int, opened: list[int]) -> bytes:
    ids = [*opened, 2, 99]
    stream_id = ids[which % len(ids)]
    if kind.startswith("rst"):
        code = 7 if kind == "rst-refused" else 2
        return bytes(RstStreamFrame(stream_id, error_code=code).serialize())
    if kind == "window":
        return bytes(WindowUpdateFrame(stream_id if which % 2 else 0, 1000).serialize())
    if kind == "ping":
        return bytes(PingFrame(0, opaque_data=b"12345678").serialize())
    if kind == "settings":
        window = {SettingsFrame.INITIAL_WINDOW_SIZE: 1000}
        return bytes(SettingsFrame(0, settings=window).serialize())
    if kind == "close":
        return b""
    if kind == "goaway":
        return bytes(GoAwayFrame(0, last_stream_id=max(opened, default=0)).serialize())
    if kind == "data-early":  # on an opened stream, perhaps before its head
        return bytes(DataFrame(stream_id, data=b"x").serialize())
    frame = DataFrame(ids[-1 - which % 2], data=b"x")  # on a stream never opened
    frame.flags.add("END_STREAM")
    return bytes(frame.serialize())


ORDINARY = {
    "informational": [],
    "status": b"200",
    "body": [5],
    "length": "exact",
    "extra": [],
    "end": "data",
    "head_padding": 0,
    "priority": False,
    "continuation": False,
    "indexing": True,
    "data_padding": None,
}


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([True, True, True, False]), responses), min_size=1, max_size=3
    ),
    st.lists(st.integers(0, 2), max_size=30),
    st.lists(noise, max_size=3),
    st.booleans(),
    st.lists(st.integers(1, 600), max_size=8),
)
@example([(True, {**ORDINARY, "length": "long"})], [], [], False, [])  # a body too short
@example([(True, {**ORDINARY, "length": "short"})], [], [], False, [])  # too long
@example([(True, ORDINARY)], [], [("data-early", 0, 1)], False, [])  # data before the head
@example([(True, {**ORDINARY, "end": "open-trailers"})], [], [], False, [])
@example([(True, ORDINARY)], [], [("close", 0, 1)], False, [])  # closed by the client
@example(
    [(True, {**ORDINARY, "body": [1000]}), (True, {**ORDINARY, "body": [1000]})],
    [0, 0, 1, 1],
    [],
    True,
    [],
)  # the connection's window overrun, not a stream's
@example([(True, {**ORDINARY, "body": [1001]})], [], [], True, [])  # a stream's window overrun
def test_received_frames_are_taken_as_by_h2(
    requests: list[tuple[bool, dict[str, Any]]],
    order: list[int],
    noises: list[tuple[str, int, int]],
    small_windows: bool,
    cuts: list[int],
) -> None:
    """The same bytes, cut into the same reads, give the same events (or the same error)
    and leave the connection and its streams in the same state, through the quick path
    and through h2's own ``receive_data``: ordinary responses, and around them
    informational heads, trailers (with and without END_STREAM), cookies to join,
    padding, priority, CONTINUATION, bad and conflicting Content-Lengths, bodies too long
    or too short, DATA before a head, window overruns (a stream's, the connection's),
    frames too large, frames on streams never opened or closed, resets, GOAWAY from
    either side."""
    clients = [
        h2_client(h2_receives=not quick, small_windows=small_windows) for quick in (True, False)
    ]
    opened = []
    for client in clients:
        opened = []
        for whole, _ in requests:  # a GET (half-closed) or a POST still sending (open)
            stream_id = client.get_next_available_stream_id()
            client.send_headers(stream_id, REQUEST, end_stream=whole)
            opened.append(stream_id)
    assert _state(clients[0]) == _state(clients[1])
    encoder = hpack.Encoder()
    pending = [
        _response(s, response, encoder) for s, (_, response) in zip(opened, requests, strict=True)
    ]
    settings_frame = SettingsFrame(0, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 100})
    frames = [bytes(settings_frame.serialize())]
    for pick in order:  # the streams' frames interleaved
        if pending[pick % len(pending)]:
            frames.append(pending[pick % len(pending)].pop(0))
    for rest in pending:
        frames += rest
    for kind, which, where in noises:
        frames.insert(min(where, len(frames)), _noise(kind, which, opened))
    reads: list[bytes | None] = []
    for frame in frames:  # None: the client closes the connection (it sends GOAWAY)
        if frame and reads and reads[-1] is not None:
            reads[-1] += frame
        else:
            reads.append(frame or None)
    for cut in cuts:  # cut the reads again, anywhere
        whole = [r for r in reads if r is not None]
        if whole:
            longest = max(whole, key=len)
            at = reads.index(longest)
            reads[at : at + 1] = [longest[:cut], longest[cut:]]
    for read in reads:
        outcomes = []
        for client in clients:
            try:
                if read is None:
                    client.close_connection()
                    outcomes.append("closed")
                else:
                    outcomes.append(_event(client.receive_data(read)))
            except h2.exceptions.ProtocolError as exc:
                outcomes.append((type(exc).__name__, str(exc)))
        assert outcomes[0] == outcomes[1]
        assert _state(clients[0]) == _state(clients[1])
        if isinstance(outcomes[0], tuple):
            break


def test_an_ordinary_response_takes_the_quick_path() -> None:
    """nginx's response (HEADERS, then DATA with END_STREAM) never reaches h2's frame
    buffer, and the events are h2's."""
    client = h2_client()
    client.send_headers(1, REQUEST, end_stream=True)
    encoder = hpack.Encoder()
    head = HeadersFrame(1, data=encoder.encode([(b":status", b"200"), (b"content-length", b"2")]))
    head.flags.add("END_HEADERS")
    body = DataFrame(1, data=b"ok")
    body.flags.add("END_STREAM")
    wire = SettingsFrame(0).serialize() + head.serialize() + body.serialize()
    cut = 9 + 5  # the reads may cut a frame anywhere: here, the head
    assert [type(e) for e in client.receive_data(wire[:cut])] == [h2.events.RemoteSettingsChanged]
    taken = []

    def refuse(frame: Any) -> list[Any]:
        taken.append(frame)
        return []

    client._receive_frame = refuse  # type: ignore[method-assign]
    events = client.receive_data(wire[cut:])
    assert taken == []
    assert [type(e) for e in events] == [
        h2.events.ResponseReceived,
        h2.events.DataReceived,
        h2.events.StreamEnded,
    ]
    assert events[0].headers == [(b":status", b"200"), (b"content-length", b"2")]
    assert events[1].data == b"ok"
    assert events[1].stream_ended is events[2]
    assert client.streams[1].state_machine.state is h2.stream.StreamState.CLOSED


def test_the_transitions_taken_quickly_are_h2s() -> None:
    assert h2conn._RECEIVE_QUICKLY


@pytest.mark.parametrize("header_encoding", [None, "utf-8"])
def test_another_configuration_takes_h2s_path(header_encoding: str | None) -> None:
    config = h2.config.H2Configuration(client_side=True, header_encoding=header_encoding)
    client = h2conn._Client(config=config)
    client.initiate_connection()
    client.send_headers(1, REQUEST, end_stream=True)
    head = HeadersFrame(1, data=hpack.Encoder().encode([(b":status", b"200")]))
    head.flags.add("END_HEADERS")
    head.flags.add("END_STREAM")
    events = client.receive_data(SettingsFrame(0).serialize() + head.serialize())
    status = events[1].headers[0]
    assert status == ((":status", "200") if header_encoding else (b":status", b"200"))
