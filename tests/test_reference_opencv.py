"""The reference executor against an independent oracle: OpenCV's Caffe importer.

For every corpus network, a caffemodel of seeded random weights
(``synthesize(net, WEIGHT_SEED)``, see :func:`oracle_model`; written once per
session into a temporary directory with ``save_caffemodel``) and a seeded input drawn uniformly from [-1, 1)
(batch size capped at ``MAX_BATCH`` to keep the suite fast; both sides get the
same input) go through our :func:`run` and through
``cv2.dnn.readNetFromCaffe(prototxt, caffemodel).forward``.  They must agree
to ``RTOL`` *relative to the largest magnitude of OpenCV's output* (the
mvNCCheck convention); the maximum absolute difference is reported too.

What is compared:

* every network output; for an output made by Softmax, also the Softmax's
  input (random weights often saturate the probabilities to 0/1, which would
  hide differences in the logits);
* for SSD networks, DetectionOutput's three inputs, then DetectionOutput
  itself both on OpenCV's own inputs (isolating its semantics) and end to
  end (see ``_check_detections`` for what can be asserted when scores tie);
* when a network has a layer that we or OpenCV cannot run (a Python layer,
  YOLO post-processing), the part both can: the inputs of those layers, on a
  prototxt truncated to the layers they depend on (cut from the original text,
  so fork-specific fields survive).

Networks OpenCV refuses are skipped with OpenCV's message as the reason.  Single
layers the corpus does not exercise (ELU, MVN, Interp, rectangular dilated
grouped convolutions, ...) are compared one by one in ``test_layer_matches_opencv``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_params

from caffe2ncs.errors import UnsupportedNetworkError
from caffe2ncs.model import load, loads
from caffe2ncs.model.weights import save_caffemodel, synthesize
from caffe2ncs.runtime.reference import run, supported_types

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is the oracle")
if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):  # pragma: no cover
    pytest.skip(f"OpenCV {cv2.__version__} has no Caffe importer (removed in OpenCV 5)",
                allow_module_level=True)

WEIGHT_SEED = 1
INPUT_SEED = 0
RTOL = 1e-4
MAX_BATCH = 2
#: layer types OpenCV's Caffe importer cannot run (or, for Python, cannot run without
#: the layer's code); where a network has one, the part before it is compared
_OPENCV_CANNOT = {"YoloDetectionOutput", "Yolov3DetectionOutput", "Region", "Python", "Upsample"}


# -- fixtures and helpers ---------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _single_threaded_opencv():
    # OpenCV's idle worker threads spin and slow numpy down in the same process;
    # one thread changes no result.
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(before)


def oracle_model(prototxt: Path, model_dir: Path) -> tuple[Path, dict]:
    """Seeded random weights for ``prototxt`` and a caffemodel holding them, in
    ``model_dir``: ``synthesize(net, WEIGHT_SEED)``, whose BatchNorm
    statistics are those of the activations the network itself produces, so
    activations stay O(1) as in a trained network.  (Random BatchNorm
    statistics let random residual networks' activations grow block after
    block, to 1e12 in ResNet-152: every softmax and sigmoid saturates, SSD
    scores tie at 1.0, and the comparison says little.)

    Our side is given the weights themselves (``run(net, inputs, weights)``),
    OpenCV the caffemodel."""
    net = load(prototxt)
    weights = dict(synthesize(net, WEIGHT_SEED))
    out = model_dir / (prototxt.stem + ".caffemodel")
    save_caffemodel(net, out, weights=weights)
    return out, weights


def make_inputs(net) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(INPUT_SEED)
    out = {}
    for spec in net.inputs:
        shape = (min(spec.shape[0], MAX_BATCH), *spec.shape[1:])
        out[spec.name] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return out


def errors(ours: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max relative error, max absolute difference); relative to the largest
    magnitude of ``expected``, as mvNCCheck measures."""
    if expected.size == 0:
        return 0.0, 0.0
    diff = float(np.max(np.abs(ours.astype(np.float64) - expected.astype(np.float64))))
    scale = float(np.max(np.abs(expected)))
    return (diff / scale if scale > 0 else diff), diff


