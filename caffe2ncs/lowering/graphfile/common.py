"""Helpers shared by both formats' readers and writers."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import (
    CONSTANT_ALIGNMENT,
    CONV_OPS,
    BufferRef,
    Constant,
    Graph,
    Location,
    Op,
    Stage,
)
from . import opparams
from .binary import ByteReader, GraphTargetError

#: Ops whose bias slot holds one fp16 value per output channel.
PER_CHANNEL_BIAS_OPS = frozenset(CONV_OPS | {Op.FULLY_CONNECTED, Op.SCALE, Op.PRELU})


def required_bytes(stage: Stage, slot: str, ref: BufferRef) -> int:
    """Bytes a BLOB reference needs in its constant: its extent from dims and
    strides, or, for slots stored without dims, what the op reads (one fp16 per
    output channel for a bias, 4 fp16 for LRN parameters, the encoded typed
    parameters for a 1.x op-params buffer)."""
    if ref.extent:
        return ref.offset + ref.extent
    if slot == "bias" and stage.op in PER_CHANNEL_BIAS_OPS and stage.output is not None:
        return ref.offset + 2 * stage.output.dims.z
    if slot == "bias" and stage.op in (Op.LRN, Op.INNER_LRN):
        return ref.offset + 8
    if slot == "op_params":
        enc = opparams.encode(stage.op, stage.params)
        if enc is not None:
            return ref.offset + len(enc[0])
    return ref.offset


@dataclass
class BlobUse:
    """A reference to the data section found while parsing: which stage/slot, at
    which byte offset of the data section."""

    offset: int
    stage_index: int
    slot: str
    op: Op
    file_offset: int  # where the pointer/descriptor is, for error messages


def split_data_section(data: bytes, uses: list[BlobUse], stage_names: list[str],
                       reader: ByteReader, data_file_offset: int) -> dict[int, Constant]:
    """Cut the data section into constants at every referenced offset.

    Returns ``{data offset: Constant}`` in file order.  Bytes before the first
    referenced offset become an unreferenced constant.  Every referenced offset
    must be 64-byte aligned and inside the section; the section's length must be
    a multiple of 64.
    """
    if len(data) % CONSTANT_ALIGNMENT:
        raise reader.error(f"data section is {len(data)} bytes, not a multiple of "
                           f"{CONSTANT_ALIGNMENT}", data_file_offset, "data section")
    first_use: dict[int, BlobUse] = {}
    for use in uses:
        if use.offset >= len(data) or use.offset % CONSTANT_ALIGNMENT:
            problem = (f"points at data offset {use.offset}, outside the "
                       f"{len(data)}-byte data section" if use.offset >= len(data) else
                       f"points at data offset {use.offset}, not {CONSTANT_ALIGNMENT}-byte aligned")
            raise reader.error(problem, use.file_offset,
                               f"stage {use.stage_index} {use.slot} buffer")
        first_use.setdefault(use.offset, use)
    starts = sorted(first_use)
    if data and (not starts or starts[0] != 0):
        starts.insert(0, 0)
    taken: set[str] = set()
    result: dict[int, Constant] = {}
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        use = first_use.get(start)
        if use is None:
            base, dtype = "unreferenced", "uint8"
        else:
            base = f"{stage_names[use.stage_index]}/{use.slot}"
            dtype = opparams.constant_dtype(use.op, use.slot)
        result[start] = Constant(unique_name(base, taken), data[start:end], dtype)
    return result


def unique_name(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name = f"{base}#{n}"
        n += 1
    taken.add(name)
    return name


def check_blob_fits(graph: Graph, error) -> None:
    """Every BLOB reference names an existing constant and fits in it.
    ``error(message)`` builds the exception to raise."""
    sizes = {c.name: c.size for c in graph.constants}
    for i, stage in enumerate(graph.stages):
        for slot, ref in stage.buffers():
            if ref.location is not Location.BLOB:
                continue
            if ref.constant not in sizes:
                raise error(f"stage {i} ({stage.name or stage.op.value}) {slot} names constant "
                            f"{ref.constant!r}, which the graph does not have")
            need = required_bytes(stage, slot, ref)
            if need > sizes[ref.constant]:
                raise error(f"stage {i} ({stage.name or stage.op.value}) {slot} needs {need} bytes "
                            f"of constant {ref.constant!r}, which has {sizes[ref.constant]}")


def check_writable(graph: Graph, target_name: str) -> None:
    """Checks both writers make before encoding anything."""

    def error(msg: str) -> GraphTargetError:
        return GraphTargetError(f"cannot write {target_name}: {msg}")

    if not graph.stages:
        raise error("the graph has no stages")
    check_blob_fits(graph, error)
    for i, stage in enumerate(graph.stages):
        for slot, ref in stage.buffers():
            if ref.location is Location.BLOB and ref.offset:
                raise error(f"stage {i} {slot}: a constant must be referenced from its start "
                            f"(offset {ref.offset}); make a separate constant instead")
    if graph.input is None:
        raise error("no stage reads the network input")
    if graph.output is None:
        raise error("no stage writes the network output")
