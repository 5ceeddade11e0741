"""keepwarm's HPACK: request fields encoded by ``h2conn.RequestFieldEncoder`` and decoded by
hpack, the reference (the same fields come back, credentials never indexed, nothing ever
put in the server's dynamic table); response fields decoded by
``h2conn.ResponseFieldDecoder`` exactly as by hpack's own decoder, the dynamic table
included (pure logic, no network)."""

from __future__ import annotations

from typing import Any

import h2.connection
import h2.exceptions
import hpack
import pytest
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hypothesis import given, settings
from hypothesis import strategies as st

from h2_clients import h2_client
from keepwarm._upstream import h2conn
from keepwarm._upstream.h2conn import RequestFieldEncoder, ResponseFieldDecoder

STATIC_NAMES = [bytes(name) for name, _ in hpack.table.HeaderTable.STATIC_TABLE]
names = st.one_of(
    st.sampled_from(STATIC_NAMES),
    st.binary(min_size=1, max_size=40).map(lambda b: bytes(c | 0x20 for c in b if c != 0x3A)),
).filter(bool)
values = st.one_of(
    st.sampled_from([v for _, v in hpack.table.HeaderTable.STATIC_TABLE]),
    st.binary(max_size=300),  # past the 127-byte one-byte length, past what is kept
)
fields = st.tuples(names, values, st.booleans())


def _decoded(block: bytes) -> tuple[list[tuple[bytes, bytes, bool]], int]:
    decoder = hpack.Decoder()
    out = [(h[0], h[1], not h.indexable) for h in decoder.decode(block, raw=True)]
    return out, len(decoder.header_table.dynamic_entries)


def _headers(items: list[tuple[bytes, bytes, bool]]) -> list[Any]:
    return [NeverIndexedHeaderTuple(n, v) if never else (n, v) for n, v, never in items]


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.lists(fields, max_size=20))
def test_hpack_decodes_what_was_encoded(items: list[tuple[bytes, bytes, bool]]) -> None:
    encoder = RequestFieldEncoder()
    for _ in range(2):  # the second time from the kept encodings
        decoded, dynamic = _decoded(encoder.encode(_headers(items)))
        assert decoded == [(n, v, never) for n, v, never in items]
        assert dynamic == 0  # nothing indexed: the server's table stays empty


def test_static_entries_are_one_byte_and_credentials_never_indexed() -> None:
    encoder = RequestFieldEncoder()
    block = encoder.encode(
        [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":path", b"/"),
            (b"accept-encoding", b"gzip, deflate"),
            NeverIndexedHeaderTuple(b"authorization", b"Bearer secret"),
            HeaderTuple(b"x-custom", b"1"),
        ]
    )
    assert block[:4] == bytes((0x82, 0x87, 0x84, 0x90))  # static indexes 2, 7, 4, 16
    rest = block[4:]
    assert rest[0] == 0x1F and rest[1] == 23 - 15  # never indexed, static name 23
    decoded, _ = _decoded(block)
    assert decoded[4] == (b"authorization", b"Bearer secret", True)
    assert decoded[5] == (b"x-custom", b"1", False)


@pytest.mark.parametrize(
    ("name", "value"),
    [(b":path", b"/?token=secret"), (b"cookie", b"session=secret"), (b"x-long", b"v" * 257)],
)
def test_paths_cookies_and_long_values_are_not_kept(name: bytes, value: bytes) -> None:
    encoder = RequestFieldEncoder()
    encoder.encode([(b":method", b"GET"), (name, value)])
    assert all(key[0] != name for key in encoder._encoded)  # type: ignore[attr-defined]
    assert (b":method", b"GET") in encoder._encoded  # type: ignore[attr-defined]


def test_credentials_are_never_kept() -> None:
    encoder = RequestFieldEncoder()
    encoder.encode([NeverIndexedHeaderTuple(b"authorization", b"Bearer secret")])
    assert not encoder._encoded  # type: ignore[attr-defined]


response_fields = st.tuples(
    st.sampled_from(
        [b"server", b"date", b"content-type", b"set-cookie", b"location", b"x-custom", b"via"]
    ),
    st.sampled_from([b"nginx", b"Fri, 04 Dec 2026 10:00:00 GMT", b"text/html", b"a=1", b""])
    | st.binary(max_size=80),
    st.sampled_from(["indexed", "literal", "never"]),
)


