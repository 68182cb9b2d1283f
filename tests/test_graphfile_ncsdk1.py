"""The NCSDK 1.x "graph version 2" layout, checked byte by byte.

No vendor 1.x file is available, so these tests pin our writer to the layout
of the reference notes and to the constants libmvnc 1.x uses to load a graph
(HEADER_LENGTH 264, VERSION_OFFSET 36, GRAPH_VERSION 2, N_STAGES_OFFSET 240,
FIRST_SHAVE_OFFSET 248, STAGE_LENGTH 227, N_OUTPUTS_OFFSET = 264 + 136,
X_OUT_STRIDE_OFFSET = 264 + 172).
"""

from __future__ import annotations

import struct

import numpy as np
from test_graphfile_ir import concat_graph, conv_relu_graph, misc_ops_graph

from caffe2ncs.lowering.graphfile import detect_format, read_graph, write_graph
from caffe2ncs.lowering.ir import GraphFormat, Location, Op

HEADER_LENGTH = 264
STAGE_LENGTH = 227


def u32(data: bytes, off: int) -> int:
    return struct.unpack_from("<I", data, off)[0]


def u16(data: bytes, off: int) -> int:
    return struct.unpack_from("<H", data, off)[0]


def record(data: bytes, i: int) -> bytes:
    start = HEADER_LENGTH + STAGE_LENGTH * i
    return data[start:start + STAGE_LENGTH]


