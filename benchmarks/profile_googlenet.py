"""Print the cost model's per-layer predictions for GoogLeNet against the vendor's
published table, and its totals for networks with published NCS1 timings
(ncsdk-reference section 7) as an out-of-sample check.

    .venv/bin/python benchmarks/profile_googlenet.py

Lowers each network with ``caffe2ncs.lowering``, as ``caffe2ncs profile``
does.  Reads ../shared in place.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from conftest import CORPUS  # noqa: E402
from profile_support import googlenet, lowered, vendor_rows  # noqa: E402

from caffe2ncs.model import load  # noqa: E402
from caffe2ncs.profile import DEFAULT_MODEL  # noqa: E402

#: (corpus file, published ms at 12 SHAVEs, what was published)
OUT_OF_SAMPLE = [
    ("ncappzoo_ssd_mobilenet_patched.prototxt", 80.62, "SSD MobileNet, live-object-detector"),
    ("mobilenet_v1.prototxt", 39.41, "MobileNet v1 1.0/224 (published for TensorFlow)"),
    ("inception_v3.prototxt", 323.57, "Inception v3 299 (published for TensorFlow)"),
]


def main() -> int:
    _, graph, which = googlenet()
    costs = DEFAULT_MODEL.estimate(graph, 12)
    by_name = {c.name: c for c in costs}
    vendor = vendor_rows()
    print(f"GoogLeNet, 12 SHAVEs (lowering: {which})")
    print(f"{'#':>3} {'layer':28s} {'MFLOPs':>9s} {'published':>9s} {'predicted':>9s} "
          f"{'error':>7s}")
    errs = []
    for v in vendor:
        c = by_name[v.name]
        errs.append((c.time_ms - v.time_ms, (c.time_ms - v.time_ms) / v.time_ms))
        print(f"{v.index:3d} {v.name:28s} {c.mflops:9.3f} {v.time_ms:9.2f} {c.time_ms:9.2f} "
              f"{100 * errs[-1][1]:+6.0f}%")
    total = sum(c.time_ms for c in costs)
    published = sum(v.time_ms for v in vendor)
    abs_e = np.abs([e[0] for e in errs])
    rel_e = np.abs([e[1] for e in errs])
    print(f"total: predicted {total:.2f} ms, published {published:.2f} ms "
          f"({100 * (total / published - 1):+.1f} %)")
    print(f"median |error| per layer: {np.median(abs_e):.3f} ms, "
          f"median |relative error|: {100 * np.median(rel_e):.1f} %\n")
    print("Out of sample (nothing below was used for calibration):")
    for name, published_ms, what in OUT_OF_SAMPLE:
        path = CORPUS / name
        if not path.is_file():
            print(f"  {name}: not in the corpus")
            continue
        g, _ = lowered(load(path))
        predicted = sum(c.time_ms for c in DEFAULT_MODEL.estimate(g, 12))
        print(f"  {what}: predicted {predicted:.1f} ms, published {published_ms:.2f} ms "
              f"({100 * (predicted / published_ms - 1):+.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
