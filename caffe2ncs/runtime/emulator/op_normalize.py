"""NORMALIZE (SSD's L2 normalisation), SSD-Caffe's semantics:

* per pixel (``across_spatial`` 0):
  ``y[h, w, c] = x[h, w, c] / sqrt(sum over c' of x[h, w, c']**2 + eps)``
* across spatial (1): one norm ``sqrt(sum of all x**2 + eps)`` for the whole tensor

then ``y[..., c] *= scale[c]`` (``scale[0]`` for every channel when
``channel_shared``).  The op parameters are ``int32[across_spatial,
channel_shared]``, followed by ``float32 eps`` in NCSDK 2.05 files (1e-10,
Caffe's default, when absent or zero); the scales are the fp16 taps constant.
"""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, same_shape

OPS = (Op.NORMALIZE,)

DEFAULT_EPS = 1e-10


def normalize(x: np.ndarray, scale: np.ndarray, *, across_spatial: bool,
              eps: float = DEFAULT_EPS) -> np.ndarray:
    """float32 ``(H, W, C)``; ``scale`` has 1 or ``C`` values."""
    squares = x * x
    if across_spatial:
        norm = np.sqrt(squares.sum(dtype=np.float32) + np.float32(eps))
    else:
        norm = np.sqrt(squares.sum(axis=2, keepdims=True) + np.float32(eps))
    return x / norm * scale


def prepare(spec: StageSpec):
    c = same_shape(spec)[2]
    raw = spec.constant("op_params", 12, "<u1").tobytes()
    across_spatial, channel_shared = np.frombuffer(raw[:8], "<i4")
    eps = float(np.frombuffer(raw[8:12], "<f4")[0]) or DEFAULT_EPS
    scale = spec.constant("taps", 1 if channel_shared else c)

    def compute(mem):
        with np.errstate(all="ignore"):
            return normalize(mem.read(spec.stage.input, "input"), scale,
                             across_spatial=bool(across_spatial), eps=eps)

    return compute
