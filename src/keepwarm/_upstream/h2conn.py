"""One HTTP/2 connection (RFC 9113), shared by every thread that sends on it.

Built on h2's state machine (python-hyper), which does the framing, HPACK and the
stream and flow-control bookkeeping; this module does the I/O and the locking.

How threads share it. All socket I/O is non-blocking and happens under one lock, which
also guards h2's state; nobody blocks while holding it. A thread that needs something
from the server (its response headers, body data, flow-control window) waits in
:meth:`H2Connection._wait_for`: if no other thread is already waiting on the socket, it
becomes the reader, waits for the socket outside the lock (``select``), then reads what
arrived, feeds it to h2 and hands each event to its stream, and wakes the others; if
another thread is the reader, it sleeps on a gate of its own until woken or its own
timeout ends. So a lone thread reads its own response with no hand-off, and threads never read
or write the TLS stream at the same time (OpenSSL objects are not safe for that).

What RFC 9113 asks, and where:

* GOAWAY (6.8): streams up to the server's ``last_stream_id`` go on and finish; streams
  above it were never processed and fail with :class:`StreamRefused`, which the caller
  sends again on a new connection whatever the method. h2 itself closes its state
  machine on GOAWAY and then rejects the DATA of the streams the server is still
  finishing, the bug behind httpcore's failures across GOAWAY; :class:`_Client` keeps it
  open (the one override of h2's internals, listed in the fence's inventory).
* REFUSED_STREAM (8.7) is a refusal too. Any other RST_STREAM fails that stream alone
  (:class:`StreamReset`).
* A malformed response (8.1.1) is a stream error: a body that does not match its
  Content-Length, or a header block h2's validation rejects (an upper-case field name, a
  connection-specific field, a value with CR, LF or NUL, pseudo-fields out of place).
  That stream is reset and fails (:class:`MalformedResponse`); the connection and its
  other streams go on, as over HTTP/1.1, where a bad response spoils only its own
  connection. h2 treats both as connection errors.
* Flow control (5.2): a stream's credit is given back only as its body is consumed, so an
  unread response buffers at most :data:`STREAM_WINDOW`; the connection's credit is given
  back as data arrives, so a stream nobody reads never starves the others. A stream whose
  reader drained everything and had to wait for more is held back by its window, not by
  its reader: its window doubles when its credit is given back, up to
  :data:`STREAM_WINDOW_MAX` (as TCP's receive window grows; a 1 MiB window is 50 MB/s at
  20 ms of round trip). Uploads send
  no more than the server's windows allow and wait for WINDOW_UPDATE.
* SETTINGS_MAX_CONCURRENT_STREAMS: :meth:`H2Connection.reserve` admits a stream only
  within the server's limit (read before the connection is first used).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import math
import re
import select
import socket
import ssl
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import h2.stream
import hpack.hpack
import hpack.table
from h2.connection import AllowedStreamIDs, ConnectionInputs, ConnectionState, _decode_headers
from h2.errors import ErrorCodes
from h2.exceptions import (
    InvalidBodyLengthError,
    StreamClosedError,
    StreamIDTooLowError,
    TooManyStreamsError,
)
from h2.settings import SettingCodes
from h2.stream import StreamInputs, StreamState
from h2.utilities import (
    CONNECTION_HEADERS,
    HeaderValidationFlags,
    is_informational_response,
    validate_headers,
)
from hpack import HeaderTuple, HPACKDecodingError, NeverIndexedHeaderTuple
from hpack.hpack import decode_integer, encode_integer
from hpack.huffman_table import decode_huffman
from hyperframe.frame import DataFrame, RstStreamFrame

from keepwarm._bounded import remember
from keepwarm._forks import after_fork_in_child

__all__ = [
    "CONNECTION_WINDOW",
    "STREAM_WINDOW",
    "STREAM_WINDOW_MAX",
    "ConnectionLost",
    "H2Connection",
    "H2ReadTimeout",
    "MalformedResponse",
    "StreamRefused",
    "StreamReset",
]

#: What one stream may have buffered unread: the per-stream window keepwarm announces.
STREAM_WINDOW: Final = 1 << 20
#: The widest a stream's window grows for a reader that keeps up (see the module doc).
STREAM_WINDOW_MAX: Final = 1 << 24
#: The connection-level window: wide, because its credit is returned as data arrives
#: (what streams may buffer is bounded by their own windows), and wider than a stream's
#: widest, so one fast stream is not held back by it.
CONNECTION_WINDOW: Final = 1 << 26
#: Until the server's SETTINGS say otherwise (RFC 9113 recommends at least 100).
_DEFAULT_MAX_STREAMS: Final = 100
#: At most this many streams at once on one connection, whatever the server allows.
_MAX_STREAMS: Final = 1000
_READ_SIZE: Final = 1 << 16
_WRITE_SIZE: Final = 1 << 16
#: Bytes queued for the socket beyond which a sender waits for the socket to drain.
_OUTBOUND_LIMIT: Final = 1 << 20
#: Reads in one turn of the reader, so one busy connection cannot hold the lock forever.
_READS_PER_TURN: Final = 64
#: The response head keepwarm accepts (SETTINGS_MAX_HEADER_LIST_SIZE): what http.client
#: accepts over HTTP/1.1, 100 lines of up to 64 KiB. h2's default, 64 KiB in all, made a
#: larger head a protocol error that ended the connection and every stream on it.
_MAX_HEADER_LIST: Final = 100 * (1 << 16)
#: Stream ids are 31-bit and odd for the client: a connection that used them up retires.
_LAST_STREAM_ID: Final = (1 << 31) - 1

_monotonic = time.monotonic


class StreamRefused(ConnectionError):
    """The server did not process this stream (GOAWAY above it, or REFUSED_STREAM): it is
    safe to send it again on another connection, whatever its method (RFC 9113 8.7).

    ``progress``: the connection did serve other streams (a GOAWAY naming a last stream
    above 0, a local limit): a refusal that comes with the server working is not one of
    a server that refuses everything."""

    def __init__(self, message: str, progress: bool = False) -> None:
        super().__init__(message)
        self.progress = progress


class StreamReset(ConnectionError):
    """The server reset this stream (RST_STREAM): this request failed, the connection and
    its other streams go on."""


class ConnectionLost(ConnectionResetError):
    """The HTTP/2 connection ended (the server closed it, broke the protocol, or a socket
    error) while this stream was open."""


class H2ReadTimeout(TimeoutError):
    """Nothing arrived for this stream within the read timeout."""


class _Poller:
    """Waits for one connection's socket (readable, or writable when asked) or its waker
    (readable); one poll object kept per connection, used by one reader at a time. poll(),
    unlike select(), takes any file descriptor number; gevent patches both."""

    def __init__(self, sock: Any, waker: Any) -> None:
        self._fd = sock.fileno()
        self._sock = sock
        self._waker = waker
        self._write = False
        if hasattr(select, "poll"):
            self._poll: Any = select.poll()
            self._poll.register(self._fd, select.POLLIN)
            self._poll.register(waker, select.POLLIN)
        else:  # pragma: no cover  # Windows
            self._poll = None

    def wait(self, write: bool, timeout: float | None) -> tuple[bool, bool, bool]:
        """``(readable, writable)`` of the socket, and whether the waker was rung; an
        error or hang-up counts as readable (the read that follows says what happened)."""
        poll = self._poll
        if poll is None:  # pragma: no cover  # Windows
            readable, writable, _ = select.select(
                [self._sock, self._waker], [self._sock] if write else [], [self._sock], timeout
            )
            return self._sock in readable, bool(writable), self._waker in readable
        if write != self._write:
            poll.modify(self._fd, select.POLLIN | select.POLLOUT if write else select.POLLIN)
            self._write = write
        # Milliseconds, rounded up: a wait cut short by rounding would spin.
        events = poll.poll(None if timeout is None else max(0, math.ceil(timeout * 1000)))
        mask = 0
        woken = False
        for fd, event in events:
            if fd == self._fd:
                mask = event
            else:
                woken = True
        ready = bool(mask & (select.POLLIN | select.POLLERR | select.POLLHUP))
        return ready, bool(mask & select.POLLOUT), woken


#: Every connection of this process, to forget in a child after fork().
_live: weakref.WeakSet[H2Connection] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for conn in list(_live):
        conn._forget_after_fork()


after_fork_in_child(_after_fork_in_child)


def _copy(error: BaseException) -> BaseException:
    copy = type(error)(*error.args)
    copy.__dict__.update(error.__dict__)
    return copy


def _error_name(code: int) -> str:
    try:
        return f"{ErrorCodes(code).name} (0x{code:x})"
    except ValueError:
        return f"0x{code:x}"


#: Request headers arrive from requests validated (no CR/LF, names checked) and from
#: :class:`keepwarm._upstream.http2.H2Slot` lower-cased, connection headers removed,
#: values stripped, credentials never-indexed (h2's normalisation rules, applied there):
#: h2's own outbound checks would do the same work again on every request (a fifth of
#: its CPU per request). What the server sends is validated and normalised as h2 does.
_CONFIG: Final = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    # Received heads are validated by H2Connection._malformed_head: the same rules, h2's
    # own code deciding whatever the quick check is unsure of, and a stream error where
    # h2 ends the connection.
    validate_inbound_headers=False,
)

#: The quick check of a received head (``_plainly_valid``): field names that are lower-case
#: tokens (RFC 9110 5.6.2), none of them connection-specific (h2's own list, RFC 9113
#: 8.2.2) or ``te`` (allowed with one value only), and values without NUL, CR or LF
#: (RFC 9113 8.2.1).
_TOKEN_NAME: Final = re.compile(rb"[a-z0-9!#$%&'*+.^_`|~-]+").fullmatch
_UNSURE_NAMES: Final = frozenset({*CONNECTION_HEADERS, b"te"})
_BAD_VALUE_BYTE: Final = re.compile(rb"[\x00\r\n]").search
#: h2's validation flags for a response's head (informational or final), and for trailers.
_HEAD_FLAGS: Final = HeaderValidationFlags(
    is_client=True, is_trailer=False, is_response_header=True, is_push_promise=False
)
_TRAILER_FLAGS: Final = HeaderValidationFlags(
    is_client=True, is_trailer=True, is_response_header=False, is_push_promise=False
)


def _plainly_valid(headers: list[tuple[bytes, bytes]], trailers: bool) -> bool:
    """Whether a received header block surely passes h2's validation of a response's
    head (or of trailers): a response head that begins with its one ``:status`` of three
    digits, no other pseudo-field, lower-case token names, none connection-specific,
    and values without NUL, CR, LF or whitespace at either end. Stricter than h2, and
    quicker (h2 runs a generator per rule and a Python loop over every byte): what this
    is not sure of, h2's own ``validate_headers`` decides."""
    fields = iter(headers)
    if not trailers:
        status = next(fields, None)
        if status is None or status[0] != b":status":
            return False
        value = status[1]
        if len(value) != 3 or not value.isdigit():
            return False
    for name, value in fields:
        if _TOKEN_NAME(name) is None or name in _UNSURE_NAMES:
            return False
        if value and (
            value[0] in (0x20, 0x09) or value[-1] in (0x20, 0x09) or _BAD_VALUE_BYTE(value)
        ):
            return False
    return True


