"""``caffe2ncs info``, run as a subprocess: text and JSON output."""

from __future__ import annotations

import json

import jsonschema
import pytest

from caffe2ncs.model import load
from caffe2ncs.model.weights import save_caffemodel
from conftest import corpus_path, run_cli

SHAPE = {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "integer", "minimum": 0}}]}
LINE = {"oneOf": [{"type": "null"}, {"type": "integer", "minimum": 1}]}

#: The documented interface of `info --json` (more keys may be added).
SCHEMA = {
    "type": "object",
    "required": ["file", "weights", "name", "format", "inputs", "input_forms", "blobs", "layers",
                 "layer_counts", "outputs", "parameters", "parameters_known", "fp16_weight_bytes",
                 "problems"],
    "properties": {
        "file": {"type": "string"},
        "weights": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "format": {"enum": ["layer", "layers", "v0"]},
        "inputs": {"type": "object", "additionalProperties": SHAPE},
        "input_forms": {"type": "object", "additionalProperties": {
            "enum": ["input_shape", "input_dim", "input_param", "no_shape", "binary"]}},
        "blobs": {"type": "object", "additionalProperties": SHAPE},
        "layers": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "type", "bottoms", "tops", "output_shapes", "parameters", "line"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string"},
                "bottoms": {"type": "array", "items": {"type": "string"}},
                "tops": {"type": "array", "items": {"type": "string"}},
                "output_shapes": {"type": "array", "items": SHAPE},
                "parameters": {"oneOf": [{"type": "null"}, {"type": "integer", "minimum": 0}]},
                "line": LINE,
            },
        }},
        "layer_counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        "outputs": {"type": "array", "items": {"type": "string"}},
        "parameters": {"type": "integer", "minimum": 0},
        "parameters_known": {"type": "boolean"},
        "fp16_weight_bytes": {"type": "integer", "minimum": 0},
        "problems": {"type": "array", "items": {
            "type": "object", "required": ["code", "message", "layer", "line", "fatal"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "layer": {"type": ["string", "null"]}, "line": LINE,
                           "fatal": {"type": "boolean"}}}},
    },
}


