"""What the fuzzers found (``benchmarks/fuzz_*.py``), each reduced to a small
input: before the fix each raised something other than a ``Caffe2NcsError``
(or broke a promise of the fix engine).  The bad-input catalogue has more of
them as files (``non-utf8-layer-name.caffemodel``, ``nan-weights.caffemodel``,
``scratch-beyond-device-memory.graph``, ``pooling-kernel-1000x1000.graph``,
``duplicate-layer-names.prototxt``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from caffe2ncs.errors import Caffe2NcsError, UnsupportedNetworkError
from caffe2ncs.fixes.engine import fix_text
from caffe2ncs.limits import LimitError
from caffe2ncs.model import loads
from caffe2ncs.rules.runner import check_source

HEAD = 'name: "r"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'


def _problems(text: str) -> list[str]:
    return [p.message for p in loads(text, strict=False).problems]


def test_interp_on_a_two_axis_bottom():  # was: ValueError, too many values to unpack
    text = ('input: "data"\ninput_shape { dim: 2 dim: 3 }\n'
            'layer { name: "i" type: "Interp" bottom: "data" top: "i" }\n')
    assert any("Interp needs a 4-axis bottom (N, C, H, W), got 2x3" in m for m in _problems(text))
    check_source(text)


def test_interp_second_bottom_of_three_axes():  # was: IndexError
    text = (HEAD + 'input: "ref"\ninput_shape { dim: 1 dim: 3 dim: 8 }\n'
            'layer { name: "i" type: "Interp" bottom: "data" bottom: "ref" top: "i" }\n')
    assert any("Interp's second bottom needs a 4-axis bottom" in m for m in _problems(text))


def test_reorg_on_a_three_axis_bottom():  # was: ValueError
    text = ('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 }\n'
            'layer { name: "r" type: "Reorg" bottom: "data" top: "r" }\n')
    assert any("Reorg needs a 4-axis bottom" in m for m in _problems(text))


def test_convolution_without_spatial_axes():  # was: ValueError, min() of an empty sequence
    from caffe2ncs.model.params import expected_blob_shapes

    text = ('input: "data"\ninput_shape { dim: 1 dim: 3 }\n'
            'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
            '  convolution_param { num_output: 4 kernel_size: 1 } }\n')
    assert any("has no spatial axes after the channel axis" in m for m in _problems(text))
    net = loads(text, strict=False)
    # the weights' shapes (asked when a caffemodel is matched): unknown, no exception
    assert expected_blob_shapes(net.layers[0], [(1, 3)]) is None


def test_slice_rule_on_a_one_axis_bottom():  # was: IndexError in the NCS rule
    text = ('input: "data"\ninput_shape { dim: 6 }\n'
            'layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" }\n')
    report = check_source(text)
    assert any("splits evenly without slice_point" in d.message for d in report.diagnostics)


def test_identity_layer_without_bottom_is_not_lowered():  # was: IndexError in lowering
    from caffe2ncs.lowering.lower import lower_network

    net = loads(HEAD + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
                '  convolution_param { num_output: 4 kernel_size: 1 } }\n'
                'layer { name: "d" type: "Dropout" top: "d" }\n'
                'layer { name: "s" type: "Eltwise" bottom: "c" bottom: "d" top: "s" }\n',
                strict=False)
    with pytest.raises(Caffe2NcsError):
        lower_network(net, target="ncsdk2")


def test_duplicate_layer_names_get_distinct_constants():  # was: ValueError in the IR
    from caffe2ncs.lowering.lower import lower

    conv = ('layer {{ name: "conv" type: "Convolution" bottom: "{b}" top: "{t}"\n'
            '  convolution_param {{ num_output: 4 kernel_size: 1 }} }}\n')
    net = loads(HEAD + conv.format(b="data", t="c1") + conv.format(b="c1", t="c2"))
    for target in ("ncsdk2", "ncsdk1"):
        names = [c.name for c in lower(net, target=target).constants]
        assert len(names) == len(set(names))
        assert len([n for n in names if n.endswith("taps") or "taps#" in n]) == 2


def test_input_dim_fix_keeps_comments_inside_the_field():  # was: comments dropped
    text = ('name: "n"\ninput: "data"\ninput_dim:  # batch\n   # (one image)\n1\n'
            'input_dim: 3\ninput_dim: 8  # height\ninput_dim: 8\n'
            'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    result = fix_text(text)
    assert result.changed and "input_shape" in result.text
    for comment in ("# batch", "# (one image)", "# height"):
        assert comment in result.text
    assert not fix_text(result.text).changed


def test_renaming_a_name_written_as_adjacent_literals_keeps_the_comment():
    # was: comment dropped (fuzz_fix, 100 000 inputs, seed 1, found two): the
    # rename replaced the whole value '"" # note\n "Concat"', comment and all
    text = (HEAD + 'layer { name: "" # why this name\n  "Concat" type: "ReLU" bottom: "data" '
            'top: "relu" }\n')
    assert loads(text).layers[0].name == "Concat"
    result = fix_text(text)
    assert [a.code for a in result.applied] == ["NCS440"]
    assert 'layer { name: "relu" # why this name\n   type: "ReLU"' in result.text
    assert loads(result.text).layers[0].name == "relu"
    assert not fix_text(result.text).changed


def test_graph_writer_refuses_values_that_do_not_fit():  # was: struct.error
    from caffe2ncs.lowering.graphfile.binary import ByteWriter, GraphTargetError

    w = ByteWriter()
    w.u32(0, 0xFFFFFFFF)
    w.u16(0xFFFF)
    for bad in (-1, 1 << 32):
        with pytest.raises(GraphTargetError, match="does not fit an unsigned 32-bit field"):
            w.u32(bad)
    with pytest.raises(GraphTargetError):
        w.u16(1 << 16)
    with pytest.raises(GraphTargetError):
        w.patch_u32(0, 1 << 40)


def test_emulator_refuses_reading_a_huge_tensor():  # was: a 3.2 GB float32 copy
    from caffe2ncs.lowering.ir import Dims3, Location
    from caffe2ncs.lowering.lower import lower
    from caffe2ncs.runtime.emulator import Emulator

    net = loads(HEAD + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
                '  convolution_param { num_output: 64 kernel_size: 1 } }\n'
                'layer { name: "p" type: "Pooling" bottom: "c" top: "p"\n'
                '  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }\n')
    graph = lower(net, target="ncsdk2")
    stages = list(graph.stages)
    i = next(k for k, s in enumerate(stages) if s.input.location is Location.WORK)
    ref = stages[i].input
    # 1.5 M columns of 8x64 fp16 with the buffer's own strides: 200 MB of
    # scratch (within the stick's memory) but 3.2 GB as float32; refused when
    # the stage is prepared, before any run
    big = dataclasses.replace(ref, dims=Dims3(1_560_072, ref.dims.y, ref.dims.z))
    stages[i] = dataclasses.replace(stages[i], input=big)
    with pytest.raises(LimitError, match=r"input would need a 8x1560072x64 array \(1524 MiB\)"):
        Emulator(dataclasses.replace(graph, stages=tuple(stages)))


def test_emulator_refuses_an_activation_past_numpy_index_range():
    # was: ValueError, "Maximum allowed dimension exceeded" (a fully-connected
    # stage with a 1.9e9 x 1.9e9 x 8e8 input and an empty output: no bytes to
    # read, but a shape numpy cannot make)
    from caffe2ncs.lowering.ir import Dims3, Op
    from caffe2ncs.lowering.lower import lower
    from caffe2ncs.runtime.emulator import Emulator

    net = loads(HEAD + 'layer { name: "f" type: "InnerProduct" bottom: "data" top: "f"\n'
                '  inner_product_param { num_output: 4 } }\n')
    graph = lower(net, target="ncsdk2")
    stages = list(graph.stages)
    i = next(k for k, s in enumerate(stages) if s.op is Op.FULLY_CONNECTED)
    stages[i] = dataclasses.replace(
        stages[i], input=dataclasses.replace(stages[i].input, dims=Dims3(1929379840, 1869440873,
                                                                          845112425)),
        output=dataclasses.replace(stages[i].output, dims=Dims3(0, 0, 1)))
    with pytest.raises(LimitError, match=r"input would need a 1869440873x1929379840x845112425"):
        Emulator(dataclasses.replace(graph, stages=tuple(stages)))


def test_caffemodel_string_fields_must_be_utf8():  # was: bytes names -> TypeError in info
    from caffe2ncs.model.caffemodel import parse_caffemodel

    layer = b"\x0a\x04c\xffnv" + b"\x12\x04ReLU"  # name (invalid UTF-8), type
    data = b"\xa2\x06" + bytes([len(layer)]) + layer
    with pytest.raises(Caffe2NcsError, match="field 'name' is not valid UTF-8"):
        parse_caffemodel(data, "x.caffemodel")


def test_unsupported_is_still_a_caffe2ncs_error():
    assert issubclass(UnsupportedNetworkError, Caffe2NcsError)
    assert issubclass(LimitError, Caffe2NcsError)


def test_argmax_on_a_bottom_without_axes():  # was: IndexError
    text = ('input: "data"\ninput_shape { }\n'
            'layer { name: "a" type: "ArgMax" bottom: "data" top: "a" }\n')
    assert any("ArgMax without an axis needs a bottom with at least one axis" in m
               for m in _problems(text))
    check_source(text)


def test_split_fix_with_a_top_listed_twice():  # was: FixError, conflicting edits
    text = (HEAD + 'layer { name: "s" type: "Split" bottom: "data" top: "b0" top: "b0" }\n'
            'layer { name: "r" type: "ReLU" bottom: "b0" top: "r" }\n')
    result = fix_text(text)
    assert any(a.title.startswith("remove the Split") for a in result.applied)
    assert 'bottom: "data" top: "r"' in result.text
    assert not fix_text(result.text).changed


def test_depthwise_rule_on_a_bottom_without_channels():  # was: ZeroDivisionError in NCS201
    text = ('input: "data"\ninput_shape { dim: 1 dim: 0 dim: 8 dim: 8 }\n'
            'layer { name: "d" type: "DepthwiseConvolution" bottom: "data" top: "d"\n'
            '  convolution_param { num_output: 4 kernel_size: 3 } }\n')
    report = check_source(text)
    assert any(d.code == "NCS201" for d in report.diagnostics)
