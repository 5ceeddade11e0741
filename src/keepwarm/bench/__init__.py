"""``keepwarm bench`` and the local HTTP/1.1 server it shares with the test suite.

* :mod:`~keepwarm.bench._engine`: the embedded HTTP/1.1 server (also the tests'
  ``LocalServer``); :mod:`~keepwarm.bench._routes`: the routes it serves;
  :mod:`~keepwarm.bench._server`: it as the benchmark's server process.
* :mod:`~keepwarm.bench._servers`: that server and nginx as separate processes, and the
  throwaway CA; :mod:`~keepwarm.bench._proxy`: the ``--rtt`` latency proxy;
  :mod:`~keepwarm.bench._child`: driving those helper processes.
* :mod:`~keepwarm.bench._peers`: the clients compared; :mod:`~keepwarm.bench._scenarios`:
  how they are measured; :mod:`~keepwarm.bench._runner`: a whole run.
* :mod:`~keepwarm.bench._report`, :mod:`~keepwarm.bench._plot`: tables, JSON and charts;
  :mod:`~keepwarm.bench._options`: bounds and parsing.

Nothing is imported here on purpose: the benchmark starts its helpers with ``python -m
keepwarm.bench._server`` (and ``._proxy``), and importing those modules from this
package's ``__init__`` would make ``runpy`` warn that the module was already imported.
"""

from __future__ import annotations
