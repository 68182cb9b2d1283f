"""Check prototxt files against every NCSDK limit at once.

Each finding names the file, line and column, a rule code and what to do
about it; ``caffe2ncs rule CODE`` explains a rule in full.  Exit status: 0 when
there is no error-level finding, 1 when there is, 2 when a file could not be
read or understood (or on a usage error).
"""

from __future__ import annotations

import argparse
import sys

from ._lint import add_selection_arguments

HELP = "lint prototxt files against the NCSDK's limits"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--format", "--output-format", dest="format", default="full",
                     choices=("full", "concise", "json", "sarif", "github"),
                     help="how to print findings (default: full, with a code frame)")
    out.add_argument("-o", "--output-file", metavar="FILE",
                     help="write the findings to FILE instead of standard output")
    out.add_argument("--statistics", action="store_true",
                     help="print how often each rule fired instead of the findings")
    out.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    out.add_argument("--exit-zero", action="store_true",
                     help="exit 0 even with error findings (2 still means unreadable input)")
    fix = parser.add_argument_group("fixing")
    fix.add_argument("--fix", action="store_true",
                     help="apply safe fixes, then report what is left (same as `caffe2ncs fix`)")
    fix.add_argument("--unsafe-fixes", action="store_true",
                     help="also apply (with --fix) fixes that may change behaviour")
    fix.add_argument("--diff", action="store_true",
                     help="with --fix: print the changes as a diff instead of writing them")
    fix.add_argument("--exit-non-zero-on-fix", action="store_true",
                     help="with --fix: exit 1 if anything was fixed, even if nothing remains")


def run(args: argparse.Namespace, console) -> int:
    from ..errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, UsageError
    from ..rules.base import Severity
    from ._lint import SettingsResolver, collect_files, run_checks

    if args.diff and not args.fix:
        args.fix = True
    resolver = SettingsResolver(args)
    files = collect_files(args.paths, resolver)
    if not files:
        raise UsageError(f"no .prototxt files found in {', '.join(args.paths)}")

    changed = False
    if args.fix:
        from .fix import fix_files

        # machine-readable findings own standard output: say what was fixed on stderr
        fix_console = console
        if args.format in ("json", "sarif", "github") and not args.output_file and not args.diff:
            from ..cli import make_console

            fix_console = make_console(getattr(args, "color", "auto"), stderr=True)
        changed, fatal = fix_files(files, args, resolver, fix_console)
        if args.diff:
            return EXIT_INPUT if fatal else (EXIT_FINDINGS if changed else EXIT_OK)
    reports = run_checks(files, args, resolver)
    _emit(reports, args, console, resolver)
    if any(r.fatal for r in reports):
        return EXIT_INPUT
    if args.fix and args.exit_non_zero_on_fix and changed:
        return EXIT_FINDINGS
    if args.exit_zero:
        return EXIT_OK
    errors = any(d.severity >= Severity.ERROR for r in reports for d in r.diagnostics)
    return EXIT_FINDINGS if errors else EXIT_OK


def _emit(reports, args, console, resolver) -> None:
    from ..report import machine, text

    stream = None
    if args.output_file:
        try:
            stream = open(args.output_file, "w", encoding="utf-8", newline="\n")
        except OSError as err:
            from ..errors import InputFileError

            raise InputFileError(f"cannot write: {err.strerror or err}", args.output_file) from None
    try:
        out = stream or sys.stdout
        if args.statistics:
            lines = text.statistics(reports)
            out.write("".join(line + "\n" for line in lines))
        elif args.format == "json":
            out.write(machine.render_json(reports))
        elif args.format == "sarif":
            out.write(machine.render_sarif(reports))
        elif args.format == "github":
            out.write(machine.render_github(reports))
        else:
            target = console
            if stream is not None:
                from rich.console import Console

                target = Console(file=stream, no_color=True, highlight=False, soft_wrap=True,
                                 width=200)
            text.render_full(reports, target, concise=args.format == "concise")
            if not args.quiet:
                unsafe = any(resolver(r.path).unsafe_fixes for r in reports[:1])
                target.print(text.summary(reports, unsafe_enabled=unsafe or args.unsafe_fixes),
                             highlight=False, markup=False, emoji=False)
    finally:
        if stream is not None:
            stream.close()
