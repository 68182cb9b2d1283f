"""Synthetic weights: zeros (what the vendor compiler uses without a caffemodel)
and seeded random weights with realistic statistics (for testing a network
end to end without its trained weights), and saving them as a caffemodel.

Random weights are made so that, for an input of unit range (values in
[-1, 1]), activations stay O(1) through any depth, as a trained network's do,
including 150-layer residual networks (whose activations otherwise grow block
after block, to 1e12 in ResNet-152, far past the float16 range the device
computes in):

* convolution and fully-connected weights are He-normal, ``std = sqrt(2 /
  fan_in)`` with fan-in = input channels per group x kernel area (for a
  deconvolution, divided by the stride area: each output pixel sums that share
  of the taps), so that a layer followed by a ReLU keeps the mean square of
  its input; a ``bilinear`` weight filler is honoured as Caffe's
  ``BilinearFiller`` fills it (the fixed upsampling layers that use it keep
  those weights); biases are uniform in [-0.1, 0.1];
* BatchNorm statistics match what the layer receives: the network runs in the
  reference executor on a seeded input uniform in [-1, 1) (batch 1), or on the
  input it is about to be run on (``calibration_inputs``), while the weights
  are drawn, up to its last BatchNorm, and each BatchNorm's variance
  is the mean square of its actual input (one value for all its channels), its
  means small random values of that scale (normal, std 0.1 x its root mean
  square), the scale factor 1.  Its output then has mean square ~1.  (Each
  channel's own mean and variance would be more literal, but makes a random
  network chaotic: every layer amplifies rounding errors by ~1.2, and
  Inception-v4's float32 and float64 outputs differ by 3e-4 relative, 1e-3
  after the Softmax - against 5e-7 this way - which would make any float16
  comparison of random weights meaningless.)  Past a layer the executor cannot
  run, the mean square is estimated layer by layer instead;
* Scale multipliers are uniform in [0.8, 1.2] with biases normal (std 0.1),
  except the last Scale of a residual branch (one whose output is added to a
  shallower shortcut by an Eltwise SUM or an Axpy): multipliers in [0.1, 0.3],
  biases std 0.02, as in trained residual networks, so each block adds a
  little to its shortcut;
* Bias layers: normal, std 0.1; PReLU slopes 0.25; SSD Normalize scales
  uniform in [5, 15].

Each layer's random stream is derived from the seed and the layer's name, so
adding a layer does not change the random draws of the others (a BatchNorm's
statistics follow the weights upstream of it, by design).  Synthesizing costs
one forward pass up to the last BatchNorm for networks that have one.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Mapping

import numpy as np

from .frozen import unwrap
from .net import Layer, Net
from .params import expected_blob_shapes


def layer_blob_shapes(net: Net) -> Iterator[tuple[Layer, list[tuple[int, ...]]]]:
    """Each layer that learns something, with the shapes of its blobs."""
    for layer in net.layers:
        shapes = expected_blob_shapes(layer, net.layer_shapes[layer.index].inputs)
        if shapes:
            yield layer, shapes


def _rng(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _normal(rng: np.random.Generator, mean: float, std: float, shape) -> np.ndarray:
    # Drawn as float32 directly: a float64 draw then a cast takes 2.5x the time
    # and 3x the memory (VGG-16's 138 M weights: 4.3 s -> 1.1 s).
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(std)
    out += np.float32(mean)
    return out


def _uniform(rng: np.random.Generator, low: float, high: float, shape) -> np.ndarray:
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(high - low)
    out += np.float32(low)
    return out


def zero_blobs(shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [np.zeros(s, dtype=np.float32) for s in shapes]


def synthesize(net: Net, seed: int | None = None,
               calibration_inputs: Mapping[str, np.ndarray] | None = None,
               ) -> dict[str, tuple[np.ndarray, ...]]:
    """Weights for every layer that needs them: random (seeded) or, with
    ``seed=None``, zeros.  The arrays are float32 and read-only.

    ``calibration_inputs`` (input name -> array, batch 1) are what the
    BatchNorm statistics are measured on, instead of the seeded uniform input:
    the input a network is about to be run on, so that its activations are
    of order 1 on exactly that input."""
    out = {}
    if seed is None:
        for layer, shapes in layer_blob_shapes(net):
            out[layer.name] = _frozen(zero_blobs(shapes))
    else:
        for layer, blobs in random_weights(net, seed, calibration_inputs):
            if blobs:
                out[layer.name] = _frozen(blobs)
    return out


def _frozen(blobs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    for b in blobs:
        b.flags.writeable = False
    return tuple(blobs)


def save_caffemodel(net: Net, path: str | os.PathLike[str], seed: int | None = 0,
                    weights: dict | None = None) -> None:
    """Write a caffemodel for ``net``: the given weights, else synthetic ones
    (random with ``seed``, zeros with ``seed=None``), one layer at a time.

    Like the caffemodels Caffe writes, the file holds the whole network - every
    layer, with blobs for those that have weights, and the inputs - so that it
    also loads on its own."""
    from .._proto import caffe_pb2 as pb
    from .caffemodel import write_caffemodel

    def entries():
        if weights is None and seed is not None:
            for layer, blobs in random_weights(net, seed):
                yield unwrap(layer.param), blobs
            return
        for layer in net.layers:
            if weights is not None:
                blobs = weights.get(layer.name, ())
            else:
                shapes = expected_blob_shapes(layer, net.layer_shapes[layer.index].inputs)
                blobs = zero_blobs(shapes) if shapes else ()
            yield unwrap(layer.param), blobs

    header = pb.NetParameter(name=net.name)
    for spec in net.inputs:
        header.input.append(spec.name)
    if all(spec.shape is not None for spec in net.inputs):
        for spec in net.inputs:
            header.input_shape.add().dim.extend(spec.shape)
    write_caffemodel(path, entries(), header=header)


# -- random weights -------------------------------------------------------------------

def random_weights(net: Net, seed: int,
                   calibration_inputs: Mapping[str, np.ndarray] | None = None,
                   ) -> Iterator[tuple[Layer, list[np.ndarray]]]:
    """Each layer in order with its random blobs (an empty list for a layer
    with none), drawn as the module docstring says (BatchNorm statistics
    measured on ``calibration_inputs`` when given, see :func:`synthesize`)."""
    run = _Calibration(net, seed, calibration_inputs)
    branch_ends = residual_branch_scales(net)
    for layer in net.layers:
        io = net.layer_shapes[layer.index]
        shapes = expected_blob_shapes(layer, io.inputs) or []
        if not shapes:
            blobs = []
        elif layer.type == "BatchNorm":
            c = shapes[0][0]
            # One variance for the layer: the mean square of what it receives
            # (see the module docstring for why not each channel's own).
            square = run.mean_square(layer.bottoms[0])
            rng = _rng(seed, layer.name)
            blobs = [_normal(rng, 0.0, 0.1 * math.sqrt(square), (c,)),
                     np.full((c,), square, dtype=np.float32), np.ones(shapes[2], dtype=np.float32)]
        else:
            blobs = _draw(layer, shapes, seed, layer.index in branch_ends)
        run.step(layer, blobs)
        yield layer, blobs


#: the mean square of every network input: uniform in [-1, 1)
INPUT_MEAN_SQUARE = 1.0 / 3.0
#: inputs larger than this are not run for calibration (their statistics are estimated)
_MAX_INPUT_ELEMENTS = 64 << 20


class _Calibration:
    """The mean square of each blob's values, layer after layer, for the
    BatchNorm statistics.

    The network runs in the reference executor on one seeded input uniform in
    [-1, 1), with the weights as they are drawn, as far as it can and only up
    to its last BatchNorm, so that each BatchNorm gets the mean square of
    exactly what it receives.  Past a layer the executor cannot run (a Python
    layer, an unknown type, a layer Caffe would refuse) the mean square is
    estimated (:func:`_estimate`)."""

    def __init__(self, net: Net, seed: int,
                 inputs: Mapping[str, np.ndarray] | None = None) -> None:
        self.net = net
        self.values: dict[str, np.ndarray] = {}
        self.estimates: dict[str, float] = {}
        #: the last layer reading each blob, so values are dropped once read
        self.last_read: dict[str, int] = {}
        bn = [layer.index for layer in net.layers if layer.type == "BatchNorm"]
        self.last = bn[-1] if bn else -1
        self.supported: frozenset[str] = frozenset()
        if self.last < 0:
            return  # nothing to calibrate
        from ..runtime.reference.executor import supported_types

        self.supported = supported_types()
        for layer in net.layers:
            for b in layer.bottoms:
                self.last_read[b] = layer.index
        if inputs is not None:
            self.values = {name: np.asarray(value, np.float32) for name, value in inputs.items()}
            return
        rng = _rng(seed, "\0input")
        for spec in net.inputs:
            if spec.shape is not None and len(spec.shape) >= 1:
                shape = (1, *spec.shape[1:])
                if math.prod(shape) <= _MAX_INPUT_ELEMENTS:
                    self.values[spec.name] = _uniform(rng, -1.0, 1.0, shape)

    def mean_square(self, blob: str) -> float:
        value = self.values.get(blob)
        if value is None:
            return self.estimates.get(blob, INPUT_MEAN_SQUARE)
        m2 = float(np.mean(np.square(value, dtype=np.float64)))
        return m2 if m2 > 0 and math.isfinite(m2) else 1.0

    def step(self, layer: Layer, blobs: list[np.ndarray]) -> None:
        index = layer.index
        tops = None
        if index <= self.last and layer.type in self.supported and \
                all(b in self.values for b in layer.bottoms):
            from ..errors import Caffe2NcsError
            from ..runtime.reference.executor import run_layer

            try:
                tops = run_layer(self.net, layer, [self.values[b] for b in layer.bottoms], blobs)
            except Caffe2NcsError:
                tops = None  # e.g. a layer Caffe would refuse: estimate from here on
        if tops is None and index < self.last:
            estimate = _estimate(layer, [self.mean_square(b) for b in layer.bottoms], blobs)
            for top in layer.tops:
                self.estimates[top] = estimate
        for b in layer.bottoms:  # drop what nothing reads any more
            if self.last_read.get(b, -1) <= index:
                self.values.pop(b, None)
        for i, top in enumerate(layer.tops):
            if tops is not None and self.last_read.get(top, -1) > index:
                self.values[top] = tops[i]
            else:
                self.values.pop(top, None)


def _estimate(layer: Layer, ins: list[float], blobs: list[np.ndarray]) -> float:
    """A rough mean square of ``layer``'s output from its inputs' (used only
    past a layer the calibration cannot run)."""
    t = layer.type
    x = ins[0] if ins else INPUT_MEAN_SQUARE
    if t in ("Convolution", "DepthwiseConvolution", "ConvolutionDepthwise", "InnerProduct") \
            and blobs:
        w = blobs[0]
        # each output sums its weights times the inputs: the mean over outputs
        # of the sum of its squared weights is the gain on the mean square
        gain = float(np.mean(np.sum(np.square(w.reshape(w.shape[0], -1), dtype=np.float64),
                                    axis=1)))
        return x * gain + (float(np.mean(np.square(blobs[1], dtype=np.float64)))
                           if len(blobs) > 1 else 0.0)
    if t in ("ReLU", "PReLU"):
        slope = 0.25 if t == "PReLU" else unwrap(layer.param).relu_param.negative_slope
        return x * (1 + slope * slope) / 2
    if t == "BatchNorm":
        return 1.0
    if t == "Scale" and blobs and len(layer.bottoms) == 1:
        return x * float(np.mean(np.square(blobs[0], dtype=np.float64)))
    if t == "Eltwise" and unwrap(layer.param).eltwise_param.operation == 1:
        return sum(ins)
    if t == "Concat":
        return sum(ins) / len(ins)
    return x


def residual_branch_scales(net: Net) -> set[int]:
    """Indices of the Scale layers that end a residual branch: those whose top
    is added (Eltwise SUM, or Axpy's ``x``) to a shallower blob, the shortcut
    (depth = the longest chain of layers from the inputs)."""
    depth: dict[str, int] = {}
    out: set[int] = set()
    for layer, producers in zip(net.layers, net.bottom_producers):
        ins = [depth.get(b, 0) for b in layer.bottoms]
        pb = unwrap(layer.param)
        if len(ins) >= 2 and ((layer.type == "Eltwise" and pb.eltwise_param.operation == 1) or
                              (layer.type == "Axpy" and len(ins) == 3)):
            candidates = range(len(ins)) if layer.type == "Eltwise" else (1,)
            shallowest = min(ins) if layer.type == "Eltwise" else ins[2]
            for i in candidates:
                p = producers[i] if i < len(producers) else -1
                if ins[i] > shallowest and p >= 0 and net.layers[p].type == "Scale" and \
                        len(net.layers[p].bottoms) == 1:
                    out.add(p)
        d = 1 + max(ins, default=0)
        for top in layer.tops:
            depth[top] = d
    return out


def _draw(layer: Layer, shapes, seed: int, branch_end: bool = False) -> list[np.ndarray]:
    rng = _rng(seed, layer.name)
    t = layer.type
    pb = unwrap(layer.param)
    if t == "Scale":
        if len(layer.bottoms) > 1:
            return [_normal(rng, 0.0, 0.1, s) for s in shapes]
        # The last Scale of a residual branch is small, as in trained residual
        # networks: each block adds a little to the shortcut.
        low, high, beta = (0.1, 0.3, 0.02) if branch_end else (0.8, 1.2, 0.1)
        return [_uniform(rng, low, high, s) if i == 0 else _normal(rng, 0.0, beta, s)
                for i, s in enumerate(shapes)]
    if t == "Bias":
        return [_normal(rng, 0.0, 0.1, s) for s in shapes]
    if t == "PReLU":
        return [np.full(shapes[0], 0.25, dtype=np.float32)]
    if t == "Normalize":
        return [_uniform(rng, 5.0, 15.0, shapes[0])]
    if t == "Embed":
        return [_normal(rng, 0.0, 1.0, shapes[0])] + [_uniform(rng, -0.1, 0.1, s) for s in shapes[1:]]
    weights = shapes[0]
    if t in ("Convolution", "Deconvolution", "ConvolutionDepthwise", "DepthwiseConvolution") and \
            pb.convolution_param.weight_filler.type == "bilinear" and len(weights) == 4:
        out = [_bilinear(weights)]
    else:
        out = [_normal(rng, 0.0, math.sqrt(2.0 / _fan_in(layer, pb, weights)), weights)]
    out.extend(_uniform(rng, -0.1, 0.1, s) for s in shapes[1:])
    return out


def _fan_in(layer: Layer, pb, weights) -> float:
    t = layer.type
    if t == "InnerProduct" and pb.inner_product_param.transpose:
        return max(weights[0], 1)
    if t == "Deconvolution":
        # weights (C_in, K/g, kh, kw): each output pixel sums C_in/g channels
        # times (kh*kw)/(sh*sw) taps on average.
        from .shapes import ShapeError, conv_geometry

        try:
            _, stride, _, _ = conv_geometry(pb.convolution_param, len(weights) - 2)
        except ShapeError:
            stride = [1]
        group = max(pb.convolution_param.group, 1)
        return max(weights[0] // group * math.prod(weights[2:]) / math.prod(stride), 1.0)
    return max(math.prod(weights[1:]), 1)


def _bilinear(shape) -> np.ndarray:
    """Caffe's BilinearFiller (BVLC's current one, ``c = (k - 1) / 2f``): every
    (kh, kw) slice the same bilinear interpolation kernel.  (Caffe insists on
    a square kernel; each axis gets its own here.)"""

    def axis(k: int) -> np.ndarray:
        f = math.ceil(k / 2.0)
        c = (k - 1) / (2.0 * f)
        return 1 - np.abs(np.arange(k) / f - c)

    kernel = np.outer(axis(shape[2]), axis(shape[3])).astype(np.float32)
    return np.broadcast_to(kernel, shape).copy()
