"""SCALE: ``y[c] = x[c] * scale[c] + bias[c]`` per channel (a Caffe Scale, or a
BatchNorm the compiler could not fold into a convolution).  ``scale`` is the fp16
taps constant (``C`` values), ``bias`` the optional fp16 bias."""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, same_shape

OPS = (Op.SCALE,)


def scale(x: np.ndarray, s: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    y = x * s
    if b is not None:
        y += b
    return y


def prepare(spec: StageSpec):
    c = same_shape(spec)[2]
    s = spec.constant("taps", c)
    b = spec.bias(c)

    def compute(mem):
        with np.errstate(all="ignore"):
            return scale(mem.read(spec.stage.input, "input"), s, b)

    return compute
