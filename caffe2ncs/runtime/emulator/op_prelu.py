"""PRELU: ``y[c] = x[c] if x[c] > 0 else slope[c] * x[c]``.

The slopes are the fp16 constant in the stage's **bias** slot, one per channel
(Caffe's ``channel_shared`` single slope must be repeated by the compiler: the
device reads ``C`` values)."""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, same_shape

OPS = (Op.PRELU,)


def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, x * slope)


def prepare(spec: StageSpec):
    c = same_shape(spec)[2]
    slope = spec.constant("bias", c)

    def compute(mem):
        return prelu(mem.read(spec.stage.input, "input"), slope)

    return compute
