"""Run ``keepwarm lint`` with every rule over code nobody here wrote, for the hand review
recorded in docs/lint/real-code.md.

Each PATH is linted on its own (a site-packages directory, an unpacked sdist...), all
rules selected, and the script prints, per PATH: the files read, the findings per rule,
and every finding (``path:line:col: CODE message``), with the source line it points at so
it can be reviewed without opening the file. ``--sample N --seed S`` prints a random
sample of N findings instead of all of them (the sample the docs review when there are
too many to read).

    python scripts/lint_corpus.py [--sample N] [--seed S] [--json FILE] PATH...

To rebuild the corpus of docs/lint/real-code.md (sdists from the package index, never
committed)::

    pip download --no-deps --no-binary :all: -d /tmp/lint-corpus twine httpie docker \\
        python-gitlab PyGithub requests-toolbelt tweepy spotipy prawcore praw slack_sdk \\
        hvac python-jenkins atlassian-python-api
    cd /tmp/lint-corpus && for f in *.tar.gz; do tar xzf "$f"; done
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import random
import sys
import time

from keepwarm.lint import RULES, Finding, lint_paths

SAMPLE_SEED = 14


def _source_line(finding: Finding) -> str:
    path = finding.path
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for number, line in enumerate(file, 1):
                if number == finding.line:
                    return line.strip()
    except OSError:
        pass
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--sample", type=int, default=0, help="print N random findings")
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED)
    parser.add_argument("--json", help="write every finding to this file")
    args = parser.parse_args()
    everything: list[dict[str, object]] = []
    total_files = 0
    totals: collections.Counter[str] = collections.Counter()
    for root in args.paths:
        started = time.perf_counter()
        report = lint_paths([root], select=set(RULES))
        elapsed = time.perf_counter() - started
        counts = collections.Counter(f.code for f in report.findings)
        total_files += report.files
        totals.update(counts)
        per_rule = ", ".join(f"{code} {n}" for code, n in sorted(counts.items())) or "none"
        print(f"== {root}: {report.files} files, {len(report.findings)} findings ({per_rule})")
        print(f"   {elapsed:.1f} s")
        for note in getattr(report, "notes", ()):
            print(f"   note: {note}")
        shown = report.findings
        if args.sample and len(shown) > args.sample:
            shown = sorted(random.Random(args.seed).sample(shown, args.sample))
            print(f"   a random sample of {args.sample} (seed {args.seed}):")
        for finding in shown:
            print(f"{finding.path}:{finding.line}:{finding.col}: {finding.code} {finding.message}")
            print(f"    | {_source_line(finding)}")
        everything.extend(
            {"root": root, "source": _source_line(f), **dataclasses.asdict(f)}
            for f in report.findings
        )
    per_rule = ", ".join(f"{code} {n}" for code, n in sorted(totals.items())) or "none"
    print(f"== total: {total_files} files, {sum(totals.values())} findings ({per_rule})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(everything, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
