"""The reference executor, layer by layer, on tiny cases computed by hand (or,
for convolutions, by a loop written straight from Caffe's definition)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caffe2ncs.errors import CaffemodelError, NetGraphError, UnsupportedNetworkError, UsageError
from caffe2ncs.model import loads
from caffe2ncs.runtime.reference import check_supported, run, run_layers, supported_types

FLT_MAX = float(np.finfo(np.float32).max)


def make_net(body: str, inputs: dict[str, tuple[int, ...]]):
    head = "".join(
        f'input: "{name}" input_shape {{ {" ".join(f"dim: {d}" for d in shape)} }}\n'
        for name, shape in inputs.items())
    return loads(head + body)


def layer(type_: str, bottoms, top="y", params: str = "", name: str | None = None) -> str:
    bottoms = [bottoms] if isinstance(bottoms, str) else bottoms
    tops = [top] if isinstance(top, str) else top
    text = f'layer {{ name: "{name or type_.lower()}" type: "{type_}" '
    text += "".join(f'bottom: "{b}" ' for b in bottoms)
    text += "".join(f'top: "{t}" ' for t in tops)
    return text + params + " }\n"


def forward(body: str, inputs: dict[str, np.ndarray], weights=None, **kw) -> dict:
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    net = make_net(body, {k: v.shape for k, v in arrays.items()})
    return run(net, arrays, weights if weights is not None else {}, **kw)


def one(type_: str, x, params: str = "", weights=None, **kw) -> np.ndarray:
    """The output of a single layer of ``type_`` on input ``x``."""
    w = {type_.lower(): tuple(np.asarray(a, np.float32) for a in weights)} if weights else None
    return forward(layer(type_, "x", "y", params), {"x": x}, w, **kw)["y"]


def arange(*shape) -> np.ndarray:
    return np.arange(math.prod(shape), dtype=np.float32).reshape(shape)


# -- convolution family -------------------------------------------------------------

def conv_naive(x, w, b, stride, pad, dilation, group):
    """Caffe's convolution, one output element at a time."""
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (wd + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    out = np.zeros((n, k, oh, ow), np.float64)
    kg = k // group
    for b_ in range(n):
        for o in range(k):
            g = o // kg
            for y in range(oh):
                for z in range(ow):
                    s = 0.0 if b is None else float(b[o])
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                yy, zz = y * sh - ph + i * dh, z * sw - pw + j * dw
                                if 0 <= yy < h and 0 <= zz < wd:
                                    s += float(w[o, ci, i, j]) * float(x[b_, g * cg + ci, yy, zz])
                    out[b_, o, y, z] = s
    return out


def deconv_naive(x, w, b, stride, pad, dilation, group):
    """Caffe's deconvolution: each input element scatters its kernel."""
    n, c, h, wd = x.shape
    _, kg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    oh = sh * (h - 1) + dh * (kh - 1) + 1 - 2 * ph
    ow = sw * (wd - 1) + dw * (kw - 1) + 1 - 2 * pw
    out = np.zeros((n, kg * group, oh, ow), np.float64)
    cg = c // group
    for b_ in range(n):
        for ci in range(c):
            g = ci // cg
            for y in range(h):
                for z in range(wd):
                    for o in range(kg):
                        for i in range(kh):
                            for j in range(kw):
                                yy, zz = y * sh - ph + i * dh, z * sw - pw + j * dw
                                if 0 <= yy < oh and 0 <= zz < ow:
                                    out[b_, g * kg + o, yy, zz] += w[ci, o, i, j] * x[b_, ci, y, z]
    if b is not None:
        out += np.asarray(b).reshape(1, -1, 1, 1)
    return out


def test_convolution_by_hand():
    x = arange(1, 1, 3, 3)  # 0..8
    w = np.array([[[[1, 0], [0, -1]]]], np.float32)
    y = one("Convolution", x, "convolution_param { num_output: 1 kernel_size: 2 }",
            [w, np.array([10], np.float32)])
    # x[i, j] - x[i+1, j+1] = -4 everywhere, plus the bias
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 6, np.float32))


