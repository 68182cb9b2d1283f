#!/usr/bin/env python3
"""Count the instructions of loading ResNet-152: caffe2ncs.load vs OpenCV's importer.

load_resnet152.py times both, and on a shared machine times move with the
machine's state.  Instruction counts do not: this runs each loader 1 and 11
times in a fresh interpreter under ``valgrind --tool=callgrind`` and prints the
difference divided by 10 (imports, warm-up and start-up cancel out), for ours
and for ``cv2.dnn.readNetFromCaffe`` (one OpenCV thread), and their ratio.
The garbage collector is off in both, as in load_resnet152.py's timed runs.

Instructions are not time (the interpreter does fewer per cycle than OpenCV's
C++), so the ratio here is lower than the timed one; it is for telling
whether a change made the load cheaper, run to run.

    python benchmarks/load_instructions.py [--file PATH]

Needs valgrind (Debian: apt-get install valgrind); takes about a minute.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import opencv_with_caffe  # noqa: E402
from load_resnet152 import _default_file  # noqa: E402

_RUN = """
import gc, sys
gc.disable()
path, n, which = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if which == "ours":
    import caffe2ncs
    load = caffe2ncs.load
else:
    import cv2
    cv2.setNumThreads(1)
    load = cv2.dnn.readNetFromCaffe
load(path)
for _ in range(n):
    load(path)
"""


def _count(script: str, path: str, n: int, which: str) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         script, path, str(n), which], capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"error: valgrind failed ({which}, {n} loads):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=_default_file(),
                        help="the prototxt (default: shared/corpus/resnet152.prototxt)")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"error: {args.file} not found (set CAFFE2NCS_CORPUS or pass --file)",
              file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed", file=sys.stderr)
        return 2
    if opencv_with_caffe() is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        script = str(Path(tmp) / "run.py")
        Path(script).write_text(_RUN)
        per_load = {}
        for which in ("ours", "opencv"):
            one = _count(script, str(args.file), 1, which)
            eleven = _count(script, str(args.file), 11, which)
            per_load[which] = (eleven - one) / 10
    print(f"file     {args.file}")
    print(f"caffe2ncs.load               {per_load['ours'] / 1e6:8.1f} M instructions per load")
    print(f"cv2.dnn.readNetFromCaffe     {per_load['opencv'] / 1e6:8.1f} M instructions per load")
    print(f"ratio    {per_load['ours'] / per_load['opencv']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