def opencv_message(err: Exception) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else repr(err)
    return "OpenCV refuses this network: " + re.sub(r"^OpenCV\([^)]*\)\s*", "", text)[:300]


def opencv_forward(prototxt: Path, model: Path, inputs: dict, net, blobs: list[str]):
    """OpenCV's values of ``blobs``, as a dict; blobs OpenCV cannot name are left out."""
    try:
        cvnet = cv2.dnn.readNetFromCaffe(str(prototxt), str(model))
        # OpenCV's Winograd 3x3 convolution trades accuracy for speed (about 5x
        # the float32 rounding error of a direct convolution, measured against
        # our float64 run on ResNet-101); Caffe never used it.
        cvnet.enableWinograd(False)
        known = set(cvnet.getLayerNames())
        names = {blob: cv_layer_for(net, blob, known) for blob in blobs}
        names = {blob: name for blob, name in names.items() if name is not None}
        for name, value in inputs.items():
            cvnet.setInput(value, name)
        outs = cvnet.forward(list(names.values())) if names else []
    except cv2.error as err:
        pytest.skip(opencv_message(err))
    return {blob: np.asarray(out) for blob, out in zip(names, outs, strict=True)}


def cv_layer_for(net, blob: str, known: set[str]) -> str | None:
    """The OpenCV layer whose first output is the final value of ``blob``: the
    Caffe layer that wrote it last (OpenCV sometimes names a layer after its
    top instead)."""
    producers = net.producers(blob)
    if not producers:
        return None
    layer = producers[-1]
    if not layer.tops or layer.tops[0] != blob:
        return None
    for name in (layer.name, blob):
        if name in known:
            return name
    return None


def plan_layers(net, blobs):
    needed, plan = set(blobs), []
    for layer in reversed(net.layers):
        if needed.intersection(layer.tops):
            plan.append(layer)
            needed.difference_update(layer.tops)
            needed.update(layer.bottoms)
    return plan[::-1]


def runnable_everywhere(net, blob: str) -> bool:
    ours = supported_types()
    return all(layer.type in ours and layer.type not in _OPENCV_CANNOT
               for layer in plan_layers(net, [blob]))


#: fork spellings of layers OpenCV knows under Caffe's own name
_OPENCV_ALIASES = {"DepthwiseConvolution": "Convolution"}


def for_opencv(text: str) -> str:
    """The prototxt text with fork layer types OpenCV lacks renamed to the Caffe
    type they are (a depthwise convolution is a grouped Convolution)."""
    for fork, caffe in _OPENCV_ALIASES.items():
        text = re.sub(rf'(\btype\s*:\s*)"{fork}"', rf'\1"{caffe}"', text)
    return text


def truncated_prototxt(net, blobs: list[str], path: Path) -> Path:
    """A prototxt with the network's inputs and, cut from the original text,
    only the layers ``blobs`` depend on."""
    text = net.source.text
    plan = plan_layers(net, blobs)
    read = {b for layer in plan for b in layer.bottoms}
    head = [f'name: "{net.name}-truncated"']
    for spec in net.inputs:
        if spec.name in read:
            dims = " ".join(f"dim: {d}" for d in spec.shape)
            head.append(f'input: "{spec.name}"\ninput_shape {{ {dims} }}')
    body = [text[layer.node.start:layer.node.end] for layer in plan]
    path.write_text(for_opencv("\n".join(head + body) + "\n"))
    return path


def compared_blobs(net) -> list[str]:
    blobs = []
    for out in net.outputs:
        layer = net.producers(out)[-1]
        if layer.type == "DetectionOutput":
            blobs += [b for b in layer.bottoms if b not in blobs]
            continue
        blobs.append(out)
        if layer.type == "Softmax":
            blobs += [b for b in layer.bottoms if b not in blobs]
    return blobs