@pytest.mark.parametrize("params, kernel, stride, pad, dilation, group", [
    ("kernel_size: 3 pad: 1", (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ("kernel_size: 3 stride: 2 pad: 2", (3, 3), (2, 2), (2, 2), (1, 1), 1),
    ("kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0", (2, 3), (2, 1), (1, 0),
     (1, 1), 1),
    ("kernel_size: 3 dilation: 2 pad: 2", (3, 3), (1, 1), (2, 2), (2, 2), 1),
    ("kernel_size: 3 pad: 1 group: 2", (3, 3), (1, 1), (1, 1), (1, 1), 2),
    ("kernel_size: 3 pad: 1 group: 4", (3, 3), (1, 1), (1, 1), (1, 1), 4),  # depthwise
    ("kernel_size: 1", (1, 1), (1, 1), (0, 0), (1, 1), 1),
    ("kernel_size: 1 stride: 2", (1, 1), (2, 2), (0, 0), (1, 1), 1),
])
@pytest.mark.parametrize("type_", ["Convolution", "DepthwiseConvolution"])
def test_convolution_matches_its_definition(params, kernel, stride, pad, dilation, group, type_):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    k = 4 if group == 4 else 6
    w = rng.standard_normal((k, 4 // group, *kernel)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    y = one(type_, x, f"convolution_param {{ num_output: {k} {params} }}", [w, b])
    want = conv_naive(x, w, b, stride, pad, dilation, group)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    y64 = one(type_, x, f"convolution_param {{ num_output: {k} {params} }}", [w, b],
              dtype=np.float64)
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("params", ["num_output: 4 kernel_size: 3 pad: 1 stride: 2",
                                    "num_output: 4 kernel_size: 3 pad: 2 dilation: 2 group: 4"])
def test_convolution_depthwise_fork_is_always_depthwise(params):
    # conv_dw_layer.cpp: one filter per input channel whatever group says
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y = one("ConvolutionDepthwise", x, f"convolution_param {{ {params} }}", [w, b])
    stride = (2, 2) if "stride: 2" in params else (1, 1)
    dilation = (2, 2) if "dilation" in params else (1, 1)
    pad = (2, 2) if "pad: 2" in params else (1, 1)
    np.testing.assert_allclose(y, conv_naive(x, w, b, stride, pad, dilation, 4), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(NetGraphError, match="one filter per input channel"):
        one("ConvolutionDepthwise", x, f"convolution_param {{ {params} }}",
            [np.ones((4, 4, 3, 3)), b])


def test_convolution_without_bias_and_in_bands(monkeypatch):
    from caffe2ncs.runtime.reference import conv

    monkeypatch.setattr(conv, "COLUMN_BUDGET", 1)  # one output row at a time
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    y = one("Convolution", x,
            "convolution_param { num_output: 5 kernel_size: 3 stride: 2 bias_term: false }", [w])
    np.testing.assert_allclose(y, conv_naive(x, w, None, (2, 2), (0, 0), (1, 1), 1),
                               rtol=1e-5, atol=1e-5)


def test_convolution_applies_its_weights_to_each_bottom():
    x1, x2 = arange(1, 1, 2, 2), -arange(1, 1, 2, 2)
    w = np.full((1, 1, 1, 1), 2, np.float32)
    net = make_net(layer("Convolution", ["a", "b"], ["ya", "yb"],
                         "convolution_param { num_output: 1 kernel_size: 1 bias_term: false }",
                         name="c"), {"a": (1, 1, 2, 2), "b": (1, 1, 2, 2)})
    out = run(net, {"a": x1, "b": x2}, {"c": (w,)})
    np.testing.assert_array_equal(out["ya"], 2 * x1)
    np.testing.assert_array_equal(out["yb"], 2 * x2)


def test_deconvolution_by_hand():
    # one input pixel scatters the kernel; two overlapping ones add up
    x = np.array([[[[1, 2]]]], np.float32)
    w = np.array([[[[1, 10, 100]]]], np.float32).reshape(1, 1, 1, 3)
    y = one("Deconvolution", x,
            "convolution_param { num_output: 1 kernel_h: 1 kernel_w: 3 stride: 2 "
            "bias_term: false }", [w])
    np.testing.assert_array_equal(y, [[[[1, 10, 100 + 2, 20, 200]]]])
    y = one("Deconvolution", x,
            "convolution_param { num_output: 1 kernel_h: 1 kernel_w: 3 stride: 2 pad_w: 1 "
            "pad_h: 0 bias_term: false }", [w])
    np.testing.assert_array_equal(y, [[[[10, 102, 20]]]])


@pytest.mark.parametrize("params, kernel, stride, pad, dilation, group", [
    ("kernel_size: 4 stride: 2 pad: 1", (4, 4), (2, 2), (1, 1), (1, 1), 1),
    ("kernel_size: 3 stride: 3", (3, 3), (3, 3), (0, 0), (1, 1), 1),
    ("kernel_size: 3 stride: 2 dilation: 2 pad: 1", (3, 3), (2, 2), (1, 1), (2, 2), 1),
    ("kernel_size: 4 stride: 2 pad: 1 group: 2", (4, 4), (2, 2), (1, 1), (1, 1), 2),
    ("kernel_size: 2 stride: 2 group: 4", (2, 2), (2, 2), (0, 0), (1, 1), 4),
])
def test_deconvolution_matches_its_definition(params, kernel, stride, pad, dilation, group):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3, 4)).astype(np.float32)
    k = 4
    w = rng.standard_normal((4, k // group, *kernel)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    y = one("Deconvolution", x, f"convolution_param {{ num_output: {k} {params} }}", [w, b])
    np.testing.assert_allclose(y, deconv_naive(x, w, b, stride, pad, dilation, group),
                               rtol=1e-5, atol=1e-5)


def test_inner_product():
    x = arange(2, 3)
    w = np.array([[1, 0, 0], [0, 1, 1]], np.float32)
    y = one("InnerProduct", x, "inner_product_param { num_output: 2 }", [w, [0.5, -0.5]])
    np.testing.assert_array_equal(y, [[0.5, 2.5], [3.5, 8.5]])
    y = one("InnerProduct", x, "inner_product_param { num_output: 2 transpose: true "
            "bias_term: false }", [w.T])
    np.testing.assert_array_equal(y, [[0, 3], [3, 9]])
    # axis 2: each of the 2x2 positions' trailing vector
    x = arange(1, 2, 2, 3)
    y = one("InnerProduct", x, "inner_product_param { num_output: 2 axis: 3 bias_term: false }",
            [w])
    np.testing.assert_array_equal(y, x @ w.T)
    assert y.shape == (1, 2, 2, 2)
    # the default axis 1 flattens C, H, W
    y = one("InnerProduct", x, "inner_product_param { num_output: 1 bias_term: false }",
            [np.ones((1, 12), np.float32)])
    np.testing.assert_array_equal(y, [[66]])


def test_embed():
    x = np.array([[2, 0], [1, 1]], np.float32)
    table = arange(3, 2)
    y = one("Embed", x, "embed_param { num_output: 2 input_dim: 3 }", [table, [100, 200]])
    np.testing.assert_array_equal(y, [[[104, 205], [100, 201]], [[102, 203], [102, 203]]])
    with pytest.raises(NetGraphError, match="non-integer"):
        one("Embed", x + 0.5, "embed_param { num_output: 2 input_dim: 3 }", [table, [0, 0]])
    with pytest.raises(NetGraphError, match="outside"):
        one("Embed", x + 2, "embed_param { num_output: 2 input_dim: 3 }", [table, [0, 0]])


# -- pooling ---------------------------------------------------------------------------

def pool(x, params: str, tops=("y",)):
    out = forward(layer("Pooling", "x", list(tops), f"pooling_param {{ {params} }}"), {"x": x})
    return [out[t] for t in tops] if len(tops) > 1 else out[tops[0]]


def test_max_pooling_by_hand():
    x = arange(1, 1, 4, 4)
    np.testing.assert_array_equal(pool(x, "pool: MAX kernel_size: 2 stride: 2"),
                                  [[[[5, 7], [13, 15]]]])


def test_pooling_rounds_up_and_the_last_window_is_partial():
    x = arange(1, 1, 5, 5)
    y = pool(x, "pool: MAX kernel_size: 2 stride: 2")
    assert y.shape == (1, 1, 3, 3)  # ceil((5 - 2) / 2) + 1
    np.testing.assert_array_equal(y, [[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]])
    # AVE: the last window starts at 4 and ends at min(6, H + pad = 5): divisor 1, not 2
    y = pool(x, "pool: AVE kernel_size: 2 stride: 2")
    np.testing.assert_array_equal(y[0, 0, :, 2], [(4 + 9) / 2, (14 + 19) / 2, 24])
    np.testing.assert_array_equal(y[0, 0, 2], [(20 + 21) / 2, (22 + 23) / 2, 24])


def test_pooling_floor_rounding():
    x = arange(1, 1, 5, 5)
    y = pool(x, "pool: MAX kernel_size: 2 stride: 2 round_mode: FLOOR")
    np.testing.assert_array_equal(y, [[[[6, 8], [16, 18]]]])


def test_pooling_clamps_a_window_starting_in_the_bottom_padding():
    # H = 5, k = 2, s = 2, pad = 1: ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window
    # would start at 3*2 - 1 = 5 >= H: Caffe drops it.
    x = arange(1, 1, 5, 5)
    y = pool(x, "pool: MAX kernel_size: 2 stride: 2 pad: 1")
    assert y.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(y, [[[[0, 2, 4], [10, 12, 14], [20, 22, 24]]]])


def test_padding_on_one_axis_clamps_both():
    # Caffe's PoolingLayer::Reshape clamps both axes as soon as pad_h or pad_w is
    # set.  W = 4, kernel_w 1, stride_w 2, pad_w 0: ceil((4 - 1) / 2) + 1 = 3, and
    # the 3rd window would start at 2 * 2 = 4 >= W + pad_w: dropped because pad_h
    # is 1 (OpenCV keeps it and gives 3x3).  Shape inference says the same.
    x = arange(1, 1, 4, 4)
    params = "pool: MAX kernel_h: 2 kernel_w: 1 stride_h: 2 stride_w: 2 pad_h: 1 pad_w: 0"
    y = pool(x, params)
    assert y.shape == (1, 1, 3, 2)
    # rows: windows [-1, 1), [1, 3), [3, 5) -> rows 0, 2, 3; columns 0 and 2
    np.testing.assert_array_equal(y, [[[[0, 2], [8, 10], [12, 14]]]])
    net = make_net(layer("Pooling", "x", "y", f"pooling_param {{ {params} }}"), {"x": x.shape})
    assert net.blob_shapes["y"] == y.shape


def test_ave_pooling_divides_by_the_window_clipped_to_the_padded_input():
    x = np.ones((1, 1, 4, 4), np.float32)
    y = pool(x, "pool: AVE kernel_size: 3 stride: 2 pad: 1")
    # rows/cols: window 0 covers [-1, 2) -> 3 in the padded input, 2 in the image;
    # window 1 covers [1, 4) -> 3 and 3; window 2 covers [3, min(6, 4 + 1) = 5) -> 2 and 1.
    assert y.shape == (1, 1, 3, 3)
    inside = np.array([2, 3, 1], np.float32)
    padded = np.array([3, 3, 2], np.float32)
    np.testing.assert_allclose(y[0, 0], np.outer(inside, inside) / np.outer(padded, padded),
                               rtol=1e-6)


def test_global_pooling():
    x = arange(2, 3, 2, 3)
    np.testing.assert_array_equal(pool(x, "pool: MAX global_pooling: true"),
                                  x.max(axis=(2, 3), keepdims=True))
    np.testing.assert_allclose(pool(x, "pool: AVE global_pooling: true"),
                               x.mean(axis=(2, 3), keepdims=True), rtol=1e-6)


def test_max_pooling_mask_and_ties():
    x = np.array([[[[1, 3, 3, 0], [2, 3, 1, 1], [0, 0, 5, 5], [0, 0, 5, 5]]]], np.float32)
    y, mask = pool(x, "pool: MAX kernel_size: 2 stride: 2", tops=("y", "mask"))
    np.testing.assert_array_equal(y, [[[[3, 3], [0, 5]]]])
    # the first maximum in row-major order: h * W + w
    np.testing.assert_array_equal(mask, [[[[1, 2], [8, 10]]]])


def test_max_pooling_skips_nans_and_starts_at_minus_flt_max():
    x = np.array([[[[np.nan, 1], [-np.inf, -np.inf]]]], np.float32)
    y = pool(x, "pool: MAX kernel_h: 1 kernel_w: 2 stride: 1")
    np.testing.assert_array_equal(y, [[[[1], [-FLT_MAX]]]])


def test_stochastic_pooling_at_test_time():
    x = np.array([[[[1, 3], [0, 4]]]], np.float32)
    y = pool(x, "pool: STOCHASTIC kernel_size: 2")
    np.testing.assert_allclose(y, [[[[(1 + 9 + 16) / 8]]]], rtol=1e-6)
    assert pool(-x, "pool: STOCHASTIC kernel_size: 2").item() == 0


def test_pooling_refuses_what_caffe_refuses():
    with pytest.raises(NetGraphError, match="mask top"):
        pool(arange(1, 1, 2, 2), "pool: AVE kernel_size: 2", tops=("y", "z"))
    with pytest.raises(NetGraphError, match="smaller than the kernel"):
        pool(arange(1, 1, 4, 4), "pool: MAX kernel_size: 2 pad: 2")


# -- element-wise --------------------------------------------------------------------

X = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]], np.float32)


@pytest.mark.parametrize("type_, params, want", [
    ("ReLU", "", [0, 0, 0, 0.5, 3]),
    ("ReLU", "relu_param { negative_slope: 0.1 }", [-0.2, -0.05, 0, 0.5, 3]),
    ("ReLU6", "", [0, 0, 0, 0.5, 3]),
    ("ELU", "elu_param { alpha: 2 }", [2 * (math.exp(-2) - 1), 2 * (math.exp(-0.5) - 1), 0,
                                       0.5, 3]),
    ("Sigmoid", "", [1 / (1 + math.exp(2)), 1 / (1 + math.exp(0.5)), 0.5,
                     1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(-3))]),
    ("TanH", "", [math.tanh(v) for v in (-2, -0.5, 0, 0.5, 3)]),
    ("AbsVal", "", [2, 0.5, 0, 0.5, 3]),
    ("BNLL", "", [math.log1p(math.exp(v)) for v in (-2, -0.5, 0, 0.5, 3)]),
    ("Power", "power_param { power: 2 scale: 2 shift: 1 }", [9, 0, 1, 4, 49]),
    ("Power", "power_param { power: 0 scale: 3 }", [1, 1, 1, 1, 1]),
    ("Power", "power_param { power: 2 scale: 0 shift: 3 }", [9, 9, 9, 9, 9]),
    ("Exp", "", [math.exp(v) for v in (-2, -0.5, 0, 0.5, 3)]),
    ("Exp", "exp_param { base: 2 scale: 2 shift: 1 }", [2 ** (1 + 2 * v)
                                                         for v in (-2, -0.5, 0, 0.5, 3)]),
    ("Log", "log_param { shift: 3 }", [math.log(3 + v) for v in (-2, -0.5, 0, 0.5, 3)]),
    ("Log", "log_param { base: 10 scale: 2 shift: 5 }", [math.log10(5 + 2 * v)
                                                        for v in (-2, -0.5, 0, 0.5, 3)]),
    ("Threshold", "threshold_param { threshold: 0.5 }", [0, 0, 0, 0, 1]),
    ("Clip", "clip_param { min: -1 max: 1 }", [-1, -0.5, 0, 0.5, 1]),
    ("Swish", "swish_param { beta: 2 }", [v / (1 + math.exp(-2 * v))
                                          for v in (-2, -0.5, 0, 0.5, 3)]),
    ("Dropout", "dropout_param { dropout_ratio: 0.3 }", [-2, -0.5, 0, 0.5, 3]),
])
def test_element_wise(type_, params, want):
    np.testing.assert_allclose(one(type_, X, params), [want], rtol=2e-6, atol=1e-7)


def test_prelu():
    x = np.array([[[[-1, 2]], [[-3, 4]]]], np.float32)  # (1, 2, 1, 2)
    np.testing.assert_array_equal(one("PReLU", x, "", [[0.5, 2]]), [[[[-0.5, 2]], [[-6, 4]]]])
    np.testing.assert_array_equal(one("PReLU", x, "prelu_param { channel_shared: true }",
                                      [[0.25]]), [[[[-0.25, 2]], [[-0.75, 4]]]])


def test_split_and_silence():
    out = forward(layer("Split", "x", ["a", "b"]) + layer("Silence", "a", []),
                  {"x": arange(1, 2)})
    np.testing.assert_array_equal(out["b"], [[0, 1]])


# -- normalisation ---------------------------------------------------------------------

def test_batch_norm_uses_the_scale_factor_blob():
    x = np.array([[[[1.0, 3.0]], [[-1.0, 5.0]]]], np.float32)  # (1, 2, 1, 2)
    mean, var = np.array([2.0, 4.0]), np.array([8.0, 0.0])
    y = one("BatchNorm", x, "batch_norm_param { eps: 0.5 }", [mean, var, [2.0]])
    # mean / 2 = (1, 2), var / 2 = (4, 0)
    want = [[[[(1 - 1) / math.sqrt(4.5), (3 - 1) / math.sqrt(4.5)]],
             [[(-1 - 2) / math.sqrt(0.5), (5 - 2) / math.sqrt(0.5)]]]]
    np.testing.assert_allclose(y, want, rtol=1e-6)
    # a zero scale factor means "no statistics": mean = var = 0
    y = one("BatchNorm", x, "", [mean, var, [0.0]])
    np.testing.assert_allclose(y, x / math.sqrt(1e-5), rtol=1e-5)


def test_batch_norm_with_batch_statistics():
    x = np.array([[[[1.0, 3.0]]], [[[5.0, 7.0]]]], np.float32)  # (2, 1, 1, 2): mean 4, var 5
    y = one("BatchNorm", x, "batch_norm_param { use_global_stats: false eps: 0 }",
            [[0.0], [1.0], [1.0]])
    np.testing.assert_allclose(y.ravel(), (np.array([1, 3, 5, 7]) - 4) / math.sqrt(5), rtol=1e-6)


def test_scale_and_bias():
    x = arange(2, 3, 2)
    y = one("Scale", x, "scale_param { bias_term: true }", [[1, 2, 3], [10, 20, 30]])
    np.testing.assert_array_equal(y, x * np.array([1, 2, 3]).reshape(1, 3, 1)
                                  + np.array([10, 20, 30]).reshape(1, 3, 1))
    y = one("Scale", x, "scale_param { axis: 1 num_axes: 2 }", [arange(3, 2)])
    np.testing.assert_array_equal(y, x * arange(3, 2))
    y = one("Scale", x, "scale_param { num_axes: 0 }", [[3]])
    np.testing.assert_array_equal(y, 3 * x)
    y = one("Scale", x, "scale_param { axis: -1 }", [[2, 5]])
    np.testing.assert_array_equal(y, x * np.array([2, 5]))
    y = one("Bias", x, "", [[1, 2, 3]])
    np.testing.assert_array_equal(y, x + np.array([1, 2, 3]).reshape(1, 3, 1))
    s = np.array([[2, 3, 4], [5, 6, 7]], np.float32)
    out = forward(layer("Scale", ["x", "s"], "y", "scale_param { axis: 0 bias_term: true }",
                        name="scale") + layer("Bias", ["y", "s"], "z", "bias_param { axis: 0 }"),
                  {"x": x, "s": s}, {"scale": (np.ones((2, 3), np.float32),)},
                  outputs=["y", "z"])
    np.testing.assert_array_equal(out["y"], x * s[:, :, None] + 1)
    np.testing.assert_array_equal(out["z"], out["y"] + s[:, :, None])


def test_lrn_across_channels_by_hand():
    x = np.array([1, 2, 3], np.float32).reshape(1, 3, 1, 1)
    y = one("LRN", x, "lrn_param { local_size: 3 alpha: 3 beta: 1 k: 1 }")
    # k + alpha/size * sum of squares of the neighbouring channels (zeros past the ends)
    np.testing.assert_allclose(y.ravel(), [1 / (1 + 5), 2 / (1 + 14), 3 / (1 + 13)], rtol=1e-6)
    y = one("LRN", x, "lrn_param { local_size: 1 alpha: 2 beta: 0.5 k: 2 }")
    np.testing.assert_allclose(y.ravel(), x.ravel() / np.sqrt(2 + 2 * x.ravel() ** 2), rtol=1e-6)


def test_lrn_within_channel_by_hand():
    x = np.ones((1, 1, 3, 3), np.float32)
    # a 3x3 AVE pooling of x^2 with pad 1 always divides by 9; k is not used
    y = one("LRN", x, "lrn_param { local_size: 3 alpha: 1 beta: 1 k: 5 "
                      "norm_region: WITHIN_CHANNEL }")
    corner, edge, centre = 1 / (1 + 4 / 9), 1 / (1 + 6 / 9), 1 / (1 + 9 / 9)
    np.testing.assert_allclose(y[0, 0], [[corner, edge, corner], [edge, centre, edge],
                                         [corner, edge, corner]], rtol=1e-6)


def test_mvn():
    x = np.array([[[[1, 3]], [[10, 30]]]], np.float32)
    y = one("MVN", x)
    np.testing.assert_allclose(y, [[[[-1, 1]], [[-1, 1]]]], rtol=1e-6)
    y = one("MVN", x, "mvn_param { normalize_variance: false }")
    np.testing.assert_allclose(y, [[[[-1, 1]], [[-10, 10]]]], rtol=1e-6)
    y = one("MVN", x, "mvn_param { across_channels: true eps: 1 }")
    flat = np.array([1, 3, 10, 30])
    np.testing.assert_allclose(y.ravel(), (flat - flat.mean()) / (flat.std() + 1), rtol=1e-6)


def test_softmax():
    x = np.array([[[1, 2], [3, 4]]], np.float32)
    y = one("Softmax", x)
    np.testing.assert_allclose(y[0, :, 0], [1 / (1 + math.e ** 2), 1 / (1 + math.e ** -2)],
                               rtol=1e-6)
    y = one("Softmax", x, "softmax_param { axis: -1 }")
    np.testing.assert_allclose(y[0, 0], [1 / (1 + math.e), 1 / (1 + math.e ** -1)], rtol=1e-6)
    assert np.all(np.isfinite(one("Softmax", np.array([[1000, 0]], np.float32))))


def test_normalize():
    x = np.array([[[[3, 0]], [[4, 1]]]], np.float32)  # (1, 2, 1, 2)
    y = one("Normalize", x, "norm_param { eps: 0 }", [[2]])
    np.testing.assert_allclose(y, 2 * x / math.sqrt(26), rtol=1e-6)
    y = one("Normalize", x, "norm_param { across_spatial: false channel_shared: false eps: 0 }",
            [[1, 10]])
    np.testing.assert_allclose(y, [[[[0.6, 0]], [[8, 10]]]], rtol=1e-6)


# -- blob surgery ---------------------------------------------------------------------

def test_concat_and_slice():
    a, b = arange(1, 2, 2), arange(1, 1, 2) + 10
    out = forward(layer("Concat", ["a", "b"], "y"), {"a": a, "b": b})
    np.testing.assert_array_equal(out["y"], np.concatenate([a, b], axis=1))
    out = forward(layer("Concat", ["a", "a"], "y", "concat_param { concat_dim: 2 }"), {"a": a})
    np.testing.assert_array_equal(out["y"], np.concatenate([a, a], axis=2))
    x = arange(1, 5)
    out = forward(layer("Slice", "x", ["p", "q", "r"],
                        "slice_param { axis: 1 slice_point: 1 slice_point: 3 }"), {"x": x})
    np.testing.assert_array_equal(out["q"], [[1, 2]])
    np.testing.assert_array_equal(out["r"], [[3, 4]])
    out = forward(layer("Slice", "x", ["p", "q"], "slice_param { slice_dim: 0 }"),
                  {"x": arange(4, 1)})
    np.testing.assert_array_equal(out["q"], [[2], [3]])


def test_eltwise():
    a, b, c = (np.array([[v, -v]], np.float32) for v in (1, 2, 3))
    body = "eltwise_param {{ {} }}"
    ins = {"a": a, "b": b, "c": c}
    run_ = lambda p: forward(layer("Eltwise", ["a", "b", "c"], "y", body.format(p)), ins)["y"]  # noqa: E731
    np.testing.assert_array_equal(run_(""), [[6, -6]])
    np.testing.assert_array_equal(run_("coeff: 1 coeff: -1 coeff: 0.5"), [[0.5, -0.5]])
    np.testing.assert_array_equal(run_("operation: PROD"), [[6, -6]])
    np.testing.assert_array_equal(run_("operation: MAX"), [[3, -1]])
    with pytest.raises(NetGraphError, match="only allowed with operation: SUM"):
        run_("operation: MAX coeff: 1 coeff: 1 coeff: 1")


def test_flatten_and_reshape():
    x = arange(2, 3, 4)
    assert one("Flatten", x).shape == (2, 12)
    assert one("Flatten", x, "flatten_param { axis: 0 end_axis: 1 }").shape == (6, 4)
    y = one("Reshape", x, "reshape_param { shape { dim: 0 dim: -1 dim: 2 } }")
    np.testing.assert_array_equal(y, x.reshape(2, 6, 2))
    y = one("Reshape", x, "reshape_param { axis: 1 num_axes: 1 shape { dim: 3 dim: 1 } }")
    assert y.shape == (2, 3, 1, 4)


def test_crop():
    x, ref = arange(1, 2, 5, 5), np.zeros((1, 1, 2, 3), np.float32)
    out = forward(layer("Crop", ["x", "r"], "y", "crop_param { axis: 2 offset: 1 offset: 2 }"),
                  {"x": x, "r": ref})
    np.testing.assert_array_equal(out["y"], x[:, :, 1:3, 2:5])
    out = forward(layer("Crop", ["x", "r"], "y", "crop_param { axis: 1 offset: 0 }"),
                  {"x": x, "r": ref})
    np.testing.assert_array_equal(out["y"], x[:, :1, :2, :3])


def test_permute_tile_reduction():
    x = arange(2, 3, 4)
    np.testing.assert_array_equal(one("Permute", x, "permute_param { order: 0 order: 2 }"),
                                  x.transpose(0, 2, 1))
    np.testing.assert_array_equal(one("Tile", x, "tile_param { axis: 1 tiles: 2 }"),
                                  np.concatenate([x, x], axis=1))
    s = np.array([[1, -2], [3, 4]], np.float32)
    assert one("Reduction", s).item() == 6
    np.testing.assert_array_equal(one("Reduction", s, "reduction_param { axis: 1 "
                                                      "operation: ASUM coeff: 2 }"), [6, 14])
    np.testing.assert_array_equal(one("Reduction", s, "reduction_param { axis: -1 "
                                                      "operation: SUMSQ }"), [5, 25])
    np.testing.assert_array_equal(one("Reduction", s, "reduction_param { axis: 1 "
                                                      "operation: MEAN }"), [-0.5, 3.5])


def test_argmax():
    x = np.array([[3, 1, 3, 2], [0, 5, 4, 5]], np.float32)
    # ties: the larger index first (std::greater on (value, index) pairs)
    np.testing.assert_array_equal(one("ArgMax", x), [[[2]], [[3]]])
    y = one("ArgMax", x, "argmax_param { top_k: 3 out_max_val: true }")
    np.testing.assert_array_equal(y, [[[2, 0, 3], [3, 3, 2]], [[3, 1, 2], [5, 5, 4]]])
    y = one("ArgMax", x, "argmax_param { axis: 0 }")
    np.testing.assert_array_equal(y, [[0, 1, 1, 1]])
    y = one("ArgMax", x, "argmax_param { axis: 1 out_max_val: true top_k: 2 }")
    np.testing.assert_array_equal(y, [[3, 3], [5, 5]])


# -- fork layers ----------------------------------------------------------------------

def test_axpy():
    a = np.array([[2, 3]], np.float32)
    x, y = arange(1, 2, 1, 2), np.ones((1, 2, 1, 2), np.float32)
    out = forward(layer("Axpy", ["a", "x", "y"], "z"), {"a": a, "x": x, "y": y})
    np.testing.assert_array_equal(out["z"], [[[[1, 3]], [[7, 10]]]])


def test_shuffle_channel():
    x = arange(1, 6, 1, 1)
    y = one("ShuffleChannel", x, "shuffle_channel_param { group: 2 }")
    np.testing.assert_array_equal(y.ravel(), [0, 3, 1, 4, 2, 5])


def test_upsample_nearest_and_unpooling():
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    y = one("Upsample", x, "upsample_param { scale: 2 }")
    np.testing.assert_array_equal(y[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4],
                                            [3, 3, 4, 4]])
    # SegNet's unpooling: values go back where the MAX pooling found them
    src = np.array([[[[0, 9, 0, 0], [0, 0, 0, 8], [7, 0, 0, 0], [0, 0, 6, 0]]]], np.float32)
    body = (layer("Pooling", "x", ["p", "m"], "pooling_param { pool: MAX kernel_size: 2 "
                                            "stride: 2 }")
            + layer("Upsample", ["p", "m"], "u", "upsample_param { scale: 2 }"))
    out = forward(body, {"x": src})
    np.testing.assert_array_equal(out["u"], src)


