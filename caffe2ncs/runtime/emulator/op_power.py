"""POWER, Caffe's: ``y = (shift + scale * x) ** power``.

``PowerParams`` hold float32 ``shift, scale, power``.  A negative base with a
non-integer power gives NaN, as in Caffe.  float32 inside, one fp16 rounding.
"""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, elementwise

OPS = (Op.POWER,)


def power(x: np.ndarray, shift: float, scale: float, exponent: float) -> np.ndarray:
    base = np.float32(shift) + np.float32(scale) * x
    if exponent == 1:
        return base
    return np.power(base, np.float32(exponent))


def prepare(spec: StageSpec):
    p = spec.stage.params
    return elementwise(spec, lambda x: power(x, p.shift, p.scale, p.power))