def test_header_constants() -> None:
    graph = conv_relu_graph()
    data = write_graph(graph, "ncsdk1")
    n = len(graph.stages)
    assert detect_format(data) is GraphFormat.NCSDK1
    assert data[:32] == bytes(32)  # "VCS fix": the first 32 bytes are zero
    assert u32(data, 32) == len(data)  # file size
    assert u32(data, 36) == 2 and data[36] == 2  # libmvnc checks byte 36 == GRAPH_VERSION
    assert data[40:140] == b"conv_relu".ljust(100, b"\0")  # network name
    assert data[140:240] == bytes(100)  # report dir
    assert u32(data, 240) == n and u16(data, 240) == n  # libmvnc reads it as 16-bit
    data_start = u32(data, 244)
    assert data_start == -(-(HEADER_LENGTH + STAGE_LENGTH * n) // 8) * 8 == 720
    assert data[HEADER_LENGTH + STAGE_LENGTH * n:data_start] == bytes(data_start - 718)
    assert (u16(data, 248), u16(data, 250)) == (0, 11)  # firstShave, lastShave = -s 12
    assert data[252:264] == bytes(12)  # leonMemLocation, leonMemSize, dmaAgent
    assert len(data) >= HEADER_LENGTH + STAGE_LENGTH  # libmvnc's minimum


def test_stage_record_fields() -> None:
    graph = conv_relu_graph()
    data = write_graph(graph, "ncsdk1")
    r = record(data, 0)
    assert r[:100] == b"conv1".ljust(100, b"\0")
    assert r[100] == 0  # convolution
    assert u32(r, 101) == 0x80000000  # optMask default
    # radix, stride, pad, pad style caffe
    assert struct.unpack_from("<bbBBBBB", r, 105) == (3, 3, 1, 1, 1, 1, 2)
    assert struct.unpack_from("<3I", r, 112) == (8, 8, 3)  # inputDim
    assert struct.unpack_from("<3I", r, 124) == (9, 3, 4)  # tapDim: kh*kw, C, K
    assert struct.unpack_from("<3I", r, 136) == (8, 8, 4)  # outputDim
    assert struct.unpack_from("<3I", r, 148) == (6, 48, 2)  # inputStride (HWC fp16)
    assert struct.unpack_from("<3I", r, 172) == (8, 64, 2)  # outputStride
    assert tuple(r[184:187]) == (2, 2, 2)  # fp16, fp16, YXZ in 1.x numbering
    data_ptr, data_idx = struct.unpack_from("<IH", r, 187)
    assert (data_ptr, data_idx) == (0, 1)  # network input
    taps_ptr, taps_idx = struct.unpack_from("<IH", r, 193)
    bias_ptr, bias_idx = struct.unpack_from("<IH", r, 199)
    op_ptr, op_idx = struct.unpack_from("<IH", r, 205)
    out_ptr, out_idx = struct.unpack_from("<IH", r, 211)
    assert (taps_idx, bias_idx, op_idx) == (3, 3, 3) and (out_ptr, out_idx) == (0, 4)
    # Pointers are data-section offsets of 64-byte aligned constants: taps, bias, [dilation].
    assert (taps_ptr, bias_ptr, op_ptr) == (0, 448, 512)
    start = u32(data, 244)
    assert struct.unpack_from("<i", data, start + op_ptr)[0] == 1  # dilation
    bias = np.frombuffer(data, "<f2", 4, start + bias_ptr)
    assert np.array_equal(bias, graph.constant("conv1/bias").array()[:4])
    assert (r[217], r[218]) == (5, 6)  # preOp none, postOp relu
    assert r[219:227] == bytes(8)  # post_param1, post_strideX, post_strideY
    r1 = record(data, 1)
    assert r1[218] == 42 and struct.unpack_from("<f", r1, 219)[0] == 0.125  # leaky slope float32
    assert struct.unpack_from("<IH", r1, 187) == (0, 4)  # reads the work buffer
    assert struct.unpack_from("<IH", r1, 211) == (0, 2)  # writes the network output


def test_output_size_as_libmvnc_computes_it_from_the_last_record() -> None:
    data = write_graph(concat_graph(), "ncsdk1")
    n = u32(data, 240)
    last = HEADER_LENGTH + STAGE_LENGTH * (n - 1)
    out_x, out_y = u32(data, last + 136), u32(data, last + 140)
    stride_x = u32(data, last + 172)
    assert out_x * out_y * stride_x // 2 == 6 * 6 * 10  # both concat branches
    assert read_graph(data).output.elements == 6 * 6 * 10


def test_data_section_is_the_padded_constants_in_order() -> None:
    graph = misc_ops_graph()
    data = write_graph(graph, "ncsdk1")
    back = read_graph(data)
    start = u32(data, 244)
    assert data[start:] == b"".join(c.data for c in back.constants)
    assert all(c.size % 64 == 0 for c in back.constants)
    assert len(data) == start + sum(c.size for c in back.constants)


def test_reader_fills_the_ir_from_the_records() -> None:
    back = read_graph(write_graph(conv_relu_graph(), "ncsdk1"))
    assert back.format is GraphFormat.NCSDK1 and back.name == "conv_relu"
    assert [s.name for s in back.stages] == ["conv1", "conv2"]
    conv = back.stages[0]
    assert conv.op is Op.CONVOLUTION and conv.params.dilation == 1
    assert conv.taps.location is Location.BLOB and conv.op_params.constant == "conv1/op_params"
    assert back.constant("conv1/op_params").dtype == "int32"
    assert back.stages[1].post_op.param_float == 0.125


def test_foreign_window_bytes_and_codes_round_trip() -> None:
    """A 1.x file from another compiler may put radix/stride values in the
    records of ops without a window, or other type codes: they are kept."""
    from test_graphfile_ir import fc_softmax_graph

    data = bytearray(write_graph(fc_softmax_graph(), "ncsdk1"))
    fc = HEADER_LENGTH  # record 0: fully connected
    data[fc + 105:fc + 112] = bytes([1, 1, 1, 1, 0, 0, 0])
    data[fc + 185] = 1  # precision fp32
    g = read_graph(bytes(data))
    stage = g.stages[0]
    assert stage.op is Op.FULLY_CONNECTED and stage.params is None
    assert (stage.ncsdk1_window.kernel_x, stage.ncsdk1_window.stride_y) == (1, 1)
    assert stage.precision.value == "fp32"
    assert write_graph(g, "ncsdk1") == bytes(data)
    # 2.x has no such fields: converting drops them.
    g2 = read_graph(write_graph(g, "ncsdk2"))
    assert g2.stages[0].ncsdk1_window is None and g2.stages[0].precision.value == "fp16"