#: RFC 7541 appendix A: (name, value) -> index for the static table's full entries, and
#: name -> the first index with that name.
_STATIC_FIELDS: Final[dict[tuple[bytes, bytes], int]] = {}
_STATIC_NAMES: Final[dict[bytes, int]] = {}
for _index, (_name, _value) in enumerate(hpack.table.HeaderTable.STATIC_TABLE, start=1):
    _STATIC_FIELDS.setdefault((_name, _value), _index)
    _STATIC_NAMES.setdefault(_name, _index)
#: Request fields kept encoded (bounded): not ``:path`` (query values), not cookies or
#: never-indexed fields (credentials), nothing long.
_ENCODED_MAX: Final = 512
_ENCODED_FIELD_MAX: Final = 256
_NOT_KEPT: Final = frozenset({b":path", b"cookie"})


def _hpack_integer(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 5.1: *value* on a *prefix_bits* prefix (hpack's ``encode_integer``),
    *first* holding the first byte's other bits."""
    out = encode_integer(value, prefix_bits)
    out[0] |= first
    return bytes(out)


def _hpack_field(name: bytes, value: bytes, never_indexed: bool) -> bytes:
    """One request field, encoded without the dynamic table (RFC 7541 6.1 and 6.2.2,
    6.2.3): a static entry by its index, else a literal (the name by static index where
    it has one) not indexed, or never indexed for a credential; no Huffman coding."""
    if not never_indexed:
        index = _STATIC_FIELDS.get((name, value))
        if index is not None:
            return bytes((0x80 | index,))
    first = 0x10 if never_indexed else 0x00
    name_index = _STATIC_NAMES.get(name)
    if name_index is not None:
        head = _hpack_integer(name_index, 4, first)
    else:
        head = bytes((first,)) + _hpack_integer(len(name), 7, 0) + name
    return head + _hpack_integer(len(value), 7, 0) + value


class RequestFieldEncoder:
    """HPACK for request headers with no dynamic table: every field a static entry or a
    literal, kept encoded for the next request (bounded; never a path, a cookie or a
    credential). In h2's place of ``hpack.Encoder``, whose ``encode`` h2 calls once per
    request (``encode(headers)``) and whose ``header_table_size`` it sets from the
    server's SETTINGS.

    hpack's encoder indexes each new field in the dynamic table, Huffman-codes it and
    searches the table for every field of every request: 15-20 us of CPU per request
    (docs/PERFORMANCE.md). This one costs a dictionary lookup per field; a request head
    is about 50 bytes longer than with indexing (the User-Agent and the authority
    repeated), which no server's frame limit comes near. An encoder that never inserts
    into its dynamic table needs no table size update (RFC 7541 4.2: the update signals a
    change the encoder makes; this one's table is always empty), whatever the server's
    SETTINGS_HEADER_TABLE_SIZE."""

    __slots__ = ("_encoded", "header_table_size")

    def __init__(self) -> None:
        self.header_table_size = 4096  # what h2 sets from the server's SETTINGS; unused
        self._encoded: dict[tuple[bytes, bytes], bytes] = {}

    def encode(self, headers: Iterable[Any], huffman: bool = True) -> bytes:
        encoded = self._encoded
        out: list[bytes] = []
        for header in headers:
            name, value = header[0], header[1]
            if isinstance(header, NeverIndexedHeaderTuple):
                out.append(_hpack_field(name, value, True))
                continue
            key = (name, value)
            field = encoded.get(key)
            if field is None:
                field = _hpack_field(name, value, False)
                if name not in _NOT_KEPT and len(value) <= _ENCODED_FIELD_MAX:
                    remember(encoded, key, field, _ENCODED_MAX)
            out.append(field)
        return b"".join(out)


#: Huffman-coded response field -> its decoding (RFC 7541 5.2), for the fields a server
#: sends the same on every response (Server, Content-Type, Date within its second...).
#: Bounded; short strings only; never a value of :data:`_NOT_REMEMBERED` (cookies,
#: credentials, locations) or of a never-indexed field.
_HUFFMAN: dict[bytes, bytes] = {}
_HUFFMAN_MAX: Final = 1024
_HUFFMAN_LENGTH_MAX: Final = 64
_NOT_REMEMBERED: Final = frozenset(
    {
        b"set-cookie",
        b"cookie",
        b"authorization",
        b"proxy-authorization",
        b"www-authenticate",
        b"proxy-authenticate",
        b"location",
        b"content-location",
    }
)
_hpack_log: Final = logging.getLogger(hpack.hpack.__name__)


def _huffman(data: bytes, keep: bool) -> bytes:
    decoded = _HUFFMAN.get(data)
    if decoded is not None:
        return decoded
    decoded = decode_huffman(data)
    if keep and len(data) <= _HUFFMAN_LENGTH_MAX:
        remember(_HUFFMAN, data, decoded, _HUFFMAN_MAX)
    return decoded


#: Header blocks one decoder remembers (:class:`ResponseFieldDecoder`), and the longest.
_BLOCKS_MAX: Final = 32
_BLOCK_LENGTH_MAX: Final = 1024
#: Indexes above this refer to the dynamic table (RFC 7541 2.3.3).
_STATIC_ENTRIES: Final = len(hpack.table.HeaderTable.STATIC_TABLE)


class _CountedTable(hpack.table.HeaderTable):
    """hpack's header table, counting its changes (an entry added, the size changed):
    a header block decodes to the same fields whenever the table's count is the same."""

    def __init__(self) -> None:
        self.changes = 0
        super().__init__()

    def add(self, name: bytes, value: bytes) -> None:
        self.changes += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return hpack.table.HeaderTable.maxsize.fget(self)  # type: ignore[attr-defined,no-any-return]

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.changes += 1
        hpack.table.HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class ResponseFieldDecoder(hpack.Decoder):
    """hpack's decoder, with the Huffman decoding of a response's literal fields
    remembered (:func:`_huffman`): hpack decodes Huffman codes bit by bit in Python, and
    nginx sends every response field as a Huffman-coded literal, the same strings on
    every response: a quarter of hpack's CPU per response.

    And whole header blocks remembered (no table size update in them, nothing
    never-indexed or of :data:`_NOT_REMEMBERED`), of two kinds:

    * a block that refers to no entry of the dynamic table decodes to the same fields
      whatever the table holds; what it adds to the table is added again on every use.
      nginx sends the same block for every response of a second (its Date): 20 us of
      client CPU per response;
    * a block that refers to the table and adds nothing to it decodes to the same
      fields while the table is unchanged (:class:`_CountedTable`): servers on h2's or
      a CDN's encoder refer to the table for every field they sent before."""

    def __init__(self, max_header_list_size: int = 65536) -> None:
        super().__init__(max_header_list_size)
        self.header_table: _CountedTable = _CountedTable()
        #: block, or (block, the table's count of changes) for one that refers to the
        #: table -> (its fields, what it adds to the dynamic table, its header list size).
        self._blocks: dict[Any, tuple[list[Any], list[tuple[bytes, bytes]], int]] = {}
        #: While a block is decoded: whether it may be remembered, whether it refers to
        #: no dynamic entry, what it added.
        self._rememberable = False
        self._state_free = False
        self._added: list[tuple[bytes, bytes]] = []

    def decode(self, data: bytes, raw: bool = False) -> Any:
        """hpack's ``decode``, or a remembered block's fields (a new list) with its
        additions to the dynamic table made again, after the same checks: the header
        list size, and the table size hpack checks after every block."""
        remembered = None
        table = self.header_table
        keyable = raw and type(data) is bytes  # a memoryview is not hashable
        if keyable:
            remembered = self._blocks.get(data) or self._blocks.get((data, table.changes))
        if (
            remembered is not None
            and remembered[2] <= self.max_header_list_size
            and not _hpack_log.isEnabledFor(logging.DEBUG)
        ):
            fields, added, _ = remembered
            add = table.add
            for name, value in added:
                add(name, value)
            self._assert_valid_table_size()
            return list(fields)
        self._rememberable = keyable and len(data) <= _BLOCK_LENGTH_MAX
        self._state_free = True
        self._added = []
        changes = table.changes
        try:
            decoded = list(super().decode(data, raw))
        finally:
            rememberable, self._rememberable = self._rememberable, False
        # One that refers to the table is found again only at the same count of changes:
        # never if it added to the table itself.
        if rememberable and (self._state_free or not self._added):
            if len(self._blocks) >= _BLOCKS_MAX:
                self._blocks.clear()
            size = sum(hpack.table.table_entry_size(name, value) for name, value in decoded)
            key = data if self._state_free else (data, changes)
            self._blocks[key] = (decoded[:], self._added, size)
        self._added = []
        return decoded

    def _decode_indexed(self, data: bytes | memoryview) -> tuple[Any, int]:
        if decode_integer(data, 7)[0] > _STATIC_ENTRIES:
            self._state_free = False  # the dynamic table's
        return super()._decode_indexed(data)

    def _update_encoding_context(self, data: bytes | memoryview) -> int:
        self._rememberable = False
        return super()._update_encoding_context(data)

    def _decode_literal(self, data: bytes | memoryview, should_index: bool) -> tuple[Any, int]:
        """hpack's ``Decoder._decode_literal`` (4.0 to 4.2, fingerprinted), with
        :func:`_huffman` for its ``decode_huffman`` and the debug log only when enabled."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        total_consumed = 0
        if should_index:
            indexed_name = data[0] & 0x3F
            name_len = 6
            not_indexable = False
        else:
            high_byte = data[0]
            indexed_name = high_byte & 0x0F
            name_len = 4
            not_indexable = bool(high_byte & 0x10)
        if indexed_name:
            index, consumed = decode_integer(data, name_len)
            name = self.header_table.get_by_index(index)[0]
            if index > _STATIC_ENTRIES:
                self._state_free = False  # a name from the dynamic table
            total_consumed = consumed
            length = 0
        else:
            data = data[1:]
            length, consumed = decode_integer(data, 7)
            name = data[consumed : consumed + length]
            if len(name) != length:
                raise HPACKDecodingError("Truncated header block")
            if data[0] & 0x80:
                name = _huffman(name, True)
            total_consumed = consumed + length + 1
        data = data[consumed + length :]
        length, consumed = decode_integer(data, 7)
        value = data[consumed : consumed + length]
        if len(value) != length:
            raise HPACKDecodingError("Truncated header block")
        if data[0] & 0x80:
            keep = not not_indexable and bytes(name).lower() not in _NOT_REMEMBERED
            value = _huffman(value, keep)
        total_consumed += length + consumed
        header: Any = (
            NeverIndexedHeaderTuple(name, value) if not_indexable else HeaderTuple(name, value)
        )
        if self._rememberable and (not_indexable or bytes(name).lower() in _NOT_REMEMBERED):
            self._rememberable = False  # never a secret kept
        if should_index:
            self.header_table.add(name, value)
            if self._rememberable:
                self._added.append((name, value))
        if _hpack_log.isEnabledFor(logging.DEBUG):
            _hpack_log.debug(
                "Decoded %s, total consumed %d bytes, indexed %s",
                header,
                total_consumed,
                should_index,
            )
        return header, total_consumed


class _Malformed:
    """The event of a malformed response (:meth:`_Client._receive_frame`)."""

    __slots__ = ("flow_controlled_length", "reason", "stream_id")

    def __init__(self, stream_id: int, reason: str, flow_controlled_length: int) -> None:
        self.stream_id = stream_id
        self.reason = reason
        self.flow_controlled_length = flow_controlled_length


class MalformedResponse(ConnectionError):
    """The server's response on this stream broke HTTP/2's rules for a message (a body
    that does not match its Content-Length, a header block h2's validation rejects): this
    request failed, the connection and its other streams go on."""


#: RFC 9113 4.1: a frame's header (a 24-bit length as 16 and 8 bits, type, flags, stream
#: id); the HEADERS type and its END_STREAM and END_HEADERS flags (6.2).
_FRAME_HEAD: Final = struct.Struct(">HBBBL")
_DATA: Final = 0x0
_HEADERS: Final = 0x1
_END_STREAM: Final = 0x1
_END_HEADERS: Final = 0x4
_PADDED: Final = 0x8
_PRIORITY: Final = 0x20
_STREAM_ID: Final = 0x7FFFFFFF

_CLIENT_OPEN: Final = ConnectionState.CLIENT_OPEN
_HALF_CLOSED_LOCAL: Final = StreamState.HALF_CLOSED_LOCAL
_CLOSED: Final = StreamState.CLOSED
_Machine = h2.stream.H2StreamStateMachine
#: The transitions :meth:`_Client.receive_data` makes itself, as h2's tables have them (the
#: connection's make no change, the stream's call the functions named): checked once, when
#: this module loads; with another h2 that has them otherwise, h2 takes every frame.
_RECEIVE_QUICKLY: Final = (
    h2.connection.H2ConnectionStateMachine._transitions.get(
        (_CLIENT_OPEN, ConnectionInputs.RECV_HEADERS)
    )
    == (None, _CLIENT_OPEN)
    and h2.connection.H2ConnectionStateMachine._transitions.get(
        (_CLIENT_OPEN, ConnectionInputs.RECV_DATA)
    )
    == (None, _CLIENT_OPEN)
    and h2.stream._transitions.get((_HALF_CLOSED_LOCAL, StreamInputs.RECV_HEADERS))
    == (_Machine.response_received, _HALF_CLOSED_LOCAL)
    and h2.stream._transitions.get((_HALF_CLOSED_LOCAL, StreamInputs.RECV_DATA))
    == (_Machine.data_received, _HALF_CLOSED_LOCAL)
    and h2.stream._transitions.get((_HALF_CLOSED_LOCAL, StreamInputs.RECV_END_STREAM))
    == (_Machine.stream_ended, _CLOSED)
)


def _end_stream(machine: Any, got: list[Any]) -> None:
    """The stream's RECV_END_STREAM after the frame that carried it (``got``: that frame's
    events), as h2's state machine takes it from half-closed: closed, ``StreamEnded``
    linked to the frame's event and after it."""
    machine.state = _CLOSED
    ended = machine.stream_ended(_HALF_CLOSED_LOCAL)
    got[0].stream_ended = ended[0]
    got += ended


class _Client(h2.connection.H2Connection):
    """h2's connection, kept open after a GOAWAY so the streams the server accepted can
    finish (RFC 9113 6.8). h2 moves its state machine to CLOSED on GOAWAY, after which it
    raises ProtocolError on the DATA of those very streams; here the GOAWAY only becomes
    the ConnectionTerminated event, and :class:`H2Connection` stops opening streams."""

    #: The start of a frame the last read cut off (:meth:`receive_data`).
    _partial = b""

    def receive_data(self, data: Any) -> list[Any]:
        """h2's ``receive_data``, with an ordinary response's frames taken without h2's
        frame objects, flag sets, state-machine lookups and logger calls: half of h2's
        CPU for a response.

        The frames are cut here, as h2's ``FrameBuffer`` cuts them; a frame the read cut
        off waits in ``_partial`` for the rest, so h2's own buffer is always empty
        between calls. A HEADERS frame with a response's whole head and a DATA frame
        without padding, on a stream that sent its request whole (half-closed, local)
        while the connection is open, are taken by :meth:`_quick_headers` and
        :meth:`_quick_data`: the same checks, state changes, events and errors as h2's,
        in h2's order, calling h2's own methods for everything but the frame parsing,
        the logging and the state machines' table lookups (whose transitions
        :data:`_RECEIVE_QUICKLY` checked). Every other frame (SETTINGS, WINDOW_UPDATE,
        PING, GOAWAY, RST_STREAM, CONTINUATION, padding, trailers, priority, a frame
        h2 would refuse) goes to h2 whole, as h2 would have taken it."""
        if not _RECEIVE_QUICKLY or self.config is not _CONFIG:
            return super().receive_data(data)
        data = self._partial + bytes(data) if self._partial else bytes(data)
        self._partial = b""
        events: list[Any] = []
        end = len(data)
        start = 0
        streams = self.streams
        while end - start >= 9:
            high, low, kind, flags, stream_id = _FRAME_HEAD.unpack_from(data, start)
            length = high << 8 | low
            stop = start + 9 + length
            if length > self.max_inbound_frame_size:  # h2 refuses it as soon as it sees it
                events += super().receive_data(data[start:])
                return events
            if stop > end:
                break
            stream = streams.get(stream_id & _STREAM_ID)
            if (
                stream is None
                or self.state_machine.state is not _CLIENT_OPEN
                or stream.state_machine.state is not _HALF_CLOSED_LOCAL
                or self.incoming_buffer._headers_buffer
                or not (
                    (
                        kind == _DATA
                        and not flags & _PADDED
                        and self._quick_data(stream, data, start, stop, flags, events)
                    )
                    or (
                        kind == _HEADERS
                        and flags & (_END_HEADERS | _PADDED | _PRIORITY) == _END_HEADERS
                        and self._quick_headers(stream, data, start, stop, flags, events)
                    )
                )
            ):
                events += super().receive_data(data[start:stop])
            start = stop
        if start < end:
            self._partial = data[start:]
        return events

    def _quick_data(
        self, stream: Any, data: bytes, start: int, stop: int, flags: int, events: list[Any]
    ) -> bool:
        """h2's ``_receive_data_frame`` and ``H2Stream.receive_data`` for a DATA frame
        without padding, unless h2 would raise (a window overrun, a body longer or shorter
        than its Content-Length, data before headers): then False, and h2 takes it."""
        size = stop - start - 9
        machine = stream.state_machine
        window = self._inbound_flow_control_window_manager
        stream_window = stream._inbound_window_manager
        expected = stream._expected_content_length
        end_stream = bool(flags & _END_STREAM)
        if (
            not machine.headers_received
            or window.current_window_size < size
            or stream_window.current_window_size < size
            or (
                expected is not None
                and (
                    stream._actual_content_length + size > expected
                    or (end_stream and stream._actual_content_length + size != expected)
                )
            )
        ):
            return False
        window.window_consumed(size)
        got = machine.data_received(_HALF_CLOSED_LOCAL)
        stream_window.window_consumed(size)
        stream._track_content_length(size, end_stream)
        if end_stream:
            _end_stream(machine, got)
        got[0].data = data[start + 9 : stop]
        got[0].flow_controlled_length = size
        events += got
        return True

    def _quick_headers(
        self, stream: Any, data: bytes, start: int, stop: int, flags: int, events: list[Any]
    ) -> bool:
        """h2's ``_receive_headers_frame`` and ``H2Stream.receive_headers`` for a
        response's head in one frame, without priority or padding: False for trailers
        (h2 takes them). An error of the block's decoding or of its Content-Length is
        h2's: a connection error, the connection closed with GOAWAY as h2's
        ``receive_data`` closes it."""
        machine = stream.state_machine
        if machine.headers_received or machine.client is not True:
            return False
        end_stream = bool(flags & _END_STREAM)
        try:
            headers = _decode_headers(self.decoder, data[start + 9 : stop])
            if is_informational_response(headers):
                got = stream.receive_headers(headers, end_stream, self.config.header_encoding)[1]
            else:
                got = machine.response_received(_HALF_CLOSED_LOCAL)
                if end_stream:
                    _end_stream(machine, got)
                stream._initialize_content_length(headers)
                for name, _ in headers:
                    if name == b"cookie":  # h2 joins them into one field
                        validation = stream._build_hdr_validation_flags(got)
                        headers = stream._process_received_headers(headers, validation, None)
                        break
                else:
                    headers = list(headers)
                got[0].headers = headers
        except h2.exceptions.ProtocolError as e:
            self._terminate_connection(e.error_code)
            raise
        events += got
        return True

    def _receive_frame(self, frame: Any) -> list[Any]:
        """h2's ``_receive_frame`` with two changes (the rest is h2's, line for line, and
        fingerprinted):

        * without its first line, ``config.logger.trace("Received frame: %s",
          repr(frame))``: the ``repr`` is built before the logger (a no-op unless a
          logger is configured, and keepwarm configures none) is called, and a DATA
          frame's is a hex dump of its whole payload: a quarter of h2's CPU per DATA
          frame, and 2-3 us per request;
        * a body that does not match its Content-Length (``InvalidBodyLengthError``) is a
          malformed response, a stream error (RFC 9113 8.1.1): that stream is reset and
          fails (:class:`_Malformed`); h2 raises it out of ``receive_data`` and ends the
          connection, failing every other stream on it and dropping the events of the
          frames read before it."""
        events: list[Any]
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except InvalidBodyLengthError as e:
            flow = frame.flow_controlled_length if isinstance(frame, DataFrame) else 0
            self.reset_stream(frame.stream_id, ErrorCodes.PROTOCOL_ERROR)
            return [_Malformed(frame.stream_id, str(e), flow)]
        except StreamClosedError as e:
            # Closed by RST_STREAM: send RST_STREAM to the peer; else a connection error.
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = e.error_code
                self._prepare_for_sending([f])
                events = e._events
            else:
                raise
        except StreamIDTooLowError as e:
            # A stream id that seems invalid (the stream was cleaned up, or implicitly
            # closed by a newer one): a stream error if RST_STREAM closed it, else a
            # connection error.
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = ErrorCodes.STREAM_CLOSED
                self._prepare_for_sending([f])
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise StreamClosedError(e.stream_id) from e
            else:
                raise
        else:
            self._prepare_for_sending(frames)
        return events

    def send_headers(
        self,
        stream_id: int,
        headers: Any,
        end_stream: bool = False,
        priority_weight: int | None = None,
        priority_depends_on: int | None = None,
        priority_exclusive: bool | None = None,
    ) -> None:
        """h2's ``send_headers`` (``H2Connection.send_headers`` and ``H2Stream.send_headers``,
        fingerprinted) for a request's header block on a new stream: the same checks and
        state changes in the same order, the same bytes queued, less the work that
        keepwarm's configuration makes idle. h2 copies every field into a new list
        (``utf8_encode_headers``: they are bytes already), builds validation flags that
        validation and normalisation being off leave unread, scans the list again for the
        method and the authority, and builds and serialises a ``HeadersFrame`` object for
        nine bytes of frame header: half of its CPU for the request's headers (20 to
        10 us per request). Anything else (trailers, priority, a block longer than one
        frame) is h2's own.

        The block is encoded before the state changes, where h2 encodes after them: its
        encoder's table changes for good, keepwarm's :class:`RequestFieldEncoder` has
        none, so a state change that raises leaves nothing behind either way."""
        encoder: Any = self.encoder
        if (
            type(headers) is not list
            or stream_id in self.streams
            or priority_weight is not None
            or priority_depends_on is not None
            or priority_exclusive is not None
            or type(encoder) is not RequestFieldEncoder
        ):
            super().send_headers(
                stream_id,
                headers,
                end_stream,
                priority_weight,
                priority_depends_on,
                priority_exclusive,
            )
            return
        block: bytes = encoder.encode(headers)
        size = len(block)
        if not 0 < size <= self.max_outbound_frame_size:  # CONTINUATION frames: h2's
            super().send_headers(stream_id, headers, end_stream)
            return
        max_open_streams = self.remote_settings.max_concurrent_streams
        value = self.open_outbound_streams
        if value + 1 > max_open_streams:
            raise TooManyStreamsError(f"Max outbound streams is {max_open_streams}, {value} open")
        self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        stream = self._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
        machine = stream.state_machine
        machine.process_input(StreamInputs.SEND_HEADERS)
        flags = _END_HEADERS
        if end_stream:
            machine.process_input(StreamInputs.SEND_END_STREAM)
            flags |= _END_STREAM
        method = authority = None
        for name, field in headers:
            if name == b":method" and method is None:
                method = field
            elif name == b":authority" and authority is None:
                authority = field
        stream._authority = authority
        stream.request_method = method
        self._data_to_send += _FRAME_HEAD.pack(size >> 8, size & 0xFF, _HEADERS, flags, stream_id)
        self._data_to_send += block

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[Any]]:
        event = h2.events.ConnectionTerminated()
        try:
            event.error_code = ErrorCodes(frame.error_code)
        except ValueError:
            event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class _Stream:
    __slots__ = (
        "buffered",
        "consumed",
        "data",
        "data_at",
        "ended",
        "error",
        "events",
        "headers",
        "id",
        "method",
        "sent_whole",
        "starved",
        "stop_sending",
        "window",
    )

    def __init__(self, stream_id: int, method: str) -> None:
        self.id = stream_id
        self.method = method
        #: The response's header block, (name, value) bytes pairs with pseudo-headers.
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.data: collections.deque[bytes] = collections.deque()
        #: Bytes in ``data``; when the last of them came (``_monotonic``), noted while
        #: ``starved`` (what a waiting reader's timeout runs from).
        self.buffered = 0
        self.data_at = 0.0
        #: Bytes consumed since the stream's window was last credited.
        self.consumed = 0
        #: The stream's window: STREAM_WINDOW, doubled while its reader keeps up.
        self.window = STREAM_WINDOW
        #: Its reader found nothing to read and waited, since the last credit.
        self.starved = False
        self.ended = False
        self.sent_whole = False
        #: The server answered in full and asked for no more of the body (RST_STREAM
        #: NO_ERROR after its response, RFC 9113 8.1): the upload stops, without error.
        self.stop_sending = False
        self.error: BaseException | None = None
        #: Events received for the stream (or errors given it): what a ``by_stream``
        #: waiter (:class:`_Waiter`) compares to know whether to look again.
        self.events = 0


class _Waiter:
    """A thread asleep on the connection until ``ready()``: it sleeps on ``gate``, a lock
    of its own taken in advance, which the thread that wakes it releases.

    A wait on what a response's stream receives (its head, its body) is ``by_stream``:
    ``ready()`` can turn true only when an event for that stream comes, so
    :meth:`H2Connection._wake` asks it again only when the stream's ``events`` count moved
    since it last asked (``seen``), not after every read of every stream."""

    __slots__ = ("age", "by_stream", "gate", "ready", "seen", "stream", "woken")

    def __init__(
        self, ready: Callable[[], bool], stream: _Stream | None, by_stream: bool = False
    ) -> None:
        self.ready = ready
        self.stream = stream
        self.by_stream = by_stream and stream is not None
        self.seen = -1 if stream is None else stream.events
        #: Lower for an older stream (stream ids grow as requests go out); lowest for a
        #: wait on the connection itself (the server's SETTINGS, which come first).
        self.age = -1 if stream is None else stream.id
        self.gate = threading.Lock()
        self.gate.acquire()
        #: Its wake is queued or given (never twice: a gate is released once).
        self.woken = False


def _has_bytes(stream: _Stream, want: int) -> bool:
    """Whether ``want`` bytes of the stream's body have come, or its end."""
    return stream.ended or stream.buffered >= want


class _Turnstile:
    """The connection's lock, and the wakes decided while it was held, given once it is
    let go.

    A sleeper woken while the lock is still held (as ``Condition.notify`` wakes) only
    wakes to wait for the lock: a second trip through the scheduler, before it can take
    its response, every time a reader hands one over. Here ``wake`` queues the sleeper's
    gate and ``release`` opens it after the lock is free."""

    __slots__ = ("_lock", "_queued")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[threading.Lock] = []

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        queued = self._queued
        if not queued:
            self._lock.release()
            return
        self._queued = []
        self._lock.release()
        for gate in queued:
            gate.release()

    def wake(self, waiter: _Waiter) -> None:
        """Wake ``waiter`` when the lock (held by the caller) is let go."""
        if not waiter.woken:
            waiter.woken = True
            self._queued.append(waiter.gate)


class H2Connection:
    """An HTTP/2 connection on a connected TLS socket that negotiated ``h2``.

    The methods a request uses, in order: :meth:`reserve` (by the pool, under its own
    lock), :meth:`open_stream`, :meth:`send_body`, :meth:`response_headers`,
    :meth:`read` until it returns ``b""``, and always :meth:`release`.
    """

    def __init__(
        self,
        sock: ssl.SSLSocket,
        origin: str,
        *,
        on_release: Callable[[H2Connection], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.origin = origin
        self._sock = sock
        self._on_release = on_release
        #: Called once, when :meth:`close` closes the socket.
        self._on_close = on_close
        sock.settimeout(0)
        client = _Client(config=_CONFIG)
        client.encoder = RequestFieldEncoder()  # type: ignore[assignment]
        client.decoder = ResponseFieldDecoder(client.decoder.max_header_list_size)
        client.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                SettingCodes.ENABLE_PUSH: 0,
                SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                SettingCodes.MAX_HEADER_LIST_SIZE: _MAX_HEADER_LIST,
            },
        )
        # Not ours to announce (RFC 8441), and some servers refuse a handshake with it.
        del client.local_settings[SettingCodes.ENABLE_CONNECT_PROTOCOL]
        # h2 applies the setting once the server acknowledges it; a response read before
        # that gets the same bound.
        client.decoder.max_header_list_size = _MAX_HEADER_LIST
        client.initiate_connection()
        client.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._h2 = client
        self._lock = _Turnstile()
        self._waiters: list[_Waiter] = []
        #: Streams of responses dropped unclosed, released at the next use (``abandon``).
        self._abandoned: collections.deque[tuple[int, Any]] = collections.deque()
        #: Pokes the reader out of poll() when another thread queued bytes the socket
        #: did not take (the reader polls for writability only if there were any).
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self._poller = _Poller(sock, self._waker_r)
        self._streams: dict[int, _Stream] = {}
        self._out = bytearray(client.data_to_send())
        self._reading = False
        #: The sleeper woken to take over reading, until it does (or leaves): a thread
        #: that starts waiting meanwhile sleeps rather than read. The successor waits on
        #: the oldest stream, so its response is likely the next to arrive and it reads
        #: it itself; a thread that has just sent its request would read everyone
        #: else's and wake each of their threads.
        self._successor: _Waiter | None = None
        self._settings_seen = False
        #: Why the connection can no longer be used (None while it can).
        self._failure: BaseException | None = None
        #: The server's GOAWAY: the last stream it processes, and its error code.
        self.goaway_last: int | None = None
        self._goaway_code = 0
        self._closed = False
        self._conn_unacked = 0
        #: Streams reserved or open: the pool's measure of how busy the connection is.
        self.active = 0
        #: Streams opened so far (a stream after the first rides a reused connection).
        self.streams_opened = 0
        self.created = _monotonic()
        self.idle_since: float | None = self.created
        #: The TLS version, for timings.
        self.tls_version = sock.version()
        #: Set in a child process: the connection is the parent's, never to be touched.
        self._forked = False
        _live.add(self)

    # The pool's side -----------------------------------------------------------------

    def wait_ready(self, timeout: float | None) -> None:
        """Wait for the server's SETTINGS (its stream limit and windows), within
        ``timeout``. Until they arrive the connection takes one stream only
        (:meth:`reserve`): a new connection's first request goes out at once, with the
        connection preface (RFC 9113 3.4), instead of a round trip later; the threads
        that want a second stream wait here for the limit."""
        with self._lock:
            self._wait_for(lambda: self._settings_seen, timeout, "the server's HTTP/2 SETTINGS")

    @property
    def max_streams(self) -> int:
        """The server's SETTINGS_MAX_CONCURRENT_STREAMS (unset means unlimited: capped
        at :data:`_MAX_STREAMS`); 100 until its SETTINGS arrive."""
        if not self._settings_seen:
            return _DEFAULT_MAX_STREAMS
        return min(self._h2.remote_settings.max_concurrent_streams, _MAX_STREAMS)

    def usable(self) -> bool:
        """Whether new streams may go on this connection."""
        return (
            self._failure is None
            and self.goaway_last is None
            and not self._closed
            and self._h2.highest_outbound_stream_id < _LAST_STREAM_ID - 2 * _MAX_STREAMS
        )

    @property
    def awaiting_settings(self) -> bool:
        """Usable, and the server's SETTINGS (its stream limit) not read yet."""
        return not self._settings_seen and self.usable()

    def reserve(self) -> bool:
        """Take a place for one stream, if the connection has one (one only until the
        server's SETTINGS say how many it allows)."""
        with self._lock:
            if self._abandoned:
                self._release_abandoned()
            limit = self.max_streams if self._settings_seen else 1
            if not self.usable() or self.active >= limit:
                return False
            self.active += 1
            self.idle_since = None
            return True

    def check(self) -> bool:
        """Read whatever the server sent while nobody waited (a GOAWAY, a close) without
        blocking; whether the connection can still take streams."""
        if self._forked:
            return False
        with self._lock:
            if (
                self._failure is None
                and not self._closed
                and not self._reading
                and (self._sock.pending() or self._poller.wait(False, 0)[0])
            ):
                self._receive()
                self._flush()
                self._wake()
            return self.usable()

    def close(self) -> None:
        """Close the socket. Open streams fail with :class:`ConnectionLost`."""
        if self._forked:
            return
        with self._lock:
            if self._closed:
                return
            if self._failure is None:
                try:
                    self._h2.close_connection()
                    self._out += self._h2.data_to_send()
                    self._flush()
                except (h2.exceptions.ProtocolError, OSError):
                    pass
            self._closed = True
            self._fail(ConnectionLost(f"the HTTP/2 connection to {self.origin} was closed"))
            self._wake_all()
        for sock in (self._sock, self._waker_r, self._waker_w):
            with contextlib.suppress(OSError):
                sock.close()
        if self._on_close is not None:
            self._on_close()

    # One request's side --------------------------------------------------------------

    def open_stream(
        self, headers: list[tuple[bytes, bytes]], method: str, *, end_stream: bool
    ) -> int:
        """Send a request's header block on a new stream (a place taken with
        :meth:`reserve`); its id."""
        with self._lock:
            self._raise_if_unusable()
            try:
                stream_id = self._h2.get_next_available_stream_id()
                self._h2.send_headers(stream_id, headers, end_stream=end_stream)
            except h2.exceptions.TooManyStreamsError as exc:
                # The server lowered its limit since the place was reserved.
                raise StreamRefused(
                    f"the HTTP/2 connection to {self.origin} is at the server's stream limit",
                    progress=True,
                ) from exc
            except h2.exceptions.NoAvailableStreamIDError as exc:
                raise StreamRefused(
                    "the HTTP/2 connection ran out of stream ids", progress=True
                ) from exc
            stream = _Stream(stream_id, method)
            stream.sent_whole = end_stream
            self._streams[stream_id] = stream
            self.streams_opened += 1
            self._out += self._h2.data_to_send()
            self._flush()
            return stream_id

    def send_body(self, stream_id: int, chunks: Iterable[bytes], timeout: float | None) -> None:
        """Send the request body in DATA frames within the server's windows, then end the
        stream. ``timeout`` bounds each wait for window or socket."""
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                with self._lock:
                    stream = self._stream(stream_id)
                    self._wait_for(
                        functools.partial(self._may_send, stream),
                        timeout,
                        "the server's HTTP/2 flow-control window",
                        stream,
                    )
                    if stream.stop_sending:
                        return
                    # As many frames as the windows and the outbound buffer allow, in
                    # one turn of the lock and one write (a turn per 16 KiB frame cost
                    # more than the frame).
                    self._raise_for(stream)
                    size = min(
                        len(view),
                        self._h2.local_flow_control_window(stream_id),
                        max(_OUTBOUND_LIMIT - len(self._out), 1),
                    )
                    frame = self._h2.max_outbound_frame_size
                    for start in range(0, size, frame):
                        piece = view[start : min(start + frame, size)].tobytes()
                        self._h2.send_data(stream_id, piece)
                    self._out += self._h2.data_to_send()
                    self._flush()
                view = view[size:]
        with self._lock:
            stream = self._stream(stream_id)
            self._raise_for(stream)
            if stream.stop_sending:
                return
            self._h2.end_stream(stream_id)
            stream.sent_whole = True
            self._out += self._h2.data_to_send()
            self._flush()

    def response_headers(
        self, stream_id: int, timeout: float | None
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """Wait for the stream's response header block (informational 1xx blocks are
        skipped) and return it, with the whole body when the stream has already ended
        (a small response usually arrives with its headers: reading it now saves a turn
        of the lock per read), else None."""
        with self._lock:
            stream = self._stream(stream_id)
            self._wait_for(
                lambda: stream.headers is not None,
                timeout,
                "the response",
                stream,
                by_stream=True,
            )
            assert stream.headers is not None
            body = None
            if stream.ended and stream.error is None:
                body = b"".join(stream.data)
                stream.data.clear()
                stream.buffered = 0
            return stream.headers, body

    def read(
        self, stream_id: int, amount: int | None, timeout: float | None, *, fill: bool = False
    ) -> bytes:
        """Up to ``amount`` bytes of the body (all of it for None), at least one unless
        the body ended: ``b""`` then; with ``fill``, ``amount`` bytes unless the body ends
        first (a body of known length read as HTTP/1.1's buffered reader reads it; a body
        of unknown length, a stream of events say, is handed over as it arrives, as
        urllib3 hands over an HTTP/1.1 chunked body). ``timeout`` bounds each wait: the
        read fails once nothing has come for that long."""
        with self._lock:
            stream = self._stream(stream_id)
            parts: list[bytes] = []
            left = -1 if amount is None else amount
            while left:
                if fill or amount is None:
                    # Asleep until ``left`` bytes (the whole body, for None) have come, or
                    # the end: not woken for each DATA frame to take it and sleep again (a
                    # server that ends the stream with an empty DATA frame, as hypercorn
                    # does, wakes a small body's reader once instead of twice). At most half
                    # the stream's window: the server can send that much before any credit
                    # goes back (what was consumed and not yet credited is under a quarter).
                    want = stream.window // 2 if left < 0 else min(left, stream.window // 2)
                    if stream.buffered < want and not stream.ended:
                        stream.starved = True
                        self._wait_for(
                            functools.partial(_has_bytes, stream, want),
                            timeout,
                            "the response body",
                            stream,
                            arrivals=True,
                            by_stream=True,
                        )
                else:
                    if not stream.data and not stream.ended:
                        stream.starved = True
                    self._wait_for(
                        lambda: bool(stream.data) or stream.ended,
                        timeout,
                        "the response body",
                        stream,
                        by_stream=True,
                    )
                if amount is None:
                    data = b"".join(stream.data)
                    stream.data.clear()
                    stream.buffered = 0
                else:
                    data = self._take(stream, left)
                    left -= len(data)
                if data:
                    parts.append(data)
                    # The rest cannot come without the credit.
                    self._consumed(stream, len(data))
                if (stream.ended and not stream.data) or not (fill or amount is None):
                    break
            return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self, stream_id: int | None) -> None:
        """Give the stream's place back. A stream either side has not finished is reset
        (CANCEL): the server stops sending, and h2 stops counting it as open."""
        if self._forked:
            return
        with self._lock:
            finish = self._release(stream_id)
            self._wake()
        if finish:
            self.close()
        if self._on_release is not None:
            self._on_release(self)

    def abandon(self, stream_id: int, counters: Any) -> None:
        """:meth:`release` for a response the garbage collector found unclosed: queued,
        done at the connection's next use (a deque append takes no lock)."""
        self._abandoned.append((stream_id, counters))

    def _release_abandoned(self) -> None:
        while self._abandoned:
            stream_id, counters = self._abandoned.popleft()
            self._release(stream_id)
            if counters is not None:
                counters.on_checkin()

    def _release(self, stream_id: int | None) -> bool:
        """The work of :meth:`release`, lock held; whether the connection should close."""
        stream = self._streams.pop(stream_id, None) if stream_id is not None else None
        if stream_id is not None and stream is None:
            return False  # released already
        if (
            stream is not None
            and not (stream.ended and stream.sent_whole)
            and stream.error is None
            and self._failure is None
            and not self._closed
        ):
            try:
                self._h2.reset_stream(stream.id, ErrorCodes.CANCEL)
            except h2.exceptions.StreamClosedError:
                pass
            self._out += self._h2.data_to_send()
            self._flush()
        self.active -= 1
        if self.active == 0:
            self.idle_since = _monotonic()
        # Unusable (GOAWAY, failed, out of stream ids) and idle: nobody will use or close
        # it otherwise, the pool has let go of it.
        return self.active == 0 and not self._closed and not self.usable()

    def unreserve(self) -> None:
        """Give back a place taken with :meth:`reserve` and never used."""
        self.release(None)

    # Inside: waiting, reading, writing -----------------------------------------------

    def _stream(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise ConnectionLost(f"HTTP/2 stream {stream_id} is no longer open")
        return stream

    def _may_send(self, stream: _Stream) -> bool:
        return self._window(stream) > 0 and len(self._out) < _OUTBOUND_LIMIT

    def _window(self, stream: _Stream) -> int:
        self._raise_for(stream)
        return min(self._h2.local_flow_control_window(stream.id), self._h2.max_outbound_frame_size)

    def _raise_if_unusable(self) -> None:
        """Before a stream is opened: a connection that cannot take it (GOAWAY read, or
        closed, or failed since the place was reserved) has not seen the request, which
        is as safe to send elsewhere as a refused one."""
        if self.usable():
            return
        if self.goaway_last is not None:
            why = f"the server sent GOAWAY (last stream {self.goaway_last})"
        elif self._failure is not None:
            why = str(self._failure)
        else:
            why = "it was closed"
        raise StreamRefused(
            f"the HTTP/2 connection to {self.origin} could not take a new stream: {why}",
            progress=bool(self.goaway_last),
        )

    def _raise_for(self, stream: _Stream) -> None:
        if stream.error is not None:
            # A new exception per raise: one error can fail several threads' streams.
            raise _copy(stream.error)

    def _take(self, stream: _Stream, amount: int) -> bytes:
        chunk = stream.data.popleft() if stream.data else b""
        if len(chunk) > amount:
            stream.data.appendleft(chunk[amount:])
            chunk = chunk[:amount]
        else:
            while stream.data and len(chunk) + len(stream.data[0]) <= amount:
                chunk += stream.data.popleft()
        stream.buffered -= len(chunk)
        return chunk

    def _consumed(self, stream: _Stream, size: int) -> None:
        """Give the server back the stream's window for what the caller consumed, in
        steps of a quarter window (a WINDOW_UPDATE per DATA frame would double the frames);
        twice the window when the reader waited for data since the last step."""
        if not size or stream.ended or self._failure is not None or self._closed:
            return
        stream.consumed += size
        if stream.consumed >= stream.window // 4:
            credit = stream.consumed
            wider = stream.starved and stream.window < STREAM_WINDOW_MAX
            if wider:
                credit += stream.window  # the window doubles
            try:
                self._h2.increment_flow_control_window(credit, stream.id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                return
            if wider:
                stream.window *= 2
            stream.starved = False
            stream.consumed = 0
            self._out += self._h2.data_to_send()
            self._flush()

    def _wait_for(
        self,
        ready: Callable[[], bool],
        timeout: float | None,
        what: str,
        stream: _Stream | None = None,
        *,
        arrivals: bool = False,
        by_stream: bool = False,
    ) -> None:
        """Wait, holding ``self._lock`` (released while asleep), until ``ready()``; raise
        the stream's error, the connection's failure, or :class:`H2ReadTimeout`. With
        ``arrivals``, the timeout runs from the last bytes that came for ``stream``
        (``data_at``), as a wait for each arrival would time out. With ``by_stream``,
        ``ready()`` depends on nothing but what ``stream`` received (see :class:`_Waiter`).

        One thread at a time reads; the others sleep, each on a gate of its own, and
        the reader wakes only those whose wait is over after each read, then, when it
        leaves, one more to take over the socket (sixteen threads woken for every frame
        would spend the GIL on nothing). Wakes are given as the lock is let go
        (:class:`_Turnstile`)."""
        deadline = None if timeout is None else _monotonic() + timeout
        waiter: _Waiter | None = None
        try:
            while True:
                # What arrived before a stream's error is handed over first (response
                # headers, then a body read fails: as over HTTP/1.1).
                if ready():
                    return
                if stream is not None:
                    self._raise_for(stream)
                if self._failure is not None:
                    raise _copy(self._failure)
                if self._closed:
                    raise ConnectionLost(f"the HTTP/2 connection to {self.origin} was closed")
                if self._sock.pending():
                    # Decrypted bytes left from the last turn: the socket shows no sign.
                    self._receive()
                    self._flush()
                    self._wake()
                    continue
                left = None if deadline is None else deadline - _monotonic()
                if left is not None and left <= 0 and arrivals:
                    assert stream is not None and timeout is not None and deadline is not None
                    if stream.data_at + timeout > deadline:
                        deadline = stream.data_at + timeout
                        continue
                if left is not None and left <= 0:
                    raise H2ReadTimeout(
                        f"the server sent nothing for {timeout:g} s while waiting for {what} "
                        f"(HTTP/2, {self.origin})"
                    )
                if waiter is not None and self._successor is waiter:
                    self._successor = None  # woken to read: read
                if self._reading or self._successor is not None:
                    waiter = _Waiter(ready, stream, by_stream)
                    self._waiters.append(waiter)
                    self._lock.release()
                    try:
                        waiter.gate.acquire(True, -1 if left is None else left)
                    finally:
                        self._lock.acquire()
                        self._waiters.remove(waiter)
                    continue
                self._read_turn(left)
        finally:
            if waiter is not None and self._successor is waiter:
                self._successor = None  # woken to read, and leaving: another reads
            if not self._reading and self._successor is None:
                # A sleeper takes over reading (or finds its wait over), so that a reader
                # is back at the socket without waiting for the woken to run: the one on
                # the oldest stream, whose response is likely the next to come in (a
                # response's body after its head, too, which may come in several writes).
                successor = None
                for sleeper in self._waiters:
                    if not sleeper.woken and (successor is None or sleeper.age < successor.age):
                        successor = sleeper
                if successor is not None:
                    self._successor = successor
                    self._lock.wake(successor)

    def _read_turn(self, left: float | None) -> None:
        """Wait (lock released) for the socket, then read, write and wake (lock held)."""
        self._reading = True
        want_write = bool(self._out)
        self._lock.release()
        try:
            readable, writable, woken = self._poller.wait(want_write, left)
        except (OSError, ValueError) as exc:  # closed meanwhile
            readable = writable = False
            woken = True
            error: BaseException | None = exc
        else:
            error = None
        finally:
            self._lock.acquire()
            self._reading = False
        if woken:  # not otherwise: a receive on an empty waker is a failed call each turn
            self._drain_waker()
        if error is not None and not self._closed:
            self._fail(ConnectionLost(f"the HTTP/2 connection to {self.origin} broke: {error}"))
        if writable:
            self._flush()
        if readable:
            self._receive()
            self._flush()
        self._wake()

    def _wake(self) -> None:
        """Wake the sleepers whose wait is over (their condition met, or failed)."""
        if self._failure is not None or self._closed:
            self._wake_all()
            return
        for waiter in self._waiters:
            if waiter.woken:
                continue
            stream = waiter.stream
            if waiter.by_stream:
                assert stream is not None
                if stream.events == waiter.seen:
                    continue  # nothing came for its stream since it last looked
                waiter.seen = stream.events
            try:
                over = (stream is not None and stream.error is not None) or waiter.ready()
            except Exception:  # the check itself says the stream is done with
                over = True
            if over:
                self._lock.wake(waiter)

    def _wake_all(self) -> None:
        for waiter in self._waiters:
            self._lock.wake(waiter)

    def _drain_waker(self) -> None:
        with contextlib.suppress(OSError):
            while self._waker_r.recv(4096):
                pass

    def _flush(self) -> None:
        """Write what is queued, as far as the socket takes it without blocking; what it
        does not take, the reader (if a thread is one) writes when the socket can."""
        self._write()
        if self._out and self._reading:
            with contextlib.suppress(OSError):  # full: the reader is being woken anyway
                self._waker_w.send(b"\0")

    def _write(self) -> None:
        out = self._out
        while out and self._failure is None and not self._closed:
            try:
                # At most 64 KiB a call: a send that must be repeated is repeated with the
                # same bytes and no fewer of them, as OpenSSL requires.
                sent = self._sock.send(out[:_WRITE_SIZE])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            except OSError as exc:
                self._fail(ConnectionLost(f"the HTTP/2 connection to {self.origin} broke: {exc}"))
                return
            del out[:sent]

    def _receive(self) -> None:
        """Read what the socket has (without blocking), feed it to h2, dispatch events."""
        for _ in range(_READS_PER_TURN):
            try:
                data = self._sock.recv(_READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except OSError as exc:
                self._fail(ConnectionLost(f"the HTTP/2 connection to {self.origin} broke: {exc}"))
                return
            if not data:
                self._fail(ConnectionLost(self._closed_message()))
                return
            more = len(data) == _READ_SIZE or self._sock.pending()
            try:
                events = self._h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                self._out += self._h2.data_to_send()  # h2's GOAWAY, if it queued one
                self._flush()
                self._fail(ConnectionLost(f"HTTP/2 protocol error from {self.origin}: {exc}"))
                return
            for event in events:
                self._dispatch(event)
            self._out += self._h2.data_to_send()
            if not more and (not events or type(events[-1]) is h2.events.StreamEnded):
                # After a stream's end (nginx sends a small response whole, in one TLS
                # record) the socket is most likely empty: the next wait sees what else
                # comes, and no SSLWantReadError is paid for finding it empty. In the
                # middle of a response, read on: a server that writes a response's head,
                # body and end separately (hypercorn, h2-based servers: a TLS record each,
                # one a receive) has usually sent the rest by now, and the thread waiting
                # for it is woken once for the whole response instead of once a record
                # (docs/PERFORMANCE.md, issue 15, eighth stop).
                return

    def _closed_message(self) -> str:
        if self.goaway_last is not None:
            return (
                f"the server closed the HTTP/2 connection to {self.origin} after GOAWAY "
                f"(last stream {self.goaway_last}, {_error_name(self._goaway_code)})"
            )
        return f"the server closed the HTTP/2 connection to {self.origin}"

    def _dispatch(self, event: Any) -> None:
        kind = type(event)
        if kind is h2.events.DataReceived:
            self._conn_unacked += event.flow_controlled_length
            if self._conn_unacked >= CONNECTION_WINDOW // 4:
                self._h2.increment_flow_control_window(self._conn_unacked)
                self._conn_unacked = 0
            stream = self._streams.get(event.stream_id)
            padding = event.flow_controlled_length - len(event.data)
            if stream is None:
                return
            if padding:
                stream.consumed += padding
            if event.data:
                stream.events += 1
                stream.data.append(event.data)
                stream.buffered += len(event.data)
                if stream.starved:  # a reader waits (or waited) for it: see _wait_for
                    stream.data_at = _monotonic()
        elif kind is h2.events.ResponseReceived:
            stream = self._streams.get(event.stream_id)
            if stream is not None and not self._malformed_head(event, trailers=False):
                stream.events += 1
                stream.headers = event.headers
        elif kind is h2.events.InformationalResponseReceived:
            self._malformed_head(event, trailers=False)  # skipped, as over HTTP/1.1
        elif kind is h2.events.StreamEnded:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.events += 1
                stream.ended = True
        elif kind is h2.events.StreamReset:
            stream = self._streams.get(event.stream_id)
            if stream is not None and stream.ended:
                stream.stop_sending = True
            elif stream is not None:
                stream.events += 1
                if event.error_code == ErrorCodes.REFUSED_STREAM:
                    stream.error = StreamRefused(
                        f"the server refused HTTP/2 stream {event.stream_id} (REFUSED_STREAM) "
                        f"before processing it"
                    )
                else:
                    stream.error = StreamReset(
                        f"the server reset HTTP/2 stream {event.stream_id}: "
                        f"{_error_name(int(event.error_code))}"
                    )
        elif kind is h2.events.ConnectionTerminated:
            last = event.last_stream_id
            self.goaway_last = last if self.goaway_last is None else min(last, self.goaway_last)
            self._goaway_code = int(event.error_code)
            for stream in self._streams.values():
                if stream.id > self.goaway_last and stream.error is None:
                    stream.events += 1
                    stream.error = StreamRefused(
                        f"the server sent GOAWAY (last stream {self.goaway_last}, "
                        f"{_error_name(self._goaway_code)}): HTTP/2 stream {stream.id} "
                        f"was not processed",
                        progress=self.goaway_last > 0,
                    )
        elif kind is h2.events.RemoteSettingsChanged:
            self._settings_seen = True
        elif kind is h2.events.TrailersReceived:
            self._malformed_head(event, trailers=True)  # requests has no place for them
        elif kind is _Malformed:
            self._conn_unacked += event.flow_controlled_length
            stream = self._streams.get(event.stream_id)
            if stream is not None and stream.error is None:
                stream.events += 1
                stream.error = MalformedResponse(
                    f"malformed HTTP/2 response on stream {event.stream_id} from "
                    f"{self.origin}: {event.reason}"
                )

    def _malformed_head(self, event: Any, *, trailers: bool) -> bool:
        """Whether a received header block is malformed (RFC 9113 8.1.1, 8.2); if so,
        its stream is reset (PROTOCOL_ERROR) and fails with :class:`MalformedResponse`
        naming what h2 found wrong, and the connection goes on."""
        headers = event.headers
        if _plainly_valid(headers, trailers):
            return False
        try:
            for _ in validate_headers(headers, _TRAILER_FLAGS if trailers else _HEAD_FLAGS):
                pass
        except h2.exceptions.ProtocolError as exc:
            # h2 quotes a field's value: it may be a secret (a cookie, a token).
            reason = str(exc)
            for _, value in headers:
                if value:
                    reason = reason.replace(repr(value), "b'***'")
        else:
            # h2 before 4.3 lets these through; over HTTP/1.1 a value cannot hold them.
            name = next((n for n, v in headers if _BAD_VALUE_BYTE(v)), None)
            if name is None:
                return False
            reason = f"a NUL, CR or LF in the value of {name!r} (RFC 9113 8.2.1)"
        with contextlib.suppress(h2.exceptions.ProtocolError):  # closed already
            self._h2.reset_stream(event.stream_id, ErrorCodes.PROTOCOL_ERROR)
        stream = self._streams.get(event.stream_id)
        if stream is not None and stream.error is None:
            stream.events += 1
            stream.error = MalformedResponse(
                f"malformed HTTP/2 response on stream {event.stream_id} from "
                f"{self.origin}: {reason}"
            )
        return True

    def _forget_after_fork(self) -> None:
        """In a child process: the connection (its socket, its TLS state, its streams)
        is the parent's. Nothing here touches it again, not even to close it (a GOAWAY
        or a reset written by the child would end the parent's streams); the lock may
        have been held by a thread that does not exist here."""
        self._forked = True
        self._closed = True
        self._lock = _Turnstile()
        self._waiters = []
        self._failure = ConnectionLost(
            f"the HTTP/2 connection to {self.origin} belongs to the parent process"
        )

    def _fail(self, error: BaseException) -> None:
        """The connection is done: every open stream fails with ``error``."""
        if self._failure is None:
            self._failure = error
        for stream in self._streams.values():
            if stream.error is None and not stream.ended:
                stream.error = error
        self._wake_all()
