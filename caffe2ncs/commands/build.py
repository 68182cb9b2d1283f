"""Compile a Caffe network into a graph file for the Neural Compute Stick (what
the NCSDK's mvNCCompile does, without the SDK or Caffe).

The check rules run first, for the same target: when one reports an error the
network is not built (the findings are printed, exit status 1) unless --force
is given.  Without a caffemodel (and none named like the prototxt next to it)
the graph gets zero weights, as with mvNCCompile; --random-weights SEED makes
seeded random ones instead.  Exit status: 0 built, 1 refused because of
error-level findings, 2 unreadable or unsupported input (the message names the
file, layer and reason).
"""

from __future__ import annotations

import argparse
import os

HELP = "compile a network into a graph file for the Neural Compute Stick"

#: Show a progress bar when converting at least this many bytes of weights.
PROGRESS_THRESHOLD = 32 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prototxt", help="the network definition (.prototxt)")
    parser.add_argument("caffemodel", nargs="?",
                        help="its weights (default: <prototxt name>.caffemodel next to it, "
                             "if there is one; else zero weights)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the graph file to write (default: <prototxt name>.graph in the "
                             "current folder)")
    parser.add_argument("--target", choices=("ncsdk1", "ncsdk2"),
                        help="the NCSDK generation whose firmware will load the graph "
                             "(default: the configured target, else ncsdk2)")
    parser.add_argument("-s", "--shaves", type=int, default=12, metavar="N",
                        help="SHAVE processors the graph uses, 1-12 (default: 12)")
    parser.add_argument("--name", help="network name stored in the graph (default: the "
                                       "prototxt's name field; NCSDK 1.x stores it)")
    parser.add_argument("--random-weights", type=int, metavar="SEED",
                        help="use seeded random weights instead of a caffemodel")
    parser.add_argument("--force", action="store_true",
                        help="build even when the checks report errors")
    parser.add_argument("--config", metavar="FILE",
                        help="read [tool.caffe2ncs] from this file instead of the nearest "
                             "pyproject.toml")
    parser.add_argument("--isolated", action="store_true", help="ignore every configuration file")


def run(args: argparse.Namespace, console) -> int:
    from ..cli import make_console
    from ..cli import warn as _warn
    from ..errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, UnsupportedNetworkError, UsageError
    from ..report.text import render_full
    from ..rules.base import Severity
    from ..rules.runner import FileReport, check_path
    from ..rules.settings import settings_for

    err = make_console(getattr(args, "color", "auto"), stderr=True)
    if not 1 <= args.shaves <= 12:
        raise UsageError(f"--shaves must be 1 to 12 (the NCS has 12 SHAVE processors), "
                         f"got {args.shaves}")
    if args.random_weights is not None and args.caffemodel:
        raise UsageError("give either a caffemodel or --random-weights, not both")
    if args.random_weights is not None and args.random_weights < 0:
        raise UsageError("--random-weights takes a non-negative seed")
    prototxt = args.prototxt
    output = args.output or os.path.splitext(os.path.basename(prototxt))[0] + ".graph"
    if os.path.isdir(output):
        raise UsageError(f"-o {output}: is a folder; give a file name")

    settings = settings_for(prototxt, args.config, args.isolated)
    if args.target:
        settings = settings.with_cli(target=args.target)
    target = settings.target

    # -- the checks
    report = check_path(prototxt, settings)
    if report.error is not None:
        raise report.error
    errors = [d for d in report.diagnostics if d.severity >= Severity.ERROR or d.fatal]
    if any(d.fatal for d in report.diagnostics):
        render_full([FileReport(report.path, errors, report.text)], console)
        return EXIT_INPUT
    if errors:
        render_full([FileReport(report.path, errors, report.text)], console)
        n = len(errors)
        if not args.force:
            console.print(f"Not built: {n} error{'s' if n > 1 else ''} for {target} (fix "
                          f"{'them' if n > 1 else 'it'}, or use --force to try anyway).",
                          markup=False, highlight=False)
            return EXIT_FINDINGS
        _warn(err, f"--force: building despite {n} error{'s' if n > 1 else ''} from the checks")
    warnings = sum(1 for d in report.diagnostics if d.severity == Severity.WARNING)
    if warnings:
        _warn(err, f"the checks report {warnings} warning{'s' if warnings > 1 else ''} "
                   f"(see `caffe2ncs check --target {target} {prototxt}`)")

    # -- weights
    caffemodel = args.caffemodel
    if caffemodel is None and args.random_weights is None:
        sibling = os.path.splitext(prototxt)[0] + ".caffemodel"
        if os.path.isfile(sibling):
            caffemodel = sibling
            err.print(f"using weights {sibling}", markup=False, highlight=False)

    from ..model.loader import load

    net = load(prototxt, caffemodel)
    weights = None
    if args.random_weights is not None:
        from ..model.weights import synthesize

        weights = synthesize(net, args.random_weights)
    elif caffemodel is None:
        _warn(err, "no caffemodel: using zero weights (the graph computes zeros, as "
                   "mvNCCompile's \"using empty weights\"); give one, or --random-weights SEED")

    # -- lowering and writing
    from ..lowering.emit import write_graph_file
    from ..lowering.ir import GraphFormat
    from ..lowering.lower import lower_network

    total = sum(int(a.nbytes) for blobs in (weights or net.weights).values() for a in blobs)
    try:
        with _progress(err, total) as advance:
            lowered = lower_network(net, target=target, shaves=args.shaves, name=args.name,
                                    weights=weights, any_batch=args.force, progress=advance)
    except UnsupportedNetworkError as exc:
        raise exc.with_path(prototxt) from None
    for message in lowered.warnings:
        _warn(err, message)
    try:
        size = write_graph_file(lowered.graph, target, output)
    except UnsupportedNetworkError as exc:
        raise exc.with_path(prototxt) from None
    except OSError as exc:
        from ..errors import InputFileError

        raise InputFileError(f"cannot write: {exc.strerror or exc}", output) from None
    fmt = GraphFormat(target)
    console.print(f"Built {output}: {len(lowered.graph.stages)} stages, {_size(size)}, "
                  f"{fmt.description}, {args.shaves} SHAVE{'s' if args.shaves > 1 else ''}.",
                  markup=False, highlight=False)
    return EXIT_OK


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n} bytes"
    return f"{n / (1024 * 1024):.1f} MiB ({n} bytes)"


class _progress:
    """A transient progress bar over the weight bytes converted, on a terminal
    only and only for large networks; yields the ``advance(n)`` callback."""

    def __init__(self, console, total: int) -> None:
        self.console = console
        self.total = total
        self.bar = None

    def __enter__(self):
        if not self.console.is_terminal or self.total < PROGRESS_THRESHOLD:
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("converting weights"), BarColumn(), DownloadColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        task = self.bar.add_task("weights", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
