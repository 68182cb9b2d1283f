"""The emulator as a whole: its memory model (buffers shared through offsets and
strides), its API (run, trace, bytes in, the USB simulator's executor), and
the errors it raises for graphs it cannot execute faithfully."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import SAMPLES
from test_emulator_kernels import Builder, assert_fp16, conv_ref, f16, rand, relu
from usbsim import make_rig

from caffe2ncs.errors import Caffe2NcsError, GraphFileError, UnsupportedNetworkError
from caffe2ncs.lowering.graphfile import load_graph, read_graph, write_graph
from caffe2ncs.lowering.ir import (
    BufferRef,
    ConvParams,
    DataType,
    GraphFormat,
    Op,
    PadStyle,
    PoolParams,
    PostOp,
    PowerParams,
    SoftmaxParams,
    Stage,
)
from caffe2ncs.runtime.emulator import (
    SUPPORTED_OPS,
    Emulator,
    InputShapeError,
    output_hwc,
    run,
    stick_executor,
)
from caffe2ncs.runtime.usb import MyriadError, open_device


def inception_like(rng):
    """Input 6x7x4 -> three branches written into one buffer at channel offsets
    0, 3, 5 (implicit concat, strides of the 8-channel whole): a 1x1 conv, a 3x3
    conv reading channels 1..2 of the input (a slice), a max pool of channels
    0..2 (a slice); then a 1x1 conv of the concat and a softmax into the output."""
    h, w = 6, 7
    x = rand(rng, (h, w, 4))
    w1, w3, w5 = rand(rng, (1, 1, 4, 3)), rand(rng, (3, 3, 2, 2)), rand(rng, (1, 1, 8, 5))
    g = Builder((h, w, 4))
    cat, mixed = g.buffer((h, w, 8)), g.buffer((h, w, 5))
    g.add(Op.CONVOLUTION, g.input(), cat.ref(3, at=0), taps=g.taps("w1", w1),
          params=ConvParams(1, 1), post_op=PostOp.relu())
    g.add(Op.CONVOLUTION, g.input(2, at=1), cat.ref(2, at=3), taps=g.taps("w3", w3),
          params=ConvParams(3, 3, 1, 1, 1, 1, PadStyle.CAFFE), post_op=PostOp.relu())
    g.add(Op.MAX_POOLING, g.input(3, at=0), cat.ref(3, at=5),
          params=PoolParams(3, 3, 1, 1, 1, 1, PadStyle.CAFFE))
    g.add(Op.CONVOLUTION, cat.ref(), mixed.ref(), taps=g.taps("w5", w5), params=ConvParams(1, 1))
    g.add(Op.SOFTMAX, mixed.ref(), g.output((h, w, 5)), params=SoftmaxParams(1))
    # The reference, with an fp16 rounding after every stage.
    b1 = f16(relu(conv_ref(x, w1, None, (1, 1), (0, 0), 1, (h, w))))
    b2 = f16(relu(conv_ref(x[:, :, 1:3], w3, None, (1, 1), (1, 1), 1, (h, w))))
    padded = np.pad(x[:, :, :3], ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    b3 = np.max([padded[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)
    m = f16(conv_ref(np.concatenate([b1, b2, b3], axis=2), w5, None, (1, 1), (0, 0), 1, (h, w)))
    e = np.exp(m - m.max(axis=2, keepdims=True))
    return g, x, e / e.sum(axis=2, keepdims=True)


def test_implicit_concat_and_slices_share_one_buffer():
    g, x, want = inception_like(np.random.default_rng(1))
    graph = g.graph()
    # One work buffer holds the three branches: all references to it agree on the address.
    cat = graph.stages[0].output
    assert graph.stages[1].output.offset == cat.offset + 6
    assert graph.stages[2].output.offset == cat.offset + 10
    assert_fp16(output_hwc(graph, Emulator(graph).run(x)), want)


@pytest.mark.parametrize("fmt", [GraphFormat.NCSDK1, GraphFormat.NCSDK2])
def test_written_graph_files_run_the_same(fmt):
    """The same network after a round trip through either file format."""
    g, x, _ = inception_like(np.random.default_rng(2))
    graph = g.graph()
    data = write_graph(graph, fmt)
    np.testing.assert_array_equal(run(data, x), Emulator(graph).run(x))


def test_concat_into_the_network_output():
    """Two stages writing the output at channel offsets (an implicit concat into
    the output tensor): the host receives all channels, in HWC order."""
    rng = np.random.default_rng(3)
    x = rand(rng, (3, 2, 2))
    g = Builder((3, 2, 2))
    g.add(Op.TANH, g.input(), g.output((3, 2, 5), channels=2, at=0))
    g.add(Op.POWER, g.input(), g.output((3, 2, 5), channels=2, at=2),
          params=PowerParams(1.0, 2.0, 2.0))
    g.add(Op.SIGMOID, g.input(1, at=1), g.output((3, 2, 5), channels=1, at=4))
    graph = g.graph()
    assert graph.output.shape_hwc == (3, 2, 5)
    out = Emulator(graph).run(x)
    assert out.shape == (30,)
    want = np.concatenate([np.tanh(x), (1 + 2 * x) ** 2, 1 / (1 + np.exp(-x[:, :, 1:2]))], 2)
    assert_fp16(out.reshape(3, 2, 5), want)


def test_in_place_stages_and_reused_buffers():
    """A stage may write the buffer it reads (ReLU-like in-place ops), and a
    buffer may be overwritten by a later stage; each stage sees the values
    stored just before it runs."""
    x = np.array([[[1.0, -2.0, 3.0]]])
    g = Builder((1, 1, 3))
    buf = g.buffer((1, 1, 3))
    g.add(Op.POWER, g.input(), buf.ref(), params=PowerParams(0.0, 2.0, 1.0))   # 2, -4, 6
    g.add(Op.POWER, buf.ref(), buf.ref(), params=PowerParams(1.0, 1.0, 1.0))   # 3, -3, 7
    g.add(Op.ELTWISE_SUM, buf.ref(), g.output((1, 1, 3)), taps=g.input())      # 4, -5, 10
    out = Emulator(g.graph()).run(x)
    np.testing.assert_array_equal(out, [4, -5, 10])


def test_runs_are_independent_and_deterministic():
    g, x, _ = inception_like(np.random.default_rng(4))
    emu = Emulator(g.graph())
    first = emu.run(x)
    emu.run(np.zeros_like(x))
    np.testing.assert_array_equal(emu.run(x), first)


def test_trace_keeps_every_stage():
    g, x, _ = inception_like(np.random.default_rng(5))
    emu = Emulator(g.graph())
    trace = emu.trace(x)
    assert [r.index for r in trace.stages] == list(range(5))
    assert [r.output.shape for r in trace.stages] == [(6, 7, 3), (6, 7, 2), (6, 7, 3),
                                                      (6, 7, 5), (6, 7, 5)]
    assert all(r.output.dtype == np.float16 and r.seconds >= 0 for r in trace.stages)
    np.testing.assert_array_equal(trace.output, emu.run(x))
    np.testing.assert_array_equal(trace.stages[-1].output.reshape(-1), trace.output)


def test_input_conversion():
    g = Builder((2, 3, 1))
    g.add(Op.COPY, g.input(), g.output((2, 3, 1)))
    emu = Emulator(g.graph())
    assert emu.input_shape == (2, 3, 1) and emu.output_shape == (2, 3, 1)
    x = np.arange(6, dtype=np.float64).reshape(2, 3) + 0.1
    want = x.astype(np.float16).reshape(-1)  # rounded to nearest fp16
    for given in (x, x.reshape(2, 3, 1), x.reshape(1, 2, 3, 1), x.reshape(-1)):
        np.testing.assert_array_equal(emu.run(given), want)
    with pytest.raises(InputShapeError, match=r"takes a 2x3x1 \(HxWxC\) input, got .* 3x2"):
        emu.run(np.zeros((3, 2)))
    with pytest.raises(ValueError):  # also a ValueError for API users
        emu.run(np.zeros((2, 3, 2)))


# ----------------------------------------------------------------------------- errors


def single(op, **kw):
    g = Builder((4, 4, 2))
    stage = g.add(op, g.input(), g.output((4, 4, 2)), **kw)
    return g, stage


@pytest.mark.parametrize("op", [Op.REGION, Op.REORG, Op.RELAYOUT, Op.SUM_REDUCE, Op.RELU,
                                Op.MYRIADX_CONVOLUTION])
def test_unsupported_stage_types_are_refused(op):
    g, _ = single(op)
    with pytest.raises(UnsupportedNetworkError, match=rf"stage 0 .*\({op.value}\): the emulator "
                                                      r"does not execute"):
        Emulator(g.graph(), path="net.graph")


def test_unsupported_combinations_are_refused():
    g, st = single(Op.TANH)
    g.stages[0] = dataclasses.replace(st, pre_op=Op.RELU)
    with pytest.raises(UnsupportedNetworkError, match="pre-operation relu"):
        Emulator(g.graph())
    g.stages[0] = dataclasses.replace(st, post_op=PostOp(Op.RELU, 0, 2, 2))
    with pytest.raises(UnsupportedNetworkError, match="post-operation strides"):
        Emulator(g.graph())
    g.stages[0] = dataclasses.replace(st, post_op=PostOp(Op.PRELU))
    with pytest.raises(UnsupportedNetworkError, match="post-operation prelu"):
        Emulator(g.graph())
    fp32 = dataclasses.replace(st.input, dtype=DataType.FP32)
    g.stages[0] = dataclasses.replace(st, input=fp32)
    with pytest.raises(UnsupportedNetworkError, match="input is fp32"):
        Emulator(g.graph())
    g, _ = single(Op.SOFTMAX, params=SoftmaxParams(0))
    with pytest.raises(UnsupportedNetworkError, match="axis 0"):
        Emulator(g.graph())
    g = Builder((3, 3, 1))
    g.add(Op.DECONVOLUTION, g.input(), g.output((6, 6, 1)),
          taps=g.taps("w", np.ones((2, 2, 1, 1))),
          params=ConvParams(2, 2, 2, 2, 0, 0, PadStyle.TF_SAME))
    with pytest.raises(UnsupportedNetworkError, match="tf_same is not emulated"):
        Emulator(g.graph())


def test_inconsistent_buffers_are_graph_file_errors():
    g = Builder((4, 4, 2))
    g.add(Op.CONVOLUTION, g.input(), g.output((4, 4, 3)),
          taps=g.const("w", np.ones(10), dims=(9, 2, 3)), params=ConvParams(3, 3, 1, 1, 1, 1))
    with pytest.raises(GraphFileError, match=r"taps constant 'w' holds 64 bytes; the stage "
                                             r"needs 54 float16"):
        Emulator(g.graph(), path="net.graph")
    g = Builder((4, 4, 2))
    g.add(Op.CONVOLUTION, g.input(), g.output((4, 4, 3)),
          taps=g.const("w", np.ones(54), dims=(9, 3, 2)), params=ConvParams(3, 3, 1, 1, 1, 1))
    with pytest.raises(GraphFileError, match=r"taps are 9x3x2 .* needs 9x2x3"):
        Emulator(g.graph())
    g, st = single(Op.SIGMOID)
    g.stages[0] = dataclasses.replace(st, input=BufferRef.input((4, 4, 2), (4, 16, 2), 8))
    graph = g.graph()
    with pytest.raises(GraphFileError, match=r"stage 0 .*: input \(4x4x2 at byte 8, strides "
                                             r"4,16,2\) reaches byte 72 of the network input, "
                                             r"which has 64 bytes") as err:
        Emulator(graph, path="net.graph").run(np.zeros((4, 4, 2)))
    assert err.value.path == "net.graph"
    assert str(err.value).startswith("net.graph: stage 0 'sigmoid_0' (sigmoid): input")
    g, st = single(Op.SIGMOID)
    g.stages[0] = dataclasses.replace(st, input=BufferRef.input((4, 4, 2), (4, 16, 2), 1))
    with pytest.raises(GraphFileError, match="multiples of 2 bytes"):
        Emulator(g.graph()).run(np.zeros((4, 4, 2)))
    g, _ = single(Op.COPY)
    g.stages[0] = dataclasses.replace(g.stages[0], output=BufferRef.output((4, 4, 1)))
    with pytest.raises(GraphFileError, match="keeps its input's shape"):
        Emulator(g.graph())


def test_every_error_is_a_caffe2ncs_error():
    """Whatever the emulator refuses reaches the CLI as a one-line user error."""
    for op in sorted(set(Op) - SUPPORTED_OPS, key=lambda o: o.value):
        g, _ = single(op)
        with pytest.raises(Caffe2NcsError):
            Emulator(g.graph())


def test_supported_ops():
    assert SUPPORTED_OPS == {
        Op.CONVOLUTION, Op.DEPTHWISE_CONVOLUTION, Op.DECONVOLUTION, Op.MAX_POOLING,
        Op.AVERAGE_POOLING, Op.FULLY_CONNECTED, Op.SOFTMAX, Op.LRN, Op.INNER_LRN,
        Op.ELTWISE_SUM, Op.ELTWISE_PROD, Op.ELTWISE_MAX, Op.SCALE, Op.PRELU, Op.SIGMOID,
        Op.TANH, Op.POWER, Op.SQUARE, Op.RSQRT, Op.COPY, Op.CROP, Op.RESHAPE,
        Op.TO_PLANE_MAJOR, Op.PERMUTE, Op.NORMALIZE, Op.PRIOR_BOX, Op.DETECTION_OUTPUT}


# ----------------------------------------------------------------------------- USB simulator


def test_emulator_as_the_simulated_sticks_executor(tmp_path):
    """A 1.x graph sent to a simulated stick that runs the emulator: the host
    gets the emulator's output and one time per stage."""
    g, x, want = inception_like(np.random.default_rng(6))
    blob = write_graph(g.graph(), GraphFormat.NCSDK1)
    rig = make_rig(tmp_path, executor=stick_executor)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(blob) as graph:
        result = graph.infer(x.astype(np.float16))
    np.testing.assert_array_equal(result.output, Emulator(read_graph(blob)).run(x))
    assert result.stage_times_ms.shape == (5,)
    assert_fp16(result.output.reshape(6, 7, 5), want)
    assert rig.protocol_errors() == []