def test_interp_aligns_corners():
    x = np.array([[[[0, 2], [4, 6]]]], np.float32)
    y = one("Interp", x, "interp_param { height: 3 width: 3 }")
    np.testing.assert_allclose(y[0, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]], rtol=1e-6)
    y = one("Interp", x, "interp_param { zoom_factor: 3 }")  # 2 + (2 - 1) * 2 = 4
    np.testing.assert_allclose(y[0, 0, 0], [0, 2 / 3, 4 / 3, 2], rtol=1e-6)
    x = arange(1, 1, 4, 4)
    y = one("Interp", x, "interp_param { shrink_factor: 2 pad_beg: -1 pad_end: 0 }")
    # the input cropped to rows/cols 1..3, then (3 - 1) / 2 + 1 = 2 samples: its corners
    np.testing.assert_allclose(y[0, 0], [[5, 7], [13, 15]], rtol=1e-6)


def reorg_darknet(x, stride, reverse):
    """The Caffe YOLOv2 ports' reorg_cpu, loop for loop (forward = reverse)."""
    n, c, h, w = x.shape
    flat, out = x.ravel(), np.zeros(x.size, np.float32)
    tc = c // (stride * stride)
    for b in range(n):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    bottom = i + w * (j + h * (k + c * b))
                    c2, offset = k % tc, k // tc
                    w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                    top = w2 + w * stride * (h2 + h * stride * (c2 + tc * b))
                    if reverse:
                        out[top] = flat[bottom]
                    else:
                        out[bottom] = flat[top]
    return out


