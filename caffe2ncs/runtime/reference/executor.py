"""Running a network: inputs in, blobs out, one layer after another in file
order, as Caffe's ``Net::Forward`` does in the TEST phase.

Blobs are values, not buffers: an in-place layer (``top == bottom``) replaces
the value its blob name refers to, so a layer reads whichever version of a
blob was current when it ran, exactly as in Caffe.  Only the layers needed
for the requested blobs run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ...errors import UnsupportedNetworkError, UsageError
from ...model.frozen import unwrap
from ...model.params import expected_blob_shapes

# Importing the families registers their layer types.
from . import activations, blobs, conv, normalization, pooling, ssd  # noqa: F401
from ._registry import OPS, Call, where

if TYPE_CHECKING:  # pragma: no cover
    from ...model.net import Layer, Net

#: why some well-known types are not run (anything else unknown gets a generic message)
_WHY_NOT = {
    "Python": "Python layers are never imported or run (their code is not part of the network)",
    "BN": "the SegNet/ENet fork's BN layer is not implemented (use BatchNorm + Scale)",
    "Region": "YOLOv2's Region layer is not implemented (its output is post-processing; "
              "compare the convolution feeding it instead)",
    "YoloDetectionOutput": "YOLO detection post-processing layers are not implemented "
                           "(compare the convolutions feeding them instead)",
    "Yolov3DetectionOutput": "YOLO detection post-processing layers are not implemented "
                             "(compare the convolutions feeding them instead)",
    "ROIPooling": "ROIPooling is not implemented",
    "PSROIPooling": "PSROIPooling is not implemented",
}
_DATA_LAYERS = frozenset({"Data", "ImageData", "HDF5Data", "WindowData", "AnnotatedData",
                          "VideoData", "MemoryData", "DummyData"})


def supported_types() -> frozenset[str]:
    """Every layer type the reference executor runs."""
    return frozenset(OPS)


def check_supported(net: Net, layers: Iterable[Layer] | None = None) -> None:
    """Raise :class:`~caffe2ncs.errors.UnsupportedNetworkError` naming the first
    layer (of ``layers``, default all) whose type the reference cannot run."""
    for layer in net.layers if layers is None else layers:
        if layer.type in OPS:
            continue
        if layer.type in _WHY_NOT:
            why = _WHY_NOT[layer.type]
        elif layer.type in _DATA_LAYERS:
            why = "data layers read files at run time; give the network an input instead"
        else:
            why = "this layer type is not known to the reference executor"
        if layer.type == "Python":
            pp = unwrap(layer.param).python_param
            if pp.module or pp.layer:
                why = f"{pp.module}.{pp.layer}: {why}"
        raise UnsupportedNetworkError(f"layer {layer.name!r} ({layer.type}): {why}",
                                      *where(net, layer))


def run(net: Net, inputs: Mapping[str, np.ndarray], weights: Mapping | None = None, *,
        outputs: Iterable[str] | None = None, keep_all: bool = False,
        dtype=np.float32) -> dict[str, np.ndarray]:
    """Run ``net`` on ``inputs`` and return blob values.

    ``inputs`` maps each network input's name to an NCHW array (converted to
    ``dtype``); its shape must be the declared one except perhaps the batch
    size.  ``weights`` maps layer names to their learned blobs in Caffe's
    layouts (default ``net.weights``, e.g. ``synthesize(net, seed)``).

    Returns the final value of each blob in ``outputs`` (default: the
    network's outputs, ``net.outputs``); only the layers they depend on run.
    With ``keep_all=True`` every layer runs and every blob's final value is
    returned (an in-place layer's blob holds its value after the last layer
    that wrote it, as ``net.blobs`` does in Caffe; use :func:`run_layers` to
    see each layer's own result).

    Arithmetic is in ``dtype`` (float32, as Caffe; float64 for a second
    opinion): see ``docs/reference.md`` for the precision of each layer type.
    """
    wanted = _wanted(net, outputs)
    values: dict[str, np.ndarray] = {}
    for _ in _forward(net, inputs, weights, None if keep_all else wanted, dtype, values):
        pass
    if keep_all:
        return values
    return {name: values[name] for name in wanted}


def run_layers(net: Net, inputs: Mapping[str, np.ndarray], weights: Mapping | None = None,
               *, outputs: Iterable[str] | None = None,
               dtype=np.float32) -> Iterator[tuple[Layer, dict[str, np.ndarray]]]:
    """Like :func:`run`, one layer at a time: yields ``(layer, {top: value})``
    for each layer as it runs (only those needed for ``outputs``; every layer
    when ``outputs`` is None)."""
    wanted = None if outputs is None else _wanted(net, outputs)
    yield from _forward(net, inputs, weights, wanted, dtype, {})


# -- internals ----------------------------------------------------------------------

def _wanted(net: Net, outputs: Iterable[str] | None) -> list[str]:
    if outputs is None:
        return list(net.outputs)
    names = [outputs] if isinstance(outputs, str) else list(outputs)
    known = set(net.blob_shapes) | {spec.name for spec in net.inputs}
    for layer in net.layers:
        known.update(layer.tops)
    for name in names:
        if name not in known:
            raise UsageError(f"the network has no blob named {name!r}", net.path)
    return names


def _plan(net: Net, wanted: list[str] | None) -> list[Layer]:
    """The layers to run, in order: all of them, or those the wanted blobs'
    final values depend on (walking back through in-place rewrites)."""
    if wanted is None:
        return list(net.layers)
    needed = set(wanted)
    plan = []
    for layer in reversed(net.layers):
        if needed.intersection(layer.tops):
            plan.append(layer)
            needed.difference_update(layer.tops)
            needed.update(layer.bottoms)
    plan.reverse()
    return plan


def _forward(net: Net, inputs: Mapping[str, np.ndarray], weights: Mapping | None,
             wanted: list[str] | None, dtype, values: dict[str, np.ndarray]
             ) -> Iterator[tuple[Layer, dict[str, np.ndarray]]]:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise UsageError(f"the reference computes in float32 or float64, not {dtype}")
    plan = _plan(net, wanted)
    check_supported(net, plan)
    weights = net.weights if weights is None else weights
    needs = _needed_inputs(net, plan, wanted)
    values.update(_take_inputs(net, inputs, needs, dtype))
    for layer in plan:
        learned = _learned(net, layer, weights, dtype)
        bottoms = []
        for name in layer.bottoms:
            if name not in values:
                raise UsageError(f"layer {layer.name!r} reads blob {name!r}, which nothing "
                                 "produced", *where(net, layer))
            bottoms.append(values[name])
        call = Call(net, layer, unwrap(layer.param), tuple(bottoms), learned, dtype)
        tops = OPS[layer.type](call)
        if len(tops) != len(layer.tops):
            raise call.invalid(f"produced {len(tops)} top(s), the layer lists {len(layer.tops)}")
        result = {}
        for name, value in zip(layer.tops, tops, strict=True):
            value = np.asarray(value)
            if value.dtype != dtype:
                value = value.astype(dtype)
            values[name] = result[name] = value
        yield layer, result


def _needed_inputs(net: Net, plan: list[Layer], wanted: list[str] | None) -> set[str]:
    names = {spec.name for spec in net.inputs}
    read = {b for layer in plan for b in layer.bottoms}
    if wanted is None:
        return names
    return names & (read | set(wanted))


def _take_inputs(net: Net, inputs: Mapping[str, np.ndarray], needs: set[str],
                 dtype: np.dtype) -> dict[str, np.ndarray]:
    declared = {spec.name: spec for spec in net.inputs}
    for name in inputs:
        if name not in declared:
            raise UsageError(f"the network has no input named {name!r} (its inputs: "
                             f"{', '.join(declared) or 'none'})", net.path)
    out = {}
    for name, spec in declared.items():
        if name not in inputs:
            if name in needs:
                raise UsageError(f"no value given for the network input {name!r}", net.path)
            continue
        arr = np.asarray(inputs[name], dtype=dtype)
        if spec.shape is not None:
            want = tuple(spec.shape)
            if arr.ndim != len(want) or tuple(arr.shape[1:]) != want[1:]:
                raise UsageError(
                    f"input {name!r} has shape {tuple(arr.shape)}; the network declares "
                    f"{want} (only the batch size may differ)", net.path)
        out[name] = arr
    return out


def _learned(net: Net, layer: Layer, weights: Mapping, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    learned = weights.get(layer.name)
    expected = expected_blob_shapes(layer, net.layer_shapes[layer.index].inputs)
    if learned is None:
        if expected:
            raise Call(net, layer, None, (), (), dtype).missing_weights(
                "learned blobs (" + ", ".join("x".join(map(str, s)) for s in expected) + ")")
        return ()
    arrays = [np.asarray(b, dtype=dtype) for b in learned]
    if expected and len(expected) == len(arrays):
        # Old caffemodels store every blob 4-D, padded with leading 1s; Caffe
        # accepts them (the loader reshapes them too, but weights may come from
        # elsewhere).
        for i, (arr, want) in enumerate(zip(arrays, expected, strict=True)):
            want = tuple(want)
            if arr.shape != want and arr.ndim == 4 and len(want) < 4 \
                    and arr.shape == (1,) * (4 - len(want)) + want:
                arrays[i] = arr.reshape(want)
    return tuple(arrays)
