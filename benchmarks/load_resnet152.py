#!/usr/bin/env python3
"""Time loading ResNet-152's prototxt: caffe2ncs.load vs OpenCV's Caffe importer.

Both run in this process on the same file, alternately, after a warm-up:

* ``caffe2ncs.load(path)`` - parse with positions, check against the schema,
  normalise inputs, check the graph and infer every blob's shape;
* ``cv2.dnn.readNetFromCaffe(path)`` - OpenCV's C++ protobuf text parser,
  upgrade and network construction (no shapes until an input is set).

It prints the best and median time of each and the ratio ours / OpenCV's
(target: at most 2).  The exit code is 0 whatever the ratio; pass
``--max-ratio R`` to make it exit 1 when the median ratio is above R.

    python benchmarks/load_resnet152.py [--repeat N] [--warmup N] [--file PATH]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

from _peers import opencv_with_caffe

HERE = Path(__file__).resolve().parent


def _default_file() -> Path:
    env = os.environ.get("CAFFE2NCS_CORPUS")
    if env:
        return Path(env) / "resnet152.prototxt"
    for parent in HERE.parents:
        candidate = parent / "shared" / "corpus" / "resnet152.prototxt"
        if candidate.is_file():
            return candidate
    return HERE.parent.parent / "shared" / "corpus" / "resnet152.prototxt"


def _time(fn, path: str) -> float:
    start = time.perf_counter()
    fn(path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=_default_file(),
                        help="the prototxt (default: shared/corpus/resnet152.prototxt)")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--max-ratio", type=float, default=None,
                        help="exit 1 if the median ratio ours/OpenCV is above this")
    args = parser.parse_args(argv)

    path = str(args.file)
    if not args.file.is_file():
        print(f"error: {path} not found (set CAFFE2NCS_CORPUS or pass --file)", file=sys.stderr)
        return 2
    cv2 = opencv_with_caffe()
    if cv2 is None:
        return 2
    import caffe2ncs

    def ours(p: str):
        return caffe2ncs.load(p)

    def opencv(p: str):
        return cv2.dnn.readNetFromCaffe(p)

    net = ours(path)
    cvnet = opencv(path)
    print(f"file     {path}")
    print(f"network  {len(net.layers)} layers, {len(net.blob_shapes)} blobs, "
          f"output {net.outputs[0]} {net.blob_shapes[net.outputs[0]]}; "
          f"OpenCV: {len(cvnet.getLayerNames())} layers")
    print(f"versions caffe2ncs {caffe2ncs.__version__} ({Path(caffe2ncs.__file__).parent}), "
          f"OpenCV {cv2.__version__}, Python {sys.version.split()[0]}")

    for _ in range(args.warmup):
        ours(path)
        opencv(path)
    ours_times: list[float] = []
    cv_times: list[float] = []
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(args.repeat):
            gc.collect()
            gc.disable()  # a collection inside one run would only add noise
            ours_times.append(_time(ours, path))
            cv_times.append(_time(opencv, path))
            gc.enable()
    finally:
        if gc_was_enabled:
            gc.enable()

    def row(name: str, times: list[float]) -> str:
        return (f"{name:<28} best {min(times) * 1e3:7.2f} ms   "
                f"median {statistics.median(times) * 1e3:7.2f} ms")

    ratio_median = statistics.median(ours_times) / statistics.median(cv_times)
    ratio_best = min(ours_times) / min(cv_times)
    print(f"runs     {args.repeat} each, alternating, after {args.warmup} warm-up runs")
    print(row("caffe2ncs.load", ours_times))
    print(row("cv2.dnn.readNetFromCaffe", cv_times))
    print(f"ratio    {ratio_median:.2f}x (median)   {ratio_best:.2f}x (best)   target <= 2x")
    if args.max_ratio is not None and ratio_median > args.max_ratio:
        print(f"FAIL: median ratio {ratio_median:.2f} is above {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