@pytest.mark.parametrize("reverse", [False, True])
def test_reorg_is_darknets(reverse):
    x = arange(2, 8, 4, 6)
    params = "reorg_param { stride: 2" + (" reverse: true" if reverse else "") + " }"
    y = one("Reorg", x, params)
    assert y.shape == ((2, 2, 8, 12) if reverse else (2, 32, 2, 3))
    np.testing.assert_array_equal(y.ravel(), reorg_darknet(x, 2, reverse))


# -- SSD ------------------------------------------------------------------------------

def prior_box(feature_hw, image_hw, params):
    out = forward(layer("PriorBox", ["f", "img"], "p", f"prior_box_param {{ {params} }}"),
                  {"f": np.zeros((1, 1, *feature_hw), np.float32),
                   "img": np.zeros((1, 3, *image_hw), np.float32)})
    return out["p"]


def test_prior_box_by_hand():
    p = prior_box((1, 1), (300, 300), "min_size: 30 max_size: 60 aspect_ratio: 2 flip: true "
                                      "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2")
    assert p.shape == (1, 2, 4 * 4)
    r2 = math.sqrt(2)
    sizes = [(30, 30), (math.sqrt(30 * 60),) * 2, (30 * r2, 30 / r2), (30 / r2, 30 * r2)]
    want = [[(150 - w / 2) / 300, (150 - h / 2) / 300, (150 + w / 2) / 300, (150 + h / 2) / 300]
            for w, h in sizes]
    np.testing.assert_allclose(p[0, 0].reshape(4, 4), want, rtol=1e-6)
    np.testing.assert_allclose(p[0, 1].reshape(4, 4), [[0.1, 0.1, 0.2, 0.2]] * 4, rtol=1e-6)


