"""Calibrate the cost model on a published per-layer table -- and only on one:
the vendor profiler's table for BVLC GoogLeNet on an NCS1 with 12 SHAVEs.

Procedure (``docs/profile.md``, "Calibration"):

1. Lower the network and compute, per stage, the model's features: op class,
   arithmetic (FLOPs) and bytes moved (:mod:`.costmodel`).
2. Match the stages to the table's rows by name.
3. For a fixed compute/memory overlap the predicted time is linear in four
   unknowns once we know, per stage, whether compute or memory is the longer
   term::

       t = t0 + a1 * F[1x1 conv and FC] + ak * F[other conv] + b * B      (overlap 0)

   with ``t0`` the stage overhead (ms), ``a1``/``ak`` milliseconds per FLOP of
   the two convolution classes and ``b`` milliseconds per byte.  Solve it by
   weighted linear least squares with weights ``1/t_measured`` (so every
   layer's *relative* error counts the same, and the many small layers are not
   drowned by conv2/3x3), re-deciding the longer term per stage until it is
   stable.
4. Do this for overlaps 0, 0.25, 0.5, 0.75, 1 and keep the one with the
   smallest weighted residual.
5. Convert to efficiencies: ``eff = (1e3 / a) / (12 * PEAK_FLOPS_PER_SHAVE)``,
   ``dram_eff = (1e3 / b) / DRAM_PEAK_BYTES_PER_S``.

``python -m caffe2ncs.profile.calibrate NET.prototxt|NET.graph TABLE.tsv``
prints the result in the form of :mod:`.constants`;
``tests/test_profile_calibration.py`` checks that the constants are what the
procedure gives.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from ..lowering.ir import Graph
from . import constants as K
from .costmodel import CONV, CONV1X1, FC, STREAM, CostModel, bytes_moved, op_class, work_flops

#: The overlaps tried (step 4).
OVERLAP_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)

#: The table was measured with this many SHAVEs.
CALIBRATION_SHAVES = 12


@dataclass(frozen=True)
class VendorRow:
    index: int
    name: str
    mflops: float
    bandwidth_mb_s: float
    time_ms: float


def read_vendor_table(path) -> list[VendorRow]:
    """The rows of a tab-separated mvNCProfile table (``#`` comment lines, a
    header ``stage name mflops bandwidth_mb_s time_ms``)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]
    header = lines[0].split("\t")
    for line in lines[1:]:
        cells = dict(zip(header, line.split("\t"), strict=True))
        rows.append(VendorRow(int(cells["stage"]), cells["name"], float(cells["mflops"]),
                              float(cells["bandwidth_mb_s"]), float(cells["time_ms"])))
    return rows


@dataclass(frozen=True)
class Fit:
    """The result of :func:`fit`."""

    model: CostModel
    overlap: float
    #: Per overlap tried: the weighted residual (sum of squared relative errors).
    residuals: dict[float, float]
    names: tuple[str, ...]
    measured_ms: np.ndarray
    predicted_ms: np.ndarray

    @property
    def total_measured_ms(self) -> float:
        return float(self.measured_ms.sum())

    @property
    def total_predicted_ms(self) -> float:
        return float(self.predicted_ms.sum())

    @property
    def median_abs_error_ms(self) -> float:
        return float(np.median(np.abs(self.predicted_ms - self.measured_ms)))

    @property
    def median_rel_error(self) -> float:
        return float(np.median(np.abs(self.predicted_ms - self.measured_ms) / self.measured_ms))