def assert_close(name: str, ours: np.ndarray, expected: np.ndarray, report: list) -> None:
    if expected.size == ours.size:
        expected = expected.reshape(ours.shape)
    assert ours.shape == expected.shape, f"{name}: shape {ours.shape}, OpenCV {expected.shape}"
    rel, diff = errors(ours, expected)
    report.append(f"{name}: max rel {rel:.2e}, max abs {diff:.2e}")
    assert rel <= RTOL, f"{name}: max relative error {rel:.3g} > {RTOL} (max abs {diff:.3g})"


# -- DetectionOutput ---------------------------------------------------------------------

def _rows(out: np.ndarray) -> np.ndarray:
    return np.asarray(out, dtype=np.float64).reshape(-1, 7)


def _canonical(rows: np.ndarray) -> np.ndarray:
    """Rows in an order that does not depend on how ties and near-ties in
    score were sorted: by image, label, then box corners."""
    keys = tuple(rows[:, i] for i in (2, 6, 5, 4, 3, 1, 0))
    return rows[np.lexsort(keys)]


def _check_detections(ours: np.ndarray, cv: np.ndarray, what: str, report: list) -> None:
    """Caffe writes one row per detection, grouped by image and label; OpenCV
    sorts each image's rows by score and pads with zero rows up to keep_top_k.
    Compared as sets of rows (to RTOL of the largest value).  When scores tie
    exactly (random weights can saturate the softmax to 1.0), which of the
    tied boxes survive the keep_top_k cut is unspecified in Caffe (std::sort)
    and OpenCV alike: then only the rows scoring above the tie, and the row
    count, are asserted."""
    ours, cv = _rows(ours), _rows(cv)
    if np.all(ours[:, 1] == -1):  # Caffe's "no detection" rows
        assert not np.any(cv), f"{what}: we found no detection, OpenCV did"
        return
    n = len(ours)
    assert len(cv) >= n, f"{what}: {n} detections, OpenCV's output has {len(cv)} rows"
    assert not np.any(cv[n:]), f"{what}: OpenCV found more detections than our {n}"
    cv = cv[:n]
    scores = cv[:, 2]
    tied = len(np.unique(scores)) < len(scores)
    if tied:
        cut = scores.min()
        ours, cv = ours[ours[:, 2] > cut], cv[cv[:, 2] > cut]
        report.append(f"{what}: scores tie at {cut:.9g}; compared the {len(cv)} rows above it "
                      f"and the count ({n})")
        assert len(ours) == len(cv), f"{what}: {len(ours)} vs {len(cv)} rows above the tie"
        if not len(cv):
            return
    assert_close(what, _canonical(ours), _canonical(cv), report)


