"""Every emulator kernel against an independent float64 definition.

Each test builds a small graph with the IR (:class:`Builder`), runs it through
the emulator -- buffers, pad styles, bias, post-op and fp16 rounding included --
and compares with a reference written here in plain numpy, float64, loop-free:
index arithmetic and gathers (``np.add.at`` for scatter), not the strided views
and GEMMs of the implementation.

The rounding points of the model are explicit in the references: inputs and
weights are rounded to fp16 first, the stage computes exactly (float64), the
post-op follows, and the result is rounded to fp16 once.  The emulator
accumulates in float32, so a result whose exact value lies within float32
error of a point halfway between two fp16 numbers may round to the other
neighbour: :func:`assert_fp16` allows a difference of one fp16 ulp and
requires almost every element to be identical.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from caffe2ncs.lowering.graphfile import read_graph, write_graph
from caffe2ncs.lowering.graphfile.opparams import (
    detection_output_params,
    lrn_params,
    normalize_params,
    permute_params,
    prior_box_params,
)
from caffe2ncs.lowering.ir import (
    NO_POST_OP,
    BufferRef,
    Constant,
    ConvParams,
    Graph,
    GraphFormat,
    LrnParams,
    OffsetParams,
    Op,
    PadStyle,
    PoolParams,
    PostOp,
    PowerParams,
    SoftmaxParams,
    Stage,
    hwc_strides,
    hwck_taps_strides,
    layout_work_buffers,
)
from caffe2ncs.runtime.emulator import Emulator, output_hwc
from caffe2ncs.runtime.emulator.op_permute import caffe_order_to_device

# ----------------------------------------------------------------------------- builder


@dataclasses.dataclass
class Buf:
    """A work buffer of ``(H, W, C)`` (C = all channels, for concat)."""

    index: int
    hwc: tuple[int, int, int]

    def ref(self, channels: int | None = None, at: int = 0) -> BufferRef:
        """A reference to ``channels`` channels from channel ``at`` (with the whole
        buffer's strides: a slice reader or a concat writer)."""
        h, w, c = self.hwc
        dims = (w, h, c if channels is None else channels)
        return BufferRef.work(self.index, 2 * at, dims, hwc_strides((w, h, c)))


class Builder:
    """A hand-built graph: one input, work buffers, constants, stages."""

    def __init__(self, input_hwc: tuple[int, int, int]):
        self.input_hwc = input_hwc
        self.stages: list[Stage] = []
        self.constants: list[Constant] = []
        self.next_index = 4

    def input(self, channels: int | None = None, at: int = 0) -> BufferRef:
        h, w, c = self.input_hwc
        return BufferRef.input((w, h, c if channels is None else channels),
                               hwc_strides((w, h, c)), offset=2 * at)

    def buffer(self, hwc) -> Buf:
        self.next_index += 1
        return Buf(self.next_index - 1, tuple(hwc))

    @staticmethod
    def output(hwc, channels: int | None = None, at: int = 0) -> BufferRef:
        h, w, c = hwc
        return BufferRef.output((w, h, c if channels is None else channels),
                                hwc_strides((w, h, c)), offset=2 * at)

    def const(self, name: str, values, dtype: str = "float16", dims=(0, 0, 0),
              strides=(0, 0, 0)) -> BufferRef:
        self.constants.append(Constant.from_array(name, np.asarray(values), dtype))
        return BufferRef.blob(name, dims, strides)

    def raw_const(self, constant: Constant) -> BufferRef:
        self.constants.append(constant)
        return BufferRef.blob(constant.name)

    def taps(self, name: str, hwck: np.ndarray) -> BufferRef:
        kh, kw, c, k = hwck.shape
        return self.const(name, hwck, dims=(kh * kw, c, k), strides=hwck_taps_strides(k, c))

    def add(self, op: Op, input, output, **kw) -> Stage:
        stage = Stage(op, name=f"{op.value}_{len(self.stages)}", input=input, output=output, **kw)
        self.stages.append(stage)
        return stage

    def graph(self) -> Graph:
        return layout_work_buffers(Graph(tuple(self.stages), tuple(self.constants)))


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The emulator's output, shaped ``(H, W, C)``."""
    return output_hwc(graph, Emulator(graph).run(x))


# ----------------------------------------------------------------------------- numerics


def f16(a) -> np.ndarray:
    """Round to fp16 and back to float64: a value as the device stores it."""
    return np.asarray(a, np.float64).astype(np.float16).astype(np.float64)


def assert_fp16(got: np.ndarray, exact: np.ndarray, *, exact_fraction: float = 0.98) -> None:
    """``got`` (fp16) is ``exact`` (float64, before the final rounding) rounded to
    fp16, up to one ulp where float32 accumulation straddles a rounding point."""
    want = np.asarray(exact, np.float64).astype(np.float16)
    got = np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    g, w = got[ok].astype(np.float64), want[ok].astype(np.float64)
    tol = np.spacing(np.abs(want[ok])).astype(np.float64)
    bad = np.abs(g - w) > tol
    assert not bad.any(), (f"{bad.sum()} values off by more than 1 ulp, "
                           f"e.g. {g[bad][:5]} vs {w[bad][:5]}")
    if g.size:
        assert np.mean(g == w) >= exact_fraction


def rand(rng, shape, lo=-1.0, hi=1.0) -> np.ndarray:
    return f16(rng.uniform(lo, hi, shape))


def relu(a):
    return np.maximum(a, 0)


# ----------------------------------------------------------------------------- references


def window_indices(n_out, kernel, stride, dilation, pad):
    """``(n_out, kernel)`` input positions of every window tap along one axis."""
    return np.arange(n_out)[:, None] * stride + np.arange(kernel)[None, :] * dilation - pad


def gather_windows(x, iy, ix, fill):
    """``x[iy, ix]`` as ``(Ho, Wo, kh, kw, C)``; positions outside ``x`` are ``fill``."""
    h, w, _ = x.shape
    valid = ((iy >= 0) & (iy < h))[:, None, :, None] & ((ix >= 0) & (ix < w))[None, :, None, :]
    g = x[np.clip(iy, 0, h - 1)[:, None, :, None], np.clip(ix, 0, w - 1)[None, :, None, :]]
    return np.where(valid[..., None], g, fill), valid


def conv_ref(x, w, b, stride, pad, dilation, out_hw):
    kh, kw = w.shape[:2]
    iy = window_indices(out_hw[0], kh, stride[0], dilation, pad[0])
    ix = window_indices(out_hw[1], kw, stride[1], dilation, pad[1])
    patches, _ = gather_windows(x, iy, ix, 0.0)
    y = np.einsum("hwijc,ijck->hwk", patches, w)
    return y if b is None else y + b


def depthwise_ref(x, w, b, stride, pad, dilation, out_hw):
    kh, kw, c, m = w.shape
    iy = window_indices(out_hw[0], kh, stride[0], dilation, pad[0])
    ix = window_indices(out_hw[1], kw, stride[1], dilation, pad[1])
    patches, _ = gather_windows(x, iy, ix, 0.0)
    y = np.einsum("hwijc,ijcm->hwcm", patches, w).reshape(*out_hw, c * m)
    return y if b is None else y + b


def deconv_ref(x, w_caffe, b, stride, pad, dilation, out_hw):
    """Caffe's definition: ``y[i*s - p + t*d] += x[i] . W[t]``, by scatter-add.
    ``w_caffe``: ``(kh, kw, C, K)`` in Caffe's (unrotated) orientation."""
    h, w_, _ = x.shape
    kh, kw, _, k = w_caffe.shape
    contrib = np.einsum("hwc,ijck->hwijk", x, w_caffe)
    oy = (np.arange(h)[:, None] * stride[0] + np.arange(kh)[None] * dilation - pad[0])
    ox = (np.arange(w_)[:, None] * stride[1] + np.arange(kw)[None] * dilation - pad[1])
    full = np.zeros((out_hw[0] + 2 * (kh * dilation + h * stride[0]),
                     out_hw[1] + 2 * (kw * dilation + w_ * stride[1]), k))
    off = kh * dilation + h * stride[0], kw * dilation + w_ * stride[1]
    np.add.at(full, ((oy + off[0])[:, None, :, None], (ox + off[1])[None, :, None, :]), contrib)
    y = full[off[0]:off[0] + out_hw[0], off[1]:off[1] + out_hw[1]]
    return y if b is None else y + b


def pool_ref(x, kind, kernel, stride, pad, out_hw, caffe_divisor):
    iy = window_indices(out_hw[0], kernel[0], stride[0], 1, pad[0])
    ix = window_indices(out_hw[1], kernel[1], stride[1], 1, pad[1])
    if kind == "max":
        win, _ = gather_windows(x, iy, ix, -np.inf)
        return win.max(axis=(2, 3))
    win, valid = gather_windows(x, iy, ix, 0.0)
    total = win.sum(axis=(2, 3))
    if caffe_divisor:  # Caffe's pool_size: window clipped to [-pad, size + pad)
        h, w, _ = x.shape
        hs, ws = iy[:, 0], ix[:, 0]
        he = np.minimum(hs + kernel[0], h + pad[0])
        we = np.minimum(ws + kernel[1], w + pad[1])
        divisor = np.outer(he - hs, we - ws)
    else:
        divisor = valid.sum(axis=(2, 3))
    return total / divisor[:, :, None]


def tf_same_pad(n_in, n_out, k, s, d=1):
    return max((n_out - 1) * s + d * (k - 1) + 1 - n_in, 0) // 2


# ----------------------------------------------------------------------------- convolution

CONV_CASES = [
    # (H, W, C), K, (kh, kw), (sy, sx), dilation, style, (pad_y, pad_x), post-op
    ((7, 9, 3), 5, (3, 3), (1, 1), 1, PadStyle.CAFFE, (1, 1), PostOp.relu()),
    ((8, 8, 4), 8, (3, 3), (2, 2), 1, PadStyle.TF_SAME, (0, 0), PostOp.relu()),
    ((9, 7, 3), 2, (3, 3), (2, 2), 1, PadStyle.TF_VALID, (0, 0), PostOp.bias()),
    ((11, 13, 5), 7, (5, 3), (2, 1), 1, PadStyle.CAFFE, (2, 0), NO_POST_OP),
    ((10, 10, 3), 4, (3, 3), (1, 1), 2, PadStyle.CAFFE, (2, 2), PostOp.leaky_relu(0.1)),
    ((12, 9, 2), 3, (3, 3), (1, 1), 3, PadStyle.TF_SAME, (0, 0), PostOp.elu(0.7)),
    ((6, 6, 16), 9, (1, 1), (1, 1), 1, PadStyle.CAFFE, (0, 0), PostOp.relu_x(0.5)),
    ((7, 5, 3), 1, (7, 5), (3, 2), 1, PadStyle.CAFFE, (3, 2), NO_POST_OP),
    ((5, 5, 6), 4, (1, 1), (2, 2), 1, PadStyle.CAFFE, (0, 0), PostOp.relu()),
    ((13, 4, 3), 6, (3, 2), (3, 1), 1, PadStyle.TF_SAME, (0, 0), NO_POST_OP),
]


def post(y, p: PostOp):
    v = p.param_float
    return {Op.NONE: lambda a: a, Op.BIAS: lambda a: a, Op.RELU: relu,
            Op.LEAKY_RELU: lambda a: np.where(a > 0, a, v * a),
            Op.RELU_X: lambda a: np.clip(a, 0, v),
            Op.ELU: lambda a: np.where(a > 0, a, v * np.expm1(np.minimum(a, 0)))}[p.op](y)


def conv_out(n, k, s, d, style, p):
    if style is PadStyle.TF_SAME:
        return -(-n // s)
    if style is PadStyle.TF_VALID:
        return -(-(n - d * (k - 1)) // s)
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}k{c[2]}s{c[3]}d{c[4]}"
                         f"{c[5].value}")
@pytest.mark.parametrize("fmt", [None, GraphFormat.NCSDK1, GraphFormat.NCSDK2])
def test_convolution(case, fmt):
    (h, w, c), k, (kh, kw), (sy, sx), d, style, (py, px), post_op = case
    rng = np.random.default_rng(hash(case[:5]) % 2**32)
    ho, wo = conv_out(h, kh, sy, d, style, py), conv_out(w, kw, sx, d, style, px)
    x, wt, b = rand(rng, (h, w, c)), rand(rng, (kh, kw, c, k), -0.5, 0.5), rand(rng, k)
    g = Builder((h, w, c))
    g.add(Op.CONVOLUTION, g.input(), g.output((ho, wo, k)), taps=g.taps("w", wt),
          bias=g.const("b", b), post_op=post_op,
          params=ConvParams(kw, kh, sx, sy, px, py, style, d))
    graph = g.graph()
    if fmt is not None:
        graph = read_graph(write_graph(graph, fmt))
    pad = ((tf_same_pad(h, ho, kh, sy, d), tf_same_pad(w, wo, kw, sx, d))
           if style is PadStyle.TF_SAME else (0, 0) if style is PadStyle.TF_VALID else (py, px))
    assert_fp16(run(graph, x), post(conv_ref(x, wt, b, (sy, sx), pad, d, (ho, wo)), post_op))


def test_convolution_without_bias_and_with_a_larger_output_buffer():
    """The output size is the buffer's: windows past the input read zeros."""
    rng = np.random.default_rng(3)
    x, wt = rand(rng, (5, 5, 2)), rand(rng, (3, 3, 2, 3))
    g = Builder((5, 5, 2))
    g.add(Op.CONVOLUTION, g.input(), g.output((4, 4, 3)), taps=g.taps("w", wt),
          params=ConvParams(3, 3, 2, 2, 1, 1, PadStyle.CAFFE))  # Caffe would give 3x3
    assert_fp16(run(g.graph(), x), conv_ref(x, wt, None, (2, 2), (1, 1), 1, (4, 4)))


def test_convolution_weights_keep_fp16_values_and_accumulate_in_float32():
    """Rounding points: a sum of 4096 products whose fp16 accumulation would
    drift far; float32 accumulation of exactly-representable products gives the
    exact result, rounded once."""
    c = 4096
    x = np.full((1, 1, c), 0.1, np.float16)  # 0.0999755859375 in fp16
    wt = np.full((1, 1, c, 1), 0.3, np.float16)
    g = Builder((1, 1, c))
    g.add(Op.CONVOLUTION, g.input(), g.output((1, 1, 1)), taps=g.taps("w", wt),
          params=ConvParams(1, 1))
    exact = c * float(np.float16(0.1)) * float(np.float16(0.3))  # 122.8...
    out = run(g.graph(), x)
    assert out[0, 0, 0] == np.float16(exact)
    naive = np.float16(0)
    for _ in range(c):  # what per-step fp16 accumulation would give
        naive = np.float16(naive + np.float16(0.1) * np.float16(0.3))
    assert abs(float(naive) - exact) > 10 * np.spacing(np.float16(exact))


def test_post_op_comes_before_rounding():
    """ReLU-X with a ceiling that is not an fp16 number: clip in float32, then round."""
    g = Builder((1, 1, 1))
    g.add(Op.CONVOLUTION, g.input(), g.output((1, 1, 1)),
          taps=g.taps("w", np.ones((1, 1, 1, 1))), params=ConvParams(1, 1),
          post_op=PostOp.relu_x(1.0003))
    out = run(g.graph(), np.array([[[2.0]]]))
    assert out[0, 0, 0] == np.float16(np.float32(1.0003))


def test_grouped_convolution_as_stages_reading_slices_and_writing_a_concat():
    """Caffe's group=2 as the compiler lowers it: one convolution per group,
    each reading its channel slice of the input (offset, full strides) and
    writing its channels of one output buffer (offset, concat strides) -- no
    copies.  Against a grouped float64 reference."""
    rng = np.random.default_rng(11)
    h, w, c, k, groups = 9, 8, 6, 4, 2
    x = rand(rng, (h, w, c))
    ws = [rand(rng, (3, 3, c // groups, k // groups)) for _ in range(groups)]
    g = Builder((h, w, c))
    out = g.buffer((h, w, k))
    for i in range(groups):
        g.add(Op.CONVOLUTION, g.input(c // groups, at=i * c // groups),
              out.ref(k // groups, at=i * k // groups), taps=g.taps(f"w{i}", ws[i]),
              params=ConvParams(3, 3, 1, 1, 1, 1, PadStyle.CAFFE), post_op=PostOp.relu())
    g.add(Op.COPY, out.ref(), g.output((h, w, k)))
    want = np.concatenate([conv_ref(x[:, :, i * 3:(i + 1) * 3], ws[i], None, (1, 1), (1, 1), 1,
                                    (h, w)) for i in range(groups)], axis=2)
    assert_fp16(run(g.graph(), x), relu(want))


geometry = st.fixed_dictionaries({
    "h": st.integers(1, 9), "w": st.integers(1, 9), "c": st.integers(1, 5),
    "k": st.integers(1, 5), "kh": st.integers(1, 4), "kw": st.integers(1, 4),
    "sy": st.integers(1, 3), "sx": st.integers(1, 3), "d": st.integers(1, 3),
    "py": st.integers(0, 2), "px": st.integers(0, 2),
    "style": st.sampled_from([PadStyle.CAFFE, PadStyle.TF_SAME, PadStyle.TF_VALID]),
    "seed": st.integers(0, 2**31)})


@settings(max_examples=60, deadline=None)
@given(geometry)
def test_convolution_any_geometry(g_):
    """Random sizes, kernels, strides, dilations and pad styles (odd sizes included)."""
    h, w, c, k, kh, kw = (g_[n] for n in ("h", "w", "c", "k", "kh", "kw"))
    sy, sx, d, style = g_["sy"], g_["sx"], g_["d"], g_["style"]
    py, px = (g_["py"], g_["px"]) if style is PadStyle.CAFFE else (0, 0)
    ho, wo = conv_out(h, kh, sy, d, style, py), conv_out(w, kw, sx, d, style, px)
    assume(ho >= 1 and wo >= 1)
    rng = np.random.default_rng(g_["seed"])
    x, wt, b = rand(rng, (h, w, c)), rand(rng, (kh, kw, c, k)), rand(rng, k)
    g = Builder((h, w, c))
    g.add(Op.CONVOLUTION, g.input(), g.output((ho, wo, k)), taps=g.taps("w", wt),
          bias=g.const("b", b), params=ConvParams(kw, kh, sx, sy, px, py, style, d))
    pad = ((tf_same_pad(h, ho, kh, sy, d), tf_same_pad(w, wo, kw, sx, d))
           if style is PadStyle.TF_SAME else (py, px))
    assert_fp16(run(g.graph(), x), conv_ref(x, wt, b, (sy, sx), pad, d, (ho, wo)),
                exact_fraction=0.9)


@settings(max_examples=60, deadline=None)
@given(geometry, st.sampled_from(["max", "avg"]))
def test_pooling_any_geometry(g_, kind):
    h, w, c, kh, kw, sy, sx = (g_[n] for n in ("h", "w", "c", "kh", "kw", "sy", "sx"))
    style = g_["style"]
    py, px = (min(g_["py"], kh - 1), min(g_["px"], kw - 1)) if style is PadStyle.CAFFE else (0, 0)
    if style is PadStyle.CAFFE:
        ho, wo = caffe_pool_out(h, kh, sy, py), caffe_pool_out(w, kw, sx, px)
        pad = (py, px)
    else:
        ho, wo = conv_out(h, kh, sy, 1, style, 0), conv_out(w, kw, sx, 1, style, 0)
        pad = ((tf_same_pad(h, ho, kh, sy), tf_same_pad(w, wo, kw, sx))
               if style is PadStyle.TF_SAME else (0, 0))
    assume(ho >= 1 and wo >= 1)
    x = rand(np.random.default_rng(g_["seed"]), (h, w, c), -4, 4)
    g = Builder((h, w, c))
    g.add(Op.MAX_POOLING if kind == "max" else Op.AVERAGE_POOLING, g.input(),
          g.output((ho, wo, c)), params=PoolParams(kw, kh, sx, sy, px, py, style))
    want = pool_ref(x, kind, (kh, kw), (sy, sx), pad, (ho, wo), style is PadStyle.CAFFE)
    assert_fp16(run(g.graph(), x), want, exact_fraction=0.9)


# ----------------------------------------------------------------------------- depthwise


@pytest.mark.parametrize("hwc,m,kernel,stride,dilation,style,pad", [
    ((8, 8, 4), 1, (3, 3), (1, 1), 1, PadStyle.CAFFE, (1, 1)),
    ((9, 7, 3), 2, (3, 3), (2, 2), 1, PadStyle.TF_SAME, (0, 0)),
    ((10, 11, 5), 3, (5, 3), (2, 1), 2, PadStyle.CAFFE, (4, 2)),
    ((6, 6, 2), 1, (3, 3), (1, 1), 1, PadStyle.TF_VALID, (0, 0)),
])
def test_depthwise_convolution(hwc, m, kernel, stride, dilation, style, pad):
    rng = np.random.default_rng(sum(hwc) + m)
    (h, w, c), (kh, kw), (sy, sx) = hwc, kernel, stride
    ho, wo = conv_out(h, kh, sy, dilation, style, pad[0]), conv_out(w, kw, sx, dilation, style,
                                                                    pad[1])
    x, wt, b = rand(rng, hwc), rand(rng, (kh, kw, c, m)), rand(rng, c * m)
    g = Builder(hwc)
    g.add(Op.DEPTHWISE_CONVOLUTION, g.input(), g.output((ho, wo, c * m)),
          taps=g.const("w", wt, dims=(kh * kw, c, c * m)), bias=g.const("b", b),
          params=ConvParams(kw, kh, sx, sy, pad[1], pad[0], style, dilation),
          post_op=PostOp.relu())
    real_pad = ((tf_same_pad(h, ho, kh, sy, dilation), tf_same_pad(w, wo, kw, sx, dilation))
                if style is PadStyle.TF_SAME else (0, 0) if style is PadStyle.TF_VALID else pad)
    want = depthwise_ref(x, wt, b, stride, real_pad, dilation, (ho, wo))
    assert_fp16(run(g.graph(), x), relu(want))


# ----------------------------------------------------------------------------- deconvolution


@pytest.mark.parametrize("hwc,k,kernel,stride,pad,dilation", [
    ((4, 5, 3), 2, (3, 3), (2, 2), (0, 0), 1),
    ((5, 5, 4), 3, (4, 4), (2, 2), (1, 1), 1),
    ((3, 6, 2), 5, (3, 2), (3, 1), (1, 0), 1),
    ((4, 4, 3), 2, (3, 3), (1, 1), (2, 2), 2),
])
def test_deconvolution(hwc, k, kernel, stride, pad, dilation):
    rng = np.random.default_rng(sum(hwc) * k)
    (h, w, c), (kh, kw), (sy, sx), (py, px) = hwc, kernel, stride, pad
    ho = sy * (h - 1) + dilation * (kh - 1) + 1 - 2 * py
    wo = sx * (w - 1) + dilation * (kw - 1) + 1 - 2 * px
    x, w_caffe, b = rand(rng, hwc), rand(rng, (kh, kw, c, k)), rand(rng, k)
    stored = w_caffe[::-1, ::-1]  # the compiler rotates Caffe's kernel by 180 degrees
    g = Builder(hwc)
    g.add(Op.DECONVOLUTION, g.input(), g.output((ho, wo, k)), taps=g.taps("w", stored),
          bias=g.const("b", b), params=ConvParams(kw, kh, sx, sy, px, py, PadStyle.CAFFE,
                                                  dilation))
    graph = read_graph(write_graph(g.graph(), GraphFormat.NCSDK1))
    assert_fp16(run(graph, x), deconv_ref(x, w_caffe, b, stride, pad, dilation, (ho, wo)))


# ----------------------------------------------------------------------------- pooling


def caffe_pool_out(n, k, s, p):
    return min(-(-(n + 2 * p - k) // s) + 1, -(-(n + p) // s))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("hwc,kernel,stride,style,pad", [
    ((13, 13, 3), (3, 3), (2, 2), PadStyle.CAFFE, (0, 0)),   # ceil rule: 6, last window clipped
    ((8, 9, 2), (3, 3), (2, 2), PadStyle.CAFFE, (1, 1)),     # padding counted by Caffe's avg
    ((7, 7, 4), (2, 2), (2, 2), PadStyle.CAFFE, (0, 0)),
    ((14, 14, 3), (3, 3), (2, 2), PadStyle.CAFFE, (1, 1)),
    ((8, 8, 2), (3, 3), (2, 2), PadStyle.TF_SAME, (0, 0)),
    ((9, 6, 2), (2, 3), (2, 1), PadStyle.TF_VALID, (0, 0)),
    ((6, 5, 5), (6, 5), (1, 1), PadStyle.CAFFE, (0, 0)),     # global
])
def test_pooling(kind, hwc, kernel, stride, style, pad):
    rng = np.random.default_rng(sum(hwc) + kernel[0])
    (h, w, c), (kh, kw), (sy, sx) = hwc, kernel, stride
    if style is PadStyle.CAFFE:
        ho, wo = caffe_pool_out(h, kh, sy, pad[0]), caffe_pool_out(w, kw, sx, pad[1])
        real = pad
    else:
        ho, wo = conv_out(h, kh, sy, 1, style, 0), conv_out(w, kw, sx, 1, style, 0)
        real = ((tf_same_pad(h, ho, kh, sy), tf_same_pad(w, wo, kw, sx))
                if style is PadStyle.TF_SAME else (0, 0))
    x = rand(rng, hwc, -4, 4)
    g = Builder(hwc)
    g.add(Op.MAX_POOLING if kind == "max" else Op.AVERAGE_POOLING, g.input(),
          g.output((ho, wo, c)), params=PoolParams(kw, kh, sx, sy, pad[1], pad[0], style))
    want = pool_ref(x, kind, kernel, stride, real, (ho, wo), style is PadStyle.CAFFE)
    assert_fp16(run(g.graph(), x), want)


def test_average_pooling_divisors_at_the_edges():
    """3x3/2 pad 1 on a 4x4 input of ones, 3x3 output (ceil rule).  Along each
    axis the windows are [-1, 2), [1, 4), [3, 6); Caffe clips them to
    [-pad, 4 + pad) for the divisor -- sizes 3, 3, 2 -- while they hold 2, 3, 1
    input positions.  So the corner is 4/9 (padding counted as zeros) and the
    last window, which the ceil rule pushes past ``in + pad``, is 1/4, not 1/9."""
    g = Builder((4, 4, 1))
    g.add(Op.AVERAGE_POOLING, g.input(), g.output((3, 3, 1)),
          params=PoolParams(3, 3, 2, 2, 1, 1, PadStyle.CAFFE))
    out = run(g.graph(), np.ones((4, 4, 1)))[:, :, 0].astype(np.float64)
    real, size = np.array([2, 3, 1]), np.array([3, 3, 2])
    np.testing.assert_array_equal(out, f16(np.outer(real, real) / np.outer(size, size)))
    g = Builder((4, 4, 1))  # the TensorFlow styles divide by the input positions only
    g.add(Op.AVERAGE_POOLING, g.input(), g.output((2, 2, 1)),
          params=PoolParams(3, 3, 2, 2, 0, 0, PadStyle.TF_SAME))
    np.testing.assert_array_equal(run(g.graph(), np.ones((4, 4, 1))), np.ones((2, 2, 1)))


# ----------------------------------------------------------------------------- FC & co


@pytest.mark.parametrize("hwc,k", [((1, 1, 37), 5), ((3, 4, 5), 7), ((2, 2, 3), 1)])
def test_fully_connected_flattens_in_hwc_order(hwc, k):
    rng = np.random.default_rng(k)
    n = int(np.prod(hwc))
    x, wt, b = rand(rng, hwc), rand(rng, (n, k)), rand(rng, k)
    g = Builder(hwc)
    g.add(Op.FULLY_CONNECTED, g.input(), g.output((1, 1, k)),
          taps=g.const("w", wt, dims=(1, n, k), strides=(2 * n * k, 2 * k, 2)),
          bias=g.const("b", b), post_op=PostOp.bias())
    assert_fp16(run(g.graph(), x), (x.reshape(-1) @ wt + b).reshape(1, 1, k))


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_softmax(axis):
    rng = np.random.default_rng(axis)
    x = rand(rng, (3, 4, 5), -6, 6)
    g = Builder((3, 4, 5))
    g.add(Op.SOFTMAX, g.input(), g.output((3, 4, 5)), params=SoftmaxParams(axis))
    ax = {1: 2, 2: 0, 3: 1}[axis]
    e = np.exp(x - x.max(axis=ax, keepdims=True))
    assert_fp16(run(g.graph(), x), e / e.sum(axis=ax, keepdims=True))


@pytest.mark.parametrize("size", [1, 3, 4, 5])
def test_lrn_across_channels(size):
    rng = np.random.default_rng(size)
    c = 7
    x = rand(rng, (3, 2, c), -3, 3)
    k, alpha, beta = 2.0, 1e-2, 0.75
    g = Builder((3, 2, c))
    g.add(Op.LRN, g.input(), g.output((3, 2, c)), params=LrnParams(size),
          bias=g.raw_const(lrn_params("p", k, alpha, beta)))
    lo = np.arange(c) - (size - 1) // 2
    window = (np.arange(c)[None, :] >= lo[:, None]) & (np.arange(c)[None, :] < lo[:, None] + size)
    sums = (x * x) @ window.T.astype(np.float64)
    k16, a16, b16 = (float(np.float16(v)) for v in (k, alpha, beta))  # fp16 parameters
    assert_fp16(run(g.graph(), x), x * (k16 + a16 / size * sums) ** -b16)


def test_within_channel_lrn_as_the_compiler_decomposes_it():
    """Square -> 3x3 average pool (pad 1) -> inner LRN -> product with the input
    equals Caffe's WITHIN_CHANNEL LRN, with an fp16 rounding after each stage."""
    rng = np.random.default_rng(5)
    hwc, size, alpha, beta = (6, 5, 3), 3, 0.1, 0.75
    x = rand(rng, hwc, -2, 2)
    g = Builder(hwc)
    sq, pooled, inner = g.buffer(hwc), g.buffer(hwc), g.buffer(hwc)
    g.add(Op.SQUARE, g.input(), sq.ref())
    g.add(Op.AVERAGE_POOLING, sq.ref(), pooled.ref(),
          params=PoolParams(size, size, 1, 1, 1, 1, PadStyle.CAFFE))
    g.add(Op.INNER_LRN, pooled.ref(), inner.ref(), params=LrnParams(size),
          bias=g.raw_const(lrn_params("p", 1.0, alpha, beta)))
    g.add(Op.ELTWISE_PROD, g.input(), g.output(hwc), taps=inner.ref())
    s = f16(x * x)
    p = f16(pool_ref(s, "avg", (3, 3), (1, 1), (1, 1), hwc[:2], True))
    a16, b16 = float(np.float16(alpha)), float(np.float16(beta))
    i = f16((1 + a16 * p) ** -b16)
    assert_fp16(run(g.graph(), x), x * i)


@pytest.mark.parametrize("op,fn", [(Op.ELTWISE_SUM, np.add), (Op.ELTWISE_PROD, np.multiply),
                                   (Op.ELTWISE_MAX, np.maximum)])
def test_eltwise(op, fn):
    rng = np.random.default_rng(7)
    hwc = (5, 3, 4)
    x = rand(rng, hwc)
    g = Builder(hwc)
    a, b = g.buffer(hwc), g.buffer(hwc)
    g.add(Op.POWER, g.input(), a.ref(), params=PowerParams(0.5, 2.0, 1.0))
    g.add(Op.TANH, g.input(), b.ref())
    g.add(op, a.ref(), g.output(hwc), taps=b.ref(), post_op=PostOp.relu())
    assert_fp16(run(g.graph(), x), relu(fn(f16(0.5 + 2 * x), f16(np.tanh(x)))))


def test_eltwise_second_operand_with_ncsdk1_weight_style_dims():
    """NCSDK 1.x compilers describe the taps slot like weights, ``(1, C, K)``:
    the second operand is then read with the first one's dims and strides."""
    rng = np.random.default_rng(8)
    hwc = (4, 3, 2)
    x = rand(rng, hwc)
    g = Builder(hwc)
    a = g.buffer(hwc)
    g.add(Op.SIGMOID, g.input(), a.ref())
    weird = dataclasses.replace(a.ref(), dims=(1, 2, 2), strides=(4, 4, 2))
    g.add(Op.ELTWISE_SUM, g.input(), g.output(hwc), taps=weird)
    assert_fp16(run(g.graph(), x), x + f16(1 / (1 + np.exp(-x))))


def test_scale_prelu_and_unary_stages():
    rng = np.random.default_rng(9)
    hwc = (3, 4, 3)
    x = rand(rng, hwc, -2, 2)
    s, b, slope = rand(rng, 3), rand(rng, 3), f16([0.1, 0.25, -0.5])
    g = Builder(hwc)
    scaled, pre, sq = g.buffer(hwc), g.buffer(hwc), g.buffer(hwc)
    g.add(Op.SCALE, g.input(), scaled.ref(), taps=g.const("s", s), bias=g.const("b", b))
    g.add(Op.PRELU, scaled.ref(), pre.ref(), bias=g.const("slope", slope))
    g.add(Op.SQUARE, pre.ref(), sq.ref())
    out = g.buffer(hwc)
    g.add(Op.POWER, sq.ref(), out.ref(), params=PowerParams(1.0, 0.5, 0.5))
    g.add(Op.RSQRT, out.ref(), g.output(hwc))
    y = f16(x * s + b)
    y = f16(np.where(y > 0, y, slope * y))
    y = f16(y * y)
    y = f16((1 + 0.5 * y) ** 0.5)
    assert_fp16(run(g.graph(), x), 1 / np.sqrt(y))


def test_power_nan_and_overflow_follow_ieee():
    g = Builder((1, 1, 3))
    g.add(Op.POWER, g.input(), g.output((1, 1, 3)), params=PowerParams(0.0, 1.0, 0.5))
    out = run(g.graph(), np.array([[[-1.0, 4.0, 0.0]]]))
    assert np.isnan(out[0, 0, 0]) and out[0, 0, 1] == 2 and out[0, 0, 2] == 0
    g = Builder((1, 1, 2))
    g.add(Op.POWER, g.input(), g.output((1, 1, 2)), params=PowerParams(0.0, 1000.0, 1.0))
    out = run(g.graph(), np.array([[[100.0, -100.0]]]))  # 1e5 does not fit fp16
    assert out[0, 0, 0] == np.inf and out[0, 0, 1] == -np.inf


# ----------------------------------------------------------------------------- shape ops


def test_crop_reshape_flatten_permute():
    rng = np.random.default_rng(10)
    hwc = (5, 6, 4)
    x = rand(rng, hwc)
    g = Builder(hwc)
    cropped, reshaped, permuted = g.buffer((3, 4, 2)), g.buffer((4, 3, 2)), g.buffer((3, 2, 4))
    g.add(Op.CROP, g.input(), cropped.ref(), params=OffsetParams(offset_x=1, offset_y=2,
                                                                 offset_z=1))
    g.add(Op.RESHAPE, cropped.ref(), reshaped.ref(), params=OffsetParams())
    # Caffe order 0,2,3,1 (NCHW -> NHWC) in the compiler's encoding.
    order = caffe_order_to_device((0, 2, 3, 1))
    assert order == (1, 2, 0)
    g.add(Op.PERMUTE, reshaped.ref(), permuted.ref(),
          op_params=g.raw_const(permute_params("order", order)))
    g.add(Op.TO_PLANE_MAJOR, permuted.ref(), g.output((1, 1, 24)))
    y = x[2:5, 1:5, 1:3]                                    # crop (H, W, C)
    chw = y.transpose(2, 0, 1).reshape(2, 4, 3)             # Caffe reshape to (2, 4, 3)
    nhwc = chw.transpose(1, 2, 0)                           # Caffe permute 0,2,3,1: (4, 3, 2)
    # the permuted blob as Caffe sees it is (C=4, H=3, W=2); flatten is planar
    assert_fp16(run(g.graph(), x), nhwc.reshape(-1).reshape(1, 1, 24), exact_fraction=1)


def test_permute_refuses_caffe_numbering():
    g = Builder((2, 2, 2))
    g.add(Op.PERMUTE, g.input(), g.output((2, 2, 2)),
          op_params=g.raw_const(permute_params("order", (2, 3, 1))))
    from caffe2ncs.errors import GraphFileError

    with pytest.raises(GraphFileError, match="Caffe's axis numbering"):
        Emulator(g.graph())


@pytest.mark.parametrize("across,shared", [(False, False), (False, True), (True, False)])
def test_normalize(across, shared):
    rng = np.random.default_rng(12)
    hwc = (3, 3, 4)
    x = rand(rng, hwc, -3, 3)
    scale = rand(rng, 1 if shared else 4, 1, 20)
    g = Builder(hwc)
    g.add(Op.NORMALIZE, g.input(), g.output(hwc), taps=g.const("s", scale),
          op_params=g.raw_const(normalize_params("p", across, shared, 1e-10)))
    norm = np.sqrt((x * x).sum() + 1e-10) if across else np.sqrt(
        (x * x).sum(axis=2, keepdims=True) + 1e-10)
    assert_fp16(run(g.graph(), x), x / norm * scale)


# ----------------------------------------------------------------------------- SSD


def caffe_prior_boxes(lh, lw, ih, iw, mins, maxs, ars, flip, clip, var, step, offset):
    """SSD-Caffe's PriorBoxLayer::Forward_cpu, spelled out (float64)."""
    ratios = [1.0]
    for ar in ars:
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios += [ar, 1 / ar] if flip else [ar]
    sizes = []
    for s, m in enumerate(mins):
        sizes.append((m, m))
        if maxs:
            sizes.append((np.sqrt(m * maxs[s]),) * 2)
        sizes += [(m * np.sqrt(r), m / np.sqrt(r)) for r in ratios if abs(r - 1) >= 1e-6]
    bw, bh = np.array(sizes).T
    cy, cx = np.meshgrid((np.arange(lh) + offset) * step, (np.arange(lw) + offset) * step,
                         indexing="ij")
    boxes = np.stack([(cx[..., None] - bw / 2) / iw, (cy[..., None] - bh / 2) / ih,
                      (cx[..., None] + bw / 2) / iw, (cy[..., None] + bh / 2) / ih], -1)
    boxes = boxes.reshape(-1)
    if clip:
        boxes = np.clip(boxes, 0, 1)
    return boxes, np.tile(np.broadcast_to(var, 4), boxes.size // 4)


def test_prior_box_matches_caffe_and_fills_a_y_concat():
    """Two PriorBox stages writing one buffer along its height (Caffe's concat
    axis 2), as SSD's mbox_priorbox."""
    g = Builder((30, 30, 3))  # the image; the feature maps only give their sizes
    priors_a = caffe_prior_boxes(3, 3, 30, 30, [10.0], [20.0], [2.0], True, True, [0.1], 10,
                                 0.5)
    priors_b = caffe_prior_boxes(2, 2, 30, 30, [15.0], [], [2.0, 3.0], False, False,
                                 [0.1, 0.1, 0.2, 0.2], 15, 0.5)
    n_a, n_b = priors_a[0].size, priors_b[0].size
    assert (n_a, n_b) == (3 * 3 * 4 * 4, 2 * 2 * 3 * 4)
    concat = g.buffer((n_a + n_b, 1, 2))
    fa, fb = g.buffer((3, 3, 3)), g.buffer((2, 2, 3))
    g.add(Op.MAX_POOLING, g.input(), fa.ref(), params=PoolParams(10, 10, 10, 10))
    g.add(Op.MAX_POOLING, g.input(), fb.ref(), params=PoolParams(15, 15, 15, 15))
    a_ref = BufferRef.work(concat.index, 0, (1, n_a, 2), hwc_strides((1, n_a + n_b, 2)))
    b_ref = BufferRef.work(concat.index, 4 * n_a, (1, n_b, 2), hwc_strides((1, n_a + n_b, 2)))
    feat_a, feat_b = fa.ref(), fb.ref()
    g.add(Op.PRIOR_BOX, feat_a, a_ref, taps=g.input(), op_params=g.raw_const(prior_box_params(
        "pa", img_h=30, img_w=30, min_sizes=[10], max_sizes=[20], aspect_ratios=[2],
        variances=[0.1], flip=True, clip=True, step_w=10, step_h=10, offset=0.5)))
    g.add(Op.PRIOR_BOX, feat_b, b_ref, taps=g.input(), op_params=g.raw_const(prior_box_params(
        "pb", img_h=30, img_w=30, min_sizes=[15], max_sizes=[], aspect_ratios=[2, 3],
        variances=[0.1, 0.1, 0.2, 0.2], flip=False, clip=False, step_w=0, step_h=0,
        offset=0.5)))
    g.add(Op.COPY, concat.ref(), g.output((n_a + n_b, 1, 2)))
    out = run(g.graph(), np.zeros((30, 30, 3)))
    boxes = np.concatenate([priors_a[0], priors_b[0]])
    var = np.concatenate([priors_a[1], priors_b[1]])
    assert_fp16(out, np.stack([boxes, var], axis=-1)[:, None, :], exact_fraction=0.99)


def caffe_detections(loc, conf, priors, var, num_classes, background, nms_t, top_k, keep_top_k,
                     conf_t):
    """SSD-Caffe's DetectionOutput (CENTER_SIZE, shared locations, eta 1), float64."""
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    pcx, pcy = priors[:, 0] + pw / 2, priors[:, 1] + ph / 2
    cx, cy = var[:, 0] * loc[:, 0] * pw + pcx, var[:, 1] * loc[:, 1] * ph + pcy
    w, h = np.exp(var[:, 2] * loc[:, 2]) * pw, np.exp(var[:, 3] * loc[:, 3]) * ph
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lo = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    hi = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    iou = inter / (area[:, None] + area[None, :] - inter)
    found = []
    for c in range(num_classes):
        if c == background:
            continue
        order = [i for i in np.argsort(-conf[:, c], kind="stable") if conf[i, c] > conf_t][:top_k]
        kept = []
        for i in order:
            if all(iou[i, j] <= nms_t for j in kept):
                kept.append(i)
        found += [(conf[i, c], c, i) for i in kept]
    found = sorted(found, key=lambda f: -f[0])[:keep_top_k]
    found.sort(key=lambda f: (f[1], -f[0]))
    return np.array([[0, c, s, *boxes[i]] for s, c, i in found])


def test_detection_output():
    rng = np.random.default_rng(13)
    p, ncls, keep = 40, 4, 6
    prior = np.sort(rng.uniform(0, 1, (p, 2, 2)), axis=1).transpose(0, 2, 1).reshape(p, 4)
    prior = f16(prior[:, [0, 1, 2, 3]])
    var = f16(np.tile([0.1, 0.1, 0.2, 0.2], (p, 1)))
    loc = rand(rng, (p, 4), -1, 1)
    logits = rng.normal(0, 2, (p, ncls))
    conf = f16(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    g = Builder((1, 1, 4 * p))
    priors_buf, conf_buf = g.buffer((4 * p, 1, 2)), g.buffer((1, 1, p * ncls))
    # Place the priors and scores in work buffers with COPY stages from constants.
    g.add(Op.COPY, g.const("priors", np.stack([prior.reshape(-1), var.reshape(-1)], -1),
                           dims=(1, 4 * p, 2), strides=(4, 4, 2)), priors_buf.ref())
    g.add(Op.COPY, g.const("conf", conf.reshape(-1), dims=(1, 1, p * ncls),
                           strides=(2 * p * ncls, 2 * p * ncls, 2)), conf_buf.ref())
    g.add(Op.DETECTION_OUTPUT, g.input(), g.output((keep + 1, 7, 1)), taps=conf_buf.ref(),
          bias=priors_buf.ref(), op_params=g.raw_const(detection_output_params(
              "p", num_classes=ncls, share_location=True, background_label_id=0,
              nms_threshold=0.45, top_k=20, code_type=2, keep_top_k=keep,
              confidence_threshold=0.2, variance_encoded=False)))
    out = run(g.graph(), loc.reshape(1, 1, -1))[:, :, 0]
    want = caffe_detections(loc, conf, prior, var, ncls, 0, 0.45, 20, keep, 0.2)
    assert len(want) == keep  # the test exercises keep_top_k
    assert out[0, 0] == len(want)
    np.testing.assert_array_equal(out[0, 1:], 0)
    np.testing.assert_array_equal(out[1:, :3].astype(np.float64), f16(want[:, :3]))
    assert np.max(np.abs(out[1:, 3:] - want[:, 3:])) < 2e-3  # float32 decode, fp16 store
