"""The fence: every part of keepwarm that subclasses, copies or touches private parts of
requests, urllib3, http.client, http.cookiejar or email.

keepwarm is fast because it skips work requests and urllib3 do on every request, and safe
because it changes a few of their steps (pool waits, stale connections, TLS contexts).
Both mean depending on how those libraries are written inside. That dependency lives
here, in one package, and nowhere else: outside ``keepwarm._upstream`` no module imports
a private upstream name or touches a private upstream attribute (the one exception is
listed below). ``tests/test_upstream.py`` checks this docstring against the code and the
installed libraries:

* every name listed here exists in the installed requests, urllib3 and Python;
* every private upstream name the fence uses is listed here, and none is used outside it;
* every upstream function keepwarm carries a copy of (kind ``copy``) has a fingerprint
  of its source for each verified version: a release that changes one fails the test
  with the name of the keepwarm code to re-read (``tests/fingerprint.py`` explains what
  a fingerprint ignores; ``scripts/upstream_fingerprints.py`` adds a release's).

Verified versions: requests 2.32.3 to 2.34.2 and urllib3 2.2.0 to 2.8.0 (fingerprints of
every release in between; the whole test suite runs against the lowest versions
``pyproject.toml`` accepts and the newest, in ``make test``), CPython 3.10 to 3.13
(fingerprints; the suite runs on the build machine's Python).

Modules:

* ``session``: requests' ``Session`` request path (``RequestsSessionBase``);
* ``prepare``: requests' ``Session.prepare_request`` without its per-request waste;
* ``transport``: ``KeepwarmAdapter``, requests' ``HTTPAdapter`` with keepwarm's pools;
* ``pool``: urllib3 pools that count, expire, bound waits and resend stale requests;
* ``connection``: urllib3 connections that count and time;
* ``wire``: HTTP/1.1 request heads written and response heads parsed with less work, and
  bodies read from plain TCP sockets without a poll before every receive, and from TLS
  sockets with fewer calls per record;
* ``cookies``: thread-safe and per-request cookie jars, cookie extraction;
* ``environment``: requests' proxy and netrc lookups, answered from a snapshot;
* ``tls``: one SSL context per TLS configuration (requests' CA bundle checks).
* ``hooks``: whether a tool (tracer, mock, recorder) replaced a point the fast path skips.
* ``http2``: urllib3's HTTPS pool handing out HTTP/2 streams (``H2Slot``) for connections;
* ``h2conn``: one HTTP/2 connection on h2's state machine (h2 is the optional ``http2`` extra).

Kinds: **copy**, keepwarm carries its own version of the upstream function (fingerprinted);
**override**, keepwarm replaces or wraps a private method upstream calls; **import**, a
private module-level name imported; **attribute**, a private attribute read or written.
"Fallback" says what happens where keepwarm's version does not apply; "Tests" names the
tests that would fail if the dependency broke.

Inventory
---------

Copies of requests (``requests.<module>.<name>``):

* ``requests.sessions.Session.__init__`` (copy) ->
  ``session.RequestsSessionBase._init_requests_state``. Without the two ``HTTPAdapter`` objects
  requests builds and keepwarm throws away. Tests: test_session.py (attributes stay a superset of
  requests').
* ``requests.sessions.Session.send`` (copy) -> ``session.RequestsSessionBase._send``. Fallback:
  redirects run requests' own ``resolve_redirects``. Tests: test_parity.py.
* ``requests.sessions.Session.merge_environment_settings`` (copy) ->
  ``session.RequestsSessionBase.merge_environment_settings``. Tests: test_environment.py.
* ``requests.sessions.Session.prepare_request`` (copy) ->
  ``session.RequestsSessionBase.prepare_request`` and ``prepare.prepare``. Tests: test_prepare.py
  (compares with requests' own), test_parity.py.
* ``requests.sessions.Session.mount`` (copy) -> ``session.RequestsSessionBase.mount``. Tests:
  test_threads.py.
* ``requests.sessions.SessionRedirectMixin.rebuild_auth`` (copy) ->
  ``session.RequestsSessionBase.rebuild_auth``. Tests: test_parity.py, test_security.py.
* ``requests.sessions.SessionRedirectMixin.rebuild_proxies`` (copy) ->
  ``session.RequestsSessionBase.rebuild_proxies``. Tests: test_environment.py, test_security.py.
* ``requests.sessions.merge_setting`` (copy) -> ``prepare.merge_setting``. Tests: test_prepare.py.
* ``requests.sessions.merge_hooks`` (copy) -> ``prepare._merge_hooks``. Tests: test_parity.py.
* ``requests.models.PreparedRequest.prepare_headers`` (copy) ->
  ``prepare._prepare_session_headers``. Fallback: requests' own for requests with headers of their
  own. Tests: test_prepare.py.
* ``requests.models.Response.content`` (copy) -> ``session.read_body``. Fallback:
  ``response.content`` for chunked bodies, announced lengths over ``session.ONE_READ_MAX``, hooks
  that read the body, non-urllib3 raws. A gzip body is inflated by ``session.gunzip`` (urllib3's
  ``GzipDecoder`` plus a check that the stream is whole). Under a ``Timeout(total=...)`` deadline
  the body is read in ``read1`` steps with the socket timeout re-armed to the time left
  (``session._read_body_by_deadline``). Tests: test_parity.py, test_faults.py, test_http11.py,
  test_deadline.py.
* ``requests.utils.resolve_proxies`` (copy) -> ``session.RequestsSessionBase._resolve_proxies``.
  Tests: test_environment.py.
* ``requests.utils.get_netrc_auth`` (copy) -> ``environment.EnvironmentSnapshot.netrc_auth``. Tests:
  test_environment.py, test_security.py.
* ``requests.utils.should_bypass_proxies`` (copy) ->
  ``environment.EnvironmentSnapshot.should_bypass``. Tests: test_environment.py.
* ``requests.utils.get_environ_proxies`` (copy) ->
  ``environment.EnvironmentSnapshot.environ_proxies``. Tests: test_environment.py.
* ``requests.adapters.HTTPAdapter.build_response`` (copy) ->
  ``transport.KeepwarmAdapter.build_response``. Tests: test_parity.py.
* ``requests.adapters.HTTPAdapter.get_connection_with_tls_context`` (copy) ->
  ``transport.KeepwarmAdapter.get_connection_with_tls_context``. Fallback: requests' own for proxied
  requests and unhashable certs. Tests: test_tls.py, test_pool.py.
* ``requests.adapters.HTTPAdapter.request_url`` (copy) -> ``transport.KeepwarmAdapter.request_url``.
  Fallback: requests' own with a proxy or a ``//`` path. Tests: test_parity.py.
* ``requests.adapters.HTTPAdapter.cert_verify`` (copy) -> ``transport.KeepwarmAdapter.cert_verify``
  and ``tls.resolve_verify``. Tests: test_tls.py.
* ``requests.adapters.HTTPAdapter.__setstate__`` (copy) -> ``session.reset_adapter_after_fork``.
  Tests: test_fork.py.
* ``requests.cookies.RequestsCookieJar.copy`` (copy) -> ``cookies.ThreadSafeCookieJar.copy``,
  ``cookies.RequestCookieJar.copy``. Tests: test_threads.py, test_parity.py.
* ``requests.structures.CaseInsensitiveDict.__setitem__`` (copy) -> ``transport._response_headers``,
  ``prepare._prepare_session_headers`` (fill ``_store`` directly). Tests: test_http11.py.

Copies of urllib3:

* ``urllib3.connectionpool.HTTPConnectionPool._get_conn`` (copy) ->
  ``pool._InstrumentedPool._get_conn``. Tests: test_pool.py, test_faults.py.
* ``urllib3.connectionpool.HTTPConnectionPool._put_conn`` (copy) ->
  ``pool._InstrumentedPool._put_conn`` and ``pool._grow``. With ``pool_maxsize="auto"`` a full
  pool grows instead of discarding: ``_grow`` raises the maxsize of the pool's ``QueueCls`` queue
  under a lock of keepwarm's own (``PoolState.grow_lock``), never the queue's: that is the
  stdlib's ``queue.LifoQueue`` (a ``maxsize`` attribute) or, under gevent's ``patch_all()``,
  gevent's (a ``maxsize`` property, no ``mutex``). Fallback: a queue that cannot grow gets
  urllib3's treatment of a full pool (the connection is closed, the response kept). Tests:
  test_pool.py, test_telemetry.py, test_gevent.py.
* ``urllib3.connection.HTTPConnection._new_conn`` (copy) -> ``connection._timed_new_conn`` and
  ``connection._new_conn_by`` (the call of a replaced ``create_connection``, its arguments and its
  mapping of errors to ``NameResolutionError``, ``ConnectTimeoutError``, ``NewConnectionError``).
  Tests: test_telemetry.py, test_faults.py, test_dns_recipes.py.
* ``urllib3.util.connection.create_connection`` (copy) -> ``connection._timed_new_conn``. DNS
  recipes reach it as they reach urllib3: ``allowed_gai_family`` (so ``HAS_IPV6``) is looked up
  on ``urllib3.util.connection`` and ``getaddrinfo`` on ``socket`` at each call. Fallback: while
  the module's ``create_connection`` is not urllib3's own function (checked by identity with
  the one found at import, itself recognised by its code's file), the replacement is called,
  as urllib3's ``_new_conn`` calls it (``connection._new_conn_by``; resolution and connect timed
  as one, the connect timeout cut to a total deadline's time left). Tests: test_telemetry.py,
  test_faults.py, test_dns_recipes.py.
* ``urllib3.connection.HTTPConnection.request`` (copy) -> ``wire.write_request``. Fallback:
  urllib3's own for chunked and streamed bodies and unusual headers. Tests: test_http11.py.
* ``urllib3.poolmanager.PoolManager.connection_from_host`` (copy) ->
  ``transport.KeepwarmAdapter.get_connection_with_tls_context``. Tests: test_tls.py, test_pool.py.
* ``urllib3._collections.HTTPHeaderDict.__getitem__`` (copy) -> ``transport._response_headers``.
  Fallback: requests' ``CaseInsensitiveDict(headers)`` for other header types. Tests:
  test_http11.py.

Copies of CPython:

* ``http.client.HTTPResponse.begin`` (copy) -> ``wire.FastHeadersHTTPResponse.begin`` (also skips
  every 1xx but 101, not only 100; a body announced over ``wire.LARGE_BODY`` on a plain TCP or
  TLS socket with a timeout is then read through ``wire._large_body_reader``: the head's reader
  emptied and detached, the same raw stream under a 1-byte buffer). Tests: test_http11.py,
  test_parity.py, test_faults.py, test_streaming.py.
* ``http.client.parse_headers`` (copy) -> ``wire.parse_headers``. Fallback: the email parser for
  anything but plain ``Name: value`` lines. One deliberate difference: a bare CR is read as a
  space (RFC 9112 2.2), not as a line break. Tests: test_http11.py (hypothesis-compared).
* ``http.client.HTTPConnection.putheader`` (copy) -> ``wire._header_lines`` (its checks). Fallback:
  http.client's own for bytes names and rejected characters. Tests: test_http11.py.
* ``ssl.SSLSocket.read`` (copy) -> ``wire.TLSSocketIO.readinto`` (called from the raw reader under a
  TLS response's ``fp``, in place of ``SocketIO.readinto`` -> ``recv_into`` -> ``read``).
  ``wire._read_first`` puts the class on the ``SocketIO`` of a TLS socket with a timeout.
  Fallback: CPython's reader once closed or unwrapped and after a timeout. Tests:
  test_streaming.py, test_tls.py.
* ``http.cookiejar.CookieJar.__iter__`` (copy) -> ``cookies.ThreadSafeCookieJar.__iter__``. Tests:
  test_threads.py.
* ``http.cookiejar.CookieJar.clear`` (copy) -> ``cookies.ThreadSafeCookieJar.clear``. Tests:
  test_threads.py.

Overrides of private methods:

* ``urllib3.connectionpool.HTTPConnectionPool._make_request`` (override) ->
  ``pool._InstrumentedPool._make_request`` (wraps it: the stale-connection resend). Tests:
  test_faults.py, test_retries.py.
* ``urllib3.contrib.socks.SOCKSConnection._new_conn`` (override) ->
  ``connection.InstrumentedSOCKSConnectionMixin._new_conn`` (calls it, times it). Tests:
  test_socks.py.
* ``urllib3.connectionpool.HTTPConnectionPool._get_conn`` (override) ->
  ``http2.H2HTTPSConnectionPool._get_conn`` (an ``H2Slot`` per request while the origin speaks
  HTTP/2; ``pool._InstrumentedPool``'s copy once it speaks HTTP/1.1; ``_put_conn`` likewise, and
  ``_make_request`` runs urllib3's own for slots). The slot answers the connection interface
  urllib3's ``urlopen``, ``_make_request`` and ``_validate_conn`` use (``connect``, ``request``,
  ``getresponse``, ``close``, ``timeout``, ``is_closed``, ``is_verified``,
  ``proxy_is_verified``, ``has_connected_to_proxy``). Tests: test_http2.py.
* ``h2.connection.H2Connection._receive_goaway_frame`` (override) -> ``h2conn._Client`` (h2
  closes its state machine on GOAWAY and then rejects the frames of the streams the server
  still finishes; h2 dispatches frames through bound methods collected in ``__init__``, so the
  override is what runs). Tests: test_http2.py (the GOAWAY tests, nginx's included).

* ``socket.SocketIO.readinto`` (override) -> ``wire.ReadFirstSocketIO.readinto`` (a receive
  straight on the descriptor first, ``os.readv``; CPython's own, which polls with the socket's
  timeout, when that would block, after a timeout and once closed). ``wire._read_first`` puts the
  class on the ``SocketIO`` that http.client's ``sock.makefile("rb")`` made (``__class__``
  assignment: ``makefile`` also counts its reference on the socket, which closing releases).
  Fallback: CPython's reader for gevent's sockets, sockets without a timeout (blocking) and
  anything but ``makefile``'s ``BufferedReader`` over a ``SocketIO`` (TLS: ``wire.TLSSocketIO``).
  Tests: test_streaming.py,
  test_faults.py, test_deadline.py, test_gevent.py.

Private imports:

* ``requests.auth._basic_auth_str`` (import) -> ``session`` (Proxy-Authorization on redirects).
  Tests: test_security.py.
* ``requests._internal_utils.to_native_string`` (import) -> ``prepare``. Tests: test_prepare.py.
* ``urllib3.util.connection._set_socket_options`` (import) -> ``connection``. Tests:
  test_telemetry.py.
* ``urllib3.util.timeout._DEFAULT_TIMEOUT`` (import) -> ``connection``. Tests: test_telemetry.py.
* ``urllib3.connection._ResponseOptions`` (import) -> ``wire.write_request``. Tests: test_http11.py.
* ``urllib3.connection._get_default_user_agent`` (import) -> ``wire.write_request``. Tests:
  test_http11.py.
* ``urllib3.util.request._METHODS_NOT_EXPECTING_BODY`` (import) -> ``wire.write_request``. Tests:
  test_http11.py.
* ``http.client._read_headers`` (import) -> ``wire``. Tests: test_http11.py.

Private attributes:

* ``requests.models.Response._content`` (attribute) -> ``session.read_body``. Tests: test_parity.py.
* ``requests.models.Response._content_consumed`` (attribute) -> ``session.read_body``. Tests:
  test_parity.py.
* ``requests.models.Response._next`` (attribute) -> ``session.RequestsSessionBase._send``. Tests:
  test_parity.py.
* ``requests.models.PreparedRequest._cookies`` (attribute) -> ``prepare.prepare``. Tests:
  test_parity.py.
* ``requests.structures.CaseInsensitiveDict._store`` (attribute) -> ``prepare``, ``transport``,
  ``wire``. Tests: test_prepare.py, test_http11.py.
* ``requests.adapters.HTTPAdapter._pool_connections`` (attribute) -> ``session``, ``transport``.
  Tests: test_fork.py.
* ``requests.adapters.HTTPAdapter._pool_maxsize`` (attribute) -> ``session``, ``transport``. Tests:
  test_fork.py, test_pool.py.
* ``requests.adapters.HTTPAdapter._pool_block`` (attribute) -> ``session``, ``transport``. Tests:
  test_fork.py.
* ``urllib3.connectionpool.HTTPSConnectionPool._new_conn`` (attribute) -> ``http2._Origin._open``
  (the pool's own connection, connected, then its socket taken over by HTTP/2). Tests:
  test_http2.py.
* ``urllib3.poolmanager.PoolManager._merge_pool_kwargs`` (attribute) -> ``transport``. Tests:
  test_tls.py.
* ``urllib3.contrib.socks.SOCKSProxyManager._socks_options`` (attribute) -> ``transport`` (a key of
  ``connection_pool_kw``: tells a SOCKS manager apart). Tests: test_socks.py.
* ``urllib3._collections.HTTPHeaderDict._container`` (attribute) -> ``transport._response_headers``.
  Tests: test_http11.py.
* ``urllib3.connection.HTTPConnection._dns_host`` (attribute) -> ``connection._timed_new_conn``.
  Tests: test_telemetry.py.
* ``urllib3.connection.HTTPConnection._response_options`` (attribute) -> ``wire.write_request``.
  Tests: test_http11.py.
* ``urllib3.response.HTTPResponse._pool`` (attribute) -> ``transport.KeepwarmAdapter.send``. Tests:
  test_pool.py (server keep-alive timeouts).
* ``urllib3.response.HTTPResponse._original_response`` (attribute) -> ``cookies.extract_cookies``.
  Tests: test_parity.py.
* ``http.client.HTTPConnection._output`` (attribute) -> ``wire.write_request``. Tests:
  test_http11.py.
* ``http.client.HTTPResponse._read_status`` (attribute) -> ``wire.FastHeadersHTTPResponse.begin``.
  Tests: test_http11.py.
* ``http.client.HTTPResponse._check_close`` (attribute) -> ``wire.FastHeadersHTTPResponse.begin``.
  Tests: test_http11.py.
* ``http.client.HTTPResponse._method`` (attribute) -> ``wire.FastHeadersHTTPResponse.begin``. Tests:
  test_http11.py.
* ``ssl.SSLSocket._sslobj`` (attribute) -> ``wire.TLSSocketIO.readinto``. Tests: test_streaming.py.
* ``socket.SocketIO._sock`` (attribute) -> ``wire.ReadFirstSocketIO.readinto``. Tests:
  test_streaming.py.
* ``socket.SocketIO._timeout_occurred`` (attribute) -> ``wire.ReadFirstSocketIO.readinto``. Tests:
  test_streaming.py.
* ``email.message.Message._headers`` (attribute) -> ``wire.PlainHTTPMessage``,
  ``wire.parse_headers``. Tests: test_http11.py.
* ``email.message.Message._payload`` (attribute) -> ``wire.parse_headers``. Tests: test_http11.py.
* ``http.cookiejar.CookieJar._cookies`` (attribute) -> ``cookies.ThreadSafeCookieJar.__iter__``,
  ``cookies.ThreadSafeCookieJar.check_shared``. Tests: test_threads.py, test_guard_cookies.py.
* ``http.cookiejar.CookieJar._cookies_lock`` (attribute) -> ``cookies.ThreadSafeCookieJar``. Tests:
  test_threads.py, test_fork.py, test_guard_cookies.py.

Outside the fence (listed exceptions):

* ``urllib3.util.timeout.Timeout._connect`` (attribute; exception: _config.py) ->
  ``_config.to_timeout``: a ``Session(timeout=urllib3.Timeout(connect=5))`` keeps keepwarm's default
  read timeout for the phase it leaves unset; urllib3's public ``read_timeout`` cannot tell an unset
  phase from ``None``. ``_config`` sits below the fence, so it stays. Tests: test_config.py.
* ``urllib3.util.timeout.Timeout._read`` (attribute; exception: _config.py) ->
  ``_config.to_timeout``, as above. Tests: test_config.py.
"""

__all__: list[str] = []
