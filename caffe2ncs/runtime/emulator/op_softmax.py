"""SOFTMAX along one axis: ``y = exp(x - max(x)) / sum(exp(x - max(x)))``.

The axis is Caffe's (``SoftmaxParams.axis``, NCHW numbering without changing
the data's HWC storage): 1 = channels (per pixel; what classification networks
use), 2 = height (what SSD's ``mbox_conf_softmax`` uses after its reshape), 3 =
width.  The vendor compiler accepts only 1 and 2.  float32 inside, one fp16
rounding of the result.
"""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedNetworkError
from ...lowering.ir import Op
from .stage import StageSpec, same_shape

OPS = (Op.SOFTMAX,)

#: Caffe axis -> axis of the (H, W, C) array.
AXES = {1: 2, 2: 0, 3: 1}


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """float32 softmax along ``axis`` of ``x``."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def prepare(spec: StageSpec):
    same_shape(spec)
    caffe_axis = spec.stage.params.axis
    if caffe_axis not in AXES:
        raise UnsupportedNetworkError(f"softmax over axis {caffe_axis} is not emulated "
                                      f"(1 = channels, 2 = height, 3 = width)")
    axis = AXES[caffe_axis]

    def compute(mem):
        return softmax(mem.read(spec.stage.input, "input"), axis)

    return compute