def _response_block(encoder: hpack.Encoder, items: list[tuple[bytes, bytes, str]]) -> bytes:
    headers: list[Any] = []
    for name, value, how in items:
        if how == "never":
            headers.append(NeverIndexedHeaderTuple(name, value))
        elif how == "literal":
            headers.append(HeaderTuple(name, value))
        else:
            headers.append((name, value))
    return encoder.encode(headers, huffman=True)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.lists(response_fields, max_size=8), min_size=1, max_size=6), st.booleans())
def test_responses_decode_as_with_hpacks_decoder(
    blocks: list[list[tuple[bytes, bytes, str]]], small_table: bool
) -> None:
    # Several blocks on one connection: the dynamic table evolves (and, with a small
    # table, evicts) the same way in both decoders; remembered Huffman strings give the
    # same fields as decoding them.
    encoder = hpack.Encoder()
    ours, theirs = ResponseFieldDecoder(), hpack.Decoder()
    if small_table:
        encoder.header_table_size = 128
        for decoder in (ours, theirs):
            decoder.header_table.maxsize = 128
    for items in blocks:
        block = _response_block(encoder, items)
        got, expected = ours.decode(block, raw=True), theirs.decode(block, raw=True)
        assert got == expected
        assert [type(h) for h in got] == [type(h) for h in expected]
        assert list(ours.header_table.dynamic_entries) == list(theirs.header_table.dynamic_entries)


def test_cookies_credentials_and_locations_are_not_remembered() -> None:
    h2conn._HUFFMAN.clear()
    encoder = hpack.Encoder()
    secret = b"session=9f86d081884c7d659a2feaa0c55ad015"
    block = _response_block(
        encoder,
        [
            (b"set-cookie", secret, "literal"),
            (b"location", b"/next?token=abc123", "literal"),
            (b"x-token", b"never-indexed-secret", "never"),
            (b"server", b"nginx", "literal"),
        ],
    )
    assert ResponseFieldDecoder().decode(block, raw=True)[0][1] == secret
    remembered = set(h2conn._HUFFMAN.values())
    assert b"nginx" in remembered
    assert not remembered & {secret, b"/next?token=abc123", b"never-indexed-secret"}


def test_truncated_blocks_fail_as_in_hpack() -> None:
    block = _response_block(hpack.Encoder(), [(b"x-custom", b"value", "literal")])
    for cut in range(1, len(block)):
        errors = []
        for decoder in (ResponseFieldDecoder(), hpack.Decoder()):
            try:
                decoder.decode(block[:cut], raw=True)
                errors.append(None)
            except hpack.HPACKError as exc:
                # The bytes quoted after "from": hpack 4.0 shows a memoryview's repr.
                errors.append((type(exc), str(exc).split(" from ")[0]))
        assert errors[0] == errors[1]


# -- Whole blocks remembered -------------------------------------------------------------

_HUFFMAN_ENCODER = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_STATIC = len(hpack.table.HeaderTable.STATIC_TABLE)


def _string(data: bytes, huffman: bool) -> bytes:
    if huffman:
        data = _HUFFMAN_ENCODER.encode(data)
    length = bytearray(encode_integer(len(data), 7))
    if huffman:
        length[0] |= 0x80
    return bytes(length) + data


def _field(kind: str, index: int, name: bytes, value: bytes, huffman: bool) -> bytes:
    """One field representation of RFC 7541 6, written by hand: the kinds nginx, h2 and
    hypercorn send (and a few they do not), dynamic-table references included."""
    if kind == "indexed":
        first = encode_integer(index, 7)
        first[0] |= 0x80
        return bytes(first)
    prefix, flag = {"incremental": (6, 0x40), "without": (4, 0x00), "never": (4, 0x10)}[kind]
    head = encode_integer(index, prefix)  # index 0: a literal name follows
    head[0] |= flag
    literal_name = _string(name, huffman) if index == 0 else b""
    return bytes(head) + literal_name + _string(value, huffman)


