"""``python -m keepwarm``: the ``keepwarm`` command (bench, probe, lint)."""

from keepwarm.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
