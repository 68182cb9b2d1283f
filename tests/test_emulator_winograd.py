"""The Winograd F(2x2, 3x3) path of the emulator's convolution against a float64
definition and against the im2col path, on shapes that exercise its edges:
odd output sizes (half-used tiles), several bands of tile rows (the last one
partial), padding before and past the input, an output buffer larger than
the input allows, and channel counts from 1 to hundreds."""

from __future__ import annotations

import numpy as np
import pytest
from test_emulator_kernels import conv_ref

from caffe2ncs.runtime.emulator import op_convolution
from caffe2ncs.runtime.emulator.op_convolution import conv2d, winograd_conv3x3, winograd_weights

CASES = [
    # (H, W, C), K, pad before (y, x), (Ho, Wo)
    ((7, 9, 3), 5, (1, 1), (7, 9)),
    ((8, 8, 1), 1, (0, 0), (6, 6)),
    ((5, 6, 4), 3, (2, 0), (7, 4)),
    ((1, 1, 2), 2, (1, 1), (1, 1)),
    ((15, 13, 32), 24, (1, 1), (15, 13)),
    ((6, 6, 3), 2, (1, 1), (8, 8)),  # windows past the input read zeros
    ((29, 31, 96), 128, (1, 1), (29, 31)),
]


@pytest.mark.parametrize("hwc, k, pad, out_hw", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("block", [op_convolution.WINOGRAD_BLOCK_BYTES, 4096])
def test_winograd_equals_the_definition(hwc, k, pad, out_hw, block, monkeypatch):
    monkeypatch.setattr(op_convolution, "WINOGRAD_BLOCK_BYTES", block)  # several bands
    rng = np.random.default_rng(sum(hwc) * k)
    x = rng.standard_normal(hwc).astype(np.float16).astype(np.float32)
    w = (rng.standard_normal((3, 3, hwc[2], k)) / np.sqrt(9 * hwc[2])).astype(np.float16)
    w = w.astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    got = winograd_conv3x3(x, winograd_weights(w), b, pad=pad, out_hw=out_hw)
    want = conv_ref(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1),
                    pad, 1, out_hw)
    assert got.shape == (*out_hw, k) and got.dtype == np.float32
    scale = np.abs(want).max()
    # float32 rounding, far below one fp16 unit (4.9e-4 of the value at 0.5..1)
    assert np.abs(got - want).max() <= 2e-6 * scale
    direct = conv2d(x, w, b, stride=(1, 1), pad=pad, dilation=1, out_hw=out_hw)
    assert np.abs(got - direct).max() <= 2e-6 * scale


def test_winograd_weights_are_g_g_gt():
    w = np.arange(9, dtype=np.float32).reshape(3, 3, 1, 1)
    u = winograd_weights(w).reshape(4, 4)
    g = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
    np.testing.assert_allclose(u, g @ w[:, :, 0, 0] @ g.T)


def test_fp16_results_rarely_differ_from_direct_summation():
    """Rounded to fp16 as the device stores them, the Winograd and the im2col
    results both equal the exact sum rounded once, but for the rare value
    within float32 error of a rounding boundary (measured on this case: 0.34 %
    and 0.22 % of the values), which is one fp16 unit away -- or, for values
    far smaller than the largest, whose units are finer than the float32
    error of the sum, a few units within that error."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((28, 28, 256)).astype(np.float16).astype(np.float32)
    w = (rng.standard_normal((3, 3, 256, 64)) / 48).astype(np.float16).astype(np.float32)
    exact = conv_ref(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1), 1,
                     (28, 28)).astype(np.float16)
    winograd = winograd_conv3x3(x, winograd_weights(w), None, pad=(1, 1), out_hw=(28, 28))
    direct = conv2d(x, w, None, stride=(1, 1), pad=(1, 1), dilation=1, out_hw=(28, 28))
    for got in (winograd.astype(np.float16), direct.astype(np.float16)):
        differ = got != exact
        assert differ.mean() < 0.01
        gap = np.abs(got[differ].astype(np.float64) - exact[differ])
        unit = np.spacing(np.maximum(np.abs(got[differ]), np.abs(exact[differ])))
        assert np.all(gap <= unit + 2e-6 * np.abs(exact).max())
        large = np.abs(exact[differ]) >= np.abs(exact).max() / 16
        assert np.all(gap[large] <= unit[large])
