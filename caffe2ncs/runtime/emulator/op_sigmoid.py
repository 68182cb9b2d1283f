"""SIGMOID: ``y = 1 / (1 + exp(-x))``, float32 inside, one fp16 rounding."""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, elementwise

OPS = (Op.SIGMOID,)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def prepare(spec: StageSpec):
    return elementwise(spec, sigmoid)
