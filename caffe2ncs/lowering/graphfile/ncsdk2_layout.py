"""Constants and per-op record layouts of the NCSDK 2.x "blob 2.3" format,
shared by :mod:`.ncsdk2_reader` and :mod:`.ncsdk2_writer`.

See ``docs/graph-format.md`` section 3 for the full layout.  The op layouts
marked *verified* were checked field by field against the vendor's NCSDK 2.05
files; the others come from the reference notes.
"""

from __future__ import annotations

import struct

from ..ir import CONV_OPS, Op

MAGIC = 8708
MAJOR_VERSION = 2
MINOR_VERSION = 3

#: The 34-byte pseudo-ELF stub: e_ident, e_type, e_machine, e_version (u16),
#: e_entry, e_phoff, e_shoff (u32), e_flags, e_ehsize, e_phentsize, e_phnum,
#: e_shentsize, e_shnum, e_shstrndx (u16).
ELF_STRUCT = struct.Struct("<4H3I7H")
ELF_FIELDS = ("e_ident", "e_type", "e_machine", "e_version", "e_entry", "e_phoff", "e_shoff",
              "e_flags", "e_ehsize", "e_phentsize", "e_phnum", "e_shentsize", "e_shnum",
              "e_shstrndx")
assert ELF_STRUCT.size == 34

# Header field offsets (u32 each, after the ELF stub).
OFF_MAGIC = 34
OFF_FILE_SIZE = 38
OFF_MAJOR = 42
OFF_MINOR = 46
OFF_NUM_SHAVES = 50
OFF_STAGE_SECTION = 54
OFF_BUFFER_SECTION = 58
OFF_RELOCATION = 62
OFF_INPUT_SIZE = 66
OFF_PERMUTATION = 70
HEADER_SIZE = 74  # without the optional permutation list

HEADER_ALIGN = 16
STAGE_SECTION_ALIGN = 16
STAGE_SECTION_HEADER = 12  # stage_count, size_of_stage_section, size_of_output
STAGE_PREFIX = 12  # next_stage, stage_type, implementation
BUFFER_SECTION_HEADER = 16  # size_of_buffer_section + 3 pad words
BUFFER_PAD_WORD = 42
RELOC_HEADER = 20  # 5 u32
RELOC_ENTRY = 8  # (offset u32, location u32)
DESCRIPTOR_WORDS = 10  # dimX Y Z, strideX Y Z, offset, location, dataType, order
DESCRIPTOR_SIZE = 4 * DESCRIPTOR_WORDS

MIN_SHAVES, MAX_SHAVES = 1, 16


def align_up_always(n: int, alignment: int) -> int:
    """The vendor's ``align_to``: pads up to the next multiple of ``alignment``,
    adding a whole ``alignment`` when ``n`` is already a multiple (verified: a
    640-byte stage section is stored as 656 bytes)."""
    return n + alignment - n % alignment


# ------------------------------------------------------------------ per-op layouts
# A field is (kind, name): "u32" an unsigned typed-param field, "i32" a signed
# one, "f32" a float32 typed-param field, "pad_style" the PadStyle code,
# "buf" a 10-word buffer descriptor for the named Stage slot.

Field = tuple[str, str]

_WINDOW: tuple[Field, ...] = (
    ("u32", "kernel_x"), ("u32", "kernel_y"), ("u32", "stride_x"), ("u32", "stride_y"),
    ("u32", "pad_x"), ("u32", "pad_y"), ("pad_style", "pad_style"),
)


def _bufs(*slots: str) -> tuple[Field, ...]:
    return tuple(("buf", s) for s in slots)


_IN_OUT = _bufs("input", "output")

