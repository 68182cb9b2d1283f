"""Op-parameter arrays: how typed :mod:`~caffe2ncs.lowering.ir` parameters map to
the constants of the data section, and helpers to build the arrays a lowering
pass needs (layouts from the reference notes, section 1.1 "Op parameter
buffers"; not verified against vendor files, which contain none of these ops
except the convolution's ``[dilation]``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from ..ir import (
    CONV_OPS,
    Constant,
    ConvParams,
    OffsetParams,
    Op,
    OpParams,
    PowerParams,
    SoftmaxParams,
)

#: Ops whose typed parameters the 1.x format keeps in the op-params buffer
#: (2.x keeps them inline).
NCSDK1_PARAMS_IN_BUFFER = frozenset(CONV_OPS | {Op.SOFTMAX, Op.CROP, Op.POWER})


def encode(op: Op, params: OpParams | None) -> tuple[bytes, str] | None:
    """The 1.x op-params bytes (unpadded) and numpy dtype for ``params``, or None
    for ops whose typed parameters are not kept in an op-params buffer."""
    if op in CONV_OPS and isinstance(params, ConvParams):
        return struct.pack("<i", params.dilation), "int32"
    if op is Op.SOFTMAX and isinstance(params, SoftmaxParams):
        return struct.pack("<i", params.axis), "int32"
    if op is Op.CROP and isinstance(params, OffsetParams):
        # [W, H, C]: the legacy Caffe parser (1.12 and 2.05 alike) builds its crop
        # offsets as [C, H, W] and reverses them; its comment calls the result
        # "[offset_H, offset_W, offset_Z]", but the bytes are [W, H, C] -- the same
        # order 2.05's Crop record pushes as offset_dimX, offset_dimY, offset_dimZ.
        return struct.pack("<3I", params.offset_x, params.offset_y, params.offset_z), "uint32"
    if op is Op.POWER and isinstance(params, PowerParams):
        return struct.pack("<3f", params.shift, params.scale, params.power), "float32"
    return None


def encoded_constant(name: str, op: Op, params: OpParams | None) -> Constant | None:
    enc = encode(op, params)
    return None if enc is None else Constant(name, enc[0], enc[1])


def decode(op: Op, data: bytes) -> dict | None:
    """Typed-parameter fields from a 1.x op-params buffer (None if too short or
    the op keeps none there)."""
    if op in CONV_OPS and len(data) >= 4:
        return {"dilation": struct.unpack_from("<i", data)[0]}
    if op is Op.SOFTMAX and len(data) >= 4:
        return {"axis": struct.unpack_from("<i", data)[0]}
    if op is Op.CROP and len(data) >= 12:
        x, y, z = struct.unpack_from("<3I", data)
        return {"offset_x": x, "offset_y": y, "offset_z": z}
    if op is Op.POWER and len(data) >= 12:
        s, c, p = struct.unpack_from("<3f", data)
        return {"shift": s, "scale": c, "power": p}
    return None


def matches(op: Op, params: OpParams | None, constant: Constant) -> bool:
    """Does ``constant`` hold exactly the encoding of ``params`` (plus zero padding)?"""
    enc = encode(op, params)
    return enc is not None and Constant("_", enc[0]).data == constant.data


def buffered_fields(op: Op, params: OpParams | None) -> dict | None:
    """The fields of ``params`` that 1.x keeps in the op-params buffer (the keys
    :func:`decode` returns), or None for other ops."""
    if op not in NCSDK1_PARAMS_IN_BUFFER or params is None:
        return None
    return {k: getattr(params, k) for k in _BUFFERED_KEYS[op]}


def default_fields(op: Op) -> dict | None:
    """The buffered fields a 1.x stage has when it has no op-params buffer."""
    return dict(_DEFAULTS[op]) if op in _DEFAULTS else None


_BUFFERED_KEYS = {
    **{op: ("dilation",) for op in CONV_OPS},
    Op.SOFTMAX: ("axis",),
    Op.CROP: ("offset_x", "offset_y", "offset_z"),
    Op.POWER: ("shift", "scale", "power"),
}
_DEFAULTS = {
    **{op: {"dilation": 1} for op in CONV_OPS},
    Op.SOFTMAX: {"axis": 1},
    Op.CROP: {"offset_x": 0, "offset_y": 0, "offset_z": 0},
    Op.POWER: {"shift": 0.0, "scale": 1.0, "power": 1.0},
}


def consistent(op: Op, params: OpParams | None, constant: Constant | None) -> bool:
    """Do ``params`` agree with the op-params buffer ``constant`` (or with the
    defaults when there is none)?"""
    enc = encode(op, params)
    if enc is None:
        return True
    if constant is None:
        return buffered_fields(op, params) == default_fields(op)
    return constant.data[:len(enc[0])] == enc[0]


def constant_dtype(op: Op, slot: str) -> str:
    """The element type readers give a constant, from the slot that references it."""
    if slot in ("taps", "bias"):
        return "float16"
    if slot != "op_params":
        return "float16"
    if op in CONV_OPS or op in (Op.SOFTMAX, Op.PERMUTE):
        return "int32"
    if op is Op.CROP:
        return "uint32"
    if op in (Op.POWER, Op.PRIOR_BOX):
        return "float32"
    return "uint8"


# ----------------------------------------------------------------- builders for lowering


def permute_params(name: str, order: Sequence[int]) -> Constant:
    """PERMUTE: ``int32[3]``, Caffe's order without the batch axis (e.g. (2, 3, 1)
    for order 0,2,3,1)."""
    if len(order) != 3:
        raise ValueError("permute op params hold exactly 3 axes")
    return Constant.from_array(name, np.asarray(order, dtype=np.int32), "int32")


def normalize_params(name: str, across_spatial: bool, channel_shared: bool,
                     eps: float | None = None) -> Constant:
    """NORMALIZE: ``int32[across_spatial, channel_shared]`` (+ ``float32 eps`` as 2.05 adds)."""
    raw = struct.pack("<2i", int(across_spatial), int(channel_shared))
    if eps is None:
        return Constant(name, raw, "int32")
    return Constant(name, raw + struct.pack("<f", eps), "uint8")


def prior_box_params(name: str, *, img_h: float, img_w: float, min_sizes: Sequence[float],
                     max_sizes: Sequence[float], aspect_ratios: Sequence[float],
                     variances: Sequence[float], flip: bool, clip: bool, step_w: float,
                     step_h: float, offset: float) -> Constant:
    """PRIOR_BOX: ``float32[img_h, img_w, n_min, n_max, n_ar, n_var, flip, clip,
    min..., max..., ar..., var..., step_w, step_h, offset]``."""
    values = [img_h, img_w, len(min_sizes), len(max_sizes), len(aspect_ratios), len(variances),
              float(flip), float(clip), *min_sizes, *max_sizes, *aspect_ratios, *variances,
              step_w, step_h, offset]
    return Constant.from_array(name, np.asarray(values, dtype=np.float32), "float32")


DETECTION_OUTPUT_FORMAT = "<3if3ifif"


def detection_output_params(name: str, *, num_classes: int, share_location: bool,
                            background_label_id: int, nms_threshold: float, top_k: int,
                            code_type: int, keep_top_k: int, confidence_threshold: float,
                            variance_encoded: bool, eta: float = 1.0) -> Constant:
    """DETECTION_OUTPUT: the packed record ``(i4 num_classes, share_location,
    background_label_id, f4 nms_threshold, i4 top_k, code_type, keep_top_k,
    f4 confidence_threshold, i4 variance_encoded, f4 eta)``."""
    raw = struct.pack(DETECTION_OUTPUT_FORMAT, num_classes, int(share_location),
                      background_label_id, nms_threshold, top_k, code_type, keep_top_k,
                      confidence_threshold, int(variance_encoded), eta)
    return Constant(name, raw, "uint8")


def lrn_params(name: str, k: float, alpha: float, beta: float) -> Constant:
    """LRN: fp16 ``[k, alpha, beta, 0]``, referenced from the stage's bias slot."""
    return Constant.from_array(name, np.asarray([k, alpha, beta, 0.0]), "float16")