def _detection_on_opencv_inputs(net, layer, cv_inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Our DetectionOutput alone, fed OpenCV's values of its bottoms."""
    head = [f'name: "{layer.name}-alone"']
    for blob in layer.bottoms:
        dims = " ".join(f"dim: {d}" for d in cv_inputs[blob].shape)
        head.append(f'input: "{blob}"\ninput_shape {{ {dims} }}')
    alone = loads("\n".join(head + [net.source.text[layer.node.start:layer.node.end]]) + "\n")
    return run(alone, cv_inputs)[layer.tops[0]]


# -- the test -----------------------------------------------------------------------------

@pytest.mark.parametrize("prototxt", corpus_params())
def test_matches_opencv(prototxt: Path, scratch_path: Path, record_property):
    model_dir = scratch_path
    model, weights = oracle_model(prototxt, model_dir)
    net = load(prototxt)
    inputs = make_inputs(net)
    report: list[str] = []

    blobs, whole = what_to_compare(net, inputs, report)
    source = prototxt_for_opencv(net, prototxt, None if whole else blobs, model_dir, report)
    read = {b for layer in plan_layers(net, blobs) for b in layer.bottoms}
    used_inputs = {k: v for k, v in inputs.items() if k in read}
    expected = opencv_forward(source, model, used_inputs, net, blobs)
    assert expected, "OpenCV names none of the blobs to compare"

    ours_net = _as_opencv_reads_it(net, report)
    ours = run(ours_net, inputs, weights, outputs=list(expected))
    for blob, cv_value in expected.items():
        assert_close(blob, ours[blob], cv_value, report)
    missing = [b for b in blobs if b not in expected]
    if missing:
        report.append(f"OpenCV has no layer to name {', '.join(missing)}: not compared")

    for out in net.outputs if whole else ():
        layer = net.producers(out)[-1]
        if layer.type != "DetectionOutput":
            continue
        cv_det = opencv_forward(source, model, inputs, net, [out])[out]
        cv_inputs = {b: expected[b].reshape(ours[b].shape) for b in layer.bottoms}
        alone = _detection_on_opencv_inputs(net, layer, cv_inputs)
        _check_detections(alone, cv_det, f"{out} (on OpenCV's inputs)", report)
        mine = run(ours_net, inputs, weights, outputs=[out])[out]
        _check_detections(mine, cv_det, f"{out} (end to end)", report)

    record_property("reference_vs_opencv", "; ".join(report))
    print("\n".join(report))


def what_to_compare(net, inputs, report: list) -> tuple[list[str], bool]:
    """The blobs to compare, and whether that is the whole network.  When a
    layer that we or OpenCV cannot run is in the way, the whole network is
    asserted to be refused by us with a message naming that layer, and what
    both can run is compared instead: the inputs of those layers."""
    wanted = compared_blobs(net)
    runnable = [b for b in wanted if runnable_everywhere(net, b)]
    if len(runnable) == len(wanted):
        return wanted, True
    blocked = [layer for layer in net.layers
               if layer.type not in supported_types() or layer.type in _OPENCV_CANNOT]
    ours_blocked = [layer for layer in blocked if layer.type not in supported_types()]
    if ours_blocked:
        with pytest.raises(UnsupportedNetworkError, match=re.escape(repr(ours_blocked[0].name))) \
                as refused:
            run(net, inputs)
        report.append(f"whole network refused: {refused.value.message}")
    frontier = [b for layer in blocked for b in layer.bottoms
                if not net.is_input(b) and runnable_everywhere(net, b)]
    runnable = list(dict.fromkeys(runnable + frontier))
    if not runnable:
        pytest.skip("nothing both OpenCV and the reference can run: "
                    + ", ".join(f"{layer.name} ({layer.type})" for layer in blocked))
    report.append(f"compared the part both can run: {', '.join(runnable)}")
    return runnable, False


def prototxt_for_opencv(net, prototxt: Path, truncate_to: list[str] | None, model_dir: Path,
                        report: list) -> Path:
    """The prototxt OpenCV reads: the original, or the part ``truncate_to``
    depends on, with fork type names OpenCV lacks replaced by their Caffe type."""
    if truncate_to is not None:
        return truncated_prototxt(net, truncate_to,
                                  model_dir / f"{prototxt.stem}-truncated.prototxt")
    if not any(layer.type in _OPENCV_ALIASES for layer in net.layers):
        return prototxt
    report.append("OpenCV reads " + ", ".join(f"{a} as {b}" for a, b in _OPENCV_ALIASES.items()))
    source = model_dir / f"{prototxt.stem}-for-opencv.prototxt"
    source.write_text(for_opencv(net.source.text))
    return source


def _as_opencv_reads_it(net, report: list):
    """OpenCV's importer turns Axpy (``a * x + y``: bottoms a, x, y) into a Scale
    of the *third* bottom plus the second, i.e. ``a * y + x``, unlike the
    original layer (SENet's axpy_layer.cpp) that our reference follows.  To
    compare everything else, run our reference on the network with those two
    bottoms swapped; ``test_axpy_differs_from_opencv`` pins the difference."""
    axpys = [layer for layer in net.layers if layer.type == "Axpy"]
    if not axpys:
        return net
    report.append(f"{len(axpys)} Axpy layer(s) run with bottoms 1 and 2 swapped, as OpenCV "
                  "reads them (OpenCV computes a*bottom[2] + bottom[1])")
    layers = tuple(
        dataclasses.replace(layer, bottoms=(layer.bottoms[0], layer.bottoms[2], layer.bottoms[1]))
        if layer.type == "Axpy" else layer
        for layer in net.layers)
    return dataclasses.replace(net, layers=layers)


def test_axpy_differs_from_opencv(tmp_path):
    """Pin the one known semantic difference: on a lone Axpy, the reference
    computes Caffe's ``a * bottom[1] + bottom[2]`` and OpenCV ``a * bottom[2] + bottom[1]``."""
    prototxt = tmp_path / "axpy.prototxt"
    prototxt.write_text(
        'input: "a" input_shape { dim: 1 dim: 2 dim: 1 dim: 1 }\n'
        'input: "x" input_shape { dim: 1 dim: 2 dim: 2 dim: 2 }\n'
        'input: "y" input_shape { dim: 1 dim: 2 dim: 2 dim: 2 }\n'
        'layer { name: "axpy" type: "Axpy" bottom: "a" bottom: "x" bottom: "y" top: "out" }\n')
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, (1, 2, 1, 1)).astype(np.float32)
    x = rng.uniform(-1, 1, (1, 2, 2, 2)).astype(np.float32)
    y = rng.uniform(-1, 1, (1, 2, 2, 2)).astype(np.float32)
    ours = run(load(prototxt), {"a": a, "x": x, "y": y})["out"]
    np.testing.assert_allclose(ours, a * x + y, rtol=1e-6)
    cvnet = cv2.dnn.readNetFromCaffe(str(prototxt))
    for name, value in (("a", a), ("x", x), ("y", y)):
        cvnet.setInput(value, name)
    np.testing.assert_allclose(cvnet.forward("axpy").reshape(ours.shape), a * y + x, rtol=1e-6)