def test_a_graph_the_emulator_refuses_is_a_firmware_error_on_the_simulated_stick(tmp_path):
    g, _ = single(Op.REORG)
    blob = write_graph(g.graph(), GraphFormat.NCSDK1)
    out, times, debug = stick_executor(blob, bytes(64))
    assert out == bytes(64) and list(times) == [0.0] and "does not execute reorg" in debug
    rig = make_rig(tmp_path, executor=stick_executor)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(blob) as graph:
        with pytest.raises(MyriadError, match="does not execute reorg"):
            graph.infer(np.zeros((4, 4, 2), np.float16))


def test_vendor_sample_runs_the_same_after_conversion_to_ncsdk1():
    path = SAMPLES / "conv_with_8_filters" / "graph.mv"
    if not path.is_file():
        pytest.skip(f"vendor samples not found at {SAMPLES}")
    graph = load_graph(path)
    x = np.random.default_rng(7).random((64, 64, 3))
    converted = read_graph(write_graph(graph, GraphFormat.NCSDK1))
    assert converted.format is GraphFormat.NCSDK1
    np.testing.assert_array_equal(Emulator(converted).run(x), Emulator(graph).run(x))


def test_stage_names_in_errors_come_from_1x_files():
    g = Builder((2, 2, 1))
    g.stages.append(Stage(Op.REGION, name="region_layer", input=g.input(),
                          output=g.output((2, 2, 1))))
    graph = read_graph(write_graph(g.graph(), GraphFormat.NCSDK1))
    with pytest.raises(UnsupportedNetworkError, match="stage 0 'region_layer' "):
        Emulator(graph)
