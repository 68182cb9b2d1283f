"""COPY: ``y = x`` -- moves a tensor between buffers.  With the input's and the
output's strides and offsets this is how the compiler materialises a channel
slice (a reader with a channel offset) or an explicit concat (a writer at one)."""

from __future__ import annotations

from ...lowering.ir import Op
from .stage import StageSpec, elementwise

OPS = (Op.COPY,)


def prepare(spec: StageSpec):
    return elementwise(spec, lambda x: x)
