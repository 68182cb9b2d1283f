#!/usr/bin/env python3
"""Time ``caffe2ncs check`` on the whole corpus against protobuf's own parser.

Two measurements, each against a peer timed in the same run:

1. **In one process**: every corpus prototxt (texts read beforehand) goes
   through ``check_source`` (parse with positions, schema checks, shapes,
   every default rule, suppressions) and, as the floor, through
   ``google.protobuf.text_format.Parse`` into Caffe's ``NetParameter`` (what any
   Caffe tool does first, with no positions, no shapes and no rules).  Files
   alternate between the two, ``--repeat`` times after a warm-up; per file the
   median is kept.  It prints each file's times and ratio, the total over the
   corpus, the per-file median, and the ratio of the totals.
2. **The CLI**, as a pre-commit hook runs it: ``python -m caffe2ncs check
   resnet152.prototxt`` wall time including interpreter start, against
   ``python -c pass`` (the interpreter alone) and against a script that imports
   protobuf and parses the same file (the least a Python linter must do).

Targets (issue 3; ruff is the model: a linter should cost about what parsing
costs, so the check should stay within a small factor of the parse): whole
corpus < 1 s in one process; one ResNet-152 CLI run < 0.3 s wall including
interpreter start.  The exit code is 0 whatever the numbers; ``--max-total S``
/ ``--max-cli S`` make it exit 1 when a median is above those seconds.

    python benchmarks/check_corpus.py [--repeat N] [--warmup N] [--cli-runs N]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _default_corpus() -> Path:
    env = os.environ.get("CAFFE2NCS_CORPUS")
    if env:
        return Path(env)
    for parent in HERE.parents:
        candidate = parent / "shared" / "corpus"
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "corpus"


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def in_process(files: list[Path], repeat: int, warmup: int) -> float:
    from google.protobuf import text_format

    import caffe2ncs
    from caffe2ncs._proto import caffe_pb2
    from caffe2ncs.model.source import read_text_file
    from caffe2ncs.rules.runner import check_source
    from caffe2ncs.rules.settings import Settings

    texts = {f: read_text_file(f) for f in files}
    settings = Settings()

    def ours(path: Path) -> int:
        return len(check_source(texts[path], str(path), settings).diagnostics)

    def protobuf(path: Path) -> bool:
        try:
            text_format.Parse(texts[path], caffe_pb2.NetParameter(), allow_unknown_field=True)
            return True
        except text_format.ParseError:  # a fork's syntax: still time the attempt
            return False

    found = {f: ours(f) for f in files}
    parsed = {f: protobuf(f) for f in files}
    for _ in range(warmup):
        for f in files:
            ours(f)
            protobuf(f)
    t_ours: dict[Path, list[float]] = {f: [] for f in files}
    t_pb: dict[Path, list[float]] = {f: [] for f in files}
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            for f in files:
                gc.collect()
                gc.disable()  # a collection inside one run would only add noise
                start = time.perf_counter()
                ours(f)
                t_ours[f].append(time.perf_counter() - start)
                start = time.perf_counter()
                protobuf(f)
                t_pb[f].append(time.perf_counter() - start)
                gc.enable()
    finally:
        if gc_was_enabled:
            gc.enable()

    from google.protobuf.internal import api_implementation

    print(f"versions caffe2ncs {caffe2ncs.__version__} ({Path(caffe2ncs.__file__).parent}), "
          f"protobuf {_protobuf_version()} ({api_implementation.Type()}), "
          f"Python {sys.version.split()[0]}")
    load = f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs" \
        if hasattr(os, "getloadavg") else ""
    print(f"runs     {repeat} per file, alternating, after {warmup} warm-up runs; "
          f"medians per file{load}")
    print()
    print(f"{'file':<44} {'KB':>6} {'findings':>8} {'check ms':>9} {'protobuf ms':>11} "
          f"{'ratio':>6}")
    per_ours, per_pb = [], []
    for f in files:
        mo, mp = _median_ms(t_ours[f]), _median_ms(t_pb[f])
        per_ours.append(mo)
        per_pb.append(mp)
        note = "" if parsed[f] else "  (protobuf: parse error)"
        print(f"{f.name:<44} {f.stat().st_size / 1024:6.1f} {found[f]:8d} {mo:9.2f} {mp:11.2f} "
              f"{mo / mp:5.1f}x{note}")
    total_ours, total_pb = sum(per_ours), sum(per_pb)
    print()
    print(f"corpus   {len(files)} files, {sum(f.stat().st_size for f in files) / 1024:.0f} KB, "
          f"{sum(found.values())} findings; protobuf parsed {sum(parsed.values())} of them")
    print(f"total    check {total_ours:8.1f} ms   protobuf {total_pb:7.1f} ms   "
          f"ratio {total_ours / total_pb:.1f}x   target: check < 1000 ms")
    print(f"per file median   check {statistics.median(per_ours):6.2f} ms   "
          f"protobuf {statistics.median(per_pb):6.2f} ms")
    return total_ours / 1e3


def _protobuf_version() -> str:
    from importlib.metadata import version

    return version("protobuf")


def cli_runs(resnet: Path, runs: int) -> float | None:
    if not resnet.is_file():
        print(f"cli      skipped: {resnet} not found")
        return None
    import tempfile

    # as installed: bytecode cached (pip compiles it; a session may have set
    # PYTHONDONTWRITEBYTECODE, which would recompile every module on every
    # run), in a temporary folder so that the checkout stays clean
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO),
               PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="caffe2ncs-bench-pyc-"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    parse_script = (
        "import sys\n"
        "from google.protobuf import text_format\n"
        "from caffe2ncs._proto import caffe_pb2\n"
        "text_format.Parse(open(sys.argv[1]).read(), caffe_pb2.NetParameter())\n")
    commands = {
        "python -m caffe2ncs check resnet152": [sys.executable, "-m", "caffe2ncs", "check",
                                                  "--format", "concise", str(resnet)],
        "python -c pass": [sys.executable, "-c", "pass"],
        "python: import protobuf + Parse": [sys.executable, "-c", parse_script, str(resnet)],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(2):  # warm the file cache and .pyc files
        for cmd in commands.values():
            subprocess.run(cmd, env=env, cwd=REPO, capture_output=True)
    for _ in range(runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            if done.returncode not in (0, 1):
                print(f"error: {name} exited {done.returncode}: {done.stderr}", file=sys.stderr)
                raise SystemExit(2)
    print()
    print(f"cli      {runs} runs each, alternating, wall time including interpreter start")
    base = statistics.median(times["python -c pass"])
    for name, t in times.items():
        print(f"  {name:<38} best {min(t) * 1e3:7.1f} ms   median {_median_ms(t):7.1f} ms   "
              f"{statistics.median(t) / base:4.1f}x interpreter start")
    ours = statistics.median(times["python -m caffe2ncs check resnet152"])
    floor = statistics.median(times["python: import protobuf + Parse"])
    print(f"  ratio check / (import protobuf + Parse) {ours / floor:.2f}x   target: check < 300 ms")
    return ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=_default_corpus(),
                        help="folder of prototxt files (default: shared/corpus)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per file (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first (default 1)")
    parser.add_argument("--cli-runs", type=int, default=10,
                        help="timed CLI runs of each command (default 10; 0 to skip)")
    parser.add_argument("--max-total", type=float, default=None,
                        help="exit 1 if the corpus total is above this many seconds")
    parser.add_argument("--max-cli", type=float, default=None,
                        help="exit 1 if the median CLI run is above this many seconds")
    args = parser.parse_args(argv)
    files = sorted(args.corpus.glob("*.prototxt"))
    if not files:
        print(f"error: no *.prototxt in {args.corpus} (set CAFFE2NCS_CORPUS or pass --corpus)",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))  # time this checkout
    total = in_process(files, args.repeat, args.warmup)
    cli = cli_runs(args.corpus / "resnet152.prototxt", args.cli_runs) if args.cli_runs else None
    failed = False
    if args.max_total is not None and total > args.max_total:
        print(f"FAIL: corpus total {total:.3f} s is above {args.max_total} s", file=sys.stderr)
        failed = True
    if args.max_cli is not None and cli is not None and cli > args.max_cli:
        print(f"FAIL: median CLI run {cli:.3f} s is above {args.max_cli} s", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
