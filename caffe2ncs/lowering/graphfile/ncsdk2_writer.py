"""Writer of the NCSDK 2.x "blob 2.3" format, laid out exactly as NCSDK 2.05's
``mvNCCompile`` lays it out (``docs/graph-format.md`` section 3).

Layout decisions that reproduce the vendor's bytes: the header and the stage
section are padded with the vendor's always-pad ``align_to`` (a full 16 bytes
when already aligned); stages are contiguous and ``next_stage`` counts from the
start of the stage section; constants are written in :attr:`Graph.constants`
order, each a multiple of 64 bytes; every BLOB and every WORK descriptor gets
its own relocation entry, numbered in the order the descriptors are written
(stage by stage, slot by slot), blob entries first; the buffer-section header
is padded with three words of 42.
"""

from __future__ import annotations

import struct

from ..ir import Graph, GraphFormat, Location, PadStyle, Stage
from . import opparams
from .binary import ByteWriter, GraphTargetError
from .codes import DTYPE_CODES, OP_CODES, ORDER_CODES, PAD_STYLE_CODES
from .common import check_writable
from .ncsdk2_layout import (
    BUFFER_PAD_WORD,
    BUFFER_SECTION_HEADER,
    ELF_FIELDS,
    ELF_STRUCT,
    HEADER_ALIGN,
    MAGIC,
    MAJOR_VERSION,
    MAX_SHAVES,
    MIN_SHAVES,
    MINOR_VERSION,
    OFF_FILE_SIZE,
    OFF_RELOCATION,
    ORPHAN_OP_PARAMS_OPS,
    POST_OP_WORDS,
    PRE_OP_WORDS,
    RELOC_ENTRY,
    RELOC_HEADER,
    STAGE_LAYOUTS,
    STAGE_SECTION_ALIGN,
    STAGE_SECTION_HEADER,
    align_up_always,
)

FMT = GraphFormat.NCSDK2
TARGET = "NCSDK 2.x blob 2.3"


def _error(message: str) -> GraphTargetError:
    return GraphTargetError(f"cannot write {TARGET}: {message}")


def write_ncsdk2(graph: Graph) -> bytes:
    """Encode ``graph`` as a blob 2.3 file.  Raises
    :class:`~caffe2ncs.lowering.graphfile.binary.GraphTargetError` for what the
    format cannot express (see :func:`~caffe2ncs.lowering.graphfile.convert`)."""
    check_writable(graph, TARGET)
    if not MIN_SHAVES <= graph.shave_count <= MAX_SHAVES:
        raise _error(f"shave_count {graph.shave_count} is outside {MIN_SHAVES}-{MAX_SHAVES}")
    _check_orphans(graph)

    offsets = graph.constant_offsets
    blob_relocs: list[tuple[int, int]] = []
    work_relocs: list[tuple[int, int]] = []

    # -- header (file size and relocation offset patched at the end)
    w = ByteWriter()
    elf = graph.ncsdk2.elf
    w.raw(ELF_STRUCT.pack(*(getattr(elf, f) for f in ELF_FIELDS)))
    perm = graph.ncsdk2.permutation
    header_len = 74 + (4 + 4 * len(perm) if perm is not None else 0)
    stage_off = align_up_always(header_len, HEADER_ALIGN)
    w.u32(MAGIC, 0, MAJOR_VERSION, MINOR_VERSION, graph.shave_count, stage_off, 0, 0,
          graph.input.elements, 0 if perm is None else 1)
    if perm is not None:
        w.u32(len(perm), *perm)
    w.zeros(stage_off - len(w))

    # -- stage section
    body = ByteWriter()
    for i, stage in enumerate(graph.stages):
        record = _stage_record(i, stage, offsets, blob_relocs, work_relocs)
        last = i + 1 == len(graph.stages)
        nxt = 0 if last else STAGE_SECTION_HEADER + len(body) + 4 + len(record)
        body.u32(nxt)
        body.raw(record)
    section_size = align_up_always(STAGE_SECTION_HEADER + len(body), STAGE_SECTION_ALIGN)
    w.u32(len(graph.stages), section_size, graph.output.elements)
    w.raw(body.getvalue())
    w.zeros(stage_off + section_size - len(w))

    # -- buffer section
    data = b"".join(c.data for c in graph.constants)
    w.u32(BUFFER_SECTION_HEADER + len(data), BUFFER_PAD_WORD, BUFFER_PAD_WORD, BUFFER_PAD_WORD)
    w.raw(data)

    # -- relocation table
    reloc_off = len(w)
    blob_size, work_size = RELOC_ENTRY * len(blob_relocs), RELOC_ENTRY * len(work_relocs)
    blob_off = reloc_off + RELOC_HEADER
    w.u32(RELOC_HEADER + blob_size + work_size, blob_off, blob_size, blob_off + blob_size,
          work_size)
    for entry in blob_relocs + work_relocs:
        w.u32(*entry)

    w.patch_u32(OFF_FILE_SIZE, len(w))
    w.patch_u32(OFF_RELOCATION, reloc_off)
    w.patch_u32(58, stage_off + section_size)  # buffer_section_offset
    return w.getvalue()


