"""Time the fp16 emulator against OpenCV's fp32 ``cv2.dnn`` forward on the same
networks with the same random weights, in one run, and print the ratios
(target: the emulator at most 1.5x OpenCV's time), plus the vendor's
published stick time for GoogLeNet beside the emulator's.

    .venv/bin/python benchmarks/emulator_speed.py
    .venv/bin/python benchmarks/emulator_speed.py --repeat 10 --threads 1
    .venv/bin/python benchmarks/emulator_speed.py --profile googlenet   # per stage type

The networks are corpus prototxts (read in place): SqueezeNet v1.0 (after
``caffe2ncs fix --unsafe-fixes`` in memory: the NCSDK refuses its padded 1x1
``conv10``, so both sides run the fixed network), GoogLeNet and VGG16, each
with ``synthesize(net, 0)`` weights, saved as a caffemodel for OpenCV and
built (NCSDK 2.x, 12 SHAVEs) for the emulator.  One image, the networks'
real input size.  What is timed: ``Emulator.run`` on a prepared emulator (the
graph decoded once, as a loaded graph on a stick) and ``Net.forward`` on a
prepared OpenCV network (after a warm-up forward, which is when OpenCV
allocates); alternately, ``--repeat`` times each, with the garbage collector
paused; the medians are compared.  With one thread each (the default) both
run in this thread, and the ratio is of the CPU time this thread used
(``time.thread_time``: user and system time, page faults included), which
does not count the time other processes on a busy machine take; the wall
times are printed too.  With more threads the ratio is of wall times.

Threads: by default both sides get one (OpenCV's ``setNumThreads(1)``, and
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = 1 for the
BLAS numpy uses, set before numpy is imported): the comparison is then of the
two implementations, not of two thread pools on a machine that may be busy
(on a loaded machine OpenBLAS's threads wait for each other at every small
matrix product; GoogLeNet's 7x7 stages then take 30 ms instead of 0.5 ms).
``--threads N`` gives both N; ``--threads 0`` leaves both at their defaults.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def _threads_from_argv() -> int:
    """``--threads`` before numpy is imported (BLAS reads its thread count once)."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


THREADS = _threads_from_argv()
if THREADS > 0:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(THREADS)

import numpy as np  # noqa: E402

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from conftest import CORPUS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import opencv_with_caffe  # noqa: E402

#: (name, corpus file, apply the unsafe fixes first)
NETWORKS = [
    ("squeezenet_v1.0", "squeezenet_v1.0.prototxt", True),
    ("googlenet", "bvlc_googlenet.prototxt", False),
    ("vgg16", "vgg16_input_state_imagedata.prototxt", False),
]
#: The vendor's published NCS1 time for GoogLeNet at 12 SHAVEs (mvNCProfile's
#: total, NCSDK 1.x docs/tools/profile.md; ncsdk-reference.md section 7).
GOOGLENET_STICK_MS = 88.66
TARGET_RATIO = 1.5


def prepare(name: str, file: str, fix: bool, workdir: Path):
    """(emulator, OpenCV net, input HWC) for one network."""
    import cv2

    from caffe2ncs.fixes.engine import fix_text
    from caffe2ncs.lowering.emit import graph_bytes
    from caffe2ncs.lowering.graphfile import read_graph
    from caffe2ncs.lowering.lower import lower_network
    from caffe2ncs.model.loader import loads
    from caffe2ncs.model.weights import save_caffemodel, synthesize
    from caffe2ncs.rules.settings import Settings
    from caffe2ncs.runtime.emulator import Emulator

    path = CORPUS / file
    text = path.read_text(encoding="utf-8")
    if fix:
        text = fix_text(text, str(path), Settings(unsafe_fixes=True), unsafe=True).text
    prototxt = workdir / f"{name}.prototxt"
    prototxt.write_text(text, encoding="utf-8")
    net = loads(text, path=str(path))
    weights = synthesize(net, 0)
    model = workdir / f"{name}.caffemodel"
    save_caffemodel(net, model, weights=weights)
    lowered = lower_network(net, target="ncsdk2", shaves=12, weights=weights, any_batch=True)
    emulator = Emulator(read_graph(graph_bytes(lowered.graph, "ncsdk2")))
    cvnet = cv2.dnn.readNetFromCaffe(str(prototxt), str(model))
    h, w, c = emulator.input_shape
    x = np.random.default_rng(0).uniform(-1, 1, (h, w, c)).astype(np.float32)
    cvnet.setInput(x.transpose(2, 0, 1)[None])
    return emulator, cvnet, x, len(lowered.graph.stages)