def test_prior_box_step_offset_clip_and_duplicates():
    p = prior_box((2, 2), (100, 100), "min_size: 40 aspect_ratio: 1 aspect_ratio: 2 flip: false "
                                      "clip: true step: 60 offset: 0")
    boxes = p[0, 0].reshape(2, 2, 2, 4)  # (h, w, prior, coord); ratio 1 listed once
    np.testing.assert_allclose(boxes[0, 0, 0], [0, 0, 0.2, 0.2], atol=1e-7)  # clipped
    np.testing.assert_allclose(boxes[1, 1, 0], [0.4, 0.4, 0.8, 0.8], rtol=1e-6)
    w, h = 40 * math.sqrt(2), 40 / math.sqrt(2)
    np.testing.assert_allclose(boxes[1, 0, 1], [0, (60 - h / 2) / 100, w / 200,
                                                (60 + h / 2) / 100], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p[0, 1], 0.1, rtol=1e-6)
    # img_size and step given: the image bottom is not looked at
    q = prior_box((1, 1), (7, 7), "min_size: 10 img_size: 20 step: 20")
    np.testing.assert_allclose(q[0, 0], [0.25, 0.25, 0.75, 0.75], rtol=1e-6)


DETECT = """layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf"
  bottom: "prior" top: "out"
  detection_output_param { num_classes: 3 background_label_id: 0 %s
    nms_param { nms_threshold: 0.5 %s } } }
"""


