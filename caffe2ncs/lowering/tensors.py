"""Weights: where they come from, and how they become fp16 constants of the
graph's data section.

Weights are read from ``net.weights`` (read-only float32 views onto the
memory-mapped caffemodel) or from a mapping given to the lowering; a layer
with no weights gets zeros, as ``mvNCCompile`` does without a caffemodel.
Each constant is converted on its own, straight from the float32 view into a
zero-padded fp16 buffer, so converting a large network never holds a second
float32 copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import CaffemodelError, UnsupportedNetworkError
from ..model.frozen import unwrap
from ..model.net import Layer, Net
from ..model.params import expected_blob_shapes
from .ir import CONSTANT_ALIGNMENT, Constant, align

FP16_MAX = 65504.0


class Weights:
    """The learned blobs of each layer, with zeros where there are none."""

    def __init__(self, net: Net, source: Mapping[str, tuple] | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.net = net
        self.source = net.weights if source is None else source
        #: Layers that needed weights and had none (they got zeros).
        self.missing: list[str] = []
        #: Constants with values outside the fp16 range (they became +-inf).
        self.overflow: list[str] = []
        self._progress = progress

    def blobs(self, layer: Layer) -> list[np.ndarray | None]:
        """The layer's blobs in Caffe's order; ``None`` for each blob it lacks
        (read as zeros).  The list has one entry per blob Caffe gives the layer."""
        shapes = expected_blob_shapes(layer, self.net.layer_shapes[layer.index].inputs)
        have = self.source.get(layer.name)
        n = len(shapes) if shapes is not None else len(have or ())
        if not have:
            if n:
                self.missing.append(layer.name)
            return [None] * n
        if shapes is not None and len(have) != len(shapes):
            raise UnsupportedNetworkError(
                f"layer {layer.name!r} ({layer.type}) has {len(have)} weight blob(s), "
                f"the prototxt needs {len(shapes)}")
        out = []
        for i, arr in enumerate(have):
            arr = np.asarray(arr)
            if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
                bad = int(np.isnan(arr).sum())
                what = f"{bad} NaN" if bad else f"{int(np.isinf(arr).sum())} infinite"
                raise CaffemodelError(
                    f"layer {layer.name!r} ({layer.type}): weight blob {i} holds {what} value(s); "
                    "the caffemodel is corrupt (or from a training that diverged)",
                    self.net.weights_path)
            if shapes is not None and tuple(arr.shape) != tuple(shapes[i]):
                if arr.size != int(np.prod(shapes[i])):
                    raise UnsupportedNetworkError(
                        f"layer {layer.name!r} ({layer.type}): weight blob {i} has shape "
                        f"{tuple(arr.shape)}, the prototxt needs {tuple(shapes[i])}")
                arr = arr.reshape(shapes[i])
            out.append(arr)
        return out

    def blob_shape(self, layer: Layer, i: int) -> tuple[int, ...]:
        shapes = expected_blob_shapes(layer, self.net.layer_shapes[layer.index].inputs)
        if shapes is None or i >= len(shapes):
            raise UnsupportedNetworkError(f"layer {layer.name!r}: the shape of its weights "
                                          "is unknown")
        return tuple(shapes[i])

    def converted(self, nbytes: int) -> None:
        if self._progress is not None and nbytes:
            self._progress(nbytes)

    # ------------------------------------------------------------------ constants

    def fp16(self, name: str, array: np.ndarray | None, count: int) -> Constant:
        """A 1-D fp16 constant of ``count`` values (zeros when ``array`` is None)."""
        size = align(2 * count, CONSTANT_ALIGNMENT)
        if array is None:
            return Constant(name, bytes(size), "float16")
        buf = np.zeros(size // 2, dtype="<f2")
        flat = np.asarray(array, dtype=np.float64).reshape(-1)
        if flat.size != count:
            raise ValueError(f"{name}: {flat.size} values for {count}")
        with np.errstate(over="ignore"):
            buf[:count] = flat
        self._check(name, buf[:count])
        return Constant(name, buf.tobytes(), "float16")

    def hwck(self, name: str, kchw: np.ndarray | None, shape: tuple[int, int, int, int], *,
             pad_k_to: int = 1) -> Constant:
        """Weights ``(K, C, kh, kw)`` as fp16 HWCK, followed by zeros up to the size
        they would have if ``K`` were a multiple of ``pad_k_to`` (NCSDK 2.05's
        reservation for convolution and fully-connected taps), then to 64 bytes.
        ``kchw`` may be any array-like of that shape (a transposed or flipped view
        is fine: it is read once, while converting); None means zeros."""
        k, c, kh, kw = shape
        n = kh * kw * c * k
        k_reserved = -(-k // pad_k_to) * pad_k_to if pad_k_to > 1 else k
        size = align(2 * max(n, kh * kw * c * k_reserved), CONSTANT_ALIGNMENT)
        if kchw is None:
            return Constant(name, bytes(size), "float16")
        if tuple(kchw.shape) != (k, c, kh, kw):
            raise ValueError(f"{name}: weights {kchw.shape}, expected {shape}")
        buf = np.zeros(size // 2, dtype="<f2")
        dest = buf[:n].reshape(kh, kw, c, k)
        # Copy one output channel block at a time: the transposing cast then reads
        # the (usually memory-mapped) float32 source in order.
        step = max(1, (1 << 22) // max(1, c * kh * kw))
        with np.errstate(over="ignore"):
            for k0 in range(0, k, step):
                dest[:, :, :, k0:k0 + step] = np.transpose(kchw[k0:k0 + step], (2, 3, 1, 0))
                self.converted(4 * c * kh * kw * min(step, k - k0))
        self._check(name, buf[:n])
        return Constant(name, buf.tobytes(), "float16")

    def _check(self, name: str, values: np.ndarray) -> None:
        if values.size and not np.isfinite(values).all():
            self.overflow.append(name)


@dataclass
class Affine:
    """A per-channel ``y = scale * x + shift`` in float64 (a BatchNorm, a Scale,
    a learned Bias, or several of them composed).  ``shift`` is None when no
    layer in the chain adds a bias (a Scale without ``bias_term``)."""

    scale: np.ndarray
    shift: np.ndarray | None

    def then(self, other: Affine) -> Affine:
        """``other`` applied after ``self``."""
        scale = self.scale * other.scale
        if self.shift is None and other.shift is None:
            return Affine(scale, None)
        shift = (self.shift * other.scale if self.shift is not None
                 else np.zeros_like(scale))
        if other.shift is not None:
            shift = shift + other.shift
        return Affine(scale, shift)


def affine_of(layer: Layer, weights: Weights, channels: int) -> Affine:
    """The per-channel affine of a one-input BatchNorm, Scale or Bias layer."""
    blobs = weights.blobs(layer)
    pb = unwrap(layer.param)

    def per_channel(arr: np.ndarray | None, what: str, default: float) -> np.ndarray:
        if arr is None:
            return np.full(channels, default, dtype=np.float64)
        flat = np.asarray(arr, dtype=np.float64).reshape(-1)
        if flat.size == 1:
            return np.full(channels, flat[0])
        if flat.size != channels:
            raise UnsupportedNetworkError(
                f"layer {layer.name!r} ({layer.type}): its {what} has {flat.size} values; the "
                f"device applies one per channel ({channels}) or one for all")
        return flat

    if layer.type == "BatchNorm":
        mean, var, factor = (blobs + [None, None, None])[:3]
        eps = float(pb.batch_norm_param.eps)
        f = 0.0 if factor is None else float(np.asarray(factor, dtype=np.float64).reshape(-1)[0])
        # mvNCCompile: a zero scale factor means mean 0 and variance 0 (+eps), as in
        # Caffe (which multiplies the stored statistics by 1/factor, or by 0).
        if f == 0.0:
            m = np.zeros(channels)
            v = np.zeros(channels) + eps
        else:
            m = per_channel(mean, "mean", 0.0) / f
            v = per_channel(var, "variance", 0.0) / f + eps
        mult = 1.0 / np.sqrt(v)
        return Affine(mult, -m * mult)
    if layer.type == "Scale":
        scale = per_channel(blobs[0] if blobs else None, "scale", 0.0)
        shift = None
        if pb.scale_param.bias_term:
            shift = per_channel(blobs[1] if len(blobs) > 1 else None, "bias", 0.0)
        return Affine(scale, shift)
    # a learned Bias
    return Affine(np.ones(channels), per_channel(blobs[0] if blobs else None, "bias", 0.0))
