"""Constants of the NCSDK 1.x "graph version 2" format, shared by
:mod:`.ncsdk1_reader` and :mod:`.ncsdk1_writer` (``docs/graph-format.md``
section 2).

Header offsets agree with the constants of libmvnc 1.x (``mvnc_api.c`` in
movidius/ncsdk 1.12: ``HEADER_LENGTH 264``, ``VERSION_OFFSET 36``,
``GRAPH_VERSION 2``, ``N_STAGES_OFFSET 240``, ``FIRST_SHAVE_OFFSET 248``,
``STAGE_LENGTH 227``, ``N_OUTPUTS_OFFSET = HEADER_LENGTH + 136``,
``X_OUT_STRIDE_OFFSET = HEADER_LENGTH + 172``).  No vendor 1.x file was
available to check the rest byte by byte.
"""

from __future__ import annotations

import struct

HEADER_LENGTH = 264
GRAPH_VERSION = 2
STAGE_LENGTH = 227

OFF_FILE_SIZE = 32
OFF_VERSION = 36
OFF_NAME = 40
NAME_LENGTH = 100
OFF_REPORT_DIR = 140
OFF_STAGE_COUNT = 240
OFF_DATA_START = 244
OFF_FIRST_SHAVE = 248
OFF_LAST_SHAVE = 250
OFF_LEON_MEM_LOCATION = 252
OFF_LEON_MEM_SIZE = 256
OFF_DMA_AGENT = 260

#: Stage records are followed by zero padding to a multiple of this.
STAGE_BLOCK_ALIGN = 8

#: libmvnc 1.x refuses larger graphs and larger outputs.
MAX_GRAPH_SIZE = 512 * 1024 * 1024
MAX_OUTPUT_ELEMENTS = 64 * 1024 * 1024

MIN_SHAVES, MAX_SHAVES = 1, 16

#: libmvnc 1.x reads the stage count as a 16-bit number.
MAX_STAGES = 0xFFFF

#: One stage record: name[100], op u8, optMask u32, radixX/Y i8, strideX/Y u8,
#: padX/Y u8, padStyle u8, inputDim 3u32, tapDim 3u32, outputDim 3u32,
#: inputStride 3u32, tapStride 3u32, outputStride 3u32, datatype u8,
#: precision u8, storageOrder u8, (pointer u32, index u16) x 5 for data, taps,
#: bias, opParams, output, preOp u8, postOp u8, post_param1 u32, post_strideX
#: u16, post_strideY u16.
STAGE_STRUCT = struct.Struct("<100sBIbbBBBBB18IBBBIHIHIHIHIHBBIHH")
assert STAGE_STRUCT.size == STAGE_LENGTH

#: Offsets inside a stage record, for error messages.
STAGE_FIELD_OFFSETS = {
    "name": 0, "op": 100, "optMask": 101, "radixX": 105, "radixY": 106, "strideX": 107,
    "strideY": 108, "padX": 109, "padY": 110, "padStyle": 111, "inputDim": 112, "tapDim": 124,
    "outputDim": 136, "inputStride": 148, "tapStride": 160, "outputStride": 172,
    "datatype": 184, "precision": 185, "storageOrder": 186, "dataPointer": 187,
    "tapsPointer": 193, "biasPointer": 199, "opParamsPointer": 205, "outputPointer": 211,
    "preOp": 217, "postOp": 218, "post_param1": 219, "post_strideX": 223, "post_strideY": 225,
}

#: (slot, pointer field name) in record order.
POINTER_SLOTS = (("input", "dataPointer"), ("taps", "tapsPointer"), ("bias", "biasPointer"),
                 ("op_params", "opParamsPointer"), ("output", "outputPointer"))


def data_section_offset(stage_count: int) -> int:
    """Where the data section starts: after the stage records, padded to 8."""
    end = HEADER_LENGTH + STAGE_LENGTH * stage_count
    return -(-end // STAGE_BLOCK_ALIGN) * STAGE_BLOCK_ALIGN