def detect(loc, conf, priors, params="", nms=""):
    priors = np.asarray(priors, np.float32)
    prior_blob = np.stack([priors.ravel(), np.full(priors.size, 1.0, np.float32)])[None]
    return forward(DETECT % (params, nms), {
        "loc": np.asarray(loc, np.float32).reshape(1, -1),
        "conf": np.asarray(conf, np.float32).reshape(1, -1),
        "prior": prior_blob})["out"]


PRIORS = [[0, 0, 0.5, 0.5], [0.05, 0.05, 0.55, 0.55], [0.5, 0.5, 1, 1]]
CONF = [[0.1, 0.6, 0.3],   # prior 0: class 1 0.6, class 2 0.3
        [0.2, 0.7, 0.1],   # prior 1 overlaps prior 0 (IoU 0.68)
        [0.5, 0.05, 0.45]]


def test_detection_output_by_hand():
    out = detect(np.zeros((3, 4)), CONF, PRIORS)
    # Zero offsets: the boxes are the priors.  IoU(prior 0, prior 1) = 0.45^2 /
    # (0.5 - 0.45^2) = 0.68 > 0.5; prior 2 touches prior 0 (IoU 0) and barely
    # overlaps prior 1.  Class 1: prior 1 (0.7) suppresses prior 0 (0.6), prior 2
    # (0.05) stays.  Class 2: prior 2 (0.45), prior 0 (0.3), which suppresses
    # prior 1 (0.1).  Background (0) is skipped; rows by label, then score.
    want = [[0, 1, 0.7, *PRIORS[1]], [0, 1, 0.05, *PRIORS[2]],
            [0, 2, 0.45, *PRIORS[2]], [0, 2, 0.3, *PRIORS[0]]]
    assert out.shape == (1, 1, 4, 7)
    np.testing.assert_allclose(out[0, 0], want, rtol=1e-6)


