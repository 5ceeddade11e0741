"""``keepwarm bench`` and the local HTTP/1.1 server it shares with the test suite.

The server lives in :mod:`keepwarm.bench._server` and the benchmark in
:mod:`keepwarm.bench._runner`. Nothing is imported here on purpose: the benchmark starts
its server with ``python -m keepwarm.bench._server``, and importing that module from this
package's ``__init__`` would make ``runpy`` warn that the module was already imported.
"""

from __future__ import annotations
