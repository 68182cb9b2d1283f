"""Machine-readable output: JSON, SARIF 2.1.0 and GitHub Actions annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .. import __version__
from ..rules.base import Diagnostic, Severity
from ..rules.runner import FileReport
from . import relpath

INFORMATION_URI = "https://github.com/caffe2ncs/caffe2ncs"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def diagnostic_json(d: Diagnostic) -> dict:
    fix = None
    if d.fix is not None:
        fix = {
            "applicability": str(d.fix.applicability),
            "message": d.fix.title,
            "edits": [{"start": e.start, "end": e.end, "content": e.content} for e in d.fix.edits],
        }
    return {
        "code": d.code,
        "name": d.name,
        "severity": str(d.severity),
        "message": d.message,
        "file": relpath(d.path),
        "line": d.line,
        "column": d.column,
        "end_line": d.end_line,
        "end_column": d.end_column,
        "layer": d.layer,
        "fixable": d.fixable,
        "fix": fix,
    }


def render_json(reports: Sequence[FileReport]) -> str:
    items = []
    for report in reports:
        if report.error is not None:
            err = report.error
            items.append({
                "code": "NCS000", "name": "unreadable-file", "severity": "error",
                "message": err.message, "file": relpath(report.path), "line": err.line or 1,
                "column": err.column or 1, "end_line": err.line or 1,
                "end_column": (err.column or 1) + 1, "layer": None, "fixable": False, "fix": None,
            })
        items.extend(diagnostic_json(d) for d in report.diagnostics)
    return json.dumps(items, indent=2) + "\n"


def sarif_uri(path: str) -> str:
    """A file as a SARIF ``artifactLocation.uri``: a URI reference, so relative
    to the working directory and percent-encoded (``my model.prototxt`` ->
    ``my%20model.prototxt``), or a ``file:`` URI when outside it."""
    import os
    from pathlib import Path
    from urllib.parse import quote

    shown = relpath(path)
    if os.path.isabs(shown) or (len(shown) > 1 and shown[1] == ":"):
        return Path(os.path.abspath(path)).as_uri()
    return quote(shown, safe="/")


def render_sarif(reports: Sequence[FileReport]) -> str:
    from ..rules.registry import by_code

    rules = by_code()
    fired: list[str] = sorted({d.code for r in reports for d in r.diagnostics})
    index = {code: i for i, code in enumerate(fired)}
    descriptors = []
    for code in fired:
        cls = rules[code]
        explanation = cls.explanation()
        descriptors.append({
            "id": code,
            "name": cls.name,
            "shortDescription": {"text": cls.summary},
            "fullDescription": {"text": _first_paragraph(explanation)},
            "help": {"text": explanation, "markdown": explanation},
            "helpUri": f"{INFORMATION_URI}/blob/main/docs/rules.md#{code.lower()}",
            "defaultConfiguration": {"level": _SARIF_LEVEL[cls.severity]},
            "properties": {
                "tags": ["ncsdk", "caffe"],
                "precision": "very-high",
                "problem.severity": {"error": "error", "warning": "warning"}.get(
                    str(cls.severity), "recommendation"),
            },
        })
    results = []
    for report in reports:
        for d in report.diagnostics:
            result = {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": _SARIF_LEVEL[d.severity],
                "message": {"text": d.message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": sarif_uri(d.path)},
                    "region": {"startLine": d.line, "startColumn": d.column,
                               "endLine": d.end_line, "endColumn": max(d.end_column, 1)},
                }}],
            }
            if d.layer:
                result["properties"] = {"layer": d.layer}
            if d.fix is not None and report.text is not None:
                result["fixes"] = [_sarif_fix(d, report.text)]
            results.append(result)
    notifications = [
        {"level": "error", "message": {"text": r.error.message},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": sarif_uri(r.path)}}}]}
        for r in reports if r.error is not None
    ]
    run = {
        "tool": {"driver": {"name": "caffe2ncs", "version": __version__,
                            "semanticVersion": __version__, "informationUri": INFORMATION_URI,
                            "rules": descriptors}},
        "results": results,
        "invocations": [{"executionSuccessful": not notifications and not any(r.fatal for r in reports),
                         "toolExecutionNotifications": notifications}],
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def _sarif_fix(d: Diagnostic, text: str) -> dict:
    from ..model.source import SourceText

    source = SourceText(text)
    replacements = []
    for e in d.fix.edits:
        sl, sc = source.line_col(e.start)
        el, ec = source.line_col(e.end)
        replacements.append({
            "deletedRegion": {"startLine": sl, "startColumn": sc, "endLine": el, "endColumn": ec},
            "insertedContent": {"text": e.content},
        })
    return {
        "description": {"text": d.fix.title},
        "artifactChanges": [{"artifactLocation": {"uri": sarif_uri(d.path)},
                             "replacements": replacements}],
    }


def _first_paragraph(markdown: str) -> str:
    lines = []
    for line in markdown.splitlines():
        if line.startswith("#"):
            if lines:
                break
            continue
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line.strip())
    return " ".join(lines)[:1000] or markdown[:1000]


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(reports: Sequence[FileReport]) -> str:
    """GitHub Actions workflow commands; GitHub shows 10 of each level per step,
    so a notice says how many there were in all."""
    out = []
    counts = {"error": 0, "warning": 0, "notice": 0}
    for report in reports:
        if report.error is not None:
            out.append(f"::error file={_escape_property(relpath(report.path))},"
                       f"title={_escape_property('caffe2ncs')}::{_escape_data(report.error.format())}")
            counts["error"] += 1
        for d in report.diagnostics:
            level = _GITHUB_LEVEL[d.severity]
            counts[level] += 1
            props = [f"title={_escape_property(f'caffe2ncs ({d.code})')}",
                     f"file={_escape_property(relpath(d.path))}",
                     f"line={d.line}", f"endLine={d.end_line}"]
            if d.line == d.end_line:
                props += [f"col={d.column}", f"endColumn={d.end_column}"]
            message = f"{relpath(d.path)}:{d.line}:{d.column}: {d.code} {d.message}"
            out.append(f"::{level} {','.join(props)}::{_escape_data(message)}")
    over = {k: v for k, v in counts.items() if v > 10}
    if over:
        detail = ", ".join(f"{v} {k}s" for k, v in over.items())
        out.append(f"::notice title=caffe2ncs::{_escape_data(f'{detail}: GitHub shows 10 annotations of each kind per step; see the log or upload SARIF for all of them')}")
    return "\n".join(out) + ("\n" if out else "")
