"""RESHAPE with Caffe's semantics: the values keep Caffe's planar (C, H, W) order.

``y_chw = x_chw.reshape(Co, Ho, Wo)``, both tensors stored HWC as usual; the
new shape is the output buffer's (with the same number of values).  What the
firmware does is not documented; a plain copy of the HWC memory would break the
SSD networks the vendor validated, whose reshape-softmax-flatten of the class
scores needs the planar order, so this is the reading that makes them work."""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError
from ...lowering.ir import Op
from .stage import StageSpec

OPS = (Op.RESHAPE,)


def reshape_planar(x: np.ndarray, out_hwc: tuple[int, int, int]) -> np.ndarray:
    ho, wo, co = out_hwc
    return x.transpose(2, 0, 1).reshape(co, ho, wo).transpose(1, 2, 0)


def prepare(spec: StageSpec):
    (h, w, c), out_hwc = spec.in_hwc, spec.out_hwc
    if h * w * c != out_hwc[0] * out_hwc[1] * out_hwc[2]:
        raise GraphFileError(f"cannot reshape {h}x{w}x{c} = {h * w * c} values to "
                             f"{'x'.join(map(str, out_hwc))} (HxWxC)")

    def compute(mem):
        return reshape_planar(mem.read(spec.stage.input, "input"), out_hwc)

    return compute
