"""The done-when checks of the cost model on BVLC GoogLeNet against the vendor
profiler's published per-layer table (NCS1, 12 SHAVEs, 88.66 ms)."""

from __future__ import annotations

import numpy as np
import pytest
from profile_support import (
    GOOGLENET,
    googlenet,
    googlenet_with_layers,
    vendor_rows,
)

from caffe2ncs.profile import DEFAULT_MODEL, build_profile
from caffe2ncs.profile.costmodel import vendor_bandwidth_mb_s

#: The classifier row of the vendor table (1024 -> 1000 InnerProduct), where
#: mvNCProfile printed 0.002 MFLOPs; we print the real 2*1024*1000.
FC_ROW = "loss3/classifier"


@pytest.fixture(scope="module")
def profile():
    net, graph, stage_layers, which = googlenet_with_layers()
    costs = DEFAULT_MODEL.estimate(graph, 12)
    p = build_profile(graph, costs, source=GOOGLENET, kind="prototxt", shaves=12, net=net,
                      stage_layers=stage_layers)
    return p, which


def test_rows_are_the_vendors_layers_in_order(profile):
    p, _ = profile
    assert [r.name for r in p.rows] == [row.name for row in vendor_rows()]


def test_mflops_equal_the_vendor_column(profile):
    p, which = profile
    rows = {r.name: r for r in p.rows}
    checked = 0
    for v in vendor_rows():
        ours = rows[v.name]
        if v.name == FC_ROW:
            assert v.mflops == 0.002  # the vendor quirk
            assert ours.mflops == pytest.approx(2 * 1024 * 1000 / 1e6)
            continue
        assert ours.mflops == pytest.approx(v.mflops, abs=0.01), (v.name, which)
        checked += 1
    assert checked == 74
    # Spot values worked out by hand from the formulas.
    assert rows["conv1/7x7_s2"].mflops == pytest.approx(2 * 64 * 112 * 112 * 3 * 49 / 1e6)
    assert rows["pool1/3x3_s2"].mflops == pytest.approx(64 * 56 * 56 * 9 / 1e6)
    assert rows["pool5/7x7_s1"].mflops == pytest.approx(2 * 1024 * 49 / 1e6)
    assert rows["prob"].mflops == pytest.approx(3 * 1000 / 1e6)
    assert rows["pool1/norm1"].mflops == 0.0


def test_bandwidth_formula_reproduces_the_vendor_column(profile):
    """Our implementation of the vendor's bandwidth formula explains its
    bandwidth column: the time implied by each printed bandwidth is the
    printed time to within 0.01 ms (the times are printed with 2 decimals)."""
    p, _ = profile
    rows = {r.name: r for r in p.rows}
    for v in vendor_rows():
        vb = sum(s.vendor_bytes for s in rows[v.name].stages)
        implied_ms = vb / (1024 * 1024) / v.bandwidth_mb_s * 1e3
        if v.name == "prob":
            # The one row the formula does not explain: the vendor printed half
            # of it (10.62 MB/s; in + out = 2000 elements give 21.2 at 0.18 ms).
            assert implied_ms == pytest.approx(2 * v.time_ms, abs=0.01)
            continue
        assert implied_ms == pytest.approx(v.time_ms, abs=0.01), v.name
        assert vendor_bandwidth_mb_s(vb, implied_ms) == pytest.approx(v.bandwidth_mb_s)


def test_predicted_total_within_ten_percent(profile):
    p, which = profile
    measured = sum(v.time_ms for v in vendor_rows())
    assert measured == pytest.approx(88.66, abs=0.02)
    print(f"\nGoogLeNet, 12 SHAVEs ({which}): predicted {p.total_ms:.2f} ms, "
          f"published {measured:.2f} ms ({100 * (p.total_ms / measured - 1):+.1f} %)")
    assert abs(p.total_ms - measured) / measured < 0.10


def test_per_layer_errors_are_reported(profile):
    p, which = profile
    vendor = vendor_rows()
    pred = np.array([r.time_ms for r in p.rows])
    meas = np.array([v.time_ms for v in vendor])
    abs_err = np.abs(pred - meas)
    rel_err = abs_err / meas
    lines = [f"{'layer':28s} {'published':>9s} {'predicted':>9s} {'error':>7s}"]
    for r, v, e in zip(p.rows, vendor, rel_err, strict=True):
        lines.append(f"{r.name:28s} {v.time_ms:9.2f} {r.time_ms:9.2f} {100 * e:6.0f}%")
    print("\n" + "\n".join(lines))
    print(f"median |error| per layer: {np.median(abs_err):.3f} ms, "
          f"median |relative error|: {100 * np.median(rel_err):.1f} % ({which})")
    # What the calibration achieved; a regression in the model shows here.
    assert np.median(rel_err) < 0.20
    assert np.median(abs_err) < 0.12
    # The biggest layer is the biggest in both.
    assert p.rows[int(np.argmax(pred))].name == vendor[int(np.argmax(meas))].name == "conv2/3x3"


def test_fewer_shaves_is_slower_and_only_compute_scales():
    _, graph, _ = googlenet()
    totals = {n: sum(c.time_ms for c in DEFAULT_MODEL.estimate(graph, n)) for n in (1, 2, 4, 8, 12)}
    assert totals[1] > totals[2] > totals[4] > totals[8] > totals[12]
    c12 = DEFAULT_MODEL.estimate(graph, 12)
    c1 = DEFAULT_MODEL.estimate(graph, 1)
    for a, b in zip(c12, c1, strict=True):
        assert b.compute_ms == pytest.approx(12 * a.compute_ms)
        assert b.memory_ms == a.memory_ms and b.overhead_ms == a.overhead_ms


def test_googlenet_through_the_real_lowering(cli, tmp_path):
    """The real path: prototxt -> caffe2ncs.lowering -> cost model -> JSON."""
    from conftest import corpus_path

    r = cli("profile", corpus_path(GOOGLENET), "--json")
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout)
    vendor = vendor_rows()
    layers = {entry["name"]: entry for entry in out["layers"]}
    for v in vendor:
        if v.name != FC_ROW:
            assert layers[v.name]["mflops"] == pytest.approx(v.mflops, abs=0.01), v.name
    assert abs(out["total_ms"] - 88.66) / 88.66 < 0.10
