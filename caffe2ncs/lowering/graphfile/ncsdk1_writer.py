"""Writer of the NCSDK 1.x "graph version 2" format (``docs/graph-format.md``
section 2): a 264-byte header, one 227-byte record per stage in execution
order (the network output's stage last: libmvnc takes the output size from the
last record), zero padding to a multiple of 8, then the data section (each
constant a multiple of 64 bytes; pointers are offsets from its start).
"""

from __future__ import annotations

from ..ir import (
    CONV_OPS,
    POOL_OPS,
    DataType,
    Graph,
    GraphFormat,
    Location,
    LrnParams,
    OffsetParams,
    Op,
    PadStyle,
    Stage,
    StorageOrder,
    Window,
)
from . import opparams
from .binary import ByteWriter, GraphTargetError, text_field
from .codes import DTYPE_CODES, OP_CODES, ORDER_CODES, PAD_STYLE_CODES
from .common import check_writable
from .ncsdk1_layout import (
    GRAPH_VERSION,
    HEADER_LENGTH,
    MAX_GRAPH_SIZE,
    MAX_SHAVES,
    MAX_STAGES,
    MIN_SHAVES,
    NAME_LENGTH,
    STAGE_STRUCT,
    data_section_offset,
)

FMT = GraphFormat.NCSDK1
TARGET = "NCSDK 1.x graph version 2"


def _error(message: str) -> GraphTargetError:
    return GraphTargetError(f"cannot write {TARGET}: {message}")


def write_ncsdk1(graph: Graph) -> bytes:
    """Encode ``graph`` as a 1.x graph file.  Raises
    :class:`~caffe2ncs.lowering.graphfile.binary.GraphTargetError` for what the
    format cannot express (see :func:`~caffe2ncs.lowering.graphfile.convert`)."""
    check_writable(graph, TARGET)
    if not MIN_SHAVES <= graph.shave_count <= MAX_SHAVES:
        raise _error(f"shave_count {graph.shave_count} is outside {MIN_SHAVES}-{MAX_SHAVES}")
    hdr = graph.ncsdk1
    last_shave = hdr.first_shave + graph.shave_count - 1
    _range("header", "lastShave", last_shave, 0, 0xFFFF)
    for name in ("leon_mem_location", "leon_mem_size", "dma_agent"):
        _range("header", name, getattr(hdr, name), 0, 0xFFFFFFFF)
    if len(graph.stages) > MAX_STAGES:
        raise _error(f"{len(graph.stages)} stages; libmvnc 1.x reads the count as 16 bits "
                     f"(at most {MAX_STAGES})")
    last = graph.stages[-1]
    if last.output is None or last.output.location is not Location.OUTPUT:
        raise _error("the last stage must write the network output (libmvnc 1.x takes the "
                     "output size from the last stage record)")

    offsets = graph.constant_offsets
    constants = {c.name: c for c in graph.constants}
    data_start = data_section_offset(len(graph.stages))
    data = b"".join(c.data for c in graph.constants)
    total = data_start + len(data)
    if total > MAX_GRAPH_SIZE:
        raise _error(f"{total} bytes is more than libmvnc 1.x accepts ({MAX_GRAPH_SIZE})")

    w = ByteWriter()
    w.zeros(32)
    w.u32(total, GRAPH_VERSION)
    w.raw(text_field(graph.name, NAME_LENGTH, "network name"))
    w.raw(text_field(hdr.report_dir, NAME_LENGTH, "report dir"))
    w.u32(len(graph.stages), data_start)
    w.u16(hdr.first_shave, last_shave)
    w.u32(hdr.leon_mem_location, hdr.leon_mem_size, hdr.dma_agent)
    assert len(w) == HEADER_LENGTH
    for i, stage in enumerate(graph.stages):
        w.raw(_record(i, stage, offsets, constants))
    w.zeros(data_start - len(w))
    w.raw(data)
    return w.getvalue()


