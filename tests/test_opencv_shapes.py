"""OpenCV as an independent oracle for our shape inference.

For every corpus network, a caffemodel with seeded random weights is written
by our own writer; ``cv2.dnn.readNetFromCaffe(prototxt, caffemodel)`` must
accept it, and the output shape of every layer that OpenCV's
``getLayersShapes`` reports must equal the shape we infer.  Networks OpenCV
cannot build (custom layer types it lacks, fork parameters its importer
chokes on) are skipped with OpenCV's own message.

OpenCV renames a few layers: a repeated layer name gets ``_1``, ``_2``…;
some layers are named after their top; an ``Axpy`` layer becomes
``<name>/scale`` (a Scale of bottom 1 by bottom 0) plus an Eltwise named
``<name>``.  Every name is mapped back explicitly; an unexplained one fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from caffe2ncs.model import Net, load
from caffe2ncs.model.weights import save_caffemodel
from conftest import corpus_params

cv2 = pytest.importorskip("cv2")

#: Corpus networks OpenCV 4.x cannot build, and why (the test skips them with
#: OpenCV's message; any other refusal fails, as our caffemodel is then suspect).
OPENCV_REFUSES = {
    "enet_deploy_final": "custom BN/Upsample parameters",
    "faster_rcnn_zf_test": "Python layer",
    "mobilenet_v2_yolov3": "Upsample layer",
    "mobilenet_yolov2_deploy": "DepthwiseConvolution layer",
    "mobilenet_yolov3_lite_deploy": "DepthwiseConvolution layer",
    "yolov2_darknet19_reorg": "YoloDetectionOutput layer",
    "yolov2_voc_region": "custom region_param",
    "yolov3_tiny_upsample": "Upsample layer",
}

#: Caffemodels bigger than this are deleted as soon as their test is done.
_KEEP_BYTES = 64 * 2**20


def _opencv_message(err: Exception) -> str:
    """OpenCV's error as one line: the reason, without the source location."""
    text = str(err).strip()
    lines = text.splitlines()
    details = " ".join(line.lstrip("> ").strip() for line in lines[1:] if line.startswith(">"))
    m = re.search(r"error: \([-\d]+:[^)]*\)(.*)$", lines[0] if lines else "")
    head = re.sub(r"\s*in function '.*'$", "", m.group(1)).strip() if m else text
    return " ".join(part for part in (head, details) if part) or text


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("opencv-caffemodels")


def _match_layers(net: Net, cv_names: list[str]) -> dict[str, tuple]:
    """OpenCV layer name -> ("layer", our Layer) or ("axpy-scale", our Axpy layer)."""
    by_name: dict[str, list] = {}
    for layer in net.layers:
        by_name.setdefault(layer.name, []).append(layer)
    producers: dict[str, list] = {}
    for layer in net.layers:
        for top in layer.tops:
            if top not in layer.bottoms:
                producers.setdefault(top, []).append(layer)
    out: dict[str, tuple] = {}
    for name in cv_names:
        if name in by_name:  # (the first of a repeated name keeps it)
            out[name] = ("layer", by_name[name][0])
            continue
        m = re.fullmatch(r"(.*)_(\d+)", name)
        if m and m.group(1) in by_name and int(m.group(2)) < len(by_name[m.group(1)]):
            out[name] = ("layer", by_name[m.group(1)][int(m.group(2))])
            continue
        if name.endswith("/scale") and name[:-len("/scale")] in by_name \
                and by_name[name[:-len("/scale")]][0].type == "Axpy":
            out[name] = ("axpy-scale", by_name[name[:-len("/scale")]][0])
            continue
        if len(producers.get(name, ())) == 1:  # named after its top
            out[name] = ("layer", producers[name][0])
            continue
        raise AssertionError(f"OpenCV layer {name!r} matches none of ours")
    return out


@pytest.mark.parametrize("path", corpus_params())
def test_opencv_agrees_on_every_layer_shape(path, model_dir):
    net = load(path)
    stem = path.stem
    model = model_dir / f"{stem}.caffemodel"
    save_caffemodel(net, model, seed=1)
    try:
        try:
            cvnet = cv2.dnn.readNetFromCaffe(str(path), str(model))
            input_shapes = [list(spec.shape) for spec in net.inputs]
            ids, _, out_shapes = cvnet.getLayersShapes(input_shapes)
        except cv2.error as err:
            message = _opencv_message(err)
            if stem in OPENCV_REFUSES:
                pytest.skip(f"OpenCV refuses it ({OPENCV_REFUSES[stem]}): {message}")
            raise AssertionError(f"OpenCV refused {path.name} with our caffemodel: {message}") from None
    finally:
        if model.exists() and model.stat().st_size > _KEEP_BYTES:
            model.unlink()
    assert stem not in OPENCV_REFUSES, "OpenCV now accepts it: update OPENCV_REFUSES"

    ids = [int(i) for i in np.asarray(ids).ravel()]
    assert ids[0] == 0  # OpenCV's input layer, whose outputs are the inputs
    assert [tuple(int(d) for d in np.asarray(s).ravel()) for s in out_shapes[0]] == [
        spec.shape for spec in net.inputs]
    names = [cvnet.getLayer(i).name for i in ids[1:]]
    matched = _match_layers(net, names)
    compared = set()
    mismatches = []
    for lid, name, shapes in zip(ids[1:], names, out_shapes[1:]):
        theirs = [tuple(int(d) for d in np.asarray(s).ravel()) for s in shapes]
        kind, layer = matched[name]
        ours_all = net.layer_shapes[layer.index]
        if kind == "axpy-scale":
            ours = [ours_all.inputs[1]]  # the Scale part of Axpy(a, x, y) = a * x + y
        else:
            ours = list(ours_all.outputs)
            compared.add(layer.index)
            # OpenCV gives MAX pooling a second (mask) output even with one top
            assert len(theirs) >= len(ours), (name, ours, theirs)
            theirs = theirs[:len(ours)]
        if ours != theirs:
            mismatches.append(f"{name} ({layer.type}): ours {ours}, OpenCV {theirs}")
    assert not mismatches, "\n".join(mismatches)
    # every one of our layers was compared
    assert compared == {layer.index for layer in net.layers}


def test_opencv_message_is_one_line():
    err = cv2.error("OpenCV(4.14.0) /io/x.cpp:129: error: (-2:Unspecified error) in function 'f'\n"
                    "> UnknownField should have at least 2 items (expected: 'a >= 2'), where\n"
                    ">     'a' is 1\n")
    assert _opencv_message(err) == ("UnknownField should have at least 2 items (expected: 'a >= 2'), "
                                    "where 'a' is 1")
    err = cv2.error("OpenCV(4.14.0) /io/n.hpp:108: error: (-2:Unspecified error) Can't create layer "
                    "\"x\" of type \"Python\" in function 'getLayerInstance'\n")
    assert _opencv_message(err) == "Can't create layer \"x\" of type \"Python\""
