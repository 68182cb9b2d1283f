"""Human-readable output: ``full`` (with a code frame under each finding) and
``concise`` (one line each), plus the summary and ``--statistics``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.markup import escape

from ..rules.base import Applicability, Diagnostic, Severity
from ..rules.runner import FileReport
from . import relpath

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}


def _marker(d: Diagnostic) -> str:
    if d.fix is None:
        return ""
    return " [*]" if d.fix.applicability is Applicability.SAFE else " [-]"


def _header(d: Diagnostic) -> str:
    style = _STYLE[d.severity]
    return (f"[bold]{escape(relpath(d.path))}:{d.line}:{d.column}:[/bold] "
            f"[{style}]{d.severity}[/{style}][bold][{d.code}][/bold]{escape(_marker(d))} "
            f"{escape(d.message)}")


def _frame(d: Diagnostic, text: str | None) -> list[str]:
    """A few lines of source with the flagged part underlined."""
    if text is None or d.span is None:
        return []
    lines = text.splitlines()
    first, last = d.line, d.end_line
    if d.end_column == 1 and last > first:
        last -= 1  # a span ending right after a newline
    show_from = max(1, first - 1)
    show_to = min(len(lines), last + 1, first + 6)
    width = len(str(show_to))
    out = [f"{' ' * width} [blue]|[/blue]"]
    for n in range(show_from, show_to + 1):
        if n - 1 >= len(lines):
            break
        src = lines[n - 1].rstrip("\r").expandtabs(4)
        out.append(f"[blue]{n:>{width}} |[/blue] {escape(src)}")
        if first <= n <= last:
            raw = lines[n - 1].rstrip("\r")
            start_col = d.column if n == first else len(raw) - len(raw.lstrip()) + 1
            end_col = d.end_column if n == last else len(raw) + 1
            prefix = raw[:start_col - 1].expandtabs(4)
            body = raw[start_col - 1:max(end_col - 1, start_col)].expandtabs(4)
            carets = "^" * max(1, len(body))
            style = _STYLE[d.severity]
            out.append(f"{' ' * width} [blue]|[/blue] {' ' * len(prefix)}[{style}]{carets}[/{style}]")
    out.append(f"{' ' * width} [blue]|[/blue]")
    if d.fix is not None:
        kind = "fix" if d.fix.applicability is Applicability.SAFE else "unsafe fix"
        out.append(f"{' ' * width} [blue]=[/blue] [bold]{kind}[/bold]: {escape(d.fix.title)}")
    return out


def render_full(reports: Sequence[FileReport], console, concise: bool = False) -> None:
    for report in reports:
        if report.error is not None:
            console.print(f"[bold]{escape(report.error.location() or relpath(report.path))}:[/bold] "
                          f"[bold red]error:[/bold red] {escape(report.error.message)}", emoji=False)
            continue
        for d in report.diagnostics:
            # emoji=False: rich would turn "file:1234:" into an emoji (":1234:" is one)
            console.print(_header(d), emoji=False)
            if not concise:
                for line in _frame(d, report.text):
                    console.print(line, emoji=False)
                console.print()


def summary(reports: Sequence[FileReport], unsafe_enabled: bool = False) -> str:
    """One line: counts by severity, how many are fixable, unreadable files."""
    diags = [d for r in reports for d in r.diagnostics]
    unreadable = sum(1 for r in reports if r.error is not None)
    files = len(reports)
    if not diags and not unreadable:
        return f"All checks passed ({files} file{'s' if files != 1 else ''})."
    by = Counter(d.severity for d in diags)
    parts = [f"{by[s]} {str(s) if by[s] == 1 else str(s) + 's'}"
             for s in (Severity.ERROR, Severity.WARNING, Severity.INFO) if by[s]]
    text = f"Found {len(diags)} problem{'s' if len(diags) != 1 else ''}"
    if parts:
        text += f" ({', '.join(parts)})"
    text += f" in {files} file{'s' if files != 1 else ''}."
    safe = sum(1 for d in diags if d.fix and d.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for d in diags if d.fix and d.fix.applicability is Applicability.UNSAFE)
    if safe or (unsafe and unsafe_enabled):
        n = safe + (unsafe if unsafe_enabled else 0)
        text += f" [*] {n} fixable with `caffe2ncs fix`"
        if unsafe and not unsafe_enabled:
            text += f" ({unsafe} more with --unsafe-fixes)"
        text += "."
    elif unsafe:
        text += f" {unsafe} fixable with `caffe2ncs fix --unsafe-fixes`."
    if unreadable:
        text += f" {unreadable} file{'s' if unreadable != 1 else ''} could not be read."
    return text


def statistics(reports: Sequence[FileReport]) -> list[str]:
    """``count  [*]CODE  name``, most frequent first (flake8/ruff style)."""
    diags = [d for r in reports for d in r.diagnostics]
    counts = Counter(d.code for d in diags)
    names = {d.code: d.name for d in diags}
    fixable: dict[str, list[bool]] = {}
    for d in diags:
        fixable.setdefault(d.code, []).append(d.fix is not None)
    width = len(str(max(counts.values()))) if counts else 1
    out = []
    for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        flags = fixable[code]
        mark = "[*]" if all(flags) else "[-]" if any(flags) else "[ ]"
        out.append(f"{n:>{width}}\t{mark} {code}\t{names[code]}")
    return out
