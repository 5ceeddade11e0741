"""Run a Python script in a child process with this checkout's keepwarm (tests only).

For what must not happen in the test process: a tool that patches the process for good
(gevent's monkey-patching, sentry-sdk's integrations), or one set up before keepwarm is
imported.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import keepwarm


def run_python(script: str, *args: str, timeout: float = 60) -> Any:
    """Run *script* (``python -W error -c``) with *args*; the JSON of its last line of
    output. Fails the test, with the child's stderr, when it exits non-zero."""
    src = str(pathlib.Path(keepwarm.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
