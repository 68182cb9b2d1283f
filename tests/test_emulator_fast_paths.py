"""The emulator's fast paths compute the same numbers as the plain definitions.

* The Winograd F(2x2, 3x3) convolution against a float64 definition and the
  im2col path, on shapes that exercise its edges: odd output sizes (half-used
  tiles), several bands of tile rows (the last one partial), padding before
  and past the input, an output buffer larger than the input allows, channel
  counts from 1 to hundreds.
* The ReLU stored on fp16 bits (``store_relu``) against ReLU-then-round, bit
  for bit, on every fp16 value, NaNs, signed zeros and overflow included.
* The fp16 -> float32 conversion against numpy's cast, every bit pattern.
* Reused temporaries (``Workspace``): runs are independent, also concurrent.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_emulator_kernels import conv_ref

from caffe2ncs.lowering.ir import ConvParams, Op, PadStyle, PostOp
from caffe2ncs.runtime.emulator import Emulator, op_convolution
from caffe2ncs.runtime.emulator.memory import fp16_to_float32, store_relu
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


def every_fp16() -> np.ndarray:
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)


@pytest.mark.parametrize("which", ["all", "finite", "non-negative finite", "negative finite"])
def test_fp16_conversion_equals_the_cast_for_every_bit_pattern(which):
    """Both ways of converting: by the table (arrays with an infinity or a NaN)
    and by moving the bits (the others), every bit pattern of each."""
    h = every_fp16()
    if which != "all":
        h = h[np.isfinite(h)]
    if which == "non-negative finite":
        h = h[~np.signbit(h)]
    if which == "negative finite":
        h = h[np.signbit(h)]
    got = fp16_to_float32(h)
    assert np.array_equal(got.view(np.uint32), h.astype(np.float32).view(np.uint32))
    strided = h[:h.size // 256 * 256].reshape(-1, 256)[::3, 1::2]
    assert np.array_equal(fp16_to_float32(strided).view(np.uint32),
                          strided.astype(np.float32).view(np.uint32))


def relu_then_round(values: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.maximum(values, np.float32(0)).astype(np.float16)


@pytest.mark.parametrize("with_nan", [False, True])
def test_store_relu_equals_relu_then_rounding_bit_for_bit(with_nan):
    rng = np.random.default_rng(5)
    with np.errstate(all="ignore"):
        values = np.concatenate([
            every_fp16().astype(np.float32),  # every fp16 value, NaNs and infinities included
            (rng.standard_normal(50_000) * 10.0 ** rng.integers(-9, 6, 50_000)).astype(np.float32),
            np.array([-0.0, 0.0, -1e-30, 1e-30, 65519.0, 65520.0, -65520.0, 3e38, -3e38],
                     np.float32),
        ])
    if not with_nan:
        values = values[~np.isnan(values)]
    dst = np.zeros((values.size, 2), np.float16)[:, 1]  # a strided destination
    store_relu(dst, values)
    assert np.array_equal(dst.view(np.uint16), relu_then_round(values).view(np.uint16))


def test_store_relu_with_only_negative_nans_and_several_bands(monkeypatch):
    """NaNs with the sign bit set (signalling and quiet), alone in their band
    of values, and bands beside them without NaN."""
    from caffe2ncs.runtime.emulator import memory

    monkeypatch.setattr(memory, "STORE_BLOCK", 1000)
    bits = np.concatenate([np.arange(0xFF800001, 0xFF800001 + 3000, dtype=np.uint32),
                           np.arange(0xFFC00000, 0xFFC00000 + 3000, dtype=np.uint32),
                           np.arange(0x3F800000, 0x3F800000 + 3000, dtype=np.uint32)])
    values = bits.view(np.float32).reshape(9, 1000)
    dst = np.zeros((9, 1000), np.float16)
    store_relu(dst, values)
    assert np.array_equal(dst.view(np.uint16), relu_then_round(values).view(np.uint16))


def test_runs_reusing_temporaries_are_independent_also_concurrently():
    """One Emulator, inputs of different values through the same stages: each
    run's output is what a fresh emulator computes, whatever ran before or at
    the same time."""
    from concurrent.futures import ThreadPoolExecutor

    from test_emulator_kernels import Builder

    rng = np.random.default_rng(11)
    g = Builder((9, 11, 8))
    mid = g.buffer((9, 11, 16))
    g.add(Op.CONVOLUTION, g.input(), mid.ref(), taps=g.taps("w1", rng.normal(0, .3, (3, 3, 8, 16))),
          params=ConvParams(3, 3, 1, 1, 1, 1, PadStyle.CAFFE), post_op=PostOp.relu())
    g.add(Op.CONVOLUTION, mid.ref(), g.output((5, 6, 4)),
          taps=g.taps("w2", rng.normal(0, .3, (3, 3, 16, 4))),
          params=ConvParams(3, 3, 2, 2, 1, 1, PadStyle.CAFFE))
    graph = g.graph()
    inputs = [rng.normal(0, 1, (9, 11, 8)) for _ in range(6)]
    expected = [Emulator(graph).run(x) for x in inputs]
    shared = Emulator(graph)
    assert all(np.array_equal(shared.run(x), e) for x, e in zip(inputs, expected, strict=True))
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(shared.run, inputs * 4))
    assert all(np.array_equal(o, e) for o, e in zip(got, expected * 4, strict=True))


@pytest.mark.parametrize("style, pad", [(PadStyle.CAFFE, (1, 1)), (PadStyle.TF_SAME, (0, 0)),
                                        (PadStyle.TF_VALID, (0, 0)), (PadStyle.CAFFE, (0, 2))])
def test_a_stage_with_enough_channels_takes_the_winograd_path(style, pad, monkeypatch):
    """Through the whole emulator (buffers, bias, ReLU, fp16 rounding): a 3x3
    stride-1 stage with 32+ input channels uses Winograd and matches the float64
    definition rounded once."""
    from test_emulator_kernels import Builder, assert_fp16, conv_out, rand, relu, run, tf_same_pad

    calls = []
    real = op_convolution.winograd_conv3x3
    monkeypatch.setattr(op_convolution, "winograd_conv3x3",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    h, w, c, k = 11, 10, op_convolution.WINOGRAD_MIN_CHANNELS, 7
    rng = np.random.default_rng(21)
    x, wt, b = rand(rng, (h, w, c)), rand(rng, (3, 3, c, k), -0.2, 0.2), rand(rng, k)
    ho, wo = conv_out(h, 3, 1, 1, style, pad[0]), conv_out(w, 3, 1, 1, style, pad[1])
    g = Builder((h, w, c))
    g.add(Op.CONVOLUTION, g.input(), g.output((ho, wo, k)), taps=g.taps("w", wt),
          bias=g.const("b", b), post_op=PostOp.relu(),
          params=ConvParams(3, 3, 1, 1, pad[1], pad[0], style))
    before = ((tf_same_pad(h, ho, 3, 1), tf_same_pad(w, wo, 3, 1)) if style is PadStyle.TF_SAME
              else (0, 0) if style is PadStyle.TF_VALID else pad)
    assert_fp16(run(g.graph(), x), relu(conv_ref(x, wt, b, (1, 1), before, 1, (ho, wo))))
    assert calls


@pytest.mark.parametrize("kernel, stride, pad, out_hw", [
    ((3, 3), (2, 2), (0, 0), (7, 7)),   # the ceil rule: the last windows reach past the input
    ((2, 2), (2, 2), (0, 0), (7, 8)),
    ((3, 3), (1, 1), (1, 1), (15, 16)),
    ((2, 2), (2, 2), (2, 2), (9, 9)),   # windows with no input position in them: -inf
])
@pytest.mark.parametrize("values", ["relu", "signed", "zeros", "nan", "inf"])
def test_max_pool_on_fp16_bits_equals_the_float_pooling(kernel, stride, pad, out_hw, values):
    """On the bits where it applies (no negative, -0 or NaN), otherwise None."""
    from caffe2ncs.runtime.emulator.op_pooling import max_pool, max_pool_fp16

    rng = np.random.default_rng(3)
    x = rng.standard_normal((15, 16, 5)).astype(np.float16)
    if values != "signed":
        x = np.maximum(x, np.float16(0))
    if values == "zeros":
        x[::2] = -0.0
    if values == "nan":
        x[3, 4, 1] = np.nan
    if values == "inf":
        x[3, 4, 1] = np.inf
    strided = np.zeros((15, 16, 7), np.float16)[:, :, 1:6]
    strided[...] = x
    window = {"kernel": kernel, "stride": stride, "pad": pad, "out_hw": out_hw}
    got = max_pool_fp16(strided, **window)
    if values in ("signed", "zeros", "nan"):
        assert got is None
        return
    want = max_pool(x.astype(np.float32), **window).astype(np.float16)
    assert got.dtype == np.float16 and got.shape == want.shape
    assert np.array_equal(got.view(np.uint16), want.view(np.uint16))
    if pad == (2, 2):
        assert np.isneginf(got[0, 0]).all()


@pytest.mark.parametrize("hwc, pad, size", [
    ((7, 9, 3), (1, 1), (10, 12)),
    ((7, 9, 3), (0, 0), (6, 8)),      # the canvas cuts the input
    ((5, 6, 2), (2, 3), (8, 10)),     # odd padding: the input's columns change parity
    ((4, 4, 1), (1, 0), (6, 4)),
])
def test_split_columns_is_the_padded_input_by_column_parity(hwc, pad, size):
    from caffe2ncs.runtime.emulator.op_convolution import split_columns, zero_padded

    x = np.random.default_rng(2).standard_normal(hwc).astype(np.float32)
    split = split_columns(x, pad, size)
    padded = np.zeros((*size, hwc[2]), np.float32)
    plain = zero_padded(x, pad, size)
    padded[:plain.shape[0], :plain.shape[1]] = plain[:size[0], :size[1]]
    assert split.shape == (size[0], 2, size[1] // 2, hwc[2])
    assert np.array_equal(split[:, 0], padded[:, 0::2])
    assert np.array_equal(split[:, 1], padded[:, 1::2])