def timed(fn) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this thread) of one call."""
    gc.collect()
    gc.disable()
    try:
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        return time.perf_counter() - t0, time.thread_time() - c0
    finally:
        gc.enable()


def profile(emulator, x) -> None:
    """Host time per stage type, over one traced run."""
    trace = emulator.trace(x)
    by_op: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for record in trace.stages:
        by_op[record.stage.op.value] += record.seconds
        count[record.stage.op.value] += 1
    total = sum(by_op.values())
    print(f"  per stage type (one traced run, {total * 1000:.1f} ms):")
    for op, seconds in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f"    {op:24s} {count[op]:3d} stages {seconds * 1000:8.1f} ms "
              f"{100 * seconds / total:5.1f} %")
    slow = sorted(trace.stages, key=lambda r: -r.seconds)[:5]
    print("  slowest stages: " + ", ".join(
        f"{r.stage.name or r.index} ({r.stage.op.value}) {r.seconds * 1000:.1f} ms" for r in slow))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for each side (default 1; 0: each library's default)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="only this network (squeezenet_v1.0, googlenet, vgg16); repeatable")
    parser.add_argument("--profile", action="append", metavar="NAME",
                        help="also print where the emulator's time goes for this network")
    args = parser.parse_args(argv)
    cv2 = opencv_with_caffe()
    if cv2 is None:
        return 2
    missing = [f for _, f, _ in NETWORKS if not (CORPUS / f).is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found in {CORPUS} (set CAFFE2NCS_CORPUS)",
              file=sys.stderr)
        return 2
    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    import caffe2ncs

    blas = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
            if k in os.environ}
    print(f"versions caffe2ncs {caffe2ncs.__version__} ({Path(caffe2ncs.__file__).parent}), "
          f"numpy {np.__version__}, OpenCV {cv2.__version__}, Python {sys.version.split()[0]}")
    print(f"threads  OpenCV {cv2.getNumThreads()}, BLAS "
          f"{', '.join(f'{k}={v}' for k, v in blas.items()) or 'its default'}; "
          f"{os.cpu_count()} CPUs")
    print(f"runs     {args.repeat} of each, alternating, after one warm-up; medians compared\n")
    by_cpu = args.threads == 1
    basis = "CPU time of this thread" if by_cpu else "wall time"
    print(f"ratio of {basis}; wall times in brackets\n")
    print(f"{'network':16s} {'stages':>6s} {'emulator':>20s} {'OpenCV fp32':>20s} "
          f"{'ratio':>6s}  target <= {TARGET_RATIO}x")
    ratios = {}
    emulated_ms = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, file, fix in NETWORKS:
            if args.only and name not in args.only:
                continue
            emulator, cvnet, x, stages = prepare(name, file, fix, Path(tmp))
            emulator.run(x)
            cvnet.forward()
            emu_times, cv_times = [], []
            for _ in range(args.repeat):
                emu_times.append(timed(lambda: emulator.run(x)))
                cv_times.append(timed(cvnet.forward))
            emu_wall, emu_cpu = (statistics.median(t[i] for t in emu_times) for i in (0, 1))
            cv_wall, cv_cpu = (statistics.median(t[i] for t in cv_times) for i in (0, 1))
            emu, cv = (emu_cpu, cv_cpu) if by_cpu else (emu_wall, cv_wall)
            ratios[name] = emu / cv
            emulated_ms[name] = emu * 1000
            verdict = "ok" if ratios[name] <= TARGET_RATIO else "ABOVE TARGET"
            print(f"{name:16s} {stages:6d} {emu * 1000:7.1f}ms [{emu_wall * 1000:7.1f}ms] "
                  f"{cv * 1000:7.1f}ms [{cv_wall * 1000:7.1f}ms] {ratios[name]:5.2f}x  {verdict}",
                  flush=True)
            if args.profile and name in args.profile:
                profile(emulator, x)
            del emulator, cvnet
    if "googlenet" in emulated_ms:
        ms = emulated_ms["googlenet"]
        print(f"\nGoogLeNet on a real NCS1 stick (vendor's published mvNCProfile total, "
              f"12 SHAVEs): {GOOGLENET_STICK_MS:.2f} ms")
        print(f"GoogLeNet on this host's emulator: {ms:.1f} ms "
              f"({ms / GOOGLENET_STICK_MS:.2f}x the stick's time: "
              f"{'faster' if ms < GOOGLENET_STICK_MS else 'slower'} than the stick)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
