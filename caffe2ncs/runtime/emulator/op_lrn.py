"""LRN across channels, Caffe's ``ACROSS_CHANNELS`` normalisation:

``y[c] = x[c] * (k + alpha/size * sum of x[c']**2) ** -beta``, with ``c'`` in
``[c - (size-1)//2, c + size//2]``

(channels outside ``0..C-1`` contribute nothing).  ``size`` is
``LrnParams.size``; ``k, alpha, beta`` are the fp16 ``[k, alpha, beta, 0]``
constant the compiler puts in the stage's **bias** slot.  float32 inside, one
fp16 rounding.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError
from ...limits import check_elements
from ...lowering.ir import Op
from .stage import StageSpec, same_shape

OPS = (Op.LRN,)


def lrn_across_channels(x: np.ndarray, size: int, k: float, alpha: float,
                        beta: float) -> np.ndarray:
    """float32 ``(H, W, C)``.  The window sums are ``size`` shifted slices added
    (a running sum would subtract large prefix sums and lose digits)."""
    h, w, c = x.shape
    before = (size - 1) // 2
    check_elements((h, w, c + size), 4, "the LRN's squares")
    squares = np.zeros((h, w, c + size - 1), np.float32)
    np.multiply(x, x, out=squares[:, :, before:before + c])
    window_sums = squares[:, :, :c].copy()  # padded channel j is channel j - before
    for j in range(1, size):
        window_sums += squares[:, :, j:j + c]
    scale = np.float32(k) + np.float32(alpha / size) * window_sums
    return x * np.power(scale, np.float32(-beta), out=scale)


def lrn_constants(spec: StageSpec) -> tuple[float, float, float]:
    k, alpha, beta = (float(v) for v in spec.constant("bias", 3))
    return k, alpha, beta


def prepare(spec: StageSpec):
    same_shape(spec)
    size = spec.stage.params.size
    if size < 1:
        raise GraphFileError(f"LRN size {size} must be >= 1")
    k, alpha, beta = lrn_constants(spec)

    def compute(mem):
        with np.errstate(all="ignore"):
            return lrn_across_channels(mem.read(spec.stage.input, "input"), size, k, alpha, beta)

    return compute