def info_json(*args) -> dict:
    result = run_cli("info", "--json", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    return doc


def _as_list(shape):
    return None if shape is None else list(shape)


@pytest.mark.parametrize("name", [
    "lenet.prototxt", "bvlc_googlenet_v1layers_2014.prototxt", "ssd_vgg16_300_voc0712.prototxt",
    "faster_rcnn_zf_test.prototxt", "hed_deploy.prototxt", "resnet50.prototxt",
    "shufflenet_v2_1x.prototxt",
])
def test_json_matches_the_loaded_network(name):
    path = corpus_path(name)
    doc = info_json(path)
    net = load(path)
    assert doc["file"] == str(path) and doc["weights"] is None
    assert doc["format"] == str(net.spelling)
    assert doc["inputs"] == {i.name: _as_list(i.shape) for i in net.inputs}
    assert doc["input_forms"] == {i.name: str(i.form) for i in net.inputs}
    assert doc["blobs"] == {b: _as_list(s) for b, s in net.blob_shapes.items()}
    assert [(d["name"], d["type"], d["bottoms"], d["tops"]) for d in doc["layers"]] == [
        (layer.name, layer.type, list(layer.bottoms), list(layer.tops)) for layer in net.layers]
    assert [d["output_shapes"] for d in doc["layers"]] == [
        [_as_list(s) for s in shapes.outputs] for shapes in net.layer_shapes]
    assert [d["line"] for d in doc["layers"]] == [net.position(layer.node)[0] for layer in net.layers]
    assert doc["outputs"] == list(net.outputs)
    assert sum(doc["layer_counts"].values()) == len(net.layers)
    known = [d["parameters"] for d in doc["layers"] if d["parameters"] is not None]
    assert doc["parameters"] == sum(known)
    assert doc["parameters_known"] == (len(known) == len(doc["layers"]))
    assert doc["fp16_weight_bytes"] == 2 * doc["parameters"]
    assert [(p["code"], p["layer"], p["fatal"]) for p in doc["problems"]] == [
        (p.code, p.layer, p.fatal) for p in net.problems]


def test_json_details_for_lenet():
    doc = info_json(corpus_path("lenet.prototxt"))
    assert doc["name"] == "LeNet"
    assert doc["inputs"] == {"data": [64, 1, 28, 28]}
    assert doc["input_forms"] == {"data": "input_param"}
    assert doc["outputs"] == ["prob"]
    assert doc["blobs"]["pool2"] == [64, 50, 4, 4]
    conv1 = doc["layers"][0]
    assert conv1 == {"name": "conv1", "type": "Convolution", "bottoms": ["data"], "tops": ["conv1"],
                     "output_shapes": [[64, 20, 24, 24]], "parameters": 20 * 25 + 20, "line": 8}
    # 520 + (50*20*25+50) + (500*800+500) + (10*500+10)
    assert doc["parameters"] == 431080 and doc["parameters_known"] is True
    assert doc["layer_counts"] == {"Convolution": 2, "InnerProduct": 2, "Pooling": 2, "ReLU": 1,
                                   "Softmax": 1}


def test_json_unknown_shapes_are_null():
    doc = info_json(corpus_path("faster_rcnn_zf_test.prototxt"))
    assert doc["inputs"] == {"data": [1, 3, 224, 224], "im_info": [1, 3]}
    assert doc["blobs"]["rois"] is None and doc["blobs"]["cls_prob"] is None
    proposal = next(d for d in doc["layers"] if d["name"] == "proposal")
    assert proposal["output_shapes"] == [None] and proposal["parameters"] is None
    assert doc["parameters_known"] is False


def test_text_output(tmp_path):
    path = corpus_path("lenet.prototxt")
    result = run_cli("info", path)
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    lines = out.splitlines()
    assert lines[0] == f"{path}  network LeNet"
    assert lines[1] == "8 layers ('layer' blocks); 431,080 parameters, 842.0 KiB as fp16 (sizes from the prototxt)"
    assert "input  data  64x1x28x28  (declared with input_param)" in lines
    assert "output prob  64x10" in lines
    assert "layer types: Convolution 2, InnerProduct 2, Pooling 2, ReLU 1, Softmax 1" in lines
    rows = [line.split() for line in lines if line.strip().startswith(("0 ", "3 ", "7 "))]
    assert rows == [
        ["0", "conv1", "Convolution", "data", "→", "conv1", "64x20x24x24", "520", "8"],
        ["3", "pool2", "Pooling", "conv2", "→", "pool2", "64x50x4x4", "0", "65"],
        ["7", "prob", "Softmax", "ip2", "→", "prob", "64x10", "0", "124"],
    ]
    assert "\x1b[" not in out  # NO_COLOR


def test_text_output_with_weights_and_warnings(tmp_path):
    path = corpus_path("hed_deploy.prototxt")
    net = load(path)
    model = tmp_path / "hed.caffemodel"
    save_caffemodel(net, model, seed=2)
    result = run_cli("info", path, model)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("52 layers ('layer' blocks); 14,") and "(sizes from" not in lines[1]
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == [
        f"warning: line {n}: layer name 'crop' is used by two layers (also layer #{i}); weights are "
        "matched by name, so one of them will get the other's"
        for n, i in ((88, 31), (98, 35), (108, 39), (118, 43))]
    doc = info_json(path, model)
    assert doc["weights"] == str(model)
    assert doc["parameters"] == sum(int(a.size) for blobs in load(path, model).weights.values()
                                    for a in blobs)


def test_info_on_a_lone_caffemodel(tmp_path):
    path = corpus_path("cifar10_quick.prototxt")
    model = tmp_path / "cifar.caffemodel"
    save_caffemodel(load(path), model, seed=3)
    doc = info_json(model)
    assert doc["file"] == str(model) and doc["weights"] == str(model)
    assert doc["name"] == "CIFAR10_quick_test"
    assert doc["format"] == "layer"
    from_text = info_json(path)
    assert doc["inputs"] == from_text["inputs"] == {"data": [1, 3, 32, 32]}
    assert doc["input_forms"] == {"data": "binary"}
    assert doc["blobs"] == from_text["blobs"]
    assert [d["name"] for d in doc["layers"]] == [d["name"] for d in from_text["layers"]]
    assert all(d["line"] is None for d in doc["layers"])
    # conv 3*32*25+32, 32*32*25+32, 32*64*25+64; ip 1024*64+64, 64*10+10
    assert doc["parameters"] == from_text["parameters"] == 145_578


def test_color_always_colours_and_never_does_not():
    path = corpus_path("lenet.prototxt")
    coloured = run_cli("--color", "always", "info", path)
    assert coloured.returncode == 0 and "\x1b[" in coloured.stdout
    plain = run_cli("--color", "never", "info", path, env={"FORCE_COLOR": "1"})
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout
    coloured_error = run_cli("--color", "always", "info", "/nonexistent.prototxt")
    assert coloured_error.returncode == 2 and "\x1b[" in coloured_error.stderr
    assert len(coloured_error.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2():
    result = run_cli("info")
    assert result.returncode == 2 and "required: prototxt" in result.stderr
    result = run_cli("info", "--bogus", "x.prototxt")
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr
