"""keepwarm's quick check of a received HTTP/2 header block (``h2conn._plainly_valid``)
against h2's own validation, the reference: every block the quick check passes, h2's
``validate_headers`` passes too and leaves unchanged, for a response's head and for
trailers; what the quick check is unsure of goes to h2's (pure logic, no network; the
stream error a malformed block now is, is tested in test_http2.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("h2", reason="the http2 extra (h2) is not installed")

import h2.exceptions
from h2.utilities import HeaderValidationFlags, validate_headers
from hypothesis import given, settings
from hypothesis import strategies as st

from keepwarm._upstream import h2conn

RESPONSE = HeaderValidationFlags(
    is_client=True, is_trailer=False, is_response_header=True, is_push_promise=False
)
TRAILERS = HeaderValidationFlags(
    is_client=True, is_trailer=True, is_response_header=False, is_push_promise=False
)

#: Bytes that matter to the rules (separators, whitespace, NUL, CR, LF, upper case, high
#: bytes), with plain ones.
ALPHABET = b'az09-_.!~:; \t\x00\r\n\x7f\x80\xffAZ"(/@'
names = st.one_of(
    st.sampled_from(
        [
            b":status",
            b":path",
            b":method",
            b":authority",
            b":protocol",
            b":x",
            b"te",
            b"connection",
            b"keep-alive",
            b"proxy-connection",
            b"transfer-encoding",
            b"upgrade",
            b"cookie",
            b"content-type",
            b"set-cookie",
            b"x-a",
        ]
    ),
    st.binary(max_size=12).map(lambda b: bytes(ALPHABET[c % len(ALPHABET)] for c in b)),
)
values = st.one_of(
    st.sampled_from([b"", b"200", b"204", b"99", b"2000", b"abc", b" ok", b"ok\t", b"trailers"]),
    st.binary(max_size=20).map(lambda b: bytes(ALPHABET[c % len(ALPHABET)] for c in b)),
)
blocks = st.lists(st.tuples(names, values), max_size=6)


def _h2_accepts(headers: list[tuple[bytes, bytes]], flags: HeaderValidationFlags) -> bool:
    try:
        out = list(validate_headers(headers, flags))
    except h2.exceptions.ProtocolError:
        return False
    assert out == headers  # validation never changes a block it passes
    return True


@settings(max_examples=3000, deadline=None)
@given(blocks, st.booleans(), st.booleans())
def test_what_the_quick_check_passes_h2_passes(
    block: list[tuple[bytes, bytes]], with_status: bool, trailers: bool
) -> None:
    headers = [(b":status", b"200"), *block] if with_status else block
    if h2conn._plainly_valid(headers, trailers):
        assert _h2_accepts(headers, TRAILERS if trailers else RESPONSE)


token_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
safe_values = st.text(
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;=/:.-"', max_size=40
).map(lambda v: v.strip().encode())


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(token_names.map(str.encode), safe_values), max_size=12))
def test_an_ordinary_head_takes_the_quick_path(block: list[tuple[bytes, bytes]]) -> None:
    # What servers send: the quick check, not h2's generators, decides it.
    block = [(n, v) for n, v in block if n not in h2conn._UNSURE_NAMES]
    assert h2conn._plainly_valid([(b":status", b"200"), *block], trailers=False)
    assert h2conn._plainly_valid(block, trailers=True)


@pytest.mark.parametrize(
    ("headers", "trailers"),
    [
        ([], False),  # no :status
        ([(b"content-type", b"a"), (b":status", b"200")], False),  # :status not first
        ([(b":status", b"200"), (b":status", b"200")], False),
        ([(b":status", b"200"), (b"X-Upper", b"1")], False),
        ([(b":status", b"200"), (b"connection", b"close")], False),
        ([(b":status", b"200"), (b"a", b" lead")], False),
        # A value with CR, LF or NUL: h2 before 4.3 lets it through; keepwarm does not
        # (test_http2.py's test_a_malformed_head_fails_its_stream_without_quoting_a_value).
        ([(b":status", b"200"), (b"te", b"gzip")], False),
        ([(b":status", b"200")], True),  # a pseudo-field in trailers
    ],
)
def test_malformed_blocks_are_not_passed_quickly_and_h2_rejects_them(
    headers: list[tuple[bytes, bytes]], trailers: bool
) -> None:
    assert not h2conn._plainly_valid(headers, trailers)
    assert not _h2_accepts(headers, TRAILERS if trailers else RESPONSE)