def test_detection_output_thresholds_top_k_and_keep_top_k():
    out = detect(np.zeros((3, 4)), CONF, PRIORS, "confidence_threshold: 0.2")[0, 0]
    np.testing.assert_allclose(out[:, 1:3], [[1, 0.7], [2, 0.45], [2, 0.3]], rtol=1e-6)
    out = detect(np.zeros((3, 4)), CONF, PRIORS, "keep_top_k: 2")[0, 0]
    np.testing.assert_allclose(out[:, 1:3], [[1, 0.7], [2, 0.45]], rtol=1e-6)
    out = detect(np.zeros((3, 4)), CONF, PRIORS, "", "top_k: 1")[0, 0]
    np.testing.assert_allclose(out[:, 1:3], [[1, 0.7], [2, 0.45]], rtol=1e-6)
    out = detect(np.zeros((3, 4)), CONF, PRIORS, "confidence_threshold: 0.9")
    np.testing.assert_array_equal(out, [[[[0, -1, -1, -1, -1, -1, -1]]]])


def test_detection_output_adaptive_nms_and_per_class_locations():
    # nms_threshold 0.8 keeps both overlapping boxes (IoU 0.68) ...
    body = DETECT.replace("nms_threshold: 0.5", "nms_threshold: 0.8")
    priors = np.asarray(PRIORS, np.float32)
    inputs = {"loc": np.zeros((1, 12), np.float32), "conf": np.asarray(CONF, np.float32)
              .reshape(1, -1), "prior": np.stack([priors.ravel(), np.ones(12, np.float32)])[None]}
    out = forward(body % ("confidence_threshold: 0.5", ""), inputs)["out"][0, 0]
    np.testing.assert_allclose(out[:, 1:3], [[1, 0.7], [1, 0.6]], rtol=1e-6)
    # ... but with eta 0.5 the threshold drops to 0.4 once the first box is kept
    out = forward(body % ("confidence_threshold: 0.5", "eta: 0.5"), inputs)["out"][0, 0]
    np.testing.assert_allclose(out[:, 1:3], [[1, 0.7]], rtol=1e-6)
    # share_location: false: one box per prior and class (the background's is ignored)
    loc = np.zeros((1, 3, 3, 4), np.float32)  # (image, prior, class, coord)
    loc[0, 0, 1] = 0.1
    loc[0, 0, 2] = -0.1
    conf = np.zeros((1, 3, 3), np.float32)
    conf[0, 0] = [0, 0.9, 0.8]
    out = forward(body % ("share_location: false confidence_threshold: 0.5", ""),
                  {**inputs, "loc": loc.reshape(1, -1), "conf": conf.reshape(1, -1)})["out"]
    np.testing.assert_allclose(out[0, 0], [[0, 1, 0.9, 0.1, 0.1, 0.6, 0.6],
                                           [0, 2, 0.8, -0.1, -0.1, 0.4, 0.4]], rtol=1e-6)


def test_detection_output_decodes_center_size_with_variances():
    # prior (0.2, 0.2)-(0.6, 0.4): centre (0.4, 0.3), size 0.4 x 0.2
    loc = [[1.0, -1.0, math.log(2), 0.0]]
    prior_blob = np.array([[0.2, 0.2, 0.6, 0.4], [0.1, 0.1, 0.2, 0.2]], np.float32)[None]
    body = (DETECT % ("code_type: CENTER_SIZE", "")).replace("num_classes: 3", "num_classes: 2")
    out = forward(body, {"loc": np.array(loc, np.float32), "conf": np.array([[0.2, 0.8]],
                                                                            np.float32),
                         "prior": prior_blob})["out"][0, 0]
    # centre x = 0.4 + 0.1*1*0.4 = 0.44, y = 0.3 - 0.1*0.2 = 0.28;
    # width = exp(0.2*ln2)*0.4, height 0.2
    w = 2 ** 0.2 * 0.4
    np.testing.assert_allclose(out[0], [0, 1, 0.8, 0.44 - w / 2, 0.18, 0.44 + w / 2, 0.38],
                               rtol=1e-6)


# -- the executor -----------------------------------------------------------------------

CHAIN = (layer("Convolution", "data", "conv", "convolution_param { num_output: 1 kernel_size: 1 "
                                              "bias_term: false }", name="conv")
         + layer("ReLU", "conv", "conv", name="relu")
         + layer("Scale", "conv", "early", "scale_param { num_axes: 0 }", name="early")
         + layer("Power", "conv", "late", "power_param { scale: 2 }", name="late"))


def chain_net():
    return make_net(CHAIN, {"data": (1, 1, 1, 2)})


def test_run_outputs_keep_all_and_layers():
    net = chain_net()
    x = np.array([[[[-1.0, 2.0]]]], np.float32)
    w = {"conv": (np.ones((1, 1, 1, 1), np.float32),), "early": (np.array(3, np.float32),)}
    assert set(net.outputs) == {"early", "late"}
    out = run(net, {"data": x}, w)
    np.testing.assert_array_equal(out["early"], [[[[0, 6]]]])
    np.testing.assert_array_equal(out["late"], [[[[0, 4]]]])
    out = run(net, {"data": x}, w, outputs=["conv"])
    assert list(out) == ["conv"]
    np.testing.assert_array_equal(out["conv"], [[[[0, 2]]]])  # after the in-place ReLU
    every = run(net, {"data": x}, w, keep_all=True)
    assert set(every) == {"data", "conv", "early", "late"}
    steps = list(run_layers(net, {"data": x}, w))
    assert [layer.name for layer, _ in steps] == ["conv", "relu", "early", "late"]
    np.testing.assert_array_equal(steps[0][1]["conv"], [[[[-1, 2]]]])  # before the ReLU
    only = [layer.name for layer, _ in run_layers(net, {"data": x}, w, outputs=["late"])]
    assert only == ["conv", "relu", "late"]


