"""Hand-built graphs: write -> read gives the same IR, for both formats.

Each builder makes a small graph the way a lowering pass would (constants from
numpy arrays, HWC work buffers from the scratch allocator, implicit concat by
output strides and offsets, op-params arrays).  ``convert`` adapts it to each
target's conventions; the test checks that reading the written file gives that
graph back, that writing it again gives the same bytes, and that what the
emulator/profiler rely on (ops, params, post-ops, buffer locations, offsets,
dims, constant bytes) is the same as in the hand-built graph.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from caffe2ncs.lowering.graphfile import GraphTargetError, convert, read_graph, write_graph
from caffe2ncs.lowering.graphfile.opparams import (
    NCSDK1_PARAMS_IN_BUFFER,
    detection_output_params,
    lrn_params,
    normalize_params,
    permute_params,
    prior_box_params,
)
from caffe2ncs.lowering.ir import (
    BufferRef,
    Constant,
    ConvParams,
    Dims3,
    Graph,
    GraphFormat,
    Location,
    LrnParams,
    OffsetParams,
    Op,
    PadStyle,
    PoolParams,
    PostOp,
    PowerParams,
    ScratchAllocator,
    SoftmaxParams,
    Stage,
    hwc_strides,
    hwck_taps_strides,
)

RNG = np.random.default_rng(0)


RELU = PostOp.relu()


def _conv(name, cin, cout, k, inp, out, *, op=Op.CONVOLUTION, stride=1, pad=0,
          style=PadStyle.CAFFE, post=RELU, dilation=1):
    taps = Constant.hwck_taps(f"{name}/taps", RNG.standard_normal((cout, cin, k, k)))
    bias = Constant.from_array(f"{name}/bias", RNG.standard_normal(cout))
    stage = Stage(op, name, ConvParams(k, k, stride, stride, pad, pad, style, dilation),
                  input=inp, output=out,
                  taps=BufferRef.blob(taps.name, (k * k, cin, cout), hwck_taps_strides(cout, cin)),
                  bias=BufferRef.blob(bias.name), post_op=post)
    return stage, [taps, bias]


def conv_relu_graph() -> Graph:
    alloc = ScratchAllocator()
    i, off = alloc.allocate((8, 8, 4))
    s1, c1 = _conv("conv1", 3, 4, 3, BufferRef.input((8, 8, 3)), BufferRef.work(i, off, (8, 8, 4)),
                   pad=1)
    s2, c2 = _conv("conv2", 4, 2, 1, BufferRef.work(i, off, (8, 8, 4)),
                   BufferRef.output((8, 8, 2)), post=PostOp.leaky_relu(0.125))
    return Graph((s1, s2), tuple(c1 + c2), name="conv_relu", shave_count=12)


def pooling_graph() -> Graph:
    alloc = ScratchAllocator()
    i, off = alloc.allocate((8, 8, 16))
    pool = Stage(Op.MAX_POOLING, "pool1", PoolParams(3, 3, 2, 2, 1, 1, PadStyle.CAFFE),
                 input=BufferRef.input((16, 16, 16)), output=BufferRef.work(i, off, (8, 8, 16)))
    gap = Stage(Op.AVERAGE_POOLING, "pool2", PoolParams(8, 8, 1, 1),
                input=BufferRef.work(i, off, (8, 8, 16)), output=BufferRef.output((1, 1, 16)))
    return Graph((pool, gap), (), shave_count=4)


def fc_softmax_graph() -> Graph:
    alloc = ScratchAllocator()
    i, off = alloc.allocate((1, 1, 10))
    w = Constant.hwck_taps("fc/taps", RNG.standard_normal((10, 32)))
    b = Constant.from_array("fc/bias", RNG.standard_normal(10))
    fc = Stage(Op.FULLY_CONNECTED, "fc", input=BufferRef.input((4, 2, 4)),
               output=BufferRef.work(i, off, (1, 1, 10)),
               taps=BufferRef.blob(w.name, (1, 32, 10), hwck_taps_strides(10, 32)),
               bias=BufferRef.blob(b.name), post_op=PostOp.bias())
    sm = Stage(Op.SOFTMAX, "prob", SoftmaxParams(axis=1), input=BufferRef.work(i, off, (1, 1, 10)),
               output=BufferRef.output((1, 1, 10)))
    return Graph((fc, sm), (w, b), name="fc")


def concat_graph() -> Graph:
    """Two 1x1 convs write channels 0-3 and 4-9 of one output (implicit concat)."""
    whole = (6, 6, 10)
    strides = hwc_strides(whole)
    s1, c1 = _conv("b1", 3, 4, 1, BufferRef.input((6, 6, 3)),
                   BufferRef.output((6, 6, 4), strides, offset=0))
    s2, c2 = _conv("b2", 3, 6, 1, BufferRef.input((6, 6, 3)),
                   BufferRef.output((6, 6, 6), strides, offset=2 * 4))
    return Graph((s1, s2), tuple(c1 + c2))


def concat_in_work_graph() -> Graph:
    """Implicit concat into a work buffer, then a slice read by channel offset."""
    alloc = ScratchAllocator()
    whole = Dims3(5, 5, 8)
    i, off = alloc.allocate(whole)
    st = hwc_strides(whole)
    s1, c1 = _conv("a", 3, 3, 3, BufferRef.input((5, 5, 3)),
                   BufferRef.work(i, off, (5, 5, 3), st), pad=1)
    s2, c2 = _conv("b", 3, 5, 3, BufferRef.input((5, 5, 3)),
                   BufferRef.work(i, off + 6, (5, 5, 5), st), pad=1)
    sl = Stage(Op.COPY, "slice", input=BufferRef.work(i, off + 4, (5, 5, 4), st),
               output=BufferRef.output((5, 5, 4)))
    return Graph((s1, s2, sl), tuple(c1 + c2))


def lrn_graph() -> Graph:
    p = lrn_params("norm1/params", k=1.0, alpha=1e-4, beta=0.75)
    lrn = Stage(Op.LRN, "norm1", LrnParams(5), input=BufferRef.input((7, 7, 16)),
                output=BufferRef.output((7, 7, 16)), bias=BufferRef.blob(p.name))
    return Graph((lrn,), (p,))


def eltwise_graph() -> Graph:
    alloc = ScratchAllocator()
    a, oa = alloc.allocate((4, 4, 8))
    b, ob = alloc.allocate((4, 4, 8))
    s1, c1 = _conv("x", 8, 8, 3, BufferRef.input((4, 4, 8)), BufferRef.work(a, oa, (4, 4, 8)),
                   pad=1, post=PostOp.bias())
    s2, c2 = _conv("y", 8, 8, 1, BufferRef.input((4, 4, 8)), BufferRef.work(b, ob, (4, 4, 8)),
                   post=PostOp.bias())
    add = Stage(Op.ELTWISE_SUM, "sum", input=BufferRef.work(a, oa, (4, 4, 8)),
                taps=BufferRef.work(b, ob, (4, 4, 8)), output=BufferRef.output((4, 4, 8)),
                post_op=PostOp.relu())
    prod = Stage(Op.ELTWISE_PROD, "prod", input=BufferRef.output((4, 4, 8)),
                 taps=BufferRef.work(b, ob, (4, 4, 8)), output=BufferRef.output((4, 4, 8)))
    return Graph((s1, s2, add, prod), tuple(c1 + c2))


def depthwise_graph() -> Graph:
    taps = Constant.from_array("dw/taps", RNG.standard_normal((3, 3, 1, 8)))
    bias = Constant.from_array("dw/bias", RNG.standard_normal(8))
    dw = Stage(Op.DEPTHWISE_CONVOLUTION, "dw", ConvParams(3, 3, 1, 1, 1, 1, PadStyle.CAFFE, 1),
               input=BufferRef.input((10, 10, 8)), output=BufferRef.output((10, 10, 8)),
               taps=BufferRef.blob(taps.name, (9, 1, 8), hwck_taps_strides(8, 1)),
               bias=BufferRef.blob(bias.name), post_op=PostOp.relu_x(6.0))
    return Graph((dw,), (taps, bias))


def deconv_graph() -> Graph:
    s, c = _conv("up", 4, 2, 4, BufferRef.input((5, 5, 4)), BufferRef.output((12, 12, 2)),
                 op=Op.DECONVOLUTION, stride=2, pad=0)
    return Graph((s,), tuple(c))


def dilated_conv_graph() -> Graph:
    s, c = _conv("dil", 2, 2, 3, BufferRef.input((9, 9, 2)), BufferRef.output((5, 5, 2)),
                 dilation=2, post=PostOp.elu(1.0))
    return Graph((s,), tuple(c))


def ssd_tail_graph() -> Graph:
    """Permute, prior box and detection output with their op-params arrays."""
    alloc = ScratchAllocator()
    loc, oloc = alloc.allocate((3, 3, 16))
    perm_out, operm = alloc.allocate((16, 3, 3))
    pri, opri = alloc.allocate((1, 2, 144))
    perm = permute_params("perm/params", (2, 3, 1))
    prior = prior_box_params("prior/params", img_h=300, img_w=300, min_sizes=[60.0],
                             max_sizes=[111.0], aspect_ratios=[2.0], variances=[0.1, 0.1, 0.2, 0.2],
                             flip=True, clip=False, step_w=100, step_h=100, offset=0.5)
    det = detection_output_params("det/params", num_classes=21, share_location=True,
                                  background_label_id=0, nms_threshold=0.45, top_k=100,
                                  code_type=2, keep_top_k=100, confidence_threshold=0.25,
                                  variance_encoded=False)
    norm = normalize_params("norm/params", across_spatial=False, channel_shared=False, eps=1e-10)
    scale = Constant.from_array("norm/scale", np.full(16, 20.0))
    stages = (
        Stage(Op.NORMALIZE, "norm", input=BufferRef.input((3, 3, 16)),
              output=BufferRef.work(loc, oloc, (3, 3, 16)), taps=BufferRef.blob(scale.name),
              op_params=BufferRef.blob(norm.name)),
        Stage(Op.PERMUTE, "perm", input=BufferRef.work(loc, oloc, (3, 3, 16)),
              output=BufferRef.work(perm_out, operm, (16, 3, 3)),
              op_params=BufferRef.blob(perm.name)),
        Stage(Op.PRIOR_BOX, "prior", input=BufferRef.work(loc, oloc, (3, 3, 16)),
              taps=BufferRef.input((3, 3, 16)), output=BufferRef.work(pri, opri, (1, 2, 144)),
              op_params=BufferRef.blob(prior.name)),
        Stage(Op.DETECTION_OUTPUT, "det", input=BufferRef.work(perm_out, operm, (16, 3, 3)),
              taps=BufferRef.work(loc, oloc, (3, 3, 16)),
              bias=BufferRef.work(pri, opri, (1, 2, 144)),
              output=BufferRef.output((7, 101, 1)), op_params=BufferRef.blob(det.name)),
    )
    return Graph(stages, (norm, scale, perm, prior, det), name="ssd_tail")


def misc_ops_graph() -> Graph:
    """Power, crop, sigmoid, tanh, scale, prelu, flatten, reshape, square."""
    alloc = ScratchAllocator()
    bufs = [alloc.allocate((6, 6, 4)) for _ in range(8)]
    w = lambda k, dims=(6, 6, 4): BufferRef.work(*bufs[k], dims)  # noqa: E731
    sc = Constant.from_array("scale/taps", RNG.standard_normal(4))
    sb = Constant.from_array("scale/bias", RNG.standard_normal(4))
    slope = Constant.from_array("prelu/slope", np.full(4, 0.25))
    stages = (
        Stage(Op.POWER, "power", PowerParams(shift=1.0, scale=0.5, power=2.0),
              input=BufferRef.input((6, 6, 4)), output=w(0)),
        Stage(Op.SIGMOID, "sig", input=w(0), output=w(1)),
        Stage(Op.TANH, "tanh", input=w(1), output=w(2)),
        Stage(Op.SCALE, "scale", input=w(2), output=w(3), taps=BufferRef.blob(sc.name),
              bias=BufferRef.blob(sb.name)),
        Stage(Op.PRELU, "prelu", input=w(3), output=w(4), bias=BufferRef.blob(slope.name)),
        Stage(Op.SQUARE, "sq", input=w(4), output=w(5)),
        Stage(Op.CROP, "crop", OffsetParams(1, 2, 0), input=w(5), output=w(6, (4, 3, 4))),
        Stage(Op.TO_PLANE_MAJOR, "flat", input=w(6, (4, 3, 4)), output=w(7, (1, 1, 48))),
        Stage(Op.RESHAPE, "reshape", OffsetParams(), input=w(7, (1, 1, 48)),
              output=BufferRef.output((1, 1, 48))),
    )
    return Graph(stages, (sc, sb, slope), shave_count=1)


BUILDERS = [conv_relu_graph, pooling_graph, fc_softmax_graph, concat_graph, concat_in_work_graph,
            lrn_graph, eltwise_graph, depthwise_graph, deconv_graph, dilated_conv_graph,
            ssd_tail_graph, misc_ops_graph]


def _semantics(graph: Graph):
    """What later stages rely on, independent of format conventions."""
    out = []
    for s in graph.stages:
        refs = {}
        for slot, ref in s.buffers():
            if slot == "op_params" and s.op in NCSDK1_PARAMS_IN_BUFFER:
                continue  # 1.x's encoding of s.params, added by convert()
            entry = (ref.location, ref.offset, ref.work_index)
            if ref.location is Location.BLOB:
                entry = (ref.location, graph.constant(ref.constant).data)
            dims = (ref.dims, ref.strides) if slot not in ("bias", "op_params") else ()
            refs[slot] = (entry, dims)
        out.append((s.op, s.params, s.post_op, s.pre_op, s.implementation, refs))
    return out


@pytest.mark.parametrize("target", ["ncsdk2", "ncsdk1"])
@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_write_read_gives_the_same_ir(build, target) -> None:
    graph = build()
    adapted = convert(graph, target)
    data = write_graph(adapted, target)
    # A graph made for the other format is converted by write_graph itself.
    other = GraphFormat.NCSDK1 if target == "ncsdk2" else GraphFormat.NCSDK2
    assert write_graph(graph.replace(format=other), target) == data
    back = read_graph(data)
    assert back.format is GraphFormat(target)
    assert back == adapted
    assert write_graph(back, target) == data
    assert _semantics(back) == _semantics(graph)
    assert back.input == graph.input and back.output == graph.output
    assert back.shave_count == graph.shave_count


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_conversion_between_formats_keeps_the_semantics(build) -> None:
    graph = build()
    via1 = read_graph(write_graph(graph, "ncsdk1"))
    via2 = read_graph(write_graph(via1, "ncsdk2"))
    assert _semantics(via2) == _semantics(graph)
    # 1.x stores no dims for bias/op_params buffers; otherwise nothing is lost.
    assert via2 == convert(convert(graph, "ncsdk1"), "ncsdk2")
    if all(s.bias is None or s.bias.location.value == "blob" for s in graph.stages):
        assert via2 == convert(graph, "ncsdk2")
    back1 = read_graph(write_graph(via2, "ncsdk1"))
    assert _semantics(back1) == _semantics(via1) == _semantics(graph)
    # 2.x stores no names: a trip through it names stages after their op.
    assert back1 == via1.replace(name="", stages=back1.stages, constants=back1.constants)
    assert [s.name for s in back1.stages] == [f"{s.op.value}_{i}" for i, s in
                                                enumerate(graph.stages)]


def test_concat_output_counts_all_channels() -> None:
    g = read_graph(write_graph(concat_graph(), "ncsdk1"))
    assert g.output.dims == (6, 6, 10)  # x*y*strideX/2, as libmvnc 1.x computes it
    assert [s.output.offset for s in g.stages] == [0, 8]


def test_ncsdk1_keeps_typed_params_in_op_params_buffers() -> None:
    g = read_graph(write_graph(dilated_conv_graph(), "ncsdk1"))
    conv = g.stages[0]
    assert conv.params.dilation == 2
    assert list(g.constant(conv.op_params.constant).array()[:1]) == [2]
    g = read_graph(write_graph(misc_ops_graph(), "ncsdk1"))
    power, crop = g.stages[0], g.stages[6]
    assert np.frombuffer(g.constant(power.op_params.constant).data[:12], "<f4").tolist() == \
        [1.0, 0.5, 2.0]
    assert np.frombuffer(g.constant(crop.op_params.constant).data[:12], "<u4").tolist() == \
        [1, 2, 0]  # [off_W, off_H, off_C], as the vendor's Caffe parser writes them


def test_ncsdk2_drops_op_params_it_cannot_reference() -> None:
    g1 = convert(fc_softmax_graph(), "ncsdk1")
    assert g1.stages[1].op_params is not None  # softmax axis, 1.x style
    g2 = convert(g1, "ncsdk2")
    assert g2.stages[1].op_params is None
    assert all("prob" not in c.name for c in g2.constants)


# ------------------------------------------------------------------ what a target lacks


def _one_stage(op, params=None, **kw) -> Graph:
    return Graph((Stage(op, "s", params, input=BufferRef.input((2, 2, 2)),
                        output=BufferRef.output((2, 2, 2)), **kw),))


@pytest.mark.parametrize("op,target,needle", [
    (Op.PERMUTE_FLATTEN, "ncsdk1", "no op code in NCSDK 1.12"),
    (Op.STORAGE_ORDER_CONVERT, "ncsdk1", "no op code in NCSDK 1.12"),
    (Op.CONVERT_HW_SW, "ncsdk2", "no op code in NCSDK 2.05"),
    (Op.REGION, "ncsdk2", "no known blob 2.3 record layout"),
    (Op.MYRIADX_CONVOLUTION, "ncsdk2", "no known blob 2.3 record layout"),
])
def test_ops_a_target_lacks_are_clear_errors(op, target, needle) -> None:
    with pytest.raises(GraphTargetError, match=needle) as info:
        write_graph(_one_stage(op), target)
    assert op.value in str(info.value) and "stage 0" in str(info.value)
    assert info.value.exit_code == 2


def test_ncsdk1_kernel_field_is_int8() -> None:
    g = _one_stage(Op.MAX_POOLING, PoolParams(128, 1))
    with pytest.raises(GraphTargetError, match=r"kernel 128 does not fit its 1.x field \(0..127\)"):
        write_graph(g, "ncsdk1")
    assert read_graph(write_graph(g, "ncsdk2")).stages[0].params.kernel_x == 128


def test_ncsdk2_rejects_unknown_post_op_and_pre_op() -> None:
    with pytest.raises(GraphTargetError, match="post-op prelu"):
        write_graph(_one_stage(Op.SIGMOID, post_op=PostOp(Op.PRELU)), "ncsdk2")
    with pytest.raises(GraphTargetError, match="pre-op relu"):
        write_graph(_one_stage(Op.SIGMOID, pre_op=Op.RELU), "ncsdk2")
    g = read_graph(write_graph(_one_stage(Op.SIGMOID, pre_op=Op.RELU), "ncsdk1"))
    assert g.stages[0].pre_op is Op.RELU  # 1.x stores any pre-op code


def test_writer_checks_the_graph() -> None:
    g = _one_stage(Op.FULLY_CONNECTED, taps=BufferRef.blob("missing"))
    with pytest.raises(GraphTargetError, match="'missing', which the graph does not have"):
        write_graph(g, "ncsdk2")
    c = Constant("w", b"\1" * 64)
    g = _one_stage(Op.FULLY_CONNECTED, taps=BufferRef.blob("w", (1, 64, 2), (256, 4, 2)))
    g = g.replace(constants=(c,))
    with pytest.raises(GraphTargetError,
                       match=r"taps needs 256 bytes of constant '\S+', which has 64"):
        write_graph(g, "ncsdk1")
    # The last 1.x record must write the output (libmvnc reads the size from it).
    s = _one_stage(Op.SIGMOID).stages[0]
    tail = Stage(Op.COPY, "t", input=BufferRef.input((2, 2, 2)),
                 output=BufferRef.work(4, 0, (2, 2, 2)))
    with pytest.raises(GraphTargetError, match="last stage must write the network output"):
        write_graph(Graph((s, tail)), "ncsdk1")


def test_ncsdk1_one_dtype_and_order_per_stage_unless_converted() -> None:
    g = convert(conv_relu_graph(), "ncsdk2")  # taps XYZ, bias ZYX
    from caffe2ncs.lowering.graphfile.ncsdk1_writer import write_ncsdk1

    with pytest.raises(GraphTargetError, match="one data type and storage order per stage"):
        write_ncsdk1(dataclasses.replace(g, format=GraphFormat.NCSDK1))
    assert read_graph(write_graph(g, "ncsdk1")).stages[0].taps.order.value == "YXZ"


# ------------------------------------------------------------------ IR helpers


def test_ir_validates_params_and_buffer_refs() -> None:
    with pytest.raises(ValueError, match="needs ConvParams"):
        Stage(Op.CONVOLUTION, "c", PoolParams(3, 3))
    with pytest.raises(ValueError, match="takes no params"):
        Stage(Op.SIGMOID, "s", SoftmaxParams())
    with pytest.raises(ValueError, match="must name its constant"):
        BufferRef(location=Location.BLOB)
    with pytest.raises(ValueError, match="work buffer index must be >= 4"):
        BufferRef.work(3, 0, (1, 1, 1))
    with pytest.raises(ValueError, match="duplicate constant names: a"):
        Graph((), (Constant("a", b""), Constant("a", b"x")))


def test_constants_are_padded_to_64_and_typed() -> None:
    c = Constant.from_array("b", [1.5, -2.0, 3.0])
    assert c.size == 64 and c.dtype == "float16"
    assert c.array()[:3].tolist() == [1.5, -2.0, 3.0] and not c.array()[3:].any()
    i = Constant.from_array("p", [2, 3, 1])
    assert i.dtype == "int32" and i.array()[:3].tolist() == [2, 3, 1]
    taps = Constant.hwck_taps("t", np.arange(1 * 3 * 3 * 3).reshape(1, 3, 3, 3))
    assert taps.size == 448  # 3*3*3*8*2 = 432 reserved, padded to 64
    hwck = taps.array()[:27].reshape(3, 3, 3)  # kh, kw, C (K=1)
    assert hwck[0, 1, 2] == np.arange(27).reshape(1, 3, 3, 3)[0, 2, 0, 1]


def test_strides_and_post_op_helpers() -> None:
    assert hwc_strides((64, 64, 3)) == (6, 384, 2)
    assert hwck_taps_strides(8, 3) == (48, 16, 2)
    p = PostOp.leaky_relu(0.1)
    assert p.op is Op.LEAKY_RELU and abs(p.param_float - 0.1) < 1e-7
    assert BufferRef.input((4, 3, 2)).extent == 4 * 3 * 2 * 2


def test_work_buffers_cover_concat_branches_and_slices() -> None:
    g = concat_in_work_graph()
    (index, (offset, size)), = g.work_buffers.items()
    assert (index, offset) == (4, 0)
    # branch b starts at byte 6 (channel 3) and spans 4 columns, 4 rows, 4 channels + one fp16
    assert size == 6 + (4 * 16 + 4 * 80 + 4 * 2 + 2)
    assert g.scratch_size == size



def test_layout_work_buffers_places_buffers_like_the_allocator() -> None:
    from caffe2ncs.lowering.ir import layout_work_buffers, work_buffer_size

    g = eltwise_graph()  # built with ScratchAllocator: buffers 4 and 5
    shifted = layout_work_buffers(g, first_offset=1000)
    assert shifted.work_buffers == {4: (1000, g.work_buffers[4][1]),
                                    5: (1000 + work_buffer_size((4, 4, 8)), g.work_buffers[5][1])}
    assert layout_work_buffers(shifted) == g
    # Channel offsets of concat branches and slices stay relative to the buffer.
    c = layout_work_buffers(concat_in_work_graph(), first_offset=64)
    assert [s.output.offset for s in c.stages[:2]] == [64, 70]
    assert c.stages[2].input.offset == 68
