"""The NCSDK 2.x reader and writer against the vendor's own graph files.

The files in ``shared/ncsdk-samples`` were produced by NCSDK 2.05's mvNCCompile;
they are read in place (never copied) and the tests skip when they are absent.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, sample_dirs

from caffe2ncs.lowering.graphfile import convert, detect_format, read_graph, write_graph
from caffe2ncs.lowering.ir import (
    ConvParams,
    Dims3,
    GraphFormat,
    Location,
    Op,
    PadStyle,
    ScratchAllocator,
    StorageOrder,
    layout_work_buffers,
    work_buffer_size,
)


def _sample_params():
    dirs = sample_dirs()
    if not dirs:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"vendor samples not found at "
                                                                  f"{SAMPLES}"))]
    return [pytest.param(d / "graph.mv", id=d.name) for d in dirs]


def _sample(name: str) -> bytes:
    path = SAMPLES / name / "graph.mv"
    if not path.is_file():
        pytest.skip(f"vendor sample {name} not found in {SAMPLES}")
    return path.read_bytes()


@pytest.mark.parametrize("path", _sample_params())
def test_vendor_file_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    graph = read_graph(data, path)
    assert graph.format is GraphFormat.NCSDK2
    assert write_graph(graph, "ncsdk2") == data


@pytest.mark.parametrize("path", _sample_params())
def test_vendor_file_survives_conversion_to_ncsdk1_and_back(path: Path) -> None:
    data = path.read_bytes()
    graph = read_graph(data, path)
    assert convert(graph, "ncsdk2") == graph  # already in 2.x conventions
    v1 = write_graph(graph, "ncsdk1")
    assert detect_format(v1) is GraphFormat.NCSDK1
    g1 = read_graph(v1)
    assert g1 == convert(graph, "ncsdk1")
    assert write_graph(g1, "ncsdk1") == v1
    # Same ops, params and buffers, and the 2.x file comes back exactly.
    assert [s.op for s in g1.stages] == [s.op for s in graph.stages]
    assert [s.params for s in g1.stages] == [s.params for s in graph.stages]
    assert write_graph(g1, "ncsdk2") == data


@pytest.mark.parametrize("path", _sample_params())
def test_vendor_header_and_sections_are_consistent(path: Path) -> None:
    data = path.read_bytes()
    graph = read_graph(data, path)
    u32 = lambda off: struct.unpack_from("<I", data, off)[0]  # noqa: E731
    assert u32(34) == 8708 and u32(38) == len(data) and (u32(42), u32(46)) == (2, 3)
    assert graph.shave_count == u32(50) == 12
    assert graph.input.elements == u32(66)
    stage_off = u32(54)
    assert u32(stage_off) == len(graph.stages)
    assert graph.output.elements == u32(stage_off + 8)
    # The data section is exactly the constants, in order.
    buf_off = u32(58)
    blob = b"".join(c.data for c in graph.constants)
    assert data[buf_off + 16: u32(62)] == blob
    assert all(c.size % 64 == 0 for c in graph.constants)


def test_conv_with_8_filters_stages_match_the_readme() -> None:
    """README: 64x64x3 -> conv 3x3 stride 2, 8 filters, ReLU, SAME -> flatten
    (32*32*8) -> fully connected -> 1 -> sigmoid."""
    g = read_graph(_sample("conv_with_8_filters"))
    assert [s.op for s in g.stages] == [Op.CONVOLUTION, Op.FULLY_CONNECTED, Op.SIGMOID]
    conv, fc, sig = g.stages
    assert conv.params == ConvParams(3, 3, 2, 2, 0, 0, PadStyle.TF_SAME, dilation=1)
    assert conv.input.location is Location.INPUT and conv.input.dims == (64, 64, 3)
    assert conv.input.strides == (6, 384, 2)  # dense HWC fp16
    assert conv.output.dims == (32, 32, 8) and conv.output.location is Location.WORK
    assert conv.taps.dims == (9, 3, 8) and conv.taps.strides == (48, 16, 2)
    assert conv.taps.order is StorageOrder.XYZ and conv.bias.order is StorageOrder.ZYX
    assert conv.post_op.op is Op.RELU
    # The dilation op-params array 2.05 leaves unreferenced after the bias.
    assert conv.op_params is not None
    assert g.constant(conv.op_params.constant).array()[0] == 1
    assert g.constant(conv.op_params.constant).dtype == "int32"
    # The FC reads the conv's work buffer as 1x1x8192 and writes one value.
    assert fc.input.work_index == conv.output.work_index
    assert fc.input.offset == conv.output.offset
    assert fc.input.dims == (1, 1, 32 * 32 * 8)
    assert fc.output.dims == (1, 1, 1) and fc.post_op.op is Op.BIAS
    assert sig.output.location is Location.OUTPUT
    assert g.input.shape_hwc == (64, 64, 3) and g.output.elements == 1


def test_fc_weights_and_bias_are_fp16_hwck_with_k_reserved_to_8() -> None:
    g = read_graph(_sample("conv_with_8_filters"))
    fc = g.stages[1]
    taps = g.constant(fc.taps.constant)
    assert taps.size == 8192 * 8 * 2  # K=1 reserved as K=8
    w = taps.array()
    assert np.count_nonzero(w[8192:]) == 0 and np.count_nonzero(w[:8192]) > 8000
    bias = g.constant(fc.bias.constant)
    assert bias.size == 64 and np.isfinite(bias.array()[0])


def test_regression_network_has_two_convs_and_an_fc() -> None:
    g = read_graph(_sample("conv_with_regression"))
    assert [s.op for s in g.stages] == [Op.CONVOLUTION, Op.CONVOLUTION, Op.FULLY_CONNECTED]
    c1, c2, fc = g.stages
    assert c1.input.dims == (96, 128, 3)  # x = width 96, y = height 128
    assert (c1.output.dims.z, c2.output.dims.z) == (32, 64)
    assert c1.params.pad_style is PadStyle.TF_SAME and c2.post_op.op is Op.RELU
    assert fc.input.dims.z == 32 * 24 * 64 and fc.output.dims == (1, 1, 1)


def test_deconv_network_stage_geometry() -> None:
    g = read_graph(_sample("conv_deconv_output_shape_wrong"))
    ops = [s.op for s in g.stages]
    assert ops == [Op.CONVOLUTION] * 5 + [Op.DECONVOLUTION] * 3 + [Op.CONVOLUTION]
    outs = [s.output.dims for s in g.stages]
    assert outs[0] == (255, 255, 8) and outs[4] == (15, 15, 128)
    assert outs[5:8] == [(31, 31, 64), (63, 63, 32), (127, 127, 16)]
    assert g.output.shape_hwc == (127, 127, 1)
    deconv = g.stages[5]
    assert deconv.params == ConvParams(3, 3, 2, 2, 0, 0, PadStyle.CAFFE, dilation=1)
    assert deconv.op_params is None  # 2.05 writes no dilation array for deconvolutions


@pytest.mark.parametrize("path", _sample_params())
def test_scratch_allocator_reproduces_vendor_work_offsets(path: Path) -> None:
    g = read_graph(path.read_bytes())
    seen: dict[int, tuple[int, Dims3]] = {}
    for stage in g.stages:
        ref = stage.output
        if ref.location is Location.WORK and ref.work_index not in seen:
            seen[ref.work_index] = (ref.offset, ref.dims)
    alloc = ScratchAllocator()
    for index in sorted(seen):
        offset, dims = seen[index]
        assert alloc.allocate(dims) == (index, offset)
    assert work_buffer_size((32, 32, 8)) == 18496


def test_input_and_output_descriptors_follow_the_buffers() -> None:
    g = read_graph(_sample("conv_with_regression"))
    assert g.input.dims == (96, 128, 3) and g.input.strides == (6, 576, 2)
    assert g.output.dims == (1, 1, 1)


@pytest.mark.parametrize("path", _sample_params())
def test_layout_work_buffers_reproduces_vendor_addresses(path: Path) -> None:
    g = read_graph(path.read_bytes())

    def zeroed(ref):
        if ref is None or ref.location is not Location.WORK:
            return ref
        return dataclasses.replace(ref, offset=0)

    bare = g.replace(stages=tuple(
        dataclasses.replace(s, input=zeroed(s.input), output=zeroed(s.output)) for s in g.stages))
    assert bare != g
    assert layout_work_buffers(bare) == g
    assert write_graph(layout_work_buffers(bare), "ncsdk2") == path.read_bytes()
