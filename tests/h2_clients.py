"""A keepwarm HTTP/2 client connection (``h2conn._Client``) set up as ``H2Connection`` sets
it up, for the tests that compare its quick paths with h2's own (pure logic, no network):
tests/test_hpack_fields.py (sending a request's headers), tests/test_h2_receive.py
(receiving a response's frames)."""

from __future__ import annotations

import functools
from typing import Any

import h2.connection
import h2.settings
import h2.windows

from keepwarm._upstream import h2conn
from keepwarm._upstream.h2conn import RequestFieldEncoder, ResponseFieldDecoder


def h2_client(
    *, h2_sends: bool = False, h2_receives: bool = False, small_windows: bool = False
) -> Any:
    """A client past its preface. ``h2_sends`` / ``h2_receives``: request headers sent, or
    frames received, through h2's own ``send_headers`` / ``receive_data`` (what the quick
    paths must match). ``small_windows``: 1,000 bytes a stream and 1,500 for the
    connection, for a server that overruns them."""
    client = h2conn._Client(config=h2conn._CONFIG)
    if small_windows:
        client.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}
        )
        client._inbound_flow_control_window_manager = h2.windows.WindowManager(1500)
    client.encoder = RequestFieldEncoder()
    client.decoder = ResponseFieldDecoder(client.decoder.max_header_list_size)
    if h2_sends:
        client.send_headers = functools.partial(h2.connection.H2Connection.send_headers, client)
    if h2_receives:
        client.receive_data = functools.partial(h2.connection.H2Connection.receive_data, client)
    client.initiate_connection()
    client.data_to_send()
    return client
