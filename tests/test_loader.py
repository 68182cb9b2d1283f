"""``caffe2ncs.load``: the corpus, input forms, legacy spellings, phase
filtering, in-place layers, outputs, locating fields, immutability."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from caffe2ncs.errors import NetGraphError, PrototxtSyntaxError
from caffe2ncs.model import InputForm, InputSpec, Layer, LayerSpelling, Net, load, loads
from caffe2ncs.model.frozen import Frozen
from conftest import CORPUS, corpus_params, corpus_path


def lines_of(net: Net, node) -> tuple[int, int] | None:
    return net.position(node)


def text_at(net: Net, node) -> str:
    return net.source.text[node.start:node.end]


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

#: Problems the loader reports for corpus files (none of them fatal: every
#: corpus file loads with strict=True).  Caffe itself would refuse
#: yolov3_tiny_upsample: its 'layer21-route' Concat joins 24x24 and 26x26 maps
#: (the file needs its fork's padded 2x2/1 max-pooling; see SOURCES.md).
#: hed_deploy names five layers 'crop', which Caffe accepts.
CORPUS_PROBLEMS = {
    "hed_deploy": {"duplicate-layer-name"},
    "yolov3_tiny_upsample": {"shape"},
}

#: Fields BVLC Caffe's schema does not know (BVLC Caffe, and the NCSDK's,
#: would refuse these files; the forks they come from accept them).
CORPUS_UNKNOWN = {
    "densenet121": {"ceil_mode"},
    "enet_deploy_final": {"bn_param", "upsample_param"},
    "faster_rcnn_zf_test": {"roi_pooling_param", "scale_train"},
    "mobilenet_v2_yolov3": {"upsample_param"},
    "mobilenet_yolov2_deploy": {"yolo_detection_output_param"},
    "mobilenet_yolov3_lite_deploy": {"yolov3_detection_output_param"},
    "resnext50_32x4d": {"ceil_mode"},
    "shufflenet_v1_1x_g3": {"shuffle_channel_param"},
    "shufflenet_v2_1x": {"shuffle_channel_param"},
    "yolov2_darknet19_reorg": {"reorg_param", "yolo_detection_output_param"},
    "yolov2_voc_region": {"region_param"},
    "yolov3_tiny_upsample": {"upsample_param"},
}


def _sources_table() -> dict[str, str]:
    """file stem -> the 'input format' column of corpus/SOURCES.md."""
    sources = CORPUS / "SOURCES.md"
    if not sources.is_file():
        return {}
    rows = {}
    for line in sources.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 7 and cells[1].endswith(".prototxt"):
            rows[cells[1][:-len(".prototxt")]] = cells[6]
    return rows


SOURCES = _sources_table()


@pytest.mark.parametrize("path", corpus_params())
def test_every_corpus_network_loads(path):
    net = load(path)  # strict: raises on anything Caffe itself would refuse
    stem = path.stem
    assert net.path == str(path)
    assert net.layers and net.inputs
    assert isinstance(net.layers, tuple) and isinstance(net.inputs, tuple)
    assert {p.code for p in net.problems} == CORPUS_PROBLEMS.get(stem, set())
    assert not any(p.fatal for p in net.problems)
    assert {u.node.name for u in net.unknown} == CORPUS_UNKNOWN.get(stem, set())
    # every input has a known shape, and so do the outputs of all but a few nets
    assert all(spec.shape for spec in net.inputs)
    assert net.outputs
    # each layer's node is its block in the file, and it is located there
    for layer in net.layers:
        assert layer.node is not None
        assert net.source.text[layer.node.start:].startswith(("layer", "layers"))
        name_node = layer.locate("name") if layer.spelling is not LayerSpelling.V0 else None
        if name_node is not None:
            assert layer.node.start < name_node.start < layer.node.end
    # the format SOURCES.md gives for the file
    described = SOURCES.get(stem)
    if described:
        form = described.split(" + ")[0]
        assert {str(spec.form) for spec in net.inputs} == {form}
        expected = LayerSpelling.V1 if "V1 layers" in described else LayerSpelling.LAYER
        assert net.spelling is expected
        assert {layer.spelling for layer in net.layers} == {expected}


def test_sources_table_covers_the_corpus():
    files = {p.stem for p in CORPUS.glob("*.prototxt")} if CORPUS.is_dir() else set()
    if not files or not SOURCES:
        pytest.skip(f"corpus or its SOURCES.md not found at {CORPUS}")
    assert files == set(SOURCES)


def test_corpus_lenet_in_detail():
    net = load(corpus_path("lenet.prototxt"))
    (data,) = net.inputs
    assert (data.name, data.shape, data.form, data.layer_name, data.layer_position) == (
        "data", (64, 1, 28, 28), InputForm.INPUT_PARAM, "data", 0)
    assert net.position(data.node) == (5, 3)  # top: "data"
    assert net.position(data.shape_node) == (6, 17)  # shape: { ... }
    assert net.position(data.layer_node) == (2, 1)
    assert [layer.name for layer in net.layers] == [
        "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "prob"]
    assert [layer.position for layer in net.layers] == list(range(1, 9))
    assert [layer.index for layer in net.layers] == list(range(8))
    assert net.outputs == ("prob",)
    assert dict(net.blob_shapes) == {
        "data": (64, 1, 28, 28), "conv1": (64, 20, 24, 24), "pool1": (64, 20, 12, 12),
        "conv2": (64, 50, 8, 8), "pool2": (64, 50, 4, 4), "ip1": (64, 500),
        "ip2": (64, 10), "prob": (64, 10)}
    relu = net.layer("relu1")
    assert relu.in_place and not net.layer("ip1").in_place
    assert net.producers("ip1") == [net.layer("ip1"), relu]
    assert net.consumers("ip1") == [relu, net.layer("ip2")]
    assert net.name == "LeNet" and net.net_param.name == "LeNet"


def test_corpus_two_inputs_single_quotes_and_tabs():
    net = load(corpus_path("faster_rcnn_zf_test.prototxt"))
    assert [(i.name, i.shape, i.form) for i in net.inputs] == [
        ("data", (1, 3, 224, 224), InputForm.INPUT_SHAPE),
        ("im_info", (1, 3), InputForm.INPUT_SHAPE)]
    assert [net.position(i.node) for i in net.inputs] == [(3, 1), (11, 1)]
    assert [net.position(i.shape_node) for i in net.inputs] == [(4, 1), (12, 1)]
    # the Python proposal layer's output shape is unknown, and so is what follows
    assert net.layer_shapes[net.layer("proposal").index].outputs == (None,)
    assert net.blob_shapes["cls_prob"] is None


def test_corpus_crlf_file_positions():
    path = corpus_path("shufflenet_v1_1x_g3.prototxt")
    raw = path.read_bytes()
    assert b"\r\n" in raw
    net = load(path)
    assert net.source.newline == "\r\n"
    for layer in net.layers[:20]:
        line, col = net.position(layer.locate("name"))
        assert net.source.line_text(line)[col - 1:].startswith("name:")
        assert not net.source.line_text(line).endswith("\r")


# ---------------------------------------------------------------------------
# Input forms
# ---------------------------------------------------------------------------

BODY = 'layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }\n'


def test_input_dim():
    net = loads('input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 9\n' + BODY,
                path="n.prototxt")
    (spec,) = net.inputs
    assert (spec.name, spec.shape, spec.form) == ("data", (1, 3, 8, 9), InputForm.INPUT_DIM)
    assert net.position(spec.node) == (1, 1)
    assert net.position(spec.shape_node) == (2, 1)
    assert spec.layer_node is None and spec.layer_position is None
    assert net.input_form is InputForm.INPUT_DIM
    assert net.blob_shapes["out"] == (1, 3, 8, 9)


def test_input_dim_for_two_inputs():
    net = loads('input: "a"\ninput: "b"\n' + "".join(f"input_dim: {d}\n" for d in (1, 2, 3, 4, 5, 6, 7, 8)))
    assert [(i.name, i.shape) for i in net.inputs] == [("a", (1, 2, 3, 4)), ("b", (5, 6, 7, 8))]
    assert [net.position(i.shape_node) for i in net.inputs] == [(3, 1), (7, 1)]


def test_input_shape():
    net = loads('input: "data"\ninput_shape {\n  dim: 1\n  dim: 3\n}\n' + BODY)
    (spec,) = net.inputs
    assert (spec.shape, spec.form) == ((1, 3), InputForm.INPUT_SHAPE)
    assert net.position(spec.shape_node) == (2, 1)
    assert text_at(net, spec.shape_node).startswith("input_shape {")


def test_input_param_layer_with_one_shape_for_two_tops():
    text = ('layer {\n  name: "in"\n  type: "Input"\n  top: "a"\n  top: "b"\n'
            '  input_param: { shape: { dim: 2 dim: 5 } }\n}\n'
            'layer { name: "s" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }\n')
    net = loads(text)
    assert [(i.name, i.shape, i.form, i.layer_name, i.layer_position) for i in net.inputs] == [
        ("a", (2, 5), InputForm.INPUT_PARAM, "in", 0), ("b", (2, 5), InputForm.INPUT_PARAM, "in", 0)]
    assert [net.position(i.node) for i in net.inputs] == [(4, 3), (5, 3)]
    assert {net.position(i.shape_node) for i in net.inputs} == {(6, 18)}
    assert [layer.name for layer in net.layers] == ["s"]  # the Input layer is not a layer
    assert net.layers[0].position == 1
    assert net.blob_shapes["s"] == (2, 5)


def test_input_without_dimensions():
    net = loads('input: "data"\n' + BODY)
    (spec,) = net.inputs
    assert (spec.shape, spec.form) == (None, InputForm.NO_SHAPE)
    assert net.blob_shapes["out"] is None


@pytest.mark.parametrize("text, message, line", [
    ('input: "a"\ninput_dim: 1\ninput_dim: 2\n', "2 input_dim value(s) for 1 input(s); Caffe needs "
     "exactly 4 per input (N, C, H, W)", 2),
    ('input: "a"\ninput: "b"\ninput_shape { dim: 1 }\n',
     "2 input(s) but 1 input_shape block(s); give one per input", 3),
    ('input: "a"\ninput_shape { dim: 1 }\ninput_dim: 1\ninput_dim: 1\ninput_dim: 1\ninput_dim: 1\n',
     "give either input_shape or the deprecated input_dim, not both", 3),
    ('input_dim: 1\n', "input dimensions are given but no 'input' name", 1),
    ('layer { name: "in" type: "Input" top: "a" top: "b" top: "c"\n'
     '  input_param { shape { dim: 1 } shape { dim: 2 } } }\n',
     "Input layer 'in' has 3 top(s) but 2 shape(s); give one shape, or one per top", 2),
    ('layer { name: "in" type: "Input" input_param { shape { dim: 1 } } }\n',
     "Input layer 'in' has no top", 1),
])
def test_input_spec_problems(text, message, line):
    net = loads(text, path="n.prototxt", strict=False)
    (problem,) = [p for p in net.problems if p.code == "input-spec"]
    assert problem.message == message and problem.fatal
    assert net.position(problem.node)[0] == line
    with pytest.raises(NetGraphError) as info:
        loads(text, path="n.prototxt")
    assert (info.value.line, info.value.message) == (line, message)


# ---------------------------------------------------------------------------
# V1 and V0 spellings
# ---------------------------------------------------------------------------

V1_NET = '''name: "v1"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 10
input_dim: 10
layers {
  name: "conv"
  type: CONVOLUTION
  bottom: "data"
  top: "conv"
  blobs_lr: 1
  blobs_lr: 2
  weight_decay: 1
  weight_decay: 0
  convolution_param { num_output: 4 kernel_size: 3 }
}
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "fc" type: INNER_PRODUCT bottom: "conv" top: "fc" inner_product_param { num_output: 2 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "fc" bottom: "label" top: "loss" include { phase: TRAIN } }
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }
'''


def test_v1_layers_upgrade():
    net = loads(V1_NET, path="v1.prototxt")
    assert net.spelling is LayerSpelling.V1
    assert [(layer.name, layer.type, layer.type_spelling) for layer in net.layers] == [
        ("conv", "Convolution", "CONVOLUTION"), ("relu", "ReLU", "RELU"),
        ("fc", "InnerProduct", "INNER_PRODUCT"), ("prob", "Softmax", "SOFTMAX")]
    conv = net.layer("conv")
    assert [(p.lr_mult, p.decay_mult) for p in conv.param.param] == [(1, 1), (2, 0)]
    assert conv.param.convolution_param.num_output == 4
    assert [excluded.name for excluded in net.excluded] == ["loss"]
    assert net.excluded[0].type == "SoftmaxWithLoss" and net.excluded[0].index == -1
    assert [layer.position for layer in net.layers] == [0, 1, 2, 4]
    assert net.blob_shapes["prob"] == (1, 2)
    assert net.problems == ()


def test_v1_locate():
    net = loads(V1_NET, path="v1.prototxt")
    conv = net.layer("conv")
    assert net.position(conv.node) == (7, 1)
    assert net.position(conv.locate("type")) == (9, 3)
    assert text_at(net, conv.locate("type")) == "type: CONVOLUTION"
    assert net.position(conv.locate("convolution_param", "kernel_size", 0)) == (16, 37)
    assert net.position(conv.locate("bottom", 0)) == (10, 3)
    assert conv.locate("param", 0, "lr_mult") is None  # V1 spells it blobs_lr
    assert conv.locate("convolution_param", "pad") is None  # a default, not written
    assert conv.locate() is conv.node


V0_NET = '''name: "v0net"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 32
input_dim: 32
layers {
  layer { name: "pad1" type: "padding" pad: 2 }
  bottom: "data"
  top: "pad1"
}
layers {
  layer { name: "conv1" type: "conv" num_output: 8 kernelsize: 5 stride: 1 biasterm: false blobs_lr: 1 }
  bottom: "pad1"
  top: "conv1"
}
layers {
  layer { name: "relu1" type: "relu" }
  bottom: "conv1"
  top: "conv1"
}
layers {
  layer { name: "pool1" type: "pool" pool: MAX kernelsize: 3 stride: 2 }
  bottom: "conv1"
  top: "pool1"
}
layers {
  layer { name: "norm1" type: "lrn" local_size: 5 alpha: 0.0001 beta: 0.75 }
  bottom: "pool1"
  top: "norm1"
}
layers {
  layer { name: "fc" type: "innerproduct" num_output: 10 }
  bottom: "norm1"
  top: "fc"
}
layers {
  layer { name: "drop" type: "dropout" dropout_ratio: 0.5 }
  bottom: "fc"
  top: "fc"
}
layers {
  layer { name: "prob" type: "softmax" }
  bottom: "fc"
  top: "prob"
}
'''


def test_v0_layers_upgrade_and_padding_fold():
    net = loads(V0_NET, path="v0.prototxt")
    assert net.problems == ()
    assert net.spelling is LayerSpelling.V0
    assert [(layer.name, layer.type, layer.type_spelling) for layer in net.layers] == [
        ("conv1", "Convolution", "conv"), ("relu1", "ReLU", "relu"), ("pool1", "Pooling", "pool"),
        ("norm1", "LRN", "lrn"), ("fc", "InnerProduct", "innerproduct"),
        ("drop", "Dropout", "dropout"), ("prob", "Softmax", "softmax")]
    conv = net.layer("conv1")
    cp = conv.param.convolution_param
    # the padding layer is folded into conv1: its pad, and its bottom
    assert (tuple(cp.pad), tuple(cp.kernel_size), tuple(cp.stride), cp.num_output, cp.bias_term) == (
        (2,), (5,), (1,), 8, False)
    assert conv.bottoms == ("data",)
    assert [p.lr_mult for p in conv.param.param] == [1]
    pool = net.layer("pool1").param.pooling_param
    assert (pool.pool, pool.kernel_size, pool.stride) == (0, 3, 2)
    lrn = net.layer("norm1").param.lrn_param
    assert (lrn.local_size, lrn.alpha, lrn.beta) == (5, pytest.approx(1e-4), 0.75)
    assert net.layer("drop").param.dropout_param.dropout_ratio == 0.5
    # positions count the file's blocks, the folded padding layer included
    assert [layer.position for layer in net.layers] == [1, 2, 3, 4, 5, 6, 7]
    assert net.blob_shapes["conv1"] == (1, 8, 32, 32)  # 32 + 2*2 - 5 + 1
    assert net.blob_shapes["pool1"] == (1, 8, 16, 16)
    assert net.blob_shapes["prob"] == (1, 10)
    assert "pad1" not in net.blob_shapes


def test_v0_locate():
    net = loads(V0_NET, path="v0.prototxt")
    conv = net.layer("conv1")
    cases = {
        ("name",): ((13, 11), 'name: "conv1"'),
        ("type",): ((13, 25), 'type: "conv"'),
        ("convolution_param", "num_output"): ((13, 38), "num_output: 8"),
        ("convolution_param", "kernel_size", 0): ((13, 52), "kernelsize: 5"),
        ("convolution_param", "stride", 0): ((13, 66), "stride: 1"),
        ("convolution_param", "bias_term"): ((13, 76), "biasterm: false"),
        ("bottom", 0): ((14, 3), 'bottom: "pad1"'),
        ("top", 0): ((15, 3), 'top: "conv1"'),
        # the pad comes from the folded padding layer, and is found there
        ("convolution_param", "pad"): ((8, 40), "pad: 2"),
        ("convolution_param", "pad", 0): ((8, 40), "pad: 2"),
    }
    for path, (position, text) in cases.items():
        node = conv.locate(*path)
        assert (net.position(node), text_at(net, node)) == (position, text), path
    assert net.position(conv.v0_padding_node) == (7, 1)
    assert conv.locate("convolution_param", "group") is None
    assert conv.locate("param", 0, "lr_mult") is None
    pool = net.layer("pool1")
    assert text_at(net, pool.locate("pooling_param", "pool")) == "pool: MAX"
    assert pool.locate("pooling_param", "pad") is None
    assert pool.v0_padding_node is None
    lrn = net.layer("norm1")
    assert text_at(net, lrn.locate("lrn_param", "local_size")) == "local_size: 5"


@pytest.mark.parametrize("consumer, message", [
    ('layer { name: "r" type: "relu" }\n  bottom: "pad1"\n  top: "r"',
     "layer 'r': V0 padding layer output 'pad1' feeds this ReLU layer; Caffe only folds padding "
     "into a convolution or pooling layer"),
    ('layer { name: "c" type: "concat" }\n  bottom: "pad1"\n  bottom: "data"\n  top: "c"',
     "layer 'c': V0 padding layer output 'pad1' feeds this Concat layer; Caffe only folds padding "
     "into a convolution or pooling layer"),
])
def test_v0_padding_into_a_layer_caffe_refuses(consumer, message):
    text = ('input: "data"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 4\ninput_dim: 4\n'
            'layers {\n  layer { name: "pad1" type: "padding" pad: 1 }\n  bottom: "data"\n  top: "pad1"\n}\n'
            f'layers {{\n  {consumer}\n}}\n')
    net = loads(text, path="v0.prototxt", strict=False)
    (problem,) = [p for p in net.problems if p.code == "v0-upgrade"]
    assert (problem.message, problem.fatal, net.position(problem.node)) == (message, True, (11, 1))
    with pytest.raises(NetGraphError, match=re.escape(message)):
        loads(text, path="v0.prototxt")


def test_v0_unknown_type_and_misplaced_field_are_reported_not_fatal():
    text = ('input: "data"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 4\ninput_dim: 4\n'
            'layers { layer { name: "x" type: "mystery" } bottom: "data" top: "x" }\n'
            'layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "data" top: "r" }\n')
    net = loads(text)
    assert [(p.code, p.message, p.fatal) for p in net.problems] == [
        ("v0-upgrade", "layer 'x': unknown V0 layer type 'mystery'", False),
        ("v0-upgrade", "layer 'r': V0 field 'num_output' does not apply to a 'relu' layer", False)]
    assert net.layer("x").type == "mystery"


def test_mixing_layer_and_layers_is_refused():
    text = ('input: "data"\ninput_shape { dim: 1 }\n'
            'layer { name: "a" type: "ReLU" bottom: "data" top: "a" }\n'
            'layers { name: "b" type: RELU bottom: "a" top: "b" }\n')
    net = loads(text, strict=False)
    assert [p.code for p in net.problems] == ["mixed-layer-spellings"]
    assert net.position(net.problems[0].node) == (4, 1)
    assert [layer.name for layer in net.layers] == ["a", "b"]  # in file order
    with pytest.raises(NetGraphError, match="mixes 'layer' and the older 'layers'"):
        loads(text)


# ---------------------------------------------------------------------------
# TEST-phase filtering
# ---------------------------------------------------------------------------


def test_phase_include_exclude_stage_and_level():
    text = '''input: "data"
input_shape { dim: 1 dim: 2 }
state { level: 2 stage: "deploy" }
layer { name: "train_only" type: "ReLU" bottom: "data" top: "t" include { phase: TRAIN } }
layer { name: "test_only" type: "ReLU" bottom: "data" top: "a" include { phase: TEST } }
layer { name: "not_test" type: "ReLU" bottom: "data" top: "b" exclude { phase: TEST } }
layer { name: "not_train" type: "ReLU" bottom: "data" top: "c" exclude { phase: TRAIN } }
layer { name: "deploy_stage" type: "ReLU" bottom: "data" top: "d" include { stage: "deploy" } }
layer { name: "other_stage" type: "ReLU" bottom: "data" top: "e" include { stage: "other" } }
layer { name: "not_deploy" type: "ReLU" bottom: "data" top: "f" include { not_stage: "deploy" } }
layer { name: "level_ok" type: "ReLU" bottom: "data" top: "g" include { min_level: 1 max_level: 2 } }
layer { name: "level_low" type: "ReLU" bottom: "data" top: "h" include { min_level: 3 } }
layer { name: "either" type: "ReLU" bottom: "data" top: "i" include { phase: TRAIN } include { stage: "deploy" } }
layer { name: "vetoed" type: "ReLU" bottom: "data" top: "j" exclude { phase: TRAIN } exclude { min_level: 2 } }
'''
    net = loads(text, path="phase.prototxt")
    assert [layer.name for layer in net.layers] == [
        "test_only", "not_train", "deploy_stage", "level_ok", "either"]
    assert [layer.name for layer in net.excluded] == [
        "train_only", "not_test", "other_stage", "not_deploy", "level_low", "vetoed"]
    assert all(layer.index == -1 for layer in net.excluded)
    assert [layer.position for layer in net.layers] == [1, 3, 4, 7, 9]
    assert "t" not in net.blob_shapes
    assert net.net_param.state.level == 2


def test_excluded_layers_do_not_count_as_producers():
    text = ('input: "data"\ninput_shape { dim: 1 }\n'
            'layer { name: "a" type: "ReLU" bottom: "data" top: "x" include { phase: TRAIN } }\n'
            'layer { name: "b" type: "ReLU" bottom: "x" top: "y" }\n')
    net = loads(text, path="n.prototxt", strict=False)
    (problem,) = net.problems
    assert problem.code == "missing-bottom" and net.position(problem.node) == (4, 32)


# ---------------------------------------------------------------------------
# In-place layers and outputs
# ---------------------------------------------------------------------------


def test_in_place_chain_and_outputs_in_order():
    text = '''input: "data"
input_shape { dim: 1 dim: 4 dim: 6 dim: 6 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "side" type: "Pooling" bottom: "data" top: "side" pooling_param { kernel_size: 2 stride: 2 } }
layer { name: "flat" type: "Flatten" bottom: "conv" top: "flat" }
layer { name: "split" type: "Slice" bottom: "flat" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 10 } }
layer { name: "drop" type: "Dropout" bottom: "s2" top: "s2" }
'''
    net = loads(text)
    assert [layer.in_place for layer in net.layers] == [False, True, True, False, False, False, True]
    assert net.outputs == ("side", "s1", "s2")
    assert net.blob_shapes["conv"] == (1, 2, 4, 4)
    assert net.blob_shapes["s1"] == (1, 10) and net.blob_shapes["s2"] == (1, 22)
    assert [tuple(s.inputs) for s in net.layer_shapes[:3]] == [
        ((1, 4, 6, 6),), ((1, 2, 4, 4),), ((1, 2, 4, 4),)]
    assert net.shapes_of(net.layer("split")).outputs == ((1, 10), (1, 22))


def test_unconsumed_input_is_an_output():
    net = loads('input: "a"\ninput_shape { dim: 1 }\ninput: "b"\ninput_shape { dim: 2 }\n'
                'layer { name: "r" type: "ReLU" bottom: "a" top: "r" }\n')
    assert net.outputs == ("b", "r")


def test_empty_network_loads():
    net = loads("", path="empty.prototxt")
    assert (net.layers, net.inputs, net.outputs, net.problems, net.name) == ((), (), (), (), "")
    assert dict(net.blob_shapes) == {}
    assert net.input_form is None
    assert loads("# only a comment\n").layers == ()


# ---------------------------------------------------------------------------
# Locating fields (V2)
# ---------------------------------------------------------------------------


def test_locate_v2_fields():
    text = ('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
            'layer {\n  name: "c"\n  type: "Convolution"\n  bottom: "data"\n  top: "c"\n'
            '  param { lr_mult: 1 }\n  param { lr_mult: 2 }\n'
            '  convolution_param {\n    num_output: 4\n    kernel_size: 3\n    kernel_size: 1\n  }\n}\n')
    net = loads(text, path="n.prototxt")
    layer = net.layer("c")
    assert net.position(layer.locate("name")) == (4, 3)
    assert net.position(layer.locate("convolution_param")) == (10, 3)
    assert net.position(layer.locate("convolution_param", "kernel_size", 1)) == (13, 5)
    assert net.position(layer.locate("convolution_param", "kernel_size")) == (13, 5)  # last
    assert net.position(layer.locate("param", 1, "lr_mult")) == (9, 11)
    assert layer.locate("param", 2, "lr_mult") is None
    assert layer.locate("convolution_param", "stride") is None
    assert layer.locate("pooling_param", "pad") is None
    node = layer.locate("convolution_param", "num_output")
    assert text_at(net, node) == "num_output: 4"
    assert net.source.text[node.value_span.start:node.value_span.end] == "4"
    assert net.position(node.name_span) == (11, 5)
    assert net.position(node.vstart) == (11, 17)


# ---------------------------------------------------------------------------
# Immutability
# ---------------------------------------------------------------------------


def test_a_loaded_network_is_read_only():
    net = loads('input: "data"\ninput_shape { dim: 1 dim: 3 }\n'
                'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
                '  inner_product_param { num_output: 2 } param { lr_mult: 1 } }\n')
    layer = net.layers[0]
    assert isinstance(net.layers, tuple) and isinstance(net.inputs, tuple)
    assert isinstance(net.problems, tuple) and isinstance(net.outputs, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.layers = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.inputs[0].shape = (2,)
    with pytest.raises(TypeError):
        net.blob_shapes["data"] = (9,)
    with pytest.raises(TypeError):
        net.weights["ip"] = ()
    param = layer.param
    assert isinstance(param, Frozen)
    with pytest.raises(AttributeError, match="read-only"):
        param.name = "x"
    with pytest.raises(AttributeError, match="read-only"):
        param.inner_product_param.num_output = 3
    with pytest.raises(AttributeError, match="read-only"):
        del param.inner_product_param.num_output
    assert param.bottom == ("data",) and isinstance(param.param, tuple)
    with pytest.raises(AttributeError, match="read-only"):
        param.param[0].lr_mult = 5
    for _, value in param.ListFields():
        if isinstance(value, Frozen):
            with pytest.raises(AttributeError, match="read-only"):
                value.num_output = 7
    assert layer.param.inner_product_param.num_output == 2
    # mutable() is an independent copy
    copy = param.mutable()
    copy.inner_product_param.num_output = 9
    assert layer.param.inner_product_param.num_output == 2
    assert param == layer.param and param != copy
    with pytest.raises(AttributeError, match="has no field 'nope'"):
        param.nope


@pytest.mark.parametrize("path", corpus_params())
def test_layer_messages_are_built_on_first_read_and_match_protobufs_parser(path):
    # Each layer's LayerParameter is built from the schema's fields when its
    # param is first read; what it reads must be what protobuf's own text
    # parser makes of the layer, and the shapes must not depend on whether
    # the messages were built.
    from google.protobuf import text_format

    from caffe2ncs._proto import caffe_pb2 as pb
    from caffe2ncs.model.frozen import unbuilt_fields, unwrap
    from caffe2ncs.model.shapes import analyse

    net = load(path, strict=False)
    if net.unknown or net.spelling is not LayerSpelling.LAYER:
        pytest.skip("protobuf's parser refuses unknown fields; V0/V1 layers are upgraded")
    theirs = text_format.Parse(path.read_text(errors="surrogateescape"), pb.NetParameter())
    before = analyse(net.inputs, net.layers)
    unbuilt = [layer for layer in net.layers if unbuilt_fields(layer.param) is not None]
    if path.stem == "resnet152":  # BatchNorm, Scale, ReLU: the shapes never read them
        assert len(unbuilt) > 400
    for layer in net.layers + net.excluded:
        assert layer.param == theirs.layer[layer.position], layer.name
        assert unbuilt_fields(layer.param) is None  # built by the comparison
        assert unwrap(layer.param) is unwrap(layer.param)  # once
    after = analyse(net.inputs, net.layers)
    assert [s.outputs for s in after.layer_shapes] == [s.outputs for s in before.layer_shapes]
    assert [p.code for p in after.problems] == [p.code for p in before.problems]


def test_weights_are_read_only(tmp_path):
    from caffe2ncs.model.weights import save_caffemodel

    net = loads('input: "data"\ninput_shape { dim: 1 dim: 3 }\n'
                'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
                '  inner_product_param { num_output: 2 } }\n', path=str(tmp_path / "n.prototxt"))
    (tmp_path / "n.prototxt").write_text(net.source.text)
    save_caffemodel(net, tmp_path / "n.caffemodel", seed=1)
    loaded = load(tmp_path / "n.prototxt", tmp_path / "n.caffemodel")
    weights, bias = loaded.weights["ip"]
    assert weights.shape == (2, 3) and bias.shape == (2,)
    with pytest.raises(ValueError, match="read-only"):
        weights[0, 0] = 1.0
    with pytest.raises(ValueError):
        weights.flags.writeable = True


def test_public_names():
    import caffe2ncs
    from caffe2ncs import model

    assert caffe2ncs.load is load and caffe2ncs.loads is loads
    assert caffe2ncs.Net is Net and caffe2ncs.Layer is Layer
    for name in ("InputForm", "InputSpec", "Layer", "LayerShapes", "Net", "Problem", "load", "loads"):
        assert hasattr(model, name)
    assert InputSpec("x", (1,), InputForm.INPUT_SHAPE).node is None


# ---------------------------------------------------------------------------
# Strictness and odd inputs
# ---------------------------------------------------------------------------


def test_strict_raises_the_first_fatal_problem_with_its_position():
    text = ('input: "data"\ninput_shape { dim: 1 }\n'
            'layer { name: "a" type: "ReLU" bottom: "nope" top: "a" }\n'
            'layer { name: "b" type: "ReLU" bottom: "a" top: "a2" }\n'
            'layer { name: "c" type: "ReLU" bottom: "a" top: "a2" }\n')
    lenient = loads(text, path="g.prototxt", strict=False)
    assert [p.code for p in lenient.problems] == ["missing-bottom", "duplicate-top"]
    assert [lenient.position(p.node) for p in lenient.problems] == [(3, 32), (5, 44)]
    assert [p.layer for p in lenient.problems] == ["a", "c"]
    with pytest.raises(NetGraphError) as info:
        loads(text, path="g.prototxt")
    err = info.value
    assert (err.path, err.line, err.column) == ("g.prototxt", 3, 32)
    assert err.message == "layer 'a' reads blob 'nope', which no input or layer produces"


def test_binary_given_as_prototxt_is_refused():
    with pytest.raises(PrototxtSyntaxError, match="this is a binary file, not a prototxt") as info:
        loads("\x08\x01\x12\x00" + "\x00" * 20, path="x.prototxt")
    assert (info.value.line, info.value.column) == (1, 1)


def test_duplicate_layer_names_are_reported_not_fatal():
    text = ('input: "data"\ninput_shape { dim: 1 }\n'
            'layer { name: "r" type: "ReLU" bottom: "data" top: "a" }\n'
            'layer { name: "r" type: "ReLU" bottom: "a" top: "b" }\n')
    net = loads(text)
    (problem,) = net.problems
    assert (problem.code, problem.fatal, net.position(problem.node)) == (
        "duplicate-layer-name", False, (4, 9))
    assert net.layer("r").index == 1  # the last one


def test_net_param_holds_the_rest_of_the_net_parameter():
    net = loads('name: "n"\nforce_backward: true\ninput: "data"\ninput_shape { dim: 1 }\n'
                'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    head = net.net_param
    assert head.name == "n" and head.force_backward is True
    assert head.layer == () and head.input == () and head.input_shape == ()


def test_position_accepts_nodes_spans_and_offsets():
    net = loads('name: "n"\ninput: "data"\n')
    node = net.inputs[0].node
    assert net.position(node) == net.position(node.span) == net.position(node.start) == (2, 1)
    assert net.position(None) is None


def test_repr():
    net = loads('input: "d"\ninput_shape { dim: 1 }\nlayer { name: "r" type: "ReLU" bottom: "d" top: "r" }',
                path="n.prototxt")
    assert repr(net) == "<Net '': 1 input(s), 1 layers from n.prototxt>"
    assert repr(net.layers[0]) == "Layer('r', ReLU, ['d'] -> ['r'])"


def test_synthetic_weights_are_seeded_read_only_float32():
    # A sanity check of the synthetic-weights helper the other tests rely on.
    from caffe2ncs.model.weights import synthesize

    net = loads('input: "d"\ninput_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n'
                'layer { name: "c" type: "Convolution" bottom: "d" top: "c" '
                'convolution_param { num_output: 3 kernel_size: 3 } }\n'
                'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }\n')
    weights = synthesize(net, seed=5)
    assert [a.shape for a in weights["c"]] == [(3, 2, 3, 3), (3,)]
    assert [a.shape for a in weights["bn"]] == [(3,), (3,), (1,)]
    assert all(a.dtype == np.float32 and not a.flags.writeable for b in weights.values() for a in b)
    again = synthesize(net, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(weights["c"], again["c"]))
    zeros = synthesize(net)
    assert not zeros["c"][0].any()


def test_file_with_bom_crlf_and_no_final_newline(tmp_path):
    path = tmp_path / "bom.prototxt"
    path.write_bytes(b'\xef\xbb\xbfname: "b"\r\ninput: "data"\r\ninput_shape { dim: 1 dim: 2 }\r\n'
                     b'layer {\r\n\tname: "r"\r\n\ttype: "ReLU"\r\n\tbottom: "data"\r\n\ttop: "r"\r\n}')
    net = load(path)
    assert net.name == "b"
    assert net.position(net.inputs[0].node) == (2, 1)  # the BOM takes no column
    assert net.position(net.layers[0].locate("type")) == (6, 2)
    assert net.source.line_text(6) == '\ttype: "ReLU"'
    assert net.blob_shapes["r"] == (1, 2)
