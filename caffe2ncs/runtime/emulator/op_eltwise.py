"""ELTWISE_SUM / ELTWISE_PROD / ELTWISE_MAX of two tensors of the same shape:
``y = a + b``, ``a * b`` or ``max(a, b)``.

``a`` is the stage's input, ``b`` the tensor in its **taps** slot (a work
buffer, the network input or a constant).  ``b`` is read through its own
descriptor when that describes a tensor of ``a``'s shape (NCSDK 2.x); NCSDK 1.x
compilers store weight-style dims ``(1, C, K)`` in the taps slot, so then ``b``
is read with ``a``'s dims and strides at ``b``'s location and offset.  Caffe's
``coeff`` does not exist on the device (the compiler ignores it).
"""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .stage import StageSpec, same_shape

OPS = (Op.ELTWISE_SUM, Op.ELTWISE_PROD, Op.ELTWISE_MAX)

FUNCTIONS = {Op.ELTWISE_SUM: np.add, Op.ELTWISE_PROD: np.multiply, Op.ELTWISE_MAX: np.maximum}


def operand_layout(spec: StageSpec, slot: str = "taps") -> dict:
    """Keyword arguments for :meth:`Memory.read` of a second activation operand
    in ``slot``: its own descriptor, or the input's dims/strides (see above)."""
    a, b = spec.ref("input"), spec.ref(slot)
    if tuple(b.dims) == tuple(a.dims) and all(b.strides):
        return {}
    return {"dims": tuple(a.dims), "strides": tuple(a.strides)}


def prepare(spec: StageSpec):
    same_shape(spec)
    fn = FUNCTIONS[spec.op]
    b_layout = operand_layout(spec)

    def compute(mem):
        a = mem.read(spec.stage.input, "input")
        b = mem.read(spec.stage.taps, "second operand (taps)", **b_layout)
        with np.errstate(all="ignore"):
            return fn(a, b)

    return compute