# -- single layers the corpus does not exercise ------------------------------------------

def _zoo(name, body, shapes, weights=None):
    return pytest.param(body, shapes, weights, id=name)


_X = {"x": (2, 4, 7, 9)}
ZOO = [
    _zoo("elu", 'layer { name: "y" type: "ELU" bottom: "x" top: "y" elu_param { alpha: 0.5 } }',
         _X),
    _zoo("prelu", 'layer { name: "y" type: "PReLU" bottom: "x" top: "y" }', _X,
         {"y": ([0.1, -0.2, 0.3, 2.0],)}),
    _zoo("tanh", 'layer { name: "y" type: "TanH" bottom: "x" top: "y" }', _X),
    _zoo("absval", 'layer { name: "y" type: "AbsVal" bottom: "x" top: "y" }', _X),
    _zoo("bnll", 'layer { name: "y" type: "BNLL" bottom: "x" top: "y" }', _X),
    _zoo("power", 'layer { name: "y" type: "Power" bottom: "x" top: "y" '
         'power_param { power: 2 scale: 0.5 shift: 1 } }', _X),
    _zoo("exp", 'layer { name: "y" type: "Exp" bottom: "x" top: "y" '
         'exp_param { base: 2 scale: 0.5 shift: 0.25 } }', _X),
    _zoo("threshold", 'layer { name: "y" type: "Threshold" bottom: "x" top: "y" '
         'threshold_param { threshold: 0.1 } }', _X),
    _zoo("clip", 'layer { name: "y" type: "Clip" bottom: "x" top: "y" '
         'clip_param { min: -0.3 max: 0.6 } }', _X),
    _zoo("swish", 'layer { name: "y" type: "Swish" bottom: "x" top: "y" }', _X),
    _zoo("mvn", 'layer { name: "y" type: "MVN" bottom: "x" top: "y" }', _X),
    _zoo("mvn-across", 'layer { name: "y" type: "MVN" bottom: "x" top: "y" '
         'mvn_param { across_channels: true } }', _X),
    _zoo("mvn-mean-only", 'layer { name: "y" type: "MVN" bottom: "x" top: "y" '
         'mvn_param { normalize_variance: false } }', _X),
    # k stays 1: OpenCV ignores it (test_lrn_k_is_ignored_by_opencv)
    _zoo("lrn-across", 'layer { name: "y" type: "LRN" bottom: "x" top: "y" '
         'lrn_param { local_size: 3 alpha: 2 beta: 0.6 } }', _X),
    _zoo("lrn-within", 'layer { name: "y" type: "LRN" bottom: "x" top: "y" '
         'lrn_param { local_size: 5 alpha: 3 beta: 0.75 norm_region: WITHIN_CHANNEL } }', _X),
    _zoo("ave-pool-pad-ceil", 'layer { name: "y" type: "Pooling" bottom: "x" top: "y" '
         'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }', _X),
    _zoo("ave-pool-overhang", 'layer { name: "y" type: "Pooling" bottom: "x" top: "y" '
         'pooling_param { pool: AVE kernel_h: 2 kernel_w: 4 stride_h: 2 stride_w: 3 } }', _X),
    _zoo("max-pool-pad", 'layer { name: "y" type: "Pooling" bottom: "x" top: "y" '
         'pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }', _X),
    _zoo("conv-rect-dilated-groups", 'layer { name: "y" type: "Convolution" bottom: "x" '
         'top: "y" convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 stride_h: 2 '
         'stride_w: 1 pad_h: 0 pad_w: 1 dilation: 2 group: 2 } }', _X),
    _zoo("deconv-groups", 'layer { name: "y" type: "Deconvolution" bottom: "x" top: "y" '
         'convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2 } }', _X),
    _zoo("inner-product-axis", 'layer { name: "y" type: "InnerProduct" bottom: "x" top: "y" '
         'inner_product_param { num_output: 5 axis: 2 } }', _X),
    _zoo("eltwise-prod-max-coeff",
         'layer { name: "p" type: "Eltwise" bottom: "x" bottom: "z" top: "p" '
         'eltwise_param { operation: PROD } }\n'
         'layer { name: "m" type: "Eltwise" bottom: "p" bottom: "z" top: "m" '
         'eltwise_param { operation: MAX } }\n'
         'layer { name: "y" type: "Eltwise" bottom: "m" bottom: "x" top: "y" '
         'eltwise_param { coeff: 0.5 coeff: -2 } }', {"x": (2, 4, 7, 9), "z": (2, 4, 7, 9)}),
    _zoo("slice-concat",
         'layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" top: "c" '
         'slice_param { axis: 3 slice_point: 2 slice_point: 7 } }\n'
         'layer { name: "y" type: "Concat" bottom: "c" bottom: "a" bottom: "b" top: "y" '
         'concat_param { axis: 3 } }', _X),
    _zoo("crop", 'layer { name: "y" type: "Crop" bottom: "x" bottom: "r" top: "y" '
         'crop_param { axis: 2 offset: 1 offset: 3 } }', {"x": (2, 4, 7, 9), "r": (1, 1, 5, 4)}),
    _zoo("permute-flatten", 'layer { name: "p" type: "Permute" bottom: "x" top: "p" '
         'permute_param { order: 0 order: 3 order: 1 order: 2 } }\n'
         'layer { name: "y" type: "Flatten" bottom: "p" top: "y" flatten_param { axis: 2 } }',
         _X),
    _zoo("reshape-softmax", 'layer { name: "r" type: "Reshape" bottom: "x" top: "r" '
         'reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }\n'
         'layer { name: "y" type: "Softmax" bottom: "r" top: "y" softmax_param { axis: 1 } }',
         _X),
    _zoo("scale-two-bottoms", 'layer { name: "y" type: "Scale" bottom: "x" bottom: "s" '
         'top: "y" scale_param { axis: 0 } }', {"x": (2, 4, 7, 9), "s": (2, 4)}),
    _zoo("batch-norm-scale-factor", 'layer { name: "y" type: "BatchNorm" bottom: "x" top: "y" '
         'batch_norm_param { eps: 0.001 } }', _X,
         {"y": ([0.2, -0.4, 0.6, 0.0], [1.0, 0.5, 2.0, 4.0], [2.0])}),
    _zoo("normalize-per-position", 'layer { name: "y" type: "Normalize" bottom: "x" top: "y" '
         'norm_param { across_spatial: false channel_shared: false } }', _X),
    _zoo("interp-zoom", 'layer { name: "y" type: "Interp" bottom: "x" top: "y" '
         'interp_param { zoom_factor: 3 } }', _X),
    _zoo("interp-size", 'layer { name: "y" type: "Interp" bottom: "x" top: "y" '
         'interp_param { height: 4 width: 13 } }', _X),
    _zoo("shuffle-channel", 'layer { name: "y" type: "ShuffleChannel" bottom: "x" top: "y" '
         'shuffle_channel_param { group: 2 } }', _X),
    _zoo("tile", 'layer { name: "y" type: "Tile" bottom: "x" top: "y" '
         'tile_param { axis: 2 tiles: 3 } }', _X),
    _zoo("reduction", 'layer { name: "y" type: "Reduction" bottom: "x" top: "y" '
         'reduction_param { operation: SUMSQ axis: 2 coeff: 0.5 } }', _X),
    _zoo("argmax", 'layer { name: "y" type: "ArgMax" bottom: "x" top: "y" '
         'argmax_param { axis: 1 } }', _X),
]


