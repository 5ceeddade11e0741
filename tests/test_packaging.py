"""What a user installing the wheel gets: the license, the docs the help points at,
``python -m keepwarm``, the pytest plugin's entry point. The wheel is built from this
checkout (no index is asked: the build backend, hatchling, is in the test extra)."""

from __future__ import annotations

import configparser
import pathlib
import subprocess
import sys
import venv
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (found,) = out.glob("keepwarm-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_carries_the_license_the_docs_and_the_main_module(wheel: pathlib.Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in text
    assert "keepwarm/__main__.py" in names
    docs = {n.removeprefix("keepwarm/docs/") for n in names if n.startswith("keepwarm/docs/")}
    assert {p.name for p in (ROOT / "docs").glob("*.md")} <= docs


@pytest.mark.slow
def test_the_wheel_registers_the_pytest_plugin(wheel: pathlib.Path) -> None:
    """Installing keepwarm activates its pytest plugin (docs/pytest.md)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("/entry_points.txt")))
    sections = configparser.ConfigParser()
    sections.read_string(entry_points.decode())
    assert dict(sections["pytest11"]) == {"keepwarm": "keepwarm.pytest_plugin"}
    assert "keepwarm/pytest_plugin.py" in names


@pytest.mark.slow
def test_the_wheel_registers_the_flake8_plugin(wheel: pathlib.Path) -> None:
    """``flake8 --select KW`` finds keepwarm lint's rules (docs/lint/README.md)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("/entry_points.txt")))
    sections = configparser.ConfigParser()
    sections.optionxform = str  # type: ignore[assignment,method-assign]
    sections.read_string(entry_points.decode())
    assert dict(sections["flake8.extension"]) == {"KW": "keepwarm.lint._flake8:Checker"}
    assert "keepwarm/lint/_flake8.py" in names


@pytest.mark.slow
def test_an_installed_wheel_runs_as_python_m_and_its_help_names_a_file_that_exists(
    wheel: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Installed without its dependencies into an empty virtualenv that can see this
    environment's packages (requests, urllib3), so nothing is downloaded."""
    env = tmp_path / "venv"
    venv.create(env, system_site_packages=True, with_pip=False)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    run = [str(python), "-I", "-m", "keepwarm"]
    version = subprocess.run([*run, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("keepwarm ")
    help_text = subprocess.run(
        [*run, "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"COLUMNS": "2000", "PATH": "/usr/bin:/bin"},  # no wrapping inside the path
    ).stdout
    path = help_text.split("See ", 1)[1].split()[0].rstrip(".")
    assert path.startswith(site) and pathlib.Path(path).is_file(), path

    # The plugin's entry point is found where it is installed, and pytest loads it.
    found = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "from importlib.metadata import entry_points; "
            "print([e.value for e in entry_points(group='pytest11') if e.name == 'keepwarm'])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert found.strip() == "['keepwarm.pytest_plugin']"
    has_pytest = subprocess.run([str(python), "-I", "-c", "import pytest"], timeout=60)
    if has_pytest.returncode == 0:
        pytest_help = subprocess.run(
            [str(python), "-I", "-m", "pytest", "--help", "-p", "no:cacheprovider"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            check=True,
        ).stdout
        assert "--keepwarm-leaks" in pytest_help and "--keepwarm-strict" in pytest_help