block_fields = st.tuples(
    st.sampled_from(["indexed", "incremental", "without", "never"]),
    # 0: a literal name; up to the static table's size; beyond it, the dynamic table's.
    st.sampled_from([0, 0, 2, 8, 31, 54, _STATIC, _STATIC + 1, _STATIC + 3]),
    st.sampled_from([b"server", b"x-id", b"set-cookie", b"date", b"via", b"x-a", b"x-b", b"etag"]),
    st.sampled_from([b"nginx", b"Fri, 04 Dec 2026 10:00:00 GMT", b"text/plain", b"1", b""]),
    st.booleans(),
).filter(lambda f: not (f[0] == "indexed" and f[1] == 0))


def _block(size_update: int | None, fields: list[tuple[str, int, bytes, bytes, bool]]) -> bytes:
    head = b""
    if size_update is not None:
        update = encode_integer(size_update, 5)
        update[0] |= 0x20
        head = bytes(update)
    return head + b"".join(_field(*f) for f in fields)


raw_blocks = st.builds(
    _block,
    st.none() | st.sampled_from([0, 64, 4096]),  # a table size update first
    st.lists(block_fields, min_size=1, max_size=6),
)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(
    st.lists(raw_blocks, min_size=1, max_size=4),
    # -1: the table size allowed drops (SETTINGS_HEADER_TABLE_SIZE) before the next block
    st.lists(st.integers(-1, 3), min_size=1, max_size=10),
    st.booleans(),
)
def test_remembered_blocks_decode_as_with_hpacks_decoder(
    pool: list[bytes], picks: list[int], small_table: bool
) -> None:
    # Blocks sent again (nginx's every response within a second): the same fields, types,
    # dynamic table and errors as hpack's decoder, block after block, whether the block
    # came from memory or not.
    ours, theirs = ResponseFieldDecoder(), hpack.Decoder()
    if small_table:
        for decoder in (ours, theirs):
            decoder.header_table.maxsize = 64
    for pick in picks:
        if pick < 0:
            for decoder in (ours, theirs):
                decoder.max_allowed_table_size = 64
            continue
        block = pool[pick % len(pool)]
        results = []
        for decoder in (ours, theirs):
            try:
                results.append(("ok", decoder.decode(block, raw=True)))
            except hpack.HPACKError as exc:
                results.append(("error", type(exc)))
        assert results[0] == results[1]
        if results[0][0] == "error":
            return  # the connection ends at a decoding error: nothing after it to compare
        got, expected = results[0][1], results[1][1]
        assert [type(h) for h in got] == [type(h) for h in expected]
        assert list(ours.header_table.dynamic_entries) == list(theirs.header_table.dynamic_entries)
        assert ours.header_table_size == theirs.header_table_size


DATE = b"Fri, 04 Dec 2026 10:00:00 GMT"


def test_an_nginx_block_is_remembered_and_a_secret_one_is_not() -> None:
    server = _field("incremental", 54, b"", b"nginx", True)  # static name 54: server
    date = _field("incremental", 33, b"", DATE, True)
    plain = bytes([0x88]) + server + date  # :status 200
    cookie = plain + _field("without", 55, b"", b"session=SECRET", False)  # set-cookie
    dynamic = plain + bytes([0x80 | (_STATIC + 1)])
    decoder = ResponseFieldDecoder()
    for _ in range(3):
        first = decoder.decode(plain, raw=True)
        assert first == [(b":status", b"200"), (b"server", b"nginx"), (b"date", DATE)]
        decoder.decode(cookie, raw=True)
        decoder.decode(dynamic, raw=True)
    assert list(decoder._blocks) == [plain]
    # Each use added its two fields again, as hpack's decoder would.
    assert len(decoder.header_table.dynamic_entries) == 3 * 3 * 2


@pytest.mark.parametrize("kind", ["indexed", "name"])
def test_a_block_that_refers_to_the_dynamic_table_is_decoded_again_once_the_table_changed(
    kind: str,
) -> None:
    # The entry it refers to changes between uses: remembered, it would give the old one.
    first = _field("incremental", 0, b"x-a", b"1", False)
    second = _field("incremental", 0, b"x-b", b"2", False)
    if kind == "indexed":
        refers = bytes([0x80 | (_STATIC + 1)])  # the newest entry, whole
    else:
        refers = _field("without", _STATIC + 1, b"", b"v", False)  # its name, a new value
    ours, theirs = ResponseFieldDecoder(), hpack.Decoder()
    for block in (first, refers, second, refers):
        assert ours.decode(block, raw=True) == theirs.decode(block, raw=True)
    assert refers not in ours._blocks  # not as a block that needs no table
    # While the table does not change, it is remembered (h2's and CDNs' encoders refer to
    # the table for every field sent before).
    for _ in range(3):
        assert ours.decode(refers, raw=True) == theirs.decode(refers, raw=True)
    assert (refers, ours.header_table.changes) in ours._blocks


