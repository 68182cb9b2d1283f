"""The calibration procedure reproduces the constants in caffe2ncs/profile/constants.py."""

from __future__ import annotations

import pytest
from profile_support import googlenet, vendor_rows

from caffe2ncs.profile import constants as K
from caffe2ncs.profile.calibrate import OVERLAP_GRID, fit, format_fit


def test_fit_reproduces_the_constants():
    _, graph, which = googlenet()
    result = fit(graph, vendor_rows())
    print(f"\ncalibration on GoogLeNet ({which}):\n{format_fit(result)}")
    m = result.model
    assert result.overlap == K.COMPUTE_MEMORY_OVERLAP
    assert set(result.residuals) == set(OVERLAP_GRID)
    # The constants are the fit rounded to 4 decimals.
    assert m.stage_overhead_ms == pytest.approx(K.STAGE_OVERHEAD_MS, abs=6e-5)
    assert m.conv1x1_efficiency == pytest.approx(K.CONV1X1_EFFICIENCY, abs=6e-5)
    assert m.conv_efficiency == pytest.approx(K.CONV_EFFICIENCY, abs=6e-5)
    assert m.dram_efficiency == pytest.approx(K.DRAM_EFFICIENCY, abs=6e-5)
    # Physically sensible: efficiencies are fractions, the overhead is below
    # the smallest stage the table shows (0.14 ms).
    for eff in (m.conv1x1_efficiency, m.conv_efficiency, m.dram_efficiency):
        assert 0.05 < eff < 1.0
    assert 0 < m.stage_overhead_ms < 0.14
    assert abs(result.total_predicted_ms / result.total_measured_ms - 1) < 0.05


def test_calibration_script_prints_the_constants(tmp_path):
    """``python -m caffe2ncs.profile.calibrate`` on a graph file of GoogLeNet."""
    from profile_support import VENDOR_TABLE

    from caffe2ncs.lowering.graphfile import write_graph
    from caffe2ncs.profile.calibrate import main

    _, graph, _ = googlenet()
    path = tmp_path / "googlenet.graph"
    path.write_bytes(write_graph(graph, "ncsdk1"))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main([str(path), str(VENDOR_TABLE)]) == 0
    text = buf.getvalue()
    assert f"STAGE_OVERHEAD_MS = {K.STAGE_OVERHEAD_MS:.4f}" in text
    assert f"CONV_EFFICIENCY = {K.CONV_EFFICIENCY:.4f}" in text
    assert "COMPUTE_MEMORY_OVERLAP = 0.0" in text
