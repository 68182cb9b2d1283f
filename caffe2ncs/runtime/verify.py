"""Verify a network the way the vendor's ``mvNCCheck`` did: build the graph,
run it on the device (a stick, or the fp16 emulator), run the Caffe network
itself in fp32 on the host, and compare the two outputs.

The two sides share nothing but the network and its weights: the device side
goes through the lowering, the graph-file writer and reader and the emulator
(or the stick's firmware); the expected side is the reference executor
(:mod:`caffe2ncs.runtime.reference`), which reads the Caffe network directly.

::

    from caffe2ncs.runtime.verify import verify_network

    v = verify_network(net, weights=None, input_hwc=None, seed=0)
    v.passed, v.comparison.failed(), v.top(5)

``caffe2ncs verify`` prints a :class:`Verification`; the corpus results table
(``docs/verify-results.md``) and the tests reuse the same function.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..lowering.ir import GraphFormat
from ..model.net import Net
from .metrics import Comparison, compare, compare_detections, detection_rows, top_k

#: The device names :func:`verify_network` takes.
DEVICES = ("emulator", "ncs")


@dataclass(frozen=True)
class Verification:
    """The outcome of one :func:`verify_network`."""

    network: str
    #: The Caffe blob compared (the graph's output).
    output: str
    target: GraphFormat
    shaves: int
    #: ``"fp16 emulator"`` or ``"Neural Compute Stick"``.
    device: str
    stages: int
    #: The input both sides were given: ``(H, W, C)``, fp16 values as float32.
    input_hwc: np.ndarray
    #: The device's output and the reference's, flat, float32, in Caffe's
    #: ``C x H x W`` order (the device's HWC output transposed).
    result: np.ndarray
    expected: np.ndarray
    #: mvNCCheck's metrics (or, for a DetectionOutput, the detection check).
    comparison: Comparison
    #: True when the output is a DetectionOutput's list of boxes.
    detections: bool = False
    #: Things the user should know (zero or synthetic weights, batch size, ...).
    warnings: tuple[str, ...] = ()
    #: Host seconds spent on "build", "device" and "reference".
    seconds: Mapping[str, float] = field(default_factory=dict)
    #: The stick's own stage times, when it ran on one.
    stick_ms: float | None = None

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    def top(self, k: int = 5) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """The ``k`` largest values of the result and of the expected output
        (flat Caffe-order indices), largest first."""
        return top_k(self.result, k), top_k(self.expected, k)

    def as_dict(self, k: int = 5) -> dict:
        result_top, expected_top = self.top(k)
        return {
            "network": self.network,
            "output": self.output,
            "target": self.target.value,
            "shaves": self.shaves,
            "device": self.device,
            "stages": self.stages,
            "input_shape_hwc": list(self.input_hwc.shape),
            "output_values": int(self.expected.size),
            "check": "detections" if self.detections else "values",
            "passed": self.passed,
            **{key: value for key, value in self.comparison.as_dict().items() if key != "passed"},
            "top": {"result": [{"index": i, "value": v} for i, v in result_top],
                    "expected": [{"index": i, "value": v} for i, v in expected_top]},
            "warnings": list(self.warnings),
            "seconds": dict(self.seconds),
            "stick_ms": self.stick_ms,
        }


def input_shape_hwc(net: Net) -> tuple[int, int, int]:
    """``(H, W, C)`` of the network's (first) input, for one image."""
    from ..lowering.netgraph import device_shape

    if not net.inputs:
        from ..errors import UnsupportedNetworkError

        raise UnsupportedNetworkError("the network has no input", net.path)
    spec = net.inputs[0]
    c, h, w = device_shape(spec.shape, f"input {spec.name!r}", any_batch=True)
    return h, w, c


