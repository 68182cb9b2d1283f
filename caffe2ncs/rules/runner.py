"""Running the rules over files: the engine behind ``caffe2ncs check`` and
``caffe2ncs.check()``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import Caffe2NcsError, InputFileError, PrototxtSyntaxError
from ..limits import check_deadline, deadline
from .base import Diagnostic, Rule, Severity
from .settings import Settings, settings_for

SYNTAX_ERROR_CODE = "NCS999"
UNUSED_SUPPRESSION_CODE = "NCS001"


@dataclass
class FileReport:
    """The outcome of checking one file."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    text: str | None = None
    #: the file could not be read at all (missing, a folder, unreadable)
    error: Caffe2NcsError | None = None

    @property
    def fatal(self) -> bool:
        return self.error is not None or any(d.fatal for d in self.diagnostics)


def _rule_instances() -> list[Rule]:
    from .registry import all_rules

    return [cls() for cls in all_rules()]


_INSTANCES: list[Rule] | None = None


def rules() -> list[Rule]:
    global _INSTANCES
    if _INSTANCES is None:
        _INSTANCES = _rule_instances()
    return _INSTANCES


def check_source(text: str, path: str = "<text>", settings: Settings | None = None) -> FileReport:
    """Check prototxt text; never raises for problems in the text itself."""
    from ..model.loader import loads
    from .context import Context
    from .registry import codes_and_names, default_codes
    from .suppression import find_suppressions, silences

    settings = settings or Settings()
    report = FileReport(path, text=text)
    try:
        net = loads(text, path=path, strict=False)
    except PrototxtSyntaxError as err:
        report.diagnostics.append(_syntax_diagnostic(err, path, text))
        return report
    enabled = settings.enabled(codes_and_names(), path, default_codes())
    ctx = Context(net, path, settings)
    found: list[Diagnostic] = []
    for rule in rules():
        if rule.code not in enabled or rule.code == UNUSED_SUPPRESSION_CODE:
            continue
        check_deadline(f"checking {rule.code}")
        found.extend(rule.check(ctx))
    found = [_with_severity(d, settings) for d in found]

    kept: list[Diagnostic] = []
    suppressions = find_suppressions(net.document) if net.document is not None else []
    by_code = {r.code: r for r in rules()}
    for d in found:
        rule = by_code.get(d.code)
        if suppressions and (rule is None or rule.suppressible) and any(
                silences(s, d.code, d.name, d.line) for s in suppressions):
            continue
        kept.append(d)
    if UNUSED_SUPPRESSION_CODE in enabled and suppressions:
        from .suppression_rules import unused_suppressions

        kept.extend(_with_severity(d, settings)
                    for d in unused_suppressions(ctx, suppressions, enabled))
    kept = [d for d in kept if d.severity >= settings.severity or d.fatal]
    kept.sort(key=Diagnostic.sort_key)
    report.diagnostics = kept
    return report


def _with_severity(d: Diagnostic, settings: Settings) -> Diagnostic:
    sev = settings.severity_of(d.code, d.severity)
    if sev == d.severity:
        return d
    from dataclasses import replace

    return replace(d, severity=sev)


def _syntax_diagnostic(err: PrototxtSyntaxError, path: str, text: str) -> Diagnostic:
    from ..model.source import SourceText

    line = err.line or 1
    col = err.column or 1
    source = SourceText(text, path)
    start = None
    if 1 <= line <= source.line_count:
        span = source.line_span(line)
        start = min(span.start + col - 1, len(text))
    return Diagnostic(
        code=SYNTAX_ERROR_CODE, name="syntax-error", severity=Severity.ERROR,
        message=err.message, path=path, line=line, column=col, end_line=line,
        end_column=col + 1, span=(start, min(start + 1, len(text))) if start is not None else None,
        fatal=True,
    )


def check_path(path: str, settings: Settings | None = None, config: str | None = None,
               isolated: bool = False) -> FileReport:
    """Check one prototxt file."""
    from ..model.source import read_text_file

    try:
        with deadline(path):
            settings = settings or settings_for(path, config, isolated)
            text = read_text_file(path)
            return check_source(text, path, settings)
    except Caffe2NcsError as err:
        return FileReport(path, error=err.with_path(path))


def discover(paths: Iterable[str], settings_of=None) -> Iterator[str]:
    """Files to check: each file given, and every ``*.prototxt`` below each folder
    (skipping hidden folders, virtual environments and configured excludes)."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in (
                    "node_modules", "__pycache__", "venv", "site-packages"))
                for name in sorted(files):
                    if name.endswith(".prototxt"):
                        full = os.path.join(root, name)
                        if settings_of is None or not settings_of(full).excluded(full):
                            yield full
        elif not os.path.exists(path):
            raise InputFileError("no such file or folder", path)
        else:
            yield path


def check(target, settings: Settings | None = None) -> list[Diagnostic]:
    """The Python API: check a prototxt given as a path (``str`` naming an
    existing file, or ``os.PathLike``) or as text; returns the findings.

    A file that cannot be read raises its :class:`~caffe2ncs.errors.Caffe2NcsError`;
    a syntax error is returned as an ``NCS999`` finding."""
    if isinstance(target, os.PathLike) or (
            isinstance(target, str) and "\n" not in target and "{" not in target
            and os.path.exists(target)):
        report = check_path(os.fspath(target), settings)
        if report.error is not None:
            raise report.error
        return report.diagnostics
    if not isinstance(target, str):
        raise TypeError("check() takes a path or prototxt text")
    return check_source(target, "<text>", settings).diagnostics
