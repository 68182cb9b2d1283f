"""CROP: ``y = x[off_y : off_y + Ho, off_x : off_x + Wo, off_z : off_z + Co]``.

Offsets from ``OffsetParams`` (1.x stores them as ``uint32[off_y, off_x, off_z]``
op parameters, 2.x inline); the output size is the output buffer's (Caffe's
reference blob).  The window must lie inside the input."""

from __future__ import annotations

from ...errors import GraphFileError
from ...lowering.ir import Op
from .stage import StageSpec

OPS = (Op.CROP,)


def prepare(spec: StageSpec):
    p = spec.stage.params
    (h, w, c), (ho, wo, co) = spec.in_hwc, spec.out_hwc
    oy, ox, oz = p.offset_y, p.offset_x, p.offset_z
    if oy + ho > h or ox + wo > w or oz + co > c:
        raise GraphFileError(f"crops {ho}x{wo}x{co} at offset {oy},{ox},{oz} (HxWxC) out of a "
                             f"{h}x{w}x{c} input")

    def compute(mem):
        view = mem.view(spec.stage.input, "input")
        return view[oy:oy + ho, ox:ox + wo, oz:oz + co].astype("float32")

    return compute
