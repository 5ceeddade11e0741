"""Record the source fingerprints of the upstream functions keepwarm carries copies of.

tests/test_upstream.py fails when the installed requests, urllib3, h2, hpack or Python has a version
of a copied function that keepwarm was not checked against. Once the keepwarm code named
in the failure has been re-read against the new upstream code (and fixed where needed),
record the release here, then commit tests/upstream_fingerprints.json:

    .venv/bin/python scripts/upstream_fingerprints.py requests==2.35.0 urllib3==2.9.0
    .venv/bin/python scripts/upstream_fingerprints.py --python /usr/bin/python3.14

A ``package==version`` is downloaded from the package index as a wheel (nothing is
installed); ``--python`` reads the standard library of that interpreter. The copies are
the ``(copy)`` entries of keepwarm._upstream's inventory.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

TESTS = pathlib.Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from fingerprint import fingerprint_file  # noqa: E402
from test_upstream import FINGERPRINTS, inventory  # noqa: E402


def _unpacked_wheel(requirement: str, into: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "-d",
            str(into),
            requirement,
        ],
        check=True,
    )
    wheel = next(into.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


def _stdlib_of(python: str) -> tuple[pathlib.Path, str]:
    code = (
        "import sys, sysconfig; print(sysconfig.get_paths()['stdlib']); "
        "print('%d.%d' % sys.version_info[:2])"
    )
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    stdlib, version = out.stdout.split()
    return pathlib.Path(stdlib), version


def record(
    root: pathlib.Path, packages: tuple[str, ...], version: str, table: dict[str, dict[str, str]]
) -> None:
    for entry in inventory():
        if entry.kind != "copy" or entry.name.split(".")[0] not in packages:
            continue
        parts = entry.name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            source = root.joinpath(*parts[:cut]).with_suffix(".py")
            if source.is_file():
                break
        else:
            raise SystemExit(f"{entry.name}: no source file under {root}")
        table.setdefault(entry.name, {})[version] = fingerprint_file(
            str(source), ".".join(parts[cut:])
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "requirements", nargs="*", help="requests==, urllib3==, h2== or hpack==X.Y.Z"
    )
    parser.add_argument("--python", action="append", default=[], help="a Python interpreter")
    args = parser.parse_args()
    table: dict[str, dict[str, str]] = json.loads(FINGERPRINTS.read_text())
    for requirement in args.requirements:
        name, _, version = requirement.partition("==")
        if name not in ("requests", "urllib3", "h2", "hpack") or not version:
            parser.error(f"{requirement!r}: give requests==, urllib3==, h2== or hpack==VERSION")
        with tempfile.TemporaryDirectory() as tmp:
            record(_unpacked_wheel(requirement, pathlib.Path(tmp)), (name,), version, table)
    for python in args.python:
        stdlib, version = _stdlib_of(python)
        record(stdlib, ("http", "email", "ssl", "queue", "socket"), version, table)
    ordered = {
        name: dict(sorted(versions.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]))
        for name, versions in sorted(table.items())
    }
    FINGERPRINTS.write_text(json.dumps(ordered, indent=1) + "\n")
    print(f"{FINGERPRINTS.name}: {len(ordered)} functions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