def random_input(shape_hwc: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """mvNCCheck's input when no image is given: uniform in [-1, 1), here
    seeded, as ``(H, W, C)`` float32 holding fp16 values."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, shape_hwc).astype(np.float32)
    return x.astype(np.float16).astype(np.float32)


def synthetic_weights(net: Net, seed: int, input_hwc: np.ndarray) -> dict[str, tuple]:
    """Seeded random weights (:func:`~caffe2ncs.model.weights.synthesize`:
    He-normal convolution and fully-connected weights, small biases) whose
    BatchNorm statistics are those of the layers' inputs on ``input_hwc``, so
    that activations stay of order 1 as in a trained network."""
    from ..model.weights import synthesize

    if not net.inputs:
        return dict(synthesize(net, seed))
    x = np.asarray(input_hwc, np.float32).transpose(2, 0, 1)[None]
    return dict(synthesize(net, seed, calibration_inputs={net.inputs[0].name: x}))


def verify_network(net: Net, *, weights: Mapping[str, tuple] | None = None,
                   input_hwc: np.ndarray | None = None, seed: int = 0,
                   target: GraphFormat | str = GraphFormat.NCSDK2, shaves: int = 12,
                   output: str | None = None, device: str = "emulator",
                   stick_options: Mapping | None = None) -> Verification:
    """Build ``net`` for ``target`` in memory, run it on ``device`` and compare
    its output with the fp32 reference's.

    ``weights`` (layer name -> blobs, Caffe layouts) default to ``net.weights``
    (the caffemodel's); layers without any get zeros, as the vendor compiler
    gives them.  ``input_hwc`` is the network input ``(H, W, C)`` (rounded to
    fp16, and the reference gets the rounded values too: both sides see the
    same numbers); default :func:`random_input` with ``seed``.  ``output``
    picks the blob to compare (default: the network's first output).
    ``device``: ``"emulator"``, or ``"ncs"`` for a stick over USB (NCSDK 1.x
    graphs only; ``stick_options`` go to :func:`~caffe2ncs.runtime.usb.run_graph`).

    A network declared for a batch of N images is built and checked for one.
    Raises :class:`~caffe2ncs.errors.UnsupportedNetworkError` for what cannot be
    built, run or referenced.
    """
    from ..errors import UnsupportedNetworkError, UsageError
    from ..lowering.emit import graph_bytes
    from ..lowering.graphfile import read_graph
    from ..lowering.lower import lower_network
    from ..lowering.netgraph import device_shape
    from . import reference

    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    target = GraphFormat(target)
    if device == "ncs" and target is not GraphFormat.NCSDK1:
        raise UsageError("caffe2ncs drives sticks over the NCSDK 1.x USB link, which runs "
                         "NCSDK 1.x graphs only: verify with target ncsdk1, or on the emulator")
    shape = input_shape_hwc(net)
    if input_hwc is None:
        x = random_input(shape, seed)
    else:
        x = np.asarray(input_hwc, np.float32)
        if x.shape != shape:
            raise UsageError(f"the input is {'x'.join(map(str, x.shape))} but the network takes "
                             f"{'x'.join(map(str, shape))} (HxWxC)")
        with np.errstate(over="ignore"):
            x = x.astype(np.float16).astype(np.float32)

    seconds = {}
    t0 = time.perf_counter()
    try:
        lowered = lower_network(net, target=target, shaves=shaves, weights=weights,
                                output=output, any_batch=True)
        blob = graph_bytes(lowered.graph, target)
    except UnsupportedNetworkError as err:
        raise err.with_path(net.path) if net.path else err from None
    graph = read_graph(blob)  # what the device gets: the file, not the in-memory IR
    seconds["build"] = time.perf_counter() - t0
    if lowered.input is not None and net.inputs and lowered.input != net.inputs[0].name:
        raise UnsupportedNetworkError(
            f"the graph reads input {lowered.input!r}; verify feeds the first input, "
            f"{net.inputs[0].name!r}", net.path)

    t0 = time.perf_counter()
    stick_ms = None
    if device == "emulator":
        from .emulator import Emulator

        raw = Emulator(graph).run(x)
        where = "fp16 emulator"
    else:
        from .usb import run_graph

        got = run_graph(blob, [x.astype(np.float16)], **dict(stick_options or {}))[0]
        raw, stick_ms = got.output, got.total_ms
        where = "Neural Compute Stick"
    seconds["device"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    feed = {net.inputs[0].name: x.transpose(2, 0, 1)[None]}
    expected = reference.run(net, feed, weights, outputs=[lowered.output])[lowered.output]
    seconds["reference"] = time.perf_counter() - t0

    c, h, w = device_shape(expected.shape, f"blob {lowered.output!r}", any_batch=True)
    expected = np.asarray(expected[:1], np.float32).reshape(-1)
    raw = np.asarray(raw, np.float32).reshape(-1)
    oh, ow, oc = graph.output.shape_hwc
    producer = net.producers(lowered.output)
    is_detection = bool(producer) and producer[-1].type == "DetectionOutput"
    if is_detection:
        result = raw
        comparison = compare_detections(detection_rows(raw, device=True),
                                         detection_rows(expected, device=False))
    else:
        if (oh, ow, oc) != (h, w, c) or raw.size < c * h * w:
            raise UnsupportedNetworkError(
                f"the graph's output is {oh}x{ow}x{oc} (HxWxC) but blob {lowered.output!r} is "
                f"{c}x{h}x{w} (CxHxW)", net.path)
        result = raw[:c * h * w].reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
        comparison = compare(result, expected)

    warnings = list(lowered.warnings)
    return Verification(
        network=net.name or (os.path.basename(net.path) if net.path else "network"),
        output=lowered.output, target=target, shaves=shaves, device=where,
        stages=len(graph.stages), input_hwc=x, result=result, expected=expected,
        comparison=comparison, detections=is_detection, warnings=tuple(warnings),
        seconds=seconds, stick_ms=stick_ms)
