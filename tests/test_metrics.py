"""mvNCCheck's metrics and thresholds (ncsdk-reference.md §4)."""

import math

import numpy as np
import pytest

from caffe2ncs.runtime.metrics import THRESHOLDS, compare, top_k


def test_identical_results_pass_with_zero_errors():
    b = np.array([0.5, -2.0, 1.0])
    c = compare(b.copy(), b)
    assert c.passed
    assert [m.value for m in c.metrics] == [0.0, 0.0, 0.0, 0.0, 0.0]
    assert c.reference_magnitude == 2.0


def test_each_metric_follows_the_vendor_formula():
    b = np.array([1.0, -4.0, 2.0, 0.0])  # ref = 4
    a = np.array([1.04, -4.0, 2.0, 0.2])  # diffs 0.04, 0, 0, 0.2
    c = compare(a, b)
    values = {m.name: m.value for m in c.metrics}
    assert values["Min Pixel Accuracy"] == pytest.approx(0.2 / 4 * 100)
    assert values["Average Pixel Accuracy"] == pytest.approx((0.24 / 4) / 4 * 100)
    # 2 % of ref = 0.08: only the 0.2 difference is wrong -> 1 of 4 values
    assert values["Percentage of wrong values"] == pytest.approx(25.0)
    assert values["Pixel-wise L2 error"] == pytest.approx(math.sqrt((0.04**2 + 0.2**2) / 4) / 4 * 100)
    assert values["Global Sum Difference"] == pytest.approx(0.24)
    assert not c.passed
    assert {m.name for m in c.failed()} == {"Min Pixel Accuracy", "Average Pixel Accuracy",
                                            "Percentage of wrong values", "Pixel-wise L2 error"}


def test_thresholds_are_the_vendors():
    assert THRESHOLDS == (("Min Pixel Accuracy", 2.0), ("Average Pixel Accuracy", 1.0),
                          ("Percentage of wrong values", 0.0), ("Pixel-wise L2 error", 1.0))


def test_small_fp16_like_errors_pass():
    rng = np.random.default_rng(0)
    b = rng.normal(size=1000)
    a = b.astype(np.float16).astype(np.float64)
    assert compare(a, b).passed


def test_nan_fails_even_when_everything_else_is_close():
    b = np.ones(10)
    a = b.copy()
    a[3] = np.nan
    c = compare(a, b)
    assert c.has_nan and not c.passed
    assert math.isnan(c.metrics[0].value)


def test_zero_reference():
    assert compare(np.zeros(3), np.zeros(3)).passed
    c = compare(np.array([0.0, 1e-3, 0.0]), np.zeros(3))
    assert not c.passed and c.metrics[0].value == math.inf


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 values with 2"):
        compare(np.zeros(3), np.zeros(2))


def test_top_k_orders_by_value_then_index():
    assert top_k(np.array([0.1, 0.7, 0.7, 0.2]), 3) == [(1, 0.7), (2, 0.7), (3, 0.2)]
    assert top_k(np.array([[1.0], [3.0]]), 5) == [(1, 3.0), (0, 1.0)]
