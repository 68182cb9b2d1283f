"""Rewrite prototxt files so the NCSDK accepts them, changing only what must change.

Applies the fixes the rules offer (safe ones; unsafe ones too with
``--unsafe-fixes``) as minimal text edits: comments, blank lines,
indentation, quoting and line endings elsewhere stay byte for byte. Files are
replaced atomically. Exit status: 1 when a file was (or, with ``--diff``,
would be) changed, 0 when nothing needed fixing, 2 on unreadable input — the
pre-commit convention.
"""

from __future__ import annotations

import argparse
import sys

from ._lint import add_selection_arguments

HELP = "rewrite prototxt files so the NCSDK accepts them (minimal diff)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    parser.add_argument("--unsafe-fixes", action="store_true",
                        help="also apply fixes that may change what the network computes or loads")
    parser.add_argument("--diff", action="store_true",
                        help="print a unified diff of the changes and write nothing")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write the fixed file to OUT instead of in place (one input file only)")
    parser.add_argument("--show-fixes", action="store_true",
                        help="list every fix applied, per file")


def run(args: argparse.Namespace, console) -> int:
    from ..errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, UsageError
    from ._lint import SettingsResolver, collect_files

    resolver = SettingsResolver(args)
    files = collect_files(args.paths, resolver)
    if not files:
        raise UsageError(f"no .prototxt files found in {', '.join(args.paths)}")
    if args.output and len(files) != 1:
        raise UsageError("-o/--output takes exactly one input file")
    changed, fatal = fix_files(files, args, resolver, console)
    if fatal:
        return EXIT_INPUT
    return EXIT_FINDINGS if changed else EXIT_OK


def fix_files(files, args, resolver, console) -> tuple[bool, bool]:
    """Fix each file; return (anything changed, any file unreadable)."""
    import difflib

    from rich.markup import escape

    from ..errors import Caffe2NcsError
    from ..fixes.write import write_atomically
    from ..report import relpath

    changed_any = False
    fatal = False
    total = 0
    output = getattr(args, "output", None)
    unsafe = bool(args.unsafe_fixes) or None
    for path, outcome in zip(files, _fix_all(files, args, resolver, unsafe)):
        if isinstance(outcome, Caffe2NcsError):
            fatal = True
            _error(outcome.with_path(path), console)
            continue
        text, bom, result = outcome
        if any(d.code == "NCS999" for d in result.remaining):
            fatal = True
            d = next(d for d in result.remaining if d.code == "NCS999")
            _error_line(f"{relpath(path)}:{d.line}:{d.column}", d.message, console)
            continue
        if not result.changed:
            if output:
                write_atomically(output, text, bom)
            continue
        changed_any = True
        total += len(result.applied)
        if args.diff:
            shown = relpath(path)
            old, new = (shown, shown) if shown.startswith("/") else (f"a/{shown}", f"b/{shown}")
            diff = difflib.unified_diff(
                text.splitlines(keepends=True), result.text.splitlines(keepends=True),
                fromfile=old, tofile=new)
            sys.stdout.write("".join(line if line.endswith("\n") else line + "\n" for line in diff))
            continue
        target = output or path
        try:
            write_atomically(target, result.text, bom)
        except Caffe2NcsError as err:
            fatal = True
            _error(err, console)
            continue
        n = len(result.applied)
        where = f"{relpath(path)}" + (f" -> {relpath(output)}" if output else "")
        console.print(f"Fixed {n} problem{'s' if n != 1 else ''} in {escape(where)}",
                      highlight=False, emoji=False)
        if getattr(args, "show_fixes", False):
            for fix in result.applied:
                layer = f" (layer {fix.layer!r})" if fix.layer else ""
                console.print(f"  {fix.code} {escape(fix.title)}{escape(layer)}", highlight=False,
                              emoji=False)
    if args.diff and changed_any:
        print(f"Would fix {total} problem{'s' if total != 1 else ''}.", file=sys.stderr)
    return changed_any, fatal


def _fix_one(path: str, settings, unsafe):
    """(text, BOM, FixResult) of one file, or the error that stopped it."""
    from ..errors import Caffe2NcsError
    from ..fixes.engine import fix_text
    from ..fixes.write import read_for_rewrite

    try:
        text, bom = read_for_rewrite(path)
        return text, bom, fix_text(text, path, settings, unsafe=unsafe)
    except Caffe2NcsError as err:
        return err


def _fix_job(job):
    return _fix_one(*job)


def _fix_all(files, args, resolver, unsafe):
    """The fix of every file, computed with -j N worker processes (the files
    are then written, or diffed, one by one in order by the caller)."""
    import os

    from ..errors import Caffe2NcsError

    jobs_wanted = getattr(args, "jobs", 1) or 0
    jobs = jobs_wanted if jobs_wanted > 0 else (os.cpu_count() or 1)
    settings = []
    for path in files:
        try:
            settings.append(resolver(path))
        except Caffe2NcsError as err:
            settings.append(err)
    work = [(f, s, unsafe) for f, s in zip(files, settings) if not isinstance(s, Exception)]
    if jobs <= 1 or len(work) <= 1:
        done = iter([_fix_one(*w) for w in work])
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
            done = iter(list(pool.map(_fix_job, work,
                                      chunksize=max(1, len(work) // (4 * jobs)))))
    return [s if isinstance(s, Exception) else next(done) for s in settings]


def _error(err, console) -> None:
    _error_line(err.location(), err.message, console)


def _error_line(location: str, message: str, console) -> None:
    from ..cli import make_console
    from rich.markup import escape

    err_console = make_console("auto", stderr=True)
    prefix = f"[bold]{escape(location)}:[/bold] " if location else ""
    err_console.print(f"{prefix}[bold red]error:[/bold red] {escape(message)}", emoji=False)
