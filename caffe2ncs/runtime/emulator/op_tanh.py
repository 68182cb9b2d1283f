"""TANH: ``y = tanh(x)``, float32 inside, one fp16 rounding."""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, elementwise

OPS = (Op.TANH,)


def prepare(spec: StageSpec):
    return elementwise(spec, np.tanh)
