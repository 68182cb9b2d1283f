"""Run many ``caffe2ncs`` command lines in one Python process (for tests that
would otherwise start a hundred interpreters).

    python tests/cli_batch.py [--audit] < cases.json > results.json

``cases.json`` is a list of argument lists; each is run through
:func:`caffe2ncs.cli.main` exactly as ``python -m caffe2ncs ARGS`` runs it, with
its own stdout and stderr captured.  The result is a list of
``{"exit": int, "stdout": str, "stderr": str}``.

With ``--audit`` an audit hook (``sys.addaudithook``) is installed before
caffe2ncs is imported, and each result also lists what the case did:
``opens`` (every path opened for reading or writing, with its mode),
``imports`` (modules imported while the case ran), ``exec`` (code compiled or
executed from anything but a file), ``processes`` (``os.system``,
``subprocess.Popen``, ``os.exec*``, ``os.spawn*``, ``os.posix_spawn``,
``os.fork``) and ``sockets``.  ``tests/test_audit.py`` judges them.
"""

from __future__ import annotations

import io
import json
import os
import sys

# This checkout's caffe2ncs, not whichever one is installed (the script's own
# folder, tests/, is what Python puts first on the path).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EVENTS: list[tuple] = []
_RECORDING = [False]

_PROCESS_EVENTS = ("os.system", "subprocess.Popen", "os.exec", "os.spawn", "os.posix_spawn",
                   "os.fork", "os.forkpty", "pty.spawn")


def _hook(event: str, args) -> None:
    if not _RECORDING[0]:
        return
    if event == "open":
        path, mode = args[0], args[1]
        if isinstance(path, int):  # os.fdopen etc.: not a path
            return
        EVENTS.append(("open", os.fsdecode(path) if not isinstance(path, str) else path,
                       str(mode)))
    elif event == "import":
        EVENTS.append(("import", args[0]))
    elif event == "compile":
        # compile() of source text: keep the text when it is not a module's file
        source, filename = args[0], str(args[1])
        text = ""
        if filename.startswith("<") and isinstance(source, (str, bytes)):
            text = source if isinstance(source, str) else source.decode("utf-8", "replace")
        EVENTS.append(("compile", filename, text))
    elif event == "exec":
        code = args[0]
        EVENTS.append(("exec", str(getattr(code, "co_filename", "?")),
                       " ".join(c for c in getattr(code, "co_consts", ()) if isinstance(c, str))))
    elif event.startswith(_PROCESS_EVENTS):
        EVENTS.append(("process", event, repr(args)[:200]))
    elif event.startswith("socket."):
        EVENTS.append(("socket", event))


def main() -> int:
    audit = "--audit" in sys.argv[1:]
    if audit:
        sys.addaudithook(_hook)
    cases = json.load(sys.stdin)
    real_out, real_err = sys.stdout, sys.stderr
    os.environ["NO_COLOR"] = "1"
    os.environ["COLUMNS"] = "200"
    os.environ.pop("FORCE_COLOR", None)
    # Warm up the imports outside any case (what importing caffe2ncs itself
    # does is not what a model file makes it do).
    from caffe2ncs import cli  # noqa: F401

    results = []
    for args in cases:
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        EVENTS.clear()
        _RECORDING[0] = audit
        try:
            code = cli.main(args)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            _RECORDING[0] = False
            sys.stdout, sys.stderr = real_out, real_err
        result = {"args": args, "exit": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
        if audit:
            result["events"] = list(EVENTS)
        results.append(result)
    json.dump(results, real_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
