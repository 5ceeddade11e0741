"""Check the lowest-versions environment against pyproject.toml (``make pytest-lowest``).

Usage: ``check_lowest.py CONSTRAINTS``, run with the lowest venv's python. Fails unless
CONSTRAINTS pins every one of pyproject.toml's [project] dependencies with ``==`` at its
lower bound, and nothing else, and that is the version installed in this environment. So
the suite that claims to run on the lowest supported versions cannot drift from them: a
floor raised or lowered in one file only, a new dependency without a pin, or a package
that pulled a dependency above its pin (pip -c would have refused, but a hand install
would not) all stop the run.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _floors() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        bounds = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if not bounds:
            sys.exit(f"check_lowest: pyproject.toml: {line!r} has no lower bound to test")
        floors[canonicalize_name(req.name)] = max(bounds)
    return floors


def _pins(path: Path) -> dict[str, Version]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            sys.exit(f"check_lowest: {path}: {line!r} is not one exact pin (name==version)")
        pins[canonicalize_name(req.name)] = Version(specs[0].version)
    return pins


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    floors, pins = _floors(), _pins(path)
    problems = []
    for name in sorted(floors.keys() | pins.keys()):
        floor, pin = floors.get(name), pins.get(name)
        if floor is None:
            problems.append(f"{path} pins {name}, which pyproject.toml does not depend on")
        elif pin is None:
            problems.append(f"{path} has no pin for {name} (pyproject.toml: >= {floor})")
        elif pin != floor:
            problems.append(f"{path} pins {name}=={pin}, pyproject.toml's floor is {floor}")
        else:
            try:
                installed = Version(version(name))
            except PackageNotFoundError:
                problems.append(f"{name} is not installed")
                continue
            if installed != pin:
                problems.append(f"{name} {installed} is installed, not {pin}")
    for problem in problems:
        print(f"check_lowest: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("lowest versions:", ", ".join(f"{name} {pins[name]}" for name in sorted(pins)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
