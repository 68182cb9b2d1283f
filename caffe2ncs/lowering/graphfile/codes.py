"""The numbers each format uses for the IR's symbolic enums.

Op codes are SDK-version specific: the 1.x format is written with the NCSDK
1.12 table (the last 1.x toolkit; its firmware is the one a 1.x graph is sent
to), the 2.x format with the NCSDK 2.05 table.  The two tables agree except for
code 37 and for the codes past 47 (source: the project's NCSDK reference notes,
section 1.3; codes 0, 4, 5, 6, 9, 20 and 22 verified in the vendor's 2.05 files).
Codes the tables mark as "unsupported layer" markers are not ops and are not
accepted.
"""

from __future__ import annotations

from ..ir import DataType, GraphFormat, Op, PadStyle, StorageOrder

_COMMON_OPS: dict[Op, int] = {
    Op.CONVOLUTION: 0,
    Op.MAX_POOLING: 1,
    Op.AVERAGE_POOLING: 2,
    Op.SOFTMAX: 3,
    Op.FULLY_CONNECTED: 4,
    Op.NONE: 5,
    Op.RELU: 6,
    Op.RELU_X: 7,
    Op.DEPTHWISE_CONVOLUTION: 8,
    Op.BIAS: 9,
    Op.PRELU: 10,
    Op.LRN: 11,
    Op.ELTWISE_SUM: 12,
    Op.ELTWISE_PROD: 13,
    Op.ELTWISE_MAX: 14,
    Op.SCALE: 15,
    Op.RELAYOUT: 16,
    Op.SQUARE: 17,
    Op.INNER_LRN: 18,
    Op.COPY: 19,
    Op.SIGMOID: 20,
    Op.TANH: 21,
    Op.DECONVOLUTION: 22,
    Op.ELU: 23,
    Op.RESHAPE: 24,
    Op.TO_PLANE_MAJOR: 25,
    Op.POWER: 26,
    Op.CROP: 27,
    Op.TILE: 28,
    Op.REGION: 29,
    Op.REORG: 30,
    Op.CONVERT_U8_F16: 31,
    Op.CONVERT_F32_F16: 32,
    Op.MYRIADX_CONVOLUTION: 33,
    Op.MYRIADX_POOLING: 34,
    Op.MYRIADX_FULLY_CONNECTED: 35,
    Op.MYRIADX_POST_OPS: 36,
    Op.PERMUTE: 38,
    Op.NORMALIZE: 39,
    Op.PRIOR_BOX: 40,
    Op.DETECTION_OUTPUT: 41,
    Op.LEAKY_RELU: 42,
    Op.SUM_REDUCE: 43,
    Op.MAX_WITH_CONST: 44,
    Op.RSQRT: 45,
    Op.SCALE_WITH_SCALAR: 46,
}

OP_CODES: dict[GraphFormat, dict[Op, int]] = {
    GraphFormat.NCSDK1: {**_COMMON_OPS, Op.CONVERT_HW_SW: 37},
    GraphFormat.NCSDK2: {**_COMMON_OPS, Op.STORAGE_ORDER_CONVERT: 37, Op.PERMUTE_FLATTEN: 48},
}
OPS_BY_CODE: dict[GraphFormat, dict[int, Op]] = {
    fmt: {code: op for op, code in table.items()} for fmt, table in OP_CODES.items()
}

# DataType: 1.x fp64=0, fp32=1, fp16=2, fp8=3, int64=4, int32=5; 2.x fp16=0, fp8=1, int32=2.
DTYPE_CODES: dict[GraphFormat, dict[DataType, int]] = {
    GraphFormat.NCSDK1: {DataType.FP64: 0, DataType.FP32: 1, DataType.FP16: 2, DataType.FP8: 3,
                         DataType.INT64: 4, DataType.INT32: 5},
    GraphFormat.NCSDK2: {DataType.FP16: 0, DataType.FP8: 1, DataType.INT32: 2},
}
DTYPES_BY_CODE = {fmt: {c: d for d, c in t.items()} for fmt, t in DTYPE_CODES.items()}

# StorageOrder: 1.x XYZ=0 XZY=1 YXZ=2 YZX=3 ZYX=4 ZXY=5; 2.x YXZ=0 ZYX=1 YZX=2 XYZ=3 XZY=4 ZXY=5.
ORDER_CODES: dict[GraphFormat, dict[StorageOrder, int]] = {
    GraphFormat.NCSDK1: {StorageOrder.XYZ: 0, StorageOrder.XZY: 1, StorageOrder.YXZ: 2,
                         StorageOrder.YZX: 3, StorageOrder.ZYX: 4, StorageOrder.ZXY: 5},
    GraphFormat.NCSDK2: {StorageOrder.YXZ: 0, StorageOrder.ZYX: 1, StorageOrder.YZX: 2,
                         StorageOrder.XYZ: 3, StorageOrder.XZY: 4, StorageOrder.ZXY: 5},
}
ORDERS_BY_CODE = {fmt: {c: o for o, c in t.items()} for fmt, t in ORDER_CODES.items()}

PAD_STYLE_CODES: dict[PadStyle, int] = {
    PadStyle.NONE: 0, PadStyle.TF_VALID: 1, PadStyle.CAFFE: 2, PadStyle.TF_SAME: 3,
}
PAD_STYLES_BY_CODE = {c: p for p, c in PAD_STYLE_CODES.items()}


def known(table: dict[int, object]) -> str:
    """``"0-3"``-style summary of a code table's keys, for error messages."""
    codes = sorted(table)
    runs, start, prev = [], codes[0], codes[0]
    for c in codes[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        runs.append(f"{start}" if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ", ".join(runs)