@pytest.mark.parametrize("body, shapes, given", ZOO)
def test_layer_matches_opencv(body: str, shapes: dict, given, tmp_path, record_property):
    head = "".join(f'input: "{n}" input_shape {{ {" ".join(f"dim: {d}" for d in s)} }}\n'
                   for n, s in shapes.items())
    prototxt = tmp_path / "layer.prototxt"
    prototxt.write_text(head + body + "\n")
    net = load(prototxt)
    if given is None:
        weights = synthesize(net, WEIGHT_SEED)
    else:
        weights = {k: tuple(np.asarray(a, np.float32) for a in v) for k, v in given.items()}
    model = tmp_path / "layer.caffemodel"
    save_caffemodel(net, model, weights=weights)
    rng = np.random.default_rng(INPUT_SEED)
    inputs = {n: rng.uniform(-1, 1, s).astype(np.float32) for n, s in shapes.items()}
    out = net.outputs[-1]
    expected = opencv_forward(prototxt, model, inputs, net, [out])
    ours = run(net, inputs, weights, outputs=[out])
    report: list[str] = []
    assert_close(out, ours[out], expected[out], report)
    record_property("reference_vs_opencv", "; ".join(report))


def test_lrn_k_is_ignored_by_opencv(tmp_path):
    """Pin the other known difference: OpenCV's LRN takes Caffe's ``k`` as 1 (it
    reads a ``bias`` parameter instead); the reference uses ``k`` as Caffe does."""
    def lrn(k):
        prototxt = tmp_path / f"lrn{k}.prototxt"
        prototxt.write_text('input: "x" input_shape { dim: 1 dim: 3 dim: 1 dim: 1 }\n'
                            'layer { name: "y" type: "LRN" bottom: "x" top: "y" '
                            f'lrn_param {{ local_size: 3 alpha: 3 beta: 1 k: {k} }} }}\n')
        return prototxt
    x = np.array([1, 2, 3], np.float32).reshape(1, 3, 1, 1)
    ours = run(load(lrn(2)), {"x": x})["y"]
    np.testing.assert_allclose(ours.ravel(), [1 / (2 + 5), 2 / (2 + 14), 3 / (2 + 13)],
                               rtol=1e-6)
    cvnet = cv2.dnn.readNetFromCaffe(str(lrn(2)))
    cvnet.setInput(x)
    np.testing.assert_allclose(cvnet.forward().ravel(), run(load(lrn(1)), {"x": x})["y"].ravel(),
                               rtol=1e-6)