def test_run_in_float64_and_with_another_batch_size():
    net = chain_net()
    w = {"conv": (np.ones((1, 1, 1, 1)),), "early": (np.array(1.0),)}
    out = run(net, {"data": np.ones((3, 1, 1, 2))}, w, dtype=np.float64)
    assert out["late"].dtype == np.float64 and out["late"].shape == (3, 1, 1, 2)


def test_run_reports_bad_inputs():
    net = chain_net()
    w = {"conv": (np.ones((1, 1, 1, 1)),), "early": (np.array(1.0),)}
    with pytest.raises(UsageError, match="no value given for the network input 'data'"):
        run(net, {}, w)
    with pytest.raises(UsageError, match="only the batch size may differ"):
        run(net, {"data": np.ones((1, 1, 2, 2))}, w)
    with pytest.raises(UsageError, match="no input named 'image'"):
        run(net, {"data": np.ones((1, 1, 1, 2)), "image": np.ones(1)}, w)
    with pytest.raises(UsageError, match="no blob named 'nope'"):
        run(net, {"data": np.ones((1, 1, 1, 2))}, w, outputs=["nope"])
    with pytest.raises(UsageError, match="float32 or float64"):
        run(net, {"data": np.ones((1, 1, 1, 2))}, w, dtype=np.float16)


def test_legacy_4d_blobs_are_accepted():
    x = arange(2, 3)
    w = np.array([[1, 0, 0], [0, 1, 1]], np.float32)
    y = one("InnerProduct", x, "inner_product_param { num_output: 2 }",
            [w.reshape(1, 1, 2, 3), np.array([0.5, -0.5], np.float32).reshape(1, 1, 1, 2)])
    np.testing.assert_array_equal(y, [[0.5, 2.5], [3.5, 8.5]])


def test_missing_weights_name_the_layer():
    with pytest.raises(CaffemodelError, match=r"layer 'conv' \(Convolution\) has no"):
        run(chain_net(), {"data": np.ones((1, 1, 1, 2))}, {})


def test_unsupported_layers_are_refused_by_name_and_line():
    body = (layer("ReLU", "data", "a", name="fine")
            + 'layer { name: "proposal" type: "Python" bottom: "a" top: "b"\n'
              '  python_param { module: "rpn.proposal_layer" layer: "ProposalLayer" } }\n')
    net = make_net(body, {"data": (1, 1, 1, 2)})
    with pytest.raises(UnsupportedNetworkError, match=r"'proposal' \(Python\): "
                                                      r"rpn.proposal_layer.ProposalLayer") as err:
        run(net, {"data": np.ones((1, 1, 1, 2))})
    assert err.value.line == 3
    with pytest.raises(UnsupportedNetworkError):
        check_supported(net)
    # what does not depend on it still runs
    out = run(net, {"data": -np.ones((1, 1, 1, 2))}, outputs=["a"])
    np.testing.assert_array_equal(out["a"], 0)
    assert "Python" not in supported_types()


@pytest.mark.parametrize("type_", ["Convolution", "Pooling", "InnerProduct", "BatchNorm",
                                   "Scale", "LRN", "Softmax", "Concat", "Eltwise",
                                   "DetectionOutput", "PriorBox", "Deconvolution", "Upsample"])
def test_supported_types(type_):
    assert type_ in supported_types()


def test_in_place_layers_see_the_current_value():
    # b reads "x" before the in-place ReLU rewrites it; c reads it after.
    body = (layer("Power", "x", "b", "power_param { scale: 1 }", name="b")
            + layer("ReLU", "x", "x", name="relu")
            + layer("Power", "x", "c", "power_param { scale: 1 }", name="c"))
    out = forward(body, {"x": np.array([[-1.0, 1.0]])}, keep_all=True)
    np.testing.assert_array_equal(out["b"], [[-1, 1]])
    np.testing.assert_array_equal(out["c"], [[0, 1]])
    np.testing.assert_array_equal(out["x"], [[0, 1]])


def test_layers_do_not_modify_their_inputs():
    x = np.array([[[[-1.0, 2.0], [3.0, -4.0]]]], np.float32)
    keep = x.copy()
    body = (layer("ReLU", "x", "x", name="relu") + layer("Dropout", "x", "x", name="drop")
            + layer("Power", "x", "p", "power_param { power: 1 scale: 1 shift: 0 }", name="p")
            + layer("Eltwise", ["x", "p"], "s", name="s"))
    out = forward(body, {"x": x})
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(out["s"], [[[[0, 4], [6, 0]]]])


def test_nms_matches_caffes_loop():
    """ApplyNMSFast as written in bbox_util.cpp, against our vectorised NMS."""
    from caffe2ncs.runtime.reference.ssd import nms

    def jaccard(a, b):
        if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
            return 0.0
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        if w <= 0 or h <= 0:
            return 0.0
        size = [(x[2] - x[0]) * (x[3] - x[1]) if x[2] >= x[0] and x[3] >= x[1] else 0
                for x in (a, b)]
        return w * h / (size[0] + size[1] - w * h)

    def caffe(boxes, scores, threshold, nms_threshold, eta, top_k):
        order = sorted((i for i in range(len(scores)) if scores[i] > threshold),
                       key=lambda i: -scores[i])[:None if top_k < 0 else top_k]
        kept, adaptive = [], nms_threshold
        for i in order:
            if all(jaccard(boxes[i], boxes[k]) <= adaptive for k in kept):
                kept.append(i)
                if eta < 1 and adaptive > 0.5:
                    adaptive *= eta
        return kept

    rng = np.random.default_rng(7)
    for trial in range(20):
        centre = rng.uniform(0, 1, (60, 2))
        size = rng.uniform(0.05, 0.4, (60, 2))
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)
        scores = rng.uniform(0, 1, 60).astype(np.float32)
        scores[:10] = scores[10]  # ties keep prior order
        eta = 1.0 if trial % 2 else 0.9
        want = caffe(boxes.astype(np.float64), scores, 0.2, 0.6, eta, 40)
        assert nms(boxes, scores, 0.2, 0.6, eta, 40) == want