def _record(i: int, stage: Stage, offsets: dict[str, int], constants: dict) -> bytes:
    where = f"stage {i} ({stage.name or stage.op.value})"
    codes = OP_CODES[FMT]
    for what, op in (("op", stage.op), ("pre-op", stage.pre_op), ("post-op", stage.post_op.op)):
        if op not in codes:
            raise _error(f"{where}: {what} {op.value} has no op code in NCSDK 1.12")
    name = text_field(stage.name, NAME_LENGTH, f"{where} name")

    # -- window bytes
    if stage.op in CONV_OPS or stage.op in POOL_OPS:
        if stage.ncsdk1_window is not None:
            raise _error(f"{where}: ncsdk1_window is only for ops without window params")
        window = stage.params
    elif stage.ncsdk1_window is not None:
        window = stage.ncsdk1_window
    elif isinstance(stage.params, LrnParams):
        window = Window(stage.params.size, stage.params.size, 1, 1, 0, 0)
    else:
        window = Window(0, 0, 0, 0, 0, 0, PadStyle.NONE)
    _range(where, "kernel", max(window.kernel_x, window.kernel_y), 0, 127)
    for f in ("stride_x", "stride_y", "pad_x", "pad_y"):
        _range(where, f, getattr(window, f), 0, 255)

    # -- op parameters kept in the op-params buffer
    if isinstance(stage.params, OffsetParams) and stage.op is Op.RESHAPE and \
            stage.params != OffsetParams():
        raise _error(f"{where}: a 1.x reshape stores no offsets")
    op_const = None
    if stage.op_params is not None and stage.op_params.location is Location.BLOB:
        op_const = constants[stage.op_params.constant]
    if not opparams.consistent(stage.op, stage.params, op_const):
        need = "an op-params constant encoding them" if op_const is None else \
            "its op-params constant to encode them"
        raise _error(f"{where}: 1.x keeps {stage.op.value} parameters "
                     f"{opparams.buffered_fields(stage.op, stage.params)} in the op-params "
                     f"buffer; the stage needs {need} (convert() adds it)")

    # -- one data type / storage order per stage
    refs = stage.buffers()
    dtypes = {ref.dtype for _, ref in refs} or {DataType.FP16}
    orders = {ref.order for _, ref in refs} or {StorageOrder.YXZ}
    if len(dtypes) > 1 or len(orders) > 1:
        raise _error(f"{where}: 1.x stores one data type and storage order per stage, the "
                     f"buffers have {sorted(d.value for d in dtypes)} / "
                     f"{sorted(o.value for o in orders)} (convert() unifies them)")
    dtype, order = dtypes.pop(), orders.pop()
    for what, dt in (("data type", dtype), ("precision", stage.precision)):
        if dt not in DTYPE_CODES[FMT]:
            raise _error(f"{where}: {what} {dt.value} has no 1.x code")

    def geometry(slot: str) -> tuple[int, ...]:
        ref = getattr(stage, slot)
        if ref is None:
            return (0,) * 6
        for v in (*ref.dims, *ref.strides):
            _range(where, f"{slot} dims/strides", v, 0, 0xFFFFFFFF)
        return (*ref.dims, *ref.strides)

    def pointer(slot: str) -> tuple[int, int]:
        ref = getattr(stage, slot)
        if ref is None:
            return (0, 0)
        if slot in ("bias", "op_params") and (any(ref.dims) or any(ref.strides)):
            raise _error(f"{where}: 1.x stores no dims for the {slot} buffer "
                         f"(convert() drops them)")
        if ref.location is Location.BLOB:
            return (offsets[ref.constant] + ref.offset, 3)
        index = ref.work_index if ref.location is Location.WORK else \
            {Location.NONE: 0, Location.INPUT: 1, Location.OUTPUT: 2}[ref.location]
        _range(where, f"{slot} buffer index", index, 0, 0xFFFF)
        _range(where, f"{slot} offset", ref.offset, 0, 0xFFFFFFFF)
        return (ref.offset, index)

    gi, gt, go = geometry("input"), geometry("taps"), geometry("output")
    post = stage.post_op
    _range(where, "post-op stride", max(post.stride_x, post.stride_y), 0, 0xFFFF)
    return STAGE_STRUCT.pack(
        name, codes[stage.op], stage.implementation, window.kernel_x, window.kernel_y,
        window.stride_x, window.stride_y, window.pad_x, window.pad_y,
        PAD_STYLE_CODES[window.pad_style],
        *gi[:3], *gt[:3], *go[:3], *gi[3:], *gt[3:], *go[3:],
        DTYPE_CODES[FMT][dtype], DTYPE_CODES[FMT][stage.precision], ORDER_CODES[FMT][order],
        *pointer("input"), *pointer("taps"), *pointer("bias"), *pointer("op_params"),
        *pointer("output"),
        codes[stage.pre_op], codes[post.op], post.param, post.stride_x, post.stride_y)


def _range(where: str, name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise _error(f"{where}: {name} {value} does not fit its 1.x field ({lo}..{hi})")