def _features(graph: Graph, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per named stage: (FLOPs of the 1x1/FC class, FLOPs of the other conv
    class, bytes).  Raises when a name has no stage or an op class the
    GoogLeNet table cannot calibrate."""
    by_name = {s.name: s for s in graph.stages}
    f1, fk, b = [], [], []
    for name in names:
        stage = by_name.get(name)
        if stage is None:
            raise ValueError(f"the table names a layer {name!r} that the graph has no stage for")
        cls = op_class(stage)
        if cls not in (CONV1X1, CONV, FC, STREAM):
            raise ValueError(f"stage {name!r} is a {cls}: the table cannot calibrate that class")
        work = work_flops(stage)
        f1.append(work if cls in (CONV1X1, FC) else 0)
        fk.append(work if cls == CONV else 0)
        b.append(bytes_moved(stage))
    return np.array(f1, float), np.array(fk, float), np.array(b, float)


def _solve(f1, fk, b, t, overlap: float, max_iter: int = 50):
    """Weighted LS for (t0, a1, ak, bm) at a fixed overlap; returns (theta, predicted)."""
    w = 1.0 / t
    compute_longer = (f1 + fk) * 2e-8 > b * 4e-7  # a starting guess: ~50 GFLOP/s, ~2.5 GB/s
    theta = pred = None
    for _ in range(max_iter):
        c_scale = np.where(compute_longer, 1.0, 1.0 - overlap)
        m_scale = np.where(compute_longer, 1.0 - overlap, 1.0)
        x = np.stack([np.ones_like(t), f1 * c_scale, fk * c_scale, b * m_scale], axis=1)
        theta, *_ = np.linalg.lstsq(x * w[:, None], t * w, rcond=None)
        tc = theta[1] * f1 + theta[2] * fk
        tm = theta[3] * b
        pred = theta[0] + np.maximum(tc, tm) + (1.0 - overlap) * np.minimum(tc, tm)
        now = tc > tm
        if (now == compute_longer).all():
            break
        compute_longer = now
    return theta, pred


def fit(graph: Graph, table: list[VendorRow]) -> Fit:
    """Steps 2-5 of the procedure for a lowered network and its measured table."""
    names = [row.name for row in table]
    t = np.array([row.time_ms for row in table], float)
    f1, fk, b = _features(graph, names)
    results = {}
    for overlap in OVERLAP_GRID:
        theta, pred = _solve(f1, fk, b, t, overlap)
        results[overlap] = (float(np.sum(((pred - t) / t) ** 2)), theta, pred)
    best = min(results, key=lambda ov: results[ov][0])
    _, theta, pred = results[best]
    t0, a1, ak, bm = (float(v) for v in theta)
    if min(a1, ak, bm) <= 0 or t0 < 0:
        raise ValueError(f"calibration gave a non-physical factor: {theta}")
    peak = CALIBRATION_SHAVES * K.PEAK_FLOPS_PER_SHAVE
    eff1 = 1e3 / a1 / peak
    effk = 1e3 / ak / peak
    dram = 1e3 / bm / K.DRAM_PEAK_BYTES_PER_S
    model = CostModel(stage_overhead_ms=t0, conv1x1_efficiency=eff1, conv_efficiency=effk,
                      depthwise_efficiency=effk, deconv_efficiency=effk, fc_efficiency=eff1,
                      dram_efficiency=dram, overlap=best)
    return Fit(model, best, {ov: r[0] for ov, r in results.items()}, tuple(names), t, pred)


def format_fit(result: Fit) -> str:
    m = result.model
    peak = CALIBRATION_SHAVES * K.PEAK_FLOPS_PER_SHAVE
    lines = [
        "overlap tried -> sum of squared relative errors: "
        + ", ".join(f"{ov:g}: {r:.3f}" for ov, r in result.residuals.items()),
        f"COMPUTE_MEMORY_OVERLAP = {result.overlap}",
        f"STAGE_OVERHEAD_MS = {m.stage_overhead_ms:.4f}",
        f"CONV1X1_EFFICIENCY = {m.conv1x1_efficiency:.4f}"
        f"  # {m.conv1x1_efficiency * peak / 1e9:.1f} GFLOP/s with 12 SHAVEs",
        f"CONV_EFFICIENCY = {m.conv_efficiency:.4f}"
        f"  # {m.conv_efficiency * peak / 1e9:.1f} GFLOP/s with 12 SHAVEs",
        f"DRAM_EFFICIENCY = {m.dram_efficiency:.4f}"
        f"  # {m.dram_efficiency * K.DRAM_PEAK_BYTES_PER_S / 1e9:.2f} GB/s",
        f"total: predicted {result.total_predicted_ms:.2f} ms, "
        f"measured {result.total_measured_ms:.2f} ms "
        f"({100 * (result.total_predicted_ms / result.total_measured_ms - 1):+.1f} %)",
        f"per layer: median |error| {result.median_abs_error_ms:.3f} ms, "
        f"median |relative error| {100 * result.median_rel_error:.1f} %",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caffe2ncs.profile.calibrate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("network", help="the calibration network: prototxt or graph file")
    parser.add_argument("table", help="its per-layer table (tab-separated, see "
                        "shared/spec/googlenet-profile-ncs1.tsv)")
    args = parser.parse_args(argv)
    from .source import load_input

    graph = load_input(args.network).graph
    result = fit(graph, read_vendor_table(args.table))
    print(format_fit(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
