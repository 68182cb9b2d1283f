"""TO_PLANE_MAJOR (Caffe's Flatten): the input's values in Caffe's planar order.

``y.ravel() = x.transpose(C, H, W).ravel()``: the output buffer (normally
``1x1x(C*H*W)``) receives, in its HWC memory order, channel 0's plane row by
row, then channel 1's, ...  -- what a Caffe InnerProduct or Reshape after a
Flatten expects."""

from __future__ import annotations

from ...errors import GraphFileError
from ...lowering.ir import Op
from .stage import StageSpec

OPS = (Op.TO_PLANE_MAJOR,)


def to_plane_major(x, out_hwc):
    return x.transpose(2, 0, 1).reshape(out_hwc)


def prepare(spec: StageSpec):
    (h, w, c), out_hwc = spec.in_hwc, spec.out_hwc
    if h * w * c != out_hwc[0] * out_hwc[1] * out_hwc[2]:
        raise GraphFileError(f"flattens {h}x{w}x{c} = {h * w * c} values into a buffer of "
                             f"{out_hwc[0] * out_hwc[1] * out_hwc[2]}")

    def compute(mem):
        return to_plane_major(mem.read(spec.stage.input, "input"), out_hwc)

    return compute