def test_a_remembered_block_is_held_to_the_header_list_size_as_in_hpack() -> None:
    block = bytes([0x88]) + _field("without", 0, b"x-long", b"v" * 100, False)
    ours, theirs = ResponseFieldDecoder(), hpack.Decoder()
    for decoder in (ours, theirs):
        decoder.decode(block, raw=True)
        decoder.max_header_list_size = 100
    assert block in ours._blocks
    for decoder in (ours, theirs):
        with pytest.raises(hpack.OversizedHeaderListError):
            decoder.decode(block, raw=True)


def test_a_table_size_update_makes_a_remembered_block_decode_again() -> None:
    # Shrunk to nothing, the table holds no entry the block refers to: an error, as in
    # hpack, not the fields remembered from before.
    first = _field("incremental", 0, b"x-a", b"1", False)
    refers = bytes([0x80 | (_STATIC + 1)])
    shrink = bytes([0x20])  # a table size update to 0 (RFC 7541 6.3)
    ours, theirs = ResponseFieldDecoder(), hpack.Decoder()
    for block in (first, refers, refers, shrink):
        assert ours.decode(block, raw=True) == theirs.decode(block, raw=True)
    assert (refers, ours.header_table.changes - 1) in ours._blocks
    for decoder in (ours, theirs):
        with pytest.raises(hpack.InvalidTableIndex):
            decoder.decode(refers, raw=True)


def _stream_state(client: Any, stream_id: int) -> tuple[Any, ...]:
    stream = client.streams[stream_id]
    return (
        stream.state_machine.state,
        stream.state_machine.client,
        stream.state_machine.headers_sent,
        stream._authority,
        stream.request_method,
        stream.outbound_flow_control_window,
        stream.inbound_flow_control_window,
        client.state_machine.state,
        client.highest_outbound_stream_id,
        client.open_outbound_streams,
    )


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.lists(fields, max_size=12),
    st.sampled_from([b"GET", b"HEAD", b"POST"]),
    st.booleans(),
    st.integers(min_value=0, max_value=3),
    st.sampled_from([None, 40, 16384]),
)
def test_request_headers_are_sent_as_by_h2(
    items: list[tuple[bytes, bytes, bool]],
    method: bytes,
    end_stream: bool,
    earlier: int,
    frame_size: int | None,
) -> None:
    """``_Client.send_headers`` queues the same bytes as h2's own and leaves h2's stream and
    connection in the same state, the stream's method and authority included (h2 reads
    the method to know that a HEAD response has no body); a block longer than a frame
    takes h2's path (CONTINUATION frames)."""
    headers = [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", b"example.com"),
        (b":path", b"/"),
        *_headers(items),
    ]
    sent: list[tuple[bytes, tuple[Any, ...]]] = []
    for lean in (True, False):
        client = h2_client(h2_sends=not lean)
        if frame_size is not None:
            client.max_outbound_frame_size = frame_size
        stream_id = 1
        for _ in range(earlier):  # streams opened before, still open
            client.send_headers(stream_id, headers, end_stream=False)
            stream_id = client.get_next_available_stream_id()
        client.data_to_send()
        client.send_headers(stream_id, headers, end_stream=end_stream)
        sent.append((bytes(client.data_to_send()), _stream_state(client, stream_id)))
    assert sent[0] == sent[1]


def test_request_headers_past_the_servers_stream_limit_fail_as_in_h2() -> None:
    for lean in (True, False):
        client = h2_client(h2_sends=not lean)
        client.remote_settings.max_concurrent_streams = 1
        client.remote_settings.acknowledge()  # in force, as once received
        client.send_headers(1, [(b":method", b"POST"), (b":path", b"/")], end_stream=False)
        with pytest.raises(h2.exceptions.TooManyStreamsError, match="Max outbound streams is 1"):
            client.send_headers(3, [(b":method", b"GET"), (b":path", b"/")], end_stream=True)
        assert 3 not in client.streams
