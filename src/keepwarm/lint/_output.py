"""The three output formats: text lines for people and editors, JSON for scripts, SARIF
2.1.0 for code-scanning UIs (GitHub's accepts it as is)."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from keepwarm.__about__ import __version__
from keepwarm.lint._rules import RULES, Finding

__all__ = ["FORMATS", "SARIF_SCHEMA", "as_json", "as_sarif", "as_text"]

FORMATS = ("text", "json", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def as_text(findings: list[Finding]) -> str:
    """``path:line:col: KW101 message``, one line each (what editors and CI logs parse)."""
    return "".join(f"{f.path}:{f.line}:{f.col}: {f.code} {f.message}\n" for f in findings)


def as_json(findings: list[Finding]) -> str:
    """A JSON array of ``{path, line, column, code, name, message}`` objects."""
    rows = [
        {
            "path": f.path,
            "line": f.line,
            "column": f.col,
            "code": f.code,
            "name": f.name,
            "message": f.message,
        }
        for f in findings
    ]
    return json.dumps(rows, indent=2) + "\n"


def as_sarif(findings: list[Finding]) -> str:
    """One SARIF 2.1.0 run: the driver lists every rule, each result points at its rule
    by id and index and at a region of a file (relative URIs against ``%SRCROOT%``)."""
    codes = list(RULES)
    rules = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary.replace("`", "")},
            "help": {"text": f"docs/lint/{rule.code}.md", "markdown": rule.summary},
            "defaultConfiguration": {"level": "error" if rule.code == "KW001" else "warning"},
            "properties": {"on_by_default": rule.default},
        }
        for rule in RULES.values()
    ]
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": codes.index(f.code),
            "level": "error" if f.code == "KW001" else "warning",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact(f.path),
                        "region": {"startLine": f.line, "startColumn": f.col},
                    }
                }
            ],
        }
        for f in findings
    ]
    document: dict[str, Any] = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keepwarm-lint",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _artifact(path: str) -> dict[str, str]:
    posix = path.replace(os.sep, "/")
    if os.path.isabs(path):
        return {"uri": "file://" + quote(posix)}
    return {"uri": quote(posix.removeprefix("./")), "uriBaseId": "%SRCROOT%"}
