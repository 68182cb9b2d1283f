"""SQUARE: ``y = x * x`` (the first stage of the compiler's within-channel LRN:
square, average pool, inner LRN, product)."""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, elementwise

OPS = (Op.SQUARE,)


def prepare(spec: StageSpec):
    return elementwise(spec, np.square)