#: Op -> the fields between ``implementation`` and ``preop_type``.
STAGE_LAYOUTS: dict[Op, tuple[Field, ...]] = {
    # verified (CONVOLUTION, DECONVOLUTION: one dilation word, not two)
    Op.CONVOLUTION: _WINDOW + (("u32", "dilation"),) + _bufs("input", "output", "taps", "bias"),
    Op.DECONVOLUTION: _WINDOW + (("u32", "dilation"),) + _bufs("input", "output", "taps", "bias"),
    Op.FULLY_CONNECTED: _bufs("input", "output", "taps", "bias"),
    Op.SIGMOID: _IN_OUT,
    # from the reference notes
    Op.DEPTHWISE_CONVOLUTION: _WINDOW + (("u32", "dilation"),)
    + _bufs("input", "output", "taps", "bias"),
    Op.MAX_POOLING: _WINDOW + _IN_OUT,
    Op.AVERAGE_POOLING: _WINDOW + _IN_OUT,
    Op.SCALE: _bufs("input", "output", "taps", "bias"),
    Op.ELTWISE_SUM: _bufs("input", "output", "taps"),
    Op.ELTWISE_PROD: _bufs("input", "output", "taps"),
    Op.ELTWISE_MAX: _bufs("input", "output", "taps"),
    Op.SOFTMAX: (("i32", "axis"),) + _IN_OUT,
    Op.LRN: (("u32", "size"),) + _bufs("input", "output", "bias"),
    Op.INNER_LRN: (("u32", "size"),) + _bufs("input", "output", "bias"),
    Op.PRELU: _bufs("input", "output", "bias"),
    Op.CROP: (("u32", "offset_x"), ("u32", "offset_y"), ("u32", "offset_z")) + _IN_OUT,
    Op.RESHAPE: (("u32", "offset_x"), ("u32", "offset_y"), ("u32", "offset_z")) + _IN_OUT,
    Op.POWER: (("f32", "shift"), ("f32", "scale"), ("f32", "power")) + _IN_OUT,
    Op.PERMUTE: _bufs("input", "output", "op_params"),
    Op.NORMALIZE: _bufs("input", "output", "taps", "op_params"),
    Op.PRIOR_BOX: _bufs("input", "output", "taps", "op_params"),
    Op.DETECTION_OUTPUT: _bufs("input", "output", "taps", "bias", "op_params"),
    Op.TANH: _IN_OUT,
    Op.COPY: _IN_OUT,
    Op.TO_PLANE_MAJOR: _IN_OUT,
    Op.SQUARE: _IN_OUT,
    Op.RSQRT: _IN_OUT,
}

#: Post-ops and the number of u32 fields after ``postop_type``: NONE and BIAS
#: have none (verified); RELU has ``opX, post_strideX, post_strideY``
#: (verified); RELU_X and LEAKY_RELU the same (reference notes); ELU assumed
#: the same (not documented anywhere we could find).
POST_OP_WORDS: dict[Op, int] = {Op.NONE: 0, Op.BIAS: 0, Op.RELU: 3, Op.RELU_X: 3,
                                Op.LEAKY_RELU: 3, Op.ELU: 3}
#: Pre-ops: only NONE (no fields) is known.
PRE_OP_WORDS: dict[Op, int] = {Op.NONE: 0}

#: Ops whose 1.x op-params buffer NCSDK 2.05 still writes into the data section,
#: unreferenced, right after the stage's other constants (verified for
#: CONVOLUTION; DECONVOLUTION has none in the vendor files; others unknown).
ORPHAN_OP_PARAMS_OPS = frozenset({Op.CONVOLUTION})

assert ORPHAN_OP_PARAMS_OPS <= CONV_OPS


def stage_size(op: Op, post_op: Op) -> int:
    """Bytes of one stage record (without section padding)."""
    body = sum(DESCRIPTOR_SIZE if kind == "buf" else 4 for kind, _ in STAGE_LAYOUTS[op])
    return STAGE_PREFIX + body + 4 + 4 + 4 * POST_OP_WORDS[post_op]


#: The smallest possible stage record (two descriptors, no post-op fields):
#: bounds the stage count by the section size before anything is allocated.
MIN_STAGE_SIZE = STAGE_PREFIX + 2 * DESCRIPTOR_SIZE + 8
