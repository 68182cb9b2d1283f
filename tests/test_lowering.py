"""Lowering of small hand-written networks, checked stage by stage.

Where the semantics can be checked cheaply they are: folded convolutions are
run in float64 numpy against Caffe's conv -> BatchNorm -> Scale, fully
connected taps against Caffe's (C, H, W) dot product, with the device's HWC
layout on one side and Caffe's CHW on the other.
"""

from __future__ import annotations

import numpy as np
import pytest

from caffe2ncs.errors import UnsupportedNetworkError
from caffe2ncs.lowering import lower, lower_network
from caffe2ncs.lowering.emit import graph_bytes
from caffe2ncs.lowering.graphfile import convert, read_graph, write_graph
from caffe2ncs.lowering.ir import (
    GraphFormat,
    Location,
    Op,
    PadStyle,
    StorageOrder,
    Window,
    layout_work_buffers,
)
from caffe2ncs.model.loader import loads
from caffe2ncs.model.weights import synthesize

RNG = np.random.default_rng(7)

# --------------------------------------------------------------------- helpers


def net(body: str, shape=(1, 3, 8, 8), name: str = "t"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return loads(f'name: "{name}"\ninput: "data"\ninput_shape {{ {dims} }}\n{body}')


def conv(name, bottom, top=None, n=4, k=3, pad=0, stride=1, group=1, bias=True, extra=""):
    return f"""layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top or name}"
  convolution_param {{ num_output: {n} kernel_size: {k} pad: {pad} stride: {stride}
    group: {group} bias_term: {str(bias).lower()} {extra} }} }}
"""


def layer(name, type_, bottoms, tops=None, params=""):
    bottoms = [bottoms] if isinstance(bottoms, str) else bottoms
    tops = [name] if tops is None else ([tops] if isinstance(tops, str) else tops)
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{type_}" {b} {t} {params} }}\n'


def const(graph, ref) -> np.ndarray:
    """The fp16 values of the constant ``ref`` names, as float64 (padding included)."""
    return graph.constant(ref.constant).array().astype(np.float64)


def stage(graph, name):
    return next(s for s in graph.stages if s.name == name)


def caffe_conv(x, w, b, stride=1, pad=0):
    """Caffe's convolution in float64: x (C, H, W), w (K, C, kh, kw)."""
    _, h, wd = x.shape
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((k, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride]
            out += np.einsum("kc,chw->khw", w[:, :, i, j], patch)
    return out + (0 if b is None else b[:, None, None])


def hwc_conv(x_hwc, taps_hwck, bias, stride=1, pad=0):
    """The device's view: HWC input, HWCK taps -> HWC output (float64)."""
    h, wd, _ = x_hwc.shape
    kh, kw, _, k = taps_hwck.shape
    xp = np.pad(x_hwc, ((pad, pad), (pad, pad), (0, 0)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((ho, wo, k))
    for i in range(kh):
        for j in range(kw):
            out += xp[i:i + stride * ho:stride, j:j + stride * wo:stride, :] @ taps_hwck[i, j]
    return out + (0 if bias is None else bias)


def taps_hwck(graph, st) -> np.ndarray:
    """A convolution stage's taps as (kh, kw, C, K) float64."""
    kk, c, k = st.taps.dims
    kh, kw = st.params.kernel_y, st.params.kernel_x
    assert kh * kw == kk
    return const(graph, st.taps)[:kk * c * k].reshape(kh, kw, c, k)


def rand(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, shape).astype(np.float32)


def f16(x):
    return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float64)


# --------------------------------------------------------------------- BN / Scale folding


BN_NET = conv("conv", "data", n=4, k=3, pad=1) + layer(
    "bn", "BatchNorm", "conv", "conv", "batch_norm_param { eps: 0.001 }") + layer(
    "scale", "Scale", "conv", "conv", "scale_param { bias_term: true }") + layer(
    "relu", "ReLU", "conv", "conv")


def bn_weights(factor=2.0):
    w, b = rand(4, 3, 3, 3), rand(4)
    mean, var = rand(4), rand(4, lo=0.5, hi=2.0)
    s, beta = rand(4, lo=0.5, hi=1.5), rand(4)
    return {"conv": (w, b), "bn": (mean, var, np.array([factor], np.float32)),
            "scale": (s, beta)}


def test_bn_and_scale_fold_into_the_convolution_as_float64_math() -> None:
    n = net(BN_NET)
    wts = bn_weights(factor=2.0)
    low = lower_network(n, weights=wts)
    g = low.graph
    assert [s.name for s in g.stages] == ["conv"]
    st = g.stages[0]
    assert low.stage_layers == (("conv", "bn", "scale", "relu"),)
    assert dict(low.layer_stages) == {"conv": (0,), "bn": (0,), "scale": (0,), "relu": (0,)}
    assert st.post_op.op is Op.RELU and st.output.location is Location.OUTPUT
    w, b = (a.astype(np.float64) for a in wts["conv"])
    mean, var, factor = (a.astype(np.float64) for a in wts["bn"])
    s, beta = (a.astype(np.float64) for a in wts["scale"])
    mult = 1 / np.sqrt(var / factor[0] + 0.001)
    a = mult * s
    want_w = w * a[:, None, None, None]
    want_b = (b - mean / factor[0]) * a + beta
    # the taps are the float64 products rounded once to fp16, in HWCK order
    np.testing.assert_array_equal(taps_hwck(g, st), f16(want_w.transpose(2, 3, 1, 0)))
    np.testing.assert_array_equal(const(g, st.bias)[:4], f16(want_b))
    # and the folded stage computes conv -> BN -> Scale (-> ReLU), on HWC data
    x = rand(3, 8, 8).astype(np.float64)
    y = caffe_conv(x, w, b, pad=1)
    y = (y - mean[:, None, None] / factor[0]) * mult[:, None, None]
    y = np.maximum(y * s[:, None, None] + beta[:, None, None], 0)
    got = np.maximum(hwc_conv(x.transpose(1, 2, 0), taps_hwck(g, st), const(g, st.bias)[:4],
                              pad=1), 0)
    np.testing.assert_allclose(got.transpose(2, 0, 1), y, rtol=0, atol=2e-2 * np.abs(y).max())


def test_batchnorm_scale_factor_zero_means_zero_statistics() -> None:
    n = net(BN_NET)
    wts = bn_weights(factor=0.0)
    g = lower(n, weights=wts)
    st = g.stages[0]
    w, b = (a.astype(np.float64) for a in wts["conv"])
    s, beta = (a.astype(np.float64) for a in wts["scale"])
    a = s / np.sqrt(0.001)  # mean 0, variance 0 (+ eps), as mvNCCompile and Caffe
    np.testing.assert_array_equal(const(g, st.bias)[:4], f16(b * a + beta))
    np.testing.assert_array_equal(taps_hwck(g, st),
                                  f16((w * a[:, None, None, None]).transpose(2, 3, 1, 0)))


def test_convolution_without_bias_gets_one_from_the_batchnorm() -> None:
    body = conv("conv", "data", bias=False) + layer("bn", "BatchNorm", "conv", "conv") + \
        layer("sc", "Scale", "conv", "conv")  # Scale without bias: BN's shift remains
    g = lower(net(body), weights={"conv": (rand(4, 3, 3, 3),),
                                  "bn": (rand(4), rand(4, lo=1, hi=2), np.ones(1, np.float32)),
                                  "sc": (rand(4),)})
    st = g.stages[0]
    assert st.bias is not None and st.post_op.op is Op.BIAS
    body = conv("conv", "data", bias=False) + layer("sc", "Scale", "conv", "conv")
    g = lower(net(body), weights={"conv": (rand(4, 3, 3, 3),), "sc": (rand(4),)})
    assert g.stages[0].bias is None and g.stages[0].post_op.op is Op.NONE


def test_batchnorm_after_an_activation_is_a_scale_stage() -> None:
    """mvNCCompile would fold it into the convolution (it finds the conv by
    name); that is wrong after a ReLU, so it stays a stage."""
    body = conv("conv", "data") + layer("relu", "ReLU", "conv", "conv") + \
        layer("bn", "BatchNorm", "conv", "conv") + \
        layer("sc", "Scale", "conv", "conv", "scale_param { bias_term: true }")
    wts = {"conv": (rand(4, 3, 3, 3), rand(4)),
           "bn": (rand(4), rand(4, lo=1, hi=2), np.ones(1, np.float32)),
           "sc": (rand(4), rand(4))}
    low = lower_network(net(body), weights=wts)
    g = low.graph
    assert [(s.name, s.op, s.post_op.op) for s in g.stages] == [
        ("conv", Op.CONVOLUTION, Op.RELU), ("bn", Op.SCALE, Op.BIAS)]
    assert low.stage_layers[1] == ("bn", "sc")  # BatchNorm and Scale merged into one stage
    scale = g.stages[1]
    mean, var = wts["bn"][0].astype(np.float64), wts["bn"][1].astype(np.float64)
    s, beta = (a.astype(np.float64) for a in wts["sc"])
    mult = 1 / np.sqrt(var + 1e-5)
    np.testing.assert_array_equal(const(g, scale.taps)[:4], f16(mult * s))
    np.testing.assert_array_equal(const(g, scale.bias)[:4], f16(-mean * mult * s + beta))
    assert tuple(scale.taps.dims) == (1, 1, 4)


def test_batchnorm_is_not_folded_when_the_raw_output_is_read_elsewhere() -> None:
    body = conv("conv", "data") + layer("bn", "BatchNorm", "conv", "bn") + \
        layer("sum", "Eltwise", ["conv", "bn"])
    g = lower(net(body))
    assert [(s.name, s.op) for s in g.stages] == [
        ("conv", Op.CONVOLUTION), ("bn", Op.SCALE), ("sum", Op.ELTWISE_SUM)]


# --------------------------------------------------------------------- fully connected


def test_fc_weights_are_reordered_for_hwc_input() -> None:
    body = conv("conv", "data", n=4, k=3) + layer(
        "fc", "InnerProduct", "conv", params="inner_product_param { num_output: 5 }")
    wts = {"conv": (rand(4, 3, 3, 3), rand(4)), "fc": (rand(5, 4 * 6 * 6), rand(5))}
    g = lower(net(body), weights=wts)
    fc = stage(g, "fc")
    assert fc.op is Op.FULLY_CONNECTED
    assert tuple(fc.input.dims) == (1, 1, 144) and tuple(fc.taps.dims) == (1, 144, 5)
    assert tuple(fc.taps.strides) == (2 * 144 * 5, 10, 2)  # NCSDK 2.05's (2CK, 2K, 2)
    taps = const(g, fc.taps)[:144 * 5].reshape(144, 5)
    w = wts["fc"][0].astype(np.float64)
    np.testing.assert_array_equal(taps, f16(w.reshape(5, 4, 6, 6).transpose(2, 3, 1, 0)
                                            .reshape(144, 5)))
    # the same dot product: Caffe over (C, H, W), the device over (H, W, C)
    x = rand(4, 6, 6).astype(np.float64)
    np.testing.assert_allclose(x.transpose(1, 2, 0).reshape(-1) @ taps,
                               f16(w) @ x.reshape(-1), rtol=1e-9)
    # the constant reserves room for K rounded up to 8 (what 2.05 does)
    assert g.constant(fc.taps.constant).size == 144 * 8 * 2


def test_fc_after_a_vector_and_transposed_weights() -> None:
    body = layer("fc1", "InnerProduct", "data", params="inner_product_param { num_output: 6 }") \
        + layer("fc2", "InnerProduct", "fc1",
                params="inner_product_param { num_output: 3 transpose: true }")
    w1, w2 = rand(6, 12), rand(6, 3)  # fc2 stored (N, K) because of transpose
    g = lower(net(body, shape=(1, 12)), weights={"fc1": (w1, rand(6)), "fc2": (w2, rand(3))})
    fc2 = stage(g, "fc2")
    np.testing.assert_array_equal(const(g, fc2.taps)[:18].reshape(6, 3), f16(w2))
    fc1 = stage(g, "fc1")
    np.testing.assert_array_equal(const(g, fc1.taps)[:72].reshape(12, 6), f16(w1.T))
    assert tuple(fc1.input.dims) == (1, 1, 12) and fc1.input.location is Location.INPUT


def test_fc_reading_the_network_input_keeps_its_size() -> None:
    body = layer("fc", "InnerProduct", "data", params="inner_product_param { num_output: 4 }")
    g = lower(net(body, shape=(1, 3, 4, 4)))
    assert tuple(g.stages[0].input.dims) == (1, 1, 48) and g.input.elements == 48
    data = write_graph(g, "ncsdk2")
    assert int.from_bytes(data[66:70], "little") == 48  # size_of_input


def test_1x1_convolution_on_a_1x1_input_becomes_fully_connected() -> None:
    body = conv("c", "data", n=7, k=1)
    g = lower(net(body, shape=(1, 16, 1, 1)))
    st = g.stages[0]
    assert st.op is Op.FULLY_CONNECTED and st.params is None
    assert tuple(st.taps.dims) == (1, 16, 7)


# --------------------------------------------------------------------- groups, depthwise


def test_group_convolution_is_split_with_copies_for_kernels_above_1() -> None:
    body = conv("pre", "data", n=6, k=1) + conv("g", "pre", n=4, k=3, pad=1, group=2)
    wts = {"pre": (rand(6, 3, 1, 1), rand(6)), "g": (rand(4, 3, 3, 3), rand(4))}
    low = lower_network(net(body), weights=wts)
    g = low.graph
    assert [(s.name, s.op) for s in g.stages] == [
        ("pre", Op.CONVOLUTION), ("pre_s0", Op.COPY), ("g_p0", Op.CONVOLUTION),
        ("pre_s1", Op.COPY), ("g_p1", Op.CONVOLUTION)]
    pre, s0, p0, s1, p1 = g.stages
    assert low.layer_stages["g"] == (1, 2, 3, 4)
    # the copies read channels 0-2 and 3-5 of pre's output, with its strides
    assert s0.input.work_index == pre.output.work_index
    assert (s0.input.offset - pre.output.offset, s1.input.offset - pre.output.offset) == (0, 6)
    assert tuple(s0.input.dims) == (8, 8, 3) and tuple(s0.input.strides) == (12, 96, 2)
    assert tuple(s0.output.strides) == (6, 48, 2)  # dense
    # both halves write one buffer (the network output) at channel offsets 0 and 2
    assert p0.output.location is p1.output.location is Location.OUTPUT
    assert (p0.output.offset, p1.output.offset) == (0, 4)
    assert tuple(p0.output.strides) == tuple(p1.output.strides) == (8, 64, 2)
    w = wts["g"][0].astype(np.float64)
    np.testing.assert_array_equal(taps_hwck(g, p1), f16(w[2:].transpose(2, 3, 1, 0)))
    np.testing.assert_array_equal(const(g, p1.bias)[:2], f16(wts["g"][1][2:]))


def test_1x1_group_convolution_reads_channel_views() -> None:
    body = conv("pre", "data", n=6, k=1) + conv("g", "pre", n=6, k=1, group=3, bias=False)
    g = lower(net(body))
    pre, p0, p1, p2 = g.stages
    assert [s.name for s in (p0, p1, p2)] == ["g_p0", "g_p1", "g_p2"]
    assert [s.input.offset - pre.output.offset for s in (p0, p1, p2)] == [0, 4, 8]
    assert {tuple(s.input.dims) for s in (p0, p1, p2)} == {(8, 8, 2)}
    assert {tuple(s.input.strides) for s in (p0, p1, p2)} == {(12, 96, 2)}


def test_group_equal_to_channels_is_a_depthwise_convolution() -> None:
    body = conv("pre", "data", n=8, k=1) + conv("dw", "pre", n=8, k=3, pad=1, group=8) + \
        layer("relu", "ReLU", "dw", "dw")
    wts = {"pre": (rand(8, 3, 1, 1), rand(8)), "dw": (rand(8, 1, 3, 3), rand(8))}
    g = lower(net(body), weights=wts)
    dw = stage(g, "dw")
    assert dw.op is Op.DEPTHWISE_CONVOLUTION and dw.post_op.op is Op.RELU
    assert tuple(dw.taps.dims) == (9, 1, 8) and tuple(dw.taps.strides) == (16, 16, 2)
    np.testing.assert_array_equal(
        const(g, dw.taps)[:72].reshape(3, 3, 8),
        f16(wts["dw"][0][:, 0].transpose(1, 2, 0)))
    assert g.constant(dw.taps.constant).size == 192  # no K-to-8 reservation (not a conv)


def test_wide_convolution_writing_a_shared_buffer_is_forced_to_im2col_v2() -> None:
    body = conv("a", "data", n=4, k=1) + conv("b", "data", n=4, k=1) + \
        layer("cat", "Concat", ["a", "b"]) + conv("c", "cat", n=2, k=1)
    g = lower(net(body, shape=(1, 256, 4, 4)))
    assert [hex(s.implementation) for s in g.stages] == ["0x4", "0x4", "0x80000000"]


# --------------------------------------------------------------------- concat, slice


def test_implicit_concat_along_channels() -> None:
    body = conv("a", "data", n=4, k=1) + conv("b", "data", n=6, k=3, pad=1) + \
        layer("cat", "Concat", ["a", "b"]) + conv("c", "cat", n=2, k=1)
    low = lower_network(net(body))
    g = low.graph
    a, b, c = g.stages
    assert low.layer_stages["cat"] == ()
    assert a.output.work_index == b.output.work_index == c.input.work_index
    assert b.output.offset - a.output.offset == 8  # 4 channels * 2 bytes
    assert tuple(a.output.dims) == (8, 8, 4) and tuple(b.output.dims) == (8, 8, 6)
    assert tuple(a.output.strides) == tuple(b.output.strides) == (20, 160, 2)
    assert tuple(c.input.dims) == (8, 8, 10) and c.input.offset == a.output.offset
    assert g.work_buffers[a.output.work_index][1] >= 8 * 8 * 10 * 2


def test_concat_as_the_output_and_relu_after_it() -> None:
    body = conv("a", "data", n=4, k=1) + conv("b", "data", n=6, k=1) + \
        layer("cat", "Concat", ["a", "b"]) + layer("relu", "ReLU", "cat", "cat")
    low = lower_network(net(body), target="ncsdk1")
    g = low.graph
    assert [(s.name, s.post_op.op, s.output.location, s.output.offset) for s in g.stages] == [
        ("a", Op.RELU, Location.OUTPUT, 0), ("b", Op.RELU, Location.OUTPUT, 8)]
    assert g.output.dims.z == 10 and g.output.elements == 640  # from strideX, as libmvnc does
    assert low.layer_stages["relu"] == (0, 1)
    read_graph(write_graph(g, "ncsdk1"))


def test_concat_along_the_height_and_its_buffer_size() -> None:
    body = f"""layer {{ name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param {{ num_output: 4 kernel_h: 3 kernel_w: 1 }} }}
{conv("b", "data", n=4, k=1)}
{layer("cat", "Concat", ["a", "b"], params="concat_param { axis: 2 }")}
{conv("c", "cat", n=2, k=1)}"""
    g = lower(net(body))
    a, b, c = g.stages
    assert tuple(a.output.dims) == (8, 6, 4) and tuple(b.output.dims) == (8, 8, 4)
    assert a.output.work_index == b.output.work_index == c.input.work_index
    assert b.output.offset - a.output.offset == 6 * 64  # six rows of 8 x 4 fp16
    assert tuple(c.input.dims) == (8, 14, 4)
    # layout_work_buffers gives the same addresses (it sizes the buffer for 14 rows)
    assert layout_work_buffers(g) == g


def test_height_concat_output_is_written_through_a_copy() -> None:
    body = f"""layer {{ name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param {{ num_output: 4 kernel_h: 3 kernel_w: 1 }} }}
{conv("b", "data", n=4, k=1)}
{layer("cat", "Concat", ["a", "b"], params="concat_param { axis: 2 }")}"""
    g = lower(net(body), target="ncsdk1")
    assert [s.name for s in g.stages] == ["a", "b", "cat_copy"]
    last = g.stages[-1]
    assert last.op is Op.COPY and last.output.location is Location.OUTPUT
    assert tuple(last.output.dims) == (8, 14, 4) and g.output.elements == 8 * 14 * 4


def test_slice_tops_are_channel_views_with_copies_where_the_sdk_inserts_them() -> None:
    body = conv("pre", "data", n=6, k=1) + \
        layer("sl", "Slice", "pre", ["s1", "s2"], "slice_param { slice_point: 2 }") + \
        conv("c1", "s1", n=2, k=1) + conv("c2", "s2", n=2, k=3, pad=1) + \
        layer("cat", "Concat", ["c1", "c2", "s2"])
    low = lower_network(net(body))
    g = low.graph
    names = [s.name for s in g.stages]
    assert names == ["pre", "c1", "c2_Slice2_6", "c2", "cat_s2"]
    pre, c1, cp, c2, catcopy = g.stages
    assert c1.input.work_index == pre.output.work_index and c1.input.offset == pre.output.offset
    assert tuple(c1.input.dims) == (8, 8, 2) and tuple(c1.input.strides) == (12, 96, 2)
    assert cp.op is Op.COPY and cp.input.offset - pre.output.offset == 4
    assert tuple(cp.input.dims) == (8, 8, 4) and tuple(cp.output.strides) == (8, 64, 2)
    assert c2.input.work_index == cp.output.work_index
    # the slice goes into the concat (the output) through a copy named after both
    assert catcopy.op is Op.COPY and catcopy.output.location is Location.OUTPUT
    assert catcopy.output.offset == 8 and tuple(catcopy.output.strides) == (16, 128, 2)
    assert low.layer_stages["sl"] == () and low.layer_stages["cat"] == (4,)


# --------------------------------------------------------------------- deconvolution, LRN


def test_deconvolution_weights_are_swapped_and_rotated() -> None:
    body = """layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
  convolution_param { num_output: 5 kernel_size: 4 stride: 2 pad: 1 } }"""
    w = rand(3, 5, 4, 4)  # Caffe: (C_in, K, kh, kw)
    g = lower(net(body), weights={"up": (w, rand(5))})
    st = g.stages[0]
    assert st.op is Op.DECONVOLUTION and tuple(st.output.dims) == (16, 16, 5)
    assert (st.params.kernel_x, st.params.stride_x, st.params.pad_x) == (4, 2, 1)
    want = np.swapaxes(w, 0, 1)[:, :, ::-1, ::-1]  # (K, C, kh, kw), rotated 180 degrees
    np.testing.assert_array_equal(taps_hwck(g, st), f16(want.transpose(2, 3, 1, 0)))
    assert g.constant(st.taps.constant).size == 16 * 3 * 5 * 2 + 32  # no K reservation
    # Semantics: Caffe scatters each input pixel through the kernel; with the stored
    # taps that is zero-insertion by the stride, padding kernel-1-pad, then a
    # stride-1 correlation - what the firmware's deconvolution is expected to do.
    x = rand(3, 8, 8).astype(np.float64)
    wd = w.astype(np.float64)
    full = np.zeros((5, 7 * 2 + 4, 7 * 2 + 4))
    for y in range(8):
        for xx in range(8):
            full[:, 2 * y:2 * y + 4, 2 * xx:2 * xx + 4] += np.einsum("c,ckij->kij", x[:, y, xx],
                                                                      wd)
    caffe = full[:, 1:1 + 16, 1:1 + 16]  # crop the pad
    up = np.zeros((15, 15, 3))
    up[::2, ::2, :] = x.transpose(1, 2, 0)
    device = hwc_conv(up, taps_hwck(g, st), None, pad=4 - 1 - 1)
    np.testing.assert_allclose(device.transpose(2, 0, 1), caffe, atol=1e-2)


def test_lrn_across_and_within_channels() -> None:
    body = layer("n1", "LRN", "data", params="lrn_param { local_size: 5 alpha: 0.0001 "
                                             "beta: 0.75 k: 2 }")
    for target in ("ncsdk1", "ncsdk2"):
        g = lower(net(body), target=target)
        st = g.stages[0]
        assert st.op is Op.LRN and st.params.size == 5
        np.testing.assert_array_equal(const(g, st.bias)[:4], f16([2, 0.0001, 0.75, 0]))
        # 2.x: ZYX, as the toolkit labels every bias; 1.x: one order per stage
        assert st.bias.order is (StorageOrder.ZYX if target == "ncsdk2" else StorageOrder.YXZ)
        assert tuple(st.bias.dims) == (0, 0, 0)
        assert st.ncsdk1_window == (Window(5, 0, 1, 1, 0, 0, PadStyle.CAFFE)
                                    if target == "ncsdk1" else None)
    body = layer("n1", "LRN", "data", params="lrn_param { local_size: 3 norm_region: "
                                             "WITHIN_CHANNEL }")
    for target in ("ncsdk1", "ncsdk2"):
        g = lower(net(body), target=target)
        assert read_graph(write_graph(g, target)) == convert(g, target)
    low = lower_network(net(body))
    assert [(s.name, s.op) for s in low.graph.stages] == [
        ("n1_Square", Op.SQUARE), ("n1_AvgPool", Op.AVERAGE_POOLING),
        ("n1_InnerLRN", Op.INNER_LRN), ("n1", Op.ELTWISE_PROD)]
    sq, pool, inner, prod = low.graph.stages
    assert (pool.params.kernel_x, pool.params.pad_x, pool.params.stride_x) == (3, 1, 1)
    assert prod.input.location is Location.INPUT and prod.taps.work_index == \
        inner.output.work_index
    assert low.layer_stages["n1"] == (0, 1, 2, 3)


# --------------------------------------------------------------------- pooling, eltwise


def test_pooling_ceil_rule_and_global_pooling() -> None:
    body = layer("p", "Pooling", "data", params="pooling_param { pool: MAX kernel_size: 3 "
                                                "stride: 2 }") + \
        layer("gp", "Pooling", "p", params="pooling_param { pool: AVE global_pooling: true }")
    g = lower(net(body, shape=(1, 3, 10, 10)))
    p, gp = g.stages
    assert tuple(p.output.dims) == (5, 5, 3)  # ceil((10-3)/2)+1 = 5
    assert (p.params.kernel_x, p.params.stride_x, p.params.pad_style) == (3, 2, PadStyle.CAFFE)
    assert gp.op is Op.AVERAGE_POOLING and (gp.params.kernel_x, gp.params.kernel_y) == (5, 5)
    assert tuple(gp.output.dims) == (1, 1, 3)


def test_pooling_whose_caffe_size_differs_from_the_ceil_rule_is_refused() -> None:
    body = layer("p", "Pooling", "data", params="pooling_param { pool: MAX kernel_size: 3 "
                                                "stride: 2 round_mode: FLOOR }")
    with pytest.raises(UnsupportedNetworkError, match="Pooling 'p'.*4x4.*5x5"):
        lower(net(body, shape=(1, 3, 10, 10)))


def test_eltwise_operations_and_more_than_two_inputs() -> None:
    body = conv("a", "data", k=1) + conv("b", "data", k=1) + conv("c", "data", k=1) + \
        layer("m", "Eltwise", ["a", "b", "c"], params="eltwise_param { operation: MAX }")
    low = lower_network(net(body))
    a, b, c, m1, m = low.graph.stages
    assert (m1.name, m1.op, m.name, m.op) == ("m_1", Op.ELTWISE_MAX, "m", Op.ELTWISE_MAX)
    assert (m1.input.work_index, m1.taps.work_index) == (a.output.work_index,
                                                         b.output.work_index)
    assert (m.input.work_index, m.taps.work_index) == (m1.output.work_index,
                                                       c.output.work_index)
    body = conv("a", "data", k=1) + conv("b", "data", k=1) + \
        layer("s", "Eltwise", ["a", "b"], params="eltwise_param { coeff: 1 coeff: -1 }")
    with pytest.raises(UnsupportedNetworkError, match="coeff"):
        lower(net(body))


def test_eltwise_with_the_input_first_swaps_it_second() -> None:
    body = conv("a", "data", n=3, k=1) + layer("s", "Eltwise", ["data", "a"]) + \
        layer("p", "Eltwise", ["s", "data"], params="eltwise_param { operation: PROD }")
    g = lower(net(body))
    s, p = g.stages[1:]
    assert s.input.location is Location.WORK and s.taps.location is Location.INPUT
    assert p.input.location is Location.WORK and p.taps.location is Location.INPUT


# --------------------------------------------------------------------- activations


def test_relu_leaky_relu_and_elu_are_post_ops() -> None:
    body = conv("a", "data", k=1) + layer("r", "ReLU", "a", "a",
                                          "relu_param { negative_slope: 0.125 }") + \
        conv("b", "a", k=1) + layer("e", "ELU", "b", "e", "elu_param { alpha: 0.5 }")
    low = lower_network(net(body))
    a, b = low.graph.stages
    assert (a.post_op.op, a.post_op.param_float) == (Op.LEAKY_RELU, 0.125)
    assert (b.post_op.op, b.post_op.param_float) == (Op.ELU, 0.5)
    assert low.stage_layers == (("a", "r"), ("b", "e"))


def test_activation_of_a_value_read_elsewhere_computes_the_producer_twice() -> None:
    body = conv("a", "data", k=1) + conv("b", "data", k=1) + layer("sum", "Eltwise", ["a", "b"]) \
        + layer("relu", "ReLU", "sum", "r") + conv("c", "sum", k=1) + \
        layer("out", "Eltwise", ["r", "c"])
    low = lower_network(net(body))
    g = low.graph
    assert [(s.name, s.op, s.post_op.op) for s in g.stages] == [
        ("a", Op.CONVOLUTION, Op.BIAS), ("b", Op.CONVOLUTION, Op.BIAS),
        ("sum", Op.ELTWISE_SUM, Op.NONE), ("relu", Op.ELTWISE_SUM, Op.RELU),
        ("c", Op.CONVOLUTION, Op.BIAS), ("out", Op.ELTWISE_SUM, Op.NONE)]
    s, r, c, out = g.stages[2:]
    assert c.input.work_index == s.output.work_index  # c reads the value before the ReLU
    assert out.input.work_index == r.output.work_index  # 'out' reads the activated one
    assert (r.input.work_index, r.taps.work_index) == (s.input.work_index, s.taps.work_index)
    assert low.stage_layers[3] == ("relu", "sum")


def test_activations_without_a_stage_to_carry_them_are_refused() -> None:
    with pytest.raises(UnsupportedNetworkError, match="ReLU 'r'.*network input"):
        lower(net(layer("r", "ReLU", "data", "x")))


# --------------------------------------------------------------------- other layers


def test_prelu_power_softmax_sigmoid_tanh() -> None:
    body = conv("a", "data", n=4, k=1) + \
        layer("pr", "PReLU", "a", "pr", "prelu_param { channel_shared: true }") + \
        layer("pw", "Power", "pr", params="power_param { power: 2 scale: 0.5 shift: 1 }") + \
        layer("sg", "Sigmoid", "pw") + layer("th", "TanH", "sg") + \
        layer("sm", "Softmax", "th")
    g = lower(net(body), weights={"a": (rand(4, 3, 1, 1), rand(4)),
                                  "pr": (np.array([0.25], np.float32),)})
    _, pr, pw, sg, th, sm = g.stages
    assert pr.op is Op.PRELU and list(const(g, pr.bias)[:4]) == [0.25] * 4
    assert (pw.params.shift, pw.params.scale, pw.params.power) == (1.0, 0.5, 2.0)
    assert (sg.op, th.op, sm.op, sm.params.axis) == (Op.SIGMOID, Op.TANH, Op.SOFTMAX, 1)


def test_crop_offsets_and_reshape_flatten_params() -> None:
    body = conv("a", "data", n=4, k=1) + conv("ref", "data", n=4, k=3) + \
        layer("cr", "Crop", ["a", "ref"], params="crop_param { axis: 2 offset: 1 offset: 2 }") + \
        layer("rs", "Reshape", "cr", params="reshape_param { shape { dim: 0 dim: -1 dim: 12 } }") \
        + layer("fl", "Flatten", "rs")
    for target, reshape_params in (("ncsdk2", (1, 12, 12)), ("ncsdk1", (0, 0, 0))):
        low = lower_network(net(body), target=target)
        cr, rs, fl = low.graph.stages[2:]
        assert (cr.params.offset_x, cr.params.offset_y, cr.params.offset_z) == (2, 1, 0)
        assert tuple(cr.output.dims) == (6, 6, 4) and cr.taps is None
        assert tuple(rs.output.dims) == (1, 12, 12)  # Caffe (1, 12, 12): C=12, H=12, W=1
        assert (rs.params.offset_x, rs.params.offset_y, rs.params.offset_z) == reshape_params
        assert fl.op is Op.TO_PLANE_MAJOR and tuple(fl.output.dims) == (1, 1, 144)
        data = write_graph(convert(low.graph, target), target)
        assert read_graph(data) == convert(low.graph, target)


def test_permute_op_params_are_the_toolkits_encoding() -> None:
    body = conv("a", "data", n=4, k=1) + \
        layer("pm", "Permute", "a", params="permute_param { order: 0 order: 2 order: 3 order: 1 }")
    g = lower(net(body, shape=(1, 3, 5, 7)))
    pm = g.stages[1]
    assert tuple(pm.output.dims) == (4, 7, 5)  # Caffe (1, 5, 7, 4): C=5, H=7, W=4
    assert list(g.constant(pm.op_params.constant).array()[:3]) == [1, 2, 0]


def test_prior_box_normalize_and_detection_output() -> None:
    body = conv("f", "data", n=4, k=1) + \
        layer("nm", "Normalize", "f", params="norm_param { across_spatial: false "
                                             "channel_shared: false eps: 0.001 }") + \
        layer("pb", "PriorBox", ["nm", "data"],
              params="prior_box_param { min_size: 30 max_size: 60 aspect_ratio: 2 flip: true "
                     "clip: false variance: 0.1 variance: 0.2 step: 8 offset: 0.5 }") + \
        conv("loc", "nm", n=16, k=1) + layer("lf", "Flatten", "loc") + \
        conv("cf", "nm", n=12, k=1) + layer("cff", "Flatten", "cf") + \
        layer("det", "DetectionOutput", ["lf", "cff", "pb"],
              params="detection_output_param { num_classes: 3 share_location: true "
                     "background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 100 } "
                     "code_type: CENTER_SIZE keep_top_k: 20 confidence_threshold: 0.25 }")
    for target in ("ncsdk1", "ncsdk2"):
        g = lower(net(body, shape=(1, 3, 8, 8)), target=target)
        nm, pb, det = stage(g, "nm"), stage(g, "pb"), g.stages[-1]
        assert nm.op is Op.NORMALIZE and tuple(nm.taps.dims) == (1, 1, 4)
        opp = g.constant(nm.op_params.constant).data
        assert np.frombuffer(opp[:8], "<i4").tolist() == [0, 0]
        eps = np.frombuffer(opp[8:12], "<f4")[0]
        assert eps == (0 if target == "ncsdk1" else np.float32(0.001))
        assert pb.taps.location is Location.INPUT and tuple(pb.output.dims) == (1, 8 * 8 * 4 * 4,
                                                                                  2)
        params = np.frombuffer(g.constant(pb.op_params.constant).data, "<f4")
        assert params[:13].tolist() == [8, 8, 1, 1, 1, 2, 1, 0, 30, 60, 2, 0.10000000149011612,
                                        0.20000000298023224]
        assert params[13:16].tolist() == [8, 8, 0.5]
        assert det.name == "det" and det.output.location is Location.OUTPUT
        assert tuple(det.output.dims) == (7, 21, 1)  # keep_top_k + 1 rows of 7
        assert (det.input.work_index, det.taps.work_index, det.bias.work_index) == (
            stage(g, "lf").output.work_index, stage(g, "cff").output.work_index,
            pb.output.work_index)
        rec = g.constant(det.op_params.constant).data[:40]
        assert np.frombuffer(rec, "<i4")[[0, 1, 2, 4, 5, 6, 8]].tolist() == [3, 1, 0, 100, 2,
                                                                              20, 0]
        assert np.frombuffer(rec, "<f4")[[3, 7, 9]].tolist() == [np.float32(0.45),
                                                                 np.float32(0.25), 1.0]
        assert read_graph(write_graph(convert(g, target), target)) == convert(g, target)


# --------------------------------------------------------------------- structure


def test_dropout_split_and_the_output_choice() -> None:
    body = conv("a", "data", k=1) + layer("d", "Dropout", "a", "a") + \
        layer("sp", "Split", "a", ["x", "y"]) + conv("b", "x", k=1) + \
        layer("d2", "Dropout", "y", "z") + conv("c", "z", k=1) + conv("unused", "data", k=1)
    low = lower_network(net(body))
    assert [s.name for s in low.graph.stages] == ["a", "b"]  # the first output is 'b'
    assert low.output == "b" and low.input == "data"
    assert low.layer_stages["d"] == low.layer_stages["c"] == low.layer_stages["unused"] == ()
    low = lower_network(net(body), output="c")
    assert [s.name for s in low.graph.stages] == ["a", "c"]


def test_a_network_that_only_passes_its_input_through_is_one_copy() -> None:
    g = lower(net(layer("d", "Dropout", "data", "data")))
    assert [(s.op, s.input.location, s.output.location) for s in g.stages] == [
        (Op.COPY, Location.INPUT, Location.OUTPUT)]


def test_unsupported_layers_are_named_together() -> None:
    body = conv("a", "data", k=1) + layer("up", "Upsample", "a") + layer("ab", "AbsVal", "up")
    with pytest.raises(UnsupportedNetworkError, match=r"2 layers: 'up' \(Upsample\), "
                                                      r"'ab' \(AbsVal\)"):
        lower(net(body))


def test_padded_1x1_convolution_and_batch_sizes_are_refused() -> None:
    with pytest.raises(UnsupportedNetworkError, match="Padding 1 not supported"):
        lower(net(conv("a", "data", k=1, pad=1)))
    with pytest.raises(UnsupportedNetworkError, match="batch size 4"):
        lower(net(conv("a", "data", k=1), shape=(4, 3, 8, 8)))
    low = lower_network(net(conv("a", "data", k=1), shape=(4, 3, 8, 8)), any_batch=True)
    assert tuple(low.graph.input.dims) == (8, 8, 3)
    assert "batch of 4" in low.warnings[0]


def test_zero_weights_when_the_net_has_none() -> None:
    low = lower_network(net(BN_NET))
    g = low.graph
    st = g.stages[0]
    assert not any(g.constant(st.taps.constant).data)
    assert not any(const(g, st.bias)[:4])  # BN of zeros: mean 0; Scale of zeros
    assert low.warnings == ()  # nothing given at all: the caller warns once
    wts = bn_weights()
    del wts["bn"]
    low = lower_network(net(BN_NET), weights=wts)
    assert "1 layer(s) have no weights" in low.warnings[0] and "'bn'" in low.warnings[0]


def test_fp16_overflow_is_reported() -> None:
    low = lower_network(net(conv("a", "data", n=2, k=1)),
                        weights={"a": (np.full((2, 3, 1, 1), 1e6, np.float32),
                                       np.zeros(2, np.float32))})
    assert "fp16 range" in low.warnings[0] and "a/taps" in low.warnings[0]


def test_arguments_and_graph_header() -> None:
    n = net(conv("a", "data", k=1), name="caf\u00e9 " + "x" * 120)
    g = lower(n, target="ncsdk1", shaves=3)
    assert g.format is GraphFormat.NCSDK1 and g.shave_count == 3
    assert g.name == ("caf? " + "x" * 120)[:100]
    assert lower(n, name="other").name == "other"
    with pytest.raises(ValueError, match="shaves"):
        lower(n, shaves=13)
    with pytest.raises(ValueError, match="target"):
        lower(n, target="ncsdk3")


@pytest.mark.parametrize("target", ["ncsdk1", "ncsdk2"])
def test_the_streaming_writer_writes_write_graphs_bytes(target, tmp_path) -> None:
    from caffe2ncs.lowering import write_graph_file

    body = conv("a", "data", n=4, k=3, pad=1) + layer("r", "ReLU", "a", "a") + \
        conv("b", "a", n=4, k=1) + layer("cat", "Concat", ["a", "b"]) + \
        layer("sm", "Softmax", "cat")
    n = net(body)
    g = lower(n, target=target, weights=synthesize(n, 3))
    want = write_graph(convert(g, target), target)
    assert graph_bytes(g, target) == want
    size = write_graph_file(g, target, tmp_path / "x.graph")
    assert (tmp_path / "x.graph").read_bytes() == want and size == len(want)
    assert read_graph(want) == convert(g, target)
