"""RSQRT: ``y = 1 / sqrt(x)`` (inf at 0, NaN below, as IEEE arithmetic gives)."""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, elementwise

OPS = (Op.RSQRT,)


def rsqrt(x: np.ndarray) -> np.ndarray:
    return 1 / np.sqrt(x)


def prepare(spec: StageSpec):
    return elementwise(spec, rsqrt)