def _stage_record(i: int, stage: Stage, offsets: dict[str, int], blob_relocs: list,
                  work_relocs: list) -> bytes:
    """One stage record without its leading ``next_stage`` word."""
    where = f"stage {i} ({stage.name or stage.op.value})"
    layout = STAGE_LAYOUTS.get(stage.op)
    if stage.op not in OP_CODES[FMT]:
        raise _error(f"{where}: {stage.op.value} has no op code in NCSDK 2.05")
    if layout is None:
        raise _error(f"{where}: {stage.op.value} has no known blob 2.3 record layout")
    slots = {name for kind, name in layout if kind == "buf"}
    for slot, ref in stage.buffers():
        if slot in slots:
            continue
        orphan = (slot == "op_params" and stage.op in ORPHAN_OP_PARAMS_OPS
                  and ref.location is Location.BLOB)
        if not orphan:
            raise _error(f"{where}: a {stage.op.value} record has no {slot} buffer")
    if stage.pre_op not in PRE_OP_WORDS:
        raise _error(f"{where}: pre-op {stage.pre_op.value} is not supported")
    post = stage.post_op
    if post.op not in POST_OP_WORDS:
        raise _error(f"{where}: post-op {post.op.value} is not supported by blob 2.3")
    if POST_OP_WORDS[post.op] == 0 and (post.param or post.stride_x or post.stride_y):
        raise _error(f"{where}: post-op {post.op.value} stores no parameter or strides")

    w = ByteWriter()
    w.u32(OP_CODES[FMT][stage.op], stage.implementation)
    for kind, name in layout:
        if kind == "buf":
            w.u32(*_descriptor(where, name, getattr(stage, name), offsets, blob_relocs,
                               work_relocs))
            continue
        value = getattr(stage.params, name)
        if kind == "pad_style":
            w.u32(PAD_STYLE_CODES[PadStyle(value)])
        elif kind == "f32":
            w.raw(struct.pack("<f", value))
        elif kind == "i32":
            _check_range(where, name, value, -(2**31), 2**31 - 1)
            w.raw(struct.pack("<i", value))
        else:
            _check_range(where, name, value, 0, 2**32 - 1)
            w.u32(value)
    w.u32(OP_CODES[FMT][stage.pre_op], OP_CODES[FMT][post.op])
    if POST_OP_WORDS[post.op]:
        _check_range(where, "post-op stride", max(post.stride_x, post.stride_y), 0, 2**32 - 1)
        w.u32(post.param, post.stride_x, post.stride_y)
    return w.getvalue()


def _descriptor(where: str, slot: str, ref, offsets, blob_relocs: list, work_relocs: list):
    if ref is None:
        return (0,) * 10
    dtype = DTYPE_CODES[FMT].get(ref.dtype)
    if dtype is None:
        raise _error(f"{where} {slot}: data type {ref.dtype.value} has no blob 2.3 code")
    for v in (*ref.dims, *ref.strides, ref.offset):
        _check_range(where, slot, v, 0, 2**32 - 1)
    if ref.location is Location.BLOB:
        offset, loc = len(blob_relocs), 3
        blob_relocs.append((offsets[ref.constant] + ref.offset, 3))
    elif ref.location is Location.WORK:
        offset, loc = len(work_relocs), ref.work_index
        _check_range(where, slot, loc, 4, 2**32 - 1)
        work_relocs.append((ref.offset, ref.work_index))
    else:
        offset, loc = ref.offset, {Location.NONE: 0, Location.INPUT: 1, Location.OUTPUT: 2}[
            ref.location]
    return (*ref.dims, *ref.strides, offset, loc, dtype, ORDER_CODES[FMT][ref.order])


def _check_range(where: str, name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise _error(f"{where}: {name} {value} does not fit its field ({lo}..{hi})")


def _check_orphans(graph: Graph) -> None:
    """A convolution's op_params are not referenced by a blob 2.3 record, so the
    reader can only find them again right after the stage's other constants,
    holding exactly ``int32[dilation]``; insist on that layout."""
    names = [c.name for c in graph.constants]
    for i, stage in enumerate(graph.stages):
        ref = stage.op_params
        if stage.op not in ORPHAN_OP_PARAMS_OPS or ref is None or ref.location is not Location.BLOB:
            continue
        where = f"stage {i} ({stage.name or stage.op.value})"
        others = [r.constant for s, r in stage.buffers()
                  if s != "op_params" and r.location is Location.BLOB]
        pos = names.index(ref.constant)
        if not others or pos == 0 or names[pos - 1] != others[-1]:
            raise _error(f"{where}: its op_params constant must directly follow its "
                         f"{'bias' if stage.bias else 'taps'} constant in Graph.constants "
                         f"(blob 2.3 does not reference it); use convert() to arrange this")
        if not opparams.matches(stage.op, stage.params, graph.constant(ref.constant)):
            raise _error(f"{where}: its op_params constant does not hold int32[dilation]")
