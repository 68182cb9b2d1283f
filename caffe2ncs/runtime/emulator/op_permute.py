"""PERMUTE: ``y = x.transpose(order)`` on the ``(H, W, C)`` axes.

``order`` is the ``int32[3]`` op-parameter constant in the vendor compiler's
encoding: output axis ``i`` (0 = H, 1 = W, 2 = C) is input axis ``order[i]``.
The compiler derives it from Caffe's ``permute_param.order`` (which must keep
the batch first): with Caffe's order minus the batch, ``p = order[1:] - 1``
(0 = C, 1 = H, 2 = W), it stores ``[2, 0, 1][roll(p, -1)]``; SSD's
``0, 2, 3, 1`` becomes ``1, 2, 0``.  Values outside 0..2 (such as Caffe's own
1..3 numbering) are refused rather than guessed."""

from __future__ import annotations

from ...errors import GraphFileError
from ...lowering.ir import Op
from .stage import StageSpec

OPS = (Op.PERMUTE,)


def caffe_order_to_device(order) -> tuple[int, int, int]:
    """The op-parameter encoding of Caffe's ``permute_param.order`` (4 axes, batch first)."""
    p = [a - 1 for a in order[1:]]
    rolled = p[1:] + p[:1]
    return tuple((2, 0, 1)[a] for a in rolled)


def prepare(spec: StageSpec):
    order = tuple(int(v) for v in spec.constant("op_params", 3, "<i4"))
    if sorted(order) != [0, 1, 2]:
        hint = (" (that looks like Caffe's axis numbering without the batch; the device takes "
                "the compiler's HWC encoding, see caffe_order_to_device)"
                if sorted(order) == [1, 2, 3] else "")
        raise GraphFileError(f"permute order {order} is not a permutation of 0, 1, 2{hint}")
    in_hwc = spec.in_hwc
    want = tuple(in_hwc[a] for a in order)
    if want != spec.out_hwc:
        raise GraphFileError(f"permuting {'x'.join(map(str, in_hwc))} by {order} gives "
                             f"{'x'.join(map(str, want))}, but the output buffer is "
                             f"{'x'.join(map(str, spec.out_hwc))} (HxWxC)")

    def compute(mem):
        return mem.read(spec.stage.input, "input").transpose(order)

    return compute
