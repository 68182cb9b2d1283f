"""Command-line entry point: argument parsing and exit codes only.

Each sub-command lives in ``caffe2ncs/commands/<name>.py`` and provides

* ``HELP``: the one-line summary shown by ``caffe2ncs --help``;
* ``add_arguments(parser)``: its options (no heavy imports at module level, so
  that ``caffe2ncs check`` starts fast);
* ``run(args, console) -> int``: does the work and returns the exit code.

Errors derived from :class:`caffe2ncs.errors.Caffe2NcsError` are printed as one
line naming the file (and line) with the error's exit code; nothing the user
can cause prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import EXIT_INPUT, EXIT_INTERRUPTED, Caffe2NcsError

# The order is the order of ``caffe2ncs --help``.
COMMANDS: tuple[str, ...] = (
    "check", "fix", "rule", "info", "build", "inspect", "run", "verify", "profile", "devices",
)

INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: a bug in caffe2ncs, never the user's fault


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors, which matches our convention; this
    subclass only makes the message name the program and sub-command."""

    def error(self, message: str) -> None:  # pragma: no cover - exercised via subprocess
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="caffe2ncs",
        description="Check, fix, compile and run Caffe models for the Intel Movidius "
        "Neural Compute Stick (NCSDK 1.x/2.x), without the SDK.",
    )
    parser.add_argument("--version", action="version", version=f"caffe2ncs {__version__}")
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour in the output (default: auto, only on a terminal; NO_COLOR is honoured)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"caffe2ncs.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def make_console(color: str, stderr: bool = False):
    from rich.console import Console

    if color == "always":
        force, no_color = True, False
    elif color == "never":
        force, no_color = False, True
    else:
        force, no_color = None, bool(os.environ.get("NO_COLOR"))
    console = Console(
        stderr=stderr,
        force_terminal=force,
        no_color=no_color,
        highlight=False,
        soft_wrap=True,
    )
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # a log or a pipe: don't fold tables at 80 columns
    return console


def warn(console, message: str) -> None:
    """Print ``warning: message`` (on the stderr console the commands make)."""
    from rich.markup import escape

    console.print(f"[bold yellow]warning:[/bold yellow] {escape(message)}", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        console = make_console(args.color)
        if getattr(args._module, "DEADLINE_PER_FILE", False):
            return int(args._module.run(args, console) or 0)
        from .limits import deadline

        named = getattr(args, "prototxt", None) or getattr(args, "graph", None)
        with deadline(named):
            return int(args._module.run(args, console) or 0)
    except Caffe2NcsError as err:
        _print_error(err, args.color)
        return err.exit_code
    except KeyboardInterrupt:
        print("caffe2ncs: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `caffe2ncs check ... | head`: the reader went away; not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            "caffe2ncs: internal error (a bug in caffe2ncs, not in your model): "
            "please report it with the traceback above",
            file=sys.stderr,
        )
        return INTERNAL_ERROR_EXIT


def _print_error(err: Caffe2NcsError, color: str) -> None:
    console = make_console(color, stderr=True)
    loc = err.location()
    prefix = f"[bold]{_escape(loc)}:[/bold] " if loc else ""
    console.print(f"{prefix}[bold red]{err.kind}:[/bold red] {_escape(err.message)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
