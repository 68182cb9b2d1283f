"""The last passes: stage specifications -> IR :class:`~caffe2ncs.lowering.ir.Graph`,
and the graph -> a file on disk without holding the file in memory.

* Work buffers are numbered 4, 5, ... in order of first appearance and laid out
  one after the other with the toolkit's formula (:class:`~.ir.ScratchAllocator`:
  ``align64(W*H*C*2 + 2*pad)``, ``pad = 2*(W+1)*C*2``), each implicit-concat
  buffer once at its full size.
* Constants go into the data section in stage order, each stage's taps, bias,
  op params (the order NCSDK 2.05 writes them).
* A convolution with 200 or more input channels that writes into a buffer
  other stages also write (an implicit concat, a split group convolution)
  gets ``implementation`` 4 (``im2col_v2``): the toolkit forces it because
  the other convolution kernels write outside their output.
* :func:`write_graph_file` streams a graph to disk: the same bytes as
  :func:`~.graphfile.write_graph`, but each constant is written straight from
  the graph instead of joining the whole data section first.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from .graphfile import convert
from .graphfile.binary import ByteWriter, GraphTargetError, text_field
from .graphfile.convert import _canonical
from .ir import (
    BufferRef,
    Constant,
    Graph,
    GraphFormat,
    Location,
    Op,
    ScratchAllocator,
    Stage,
)
from .placement import Home
from .stages import Act, Const, Spec

#: optMask the toolkit forces on convolutions writing into a shared buffer.
IM2COL_V2 = 4


def to_graph(specs: Sequence[Spec], target: GraphFormat, name: str,
             shaves: int) -> Graph:
    indices: dict[int, tuple[int, int]] = {}  # id(Home) -> (work index, address)
    alloc = ScratchAllocator()

    def work(home: Home) -> tuple[int, int]:
        if id(home) not in indices:
            indices[id(home)] = alloc.allocate((home.w, home.h, home.c))
        return indices[id(home)]

    def act_ref(act: Act) -> BufferRef:
        value = act.value
        loc = value.loc
        home = loc.home
        c = value.c if act.c is None else act.c
        dims = (value.w, value.h, c)
        strides = home.strides
        if act.flat:
            # (1, 1, H*W*C) with NCSDK 2.05's strides (strideX of the source, 2N, 2);
            # reading the network input itself, the plain vector strides, because
            # the input's size is read from the first reference to it (strideX/2
            # channels, as libmvnc reads the output's).
            n = value.w * value.h * c
            sx = 2 * n if home.kind == "input" else strides[0]
            dims, strides = (1, 1, n), (sx, 2 * n, 2)
        offset = loc.byte_offset(act.c_off)
        if home.kind == "input":
            return BufferRef.input(dims, strides, offset)
        if home.kind == "output":
            return BufferRef.output(dims, strides, offset)
        index, address = work(home)
        return BufferRef.work(index, address + offset, dims, strides)

    constants: list[Constant] = []
    names: set[str] = set()

    def ref(operand) -> BufferRef | None:
        if operand is None:
            return None
        if isinstance(operand, Const):
            constant = operand.constant
            if constant.name in names:
                # Caffe allows two layers of one name; their constants must not
                # share one ("conv/taps", "conv/taps#2").
                n = 2
                while f"{constant.name}#{n}" in names:
                    n += 1
                constant = dataclasses.replace(constant, name=f"{constant.name}#{n}")
            names.add(constant.name)
            constants.append(constant)
            return BufferRef.blob(constant.name, operand.dims, operand.strides,
                                  order=operand.order)
        return act_ref(operand)

    stages = []
    for spec in specs:
        inp = ref(spec.input)
        out = ref(spec.output)
        taps = ref(spec.taps)
        bias = ref(spec.bias)
        op_params = ref(spec.op_params)
        stages.append(Stage(
            spec.op, spec.name, spec.params, input=inp, output=out, taps=taps, bias=bias,
            op_params=op_params, post_op=spec.post,
            ncsdk1_window=spec.window1 if target is GraphFormat.NCSDK1 else None))
    stages = _force_im2col(stages)
    return conventions(Graph(tuple(stages), tuple(constants), target, name, shaves))


def conventions(graph: Graph) -> Graph:
    """``graph`` with its format's conventions applied
    (:func:`~caffe2ncs.lowering.graphfile.convert`: 1.x op-params constants,
    one storage order per 1.x stage, 2.05's orphan dilation constant and taps /
    bias storage orders), keeping the stage names a 2.x file does not store;
    the constants are named ``<stage>/<slot>`` as the readers name them."""
    converted = convert(graph, graph.format)
    if graph.format is GraphFormat.NCSDK2:
        stages = tuple(dataclasses.replace(new, name=old.name)
                       for old, new in zip(graph.stages, converted.stages, strict=True))
        converted = _canonical(converted.replace(stages=stages, name=graph.name))
    return converted


def _force_im2col(stages: list[Stage]) -> list[Stage]:
    writers: dict[tuple, int] = {}
    for s in stages:
        writers[_target_key(s)] = writers.get(_target_key(s), 0) + 1
    out = []
    for s in stages:
        if s.op is Op.CONVOLUTION and s.input.dims.z >= 200 and writers[_target_key(s)] > 1:
            s = dataclasses.replace(s, implementation=IM2COL_V2)
        out.append(s)
    return out


def _target_key(stage: Stage) -> tuple:
    o = stage.output
    return (o.location, o.work_index)


# ---------------------------------------------------------------------- streaming

def write_graph_file(graph: Graph, target: GraphFormat | str, path: str | os.PathLike[str]) -> int:
    """Write ``graph`` as a ``target`` graph file at ``path`` (atomically: a
    temporary file renamed into place).  Returns the file size."""
    target = GraphFormat(target)
    graph = convert(graph, target)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            if target is GraphFormat.NCSDK2:
                size = _stream_ncsdk2(graph, f)
            else:
                size = _stream_ncsdk1(graph, f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return size


def graph_bytes(graph: Graph, target: GraphFormat | str) -> bytes:
    """The file :func:`write_graph_file` writes, in memory (for tests and small graphs)."""
    import io

    target = GraphFormat(target)
    graph = convert(graph, target)
    buf = io.BytesIO()
    (_stream_ncsdk2 if target is GraphFormat.NCSDK2 else _stream_ncsdk1)(graph, buf)
    return buf.getvalue()


def _stream_ncsdk2(graph: Graph, f) -> int:
    from .graphfile import ncsdk2_layout as L
    from .graphfile.common import check_writable
    from .graphfile.ncsdk2_writer import _check_orphans, _error, _stage_record

    check_writable(graph, "NCSDK 2.x blob 2.3")
    if not L.MIN_SHAVES <= graph.shave_count <= L.MAX_SHAVES:
        raise _error(f"shave_count {graph.shave_count} is outside {L.MIN_SHAVES}-{L.MAX_SHAVES}")
    _check_orphans(graph)
    offsets = graph.constant_offsets
    blob_relocs: list = []
    work_relocs: list = []

    perm = graph.ncsdk2.permutation
    header_len = 74 + (4 + 4 * len(perm) if perm is not None else 0)
    stage_off = L.align_up_always(header_len, L.HEADER_ALIGN)

    body = ByteWriter()
    for i, stage in enumerate(graph.stages):
        record = _stage_record(i, stage, offsets, blob_relocs, work_relocs)
        last = i + 1 == len(graph.stages)
        body.u32(0 if last else L.STAGE_SECTION_HEADER + len(body) + 4 + len(record))
        body.raw(record)
    section_size = L.align_up_always(L.STAGE_SECTION_HEADER + len(body), L.STAGE_SECTION_ALIGN)
    data_size = sum(c.size for c in graph.constants)
    buffer_off = stage_off + section_size
    reloc_off = buffer_off + L.BUFFER_SECTION_HEADER + data_size
    blob_size = L.RELOC_ENTRY * len(blob_relocs)
    work_size = L.RELOC_ENTRY * len(work_relocs)
    reloc_size = L.RELOC_HEADER + blob_size + work_size
    file_size = reloc_off + reloc_size

    head = ByteWriter()
    elf = graph.ncsdk2.elf
    head.raw(L.ELF_STRUCT.pack(*(getattr(elf, name) for name in L.ELF_FIELDS)))
    head.u32(L.MAGIC, file_size, L.MAJOR_VERSION, L.MINOR_VERSION, graph.shave_count, stage_off,
             buffer_off, reloc_off, graph.input.elements, 0 if perm is None else 1)
    if perm is not None:
        head.u32(len(perm), *perm)
    head.zeros(stage_off - len(head))
    head.u32(len(graph.stages), section_size, graph.output.elements)
    head.raw(body.getvalue())
    head.zeros(buffer_off - len(head))
    head.u32(L.BUFFER_SECTION_HEADER + data_size, L.BUFFER_PAD_WORD, L.BUFFER_PAD_WORD,
             L.BUFFER_PAD_WORD)
    f.write(head.getvalue())
    for c in graph.constants:
        f.write(c.data)
    tail = ByteWriter()
    blob_off = reloc_off + L.RELOC_HEADER
    tail.u32(reloc_size, blob_off, blob_size, blob_off + blob_size, work_size)
    for entry in blob_relocs + work_relocs:
        tail.u32(*entry)
    f.write(tail.getvalue())
    return file_size


def _stream_ncsdk1(graph: Graph, f) -> int:
    from .graphfile import ncsdk1_layout as L
    from .graphfile.common import check_writable
    from .graphfile.ncsdk1_writer import _error, _range, _record

    check_writable(graph, "NCSDK 1.x graph version 2")
    if not L.MIN_SHAVES <= graph.shave_count <= L.MAX_SHAVES:
        raise _error(f"shave_count {graph.shave_count} is outside {L.MIN_SHAVES}-{L.MAX_SHAVES}")
    hdr = graph.ncsdk1
    last_shave = hdr.first_shave + graph.shave_count - 1
    _range("header", "lastShave", last_shave, 0, 0xFFFF)
    for name in ("leon_mem_location", "leon_mem_size", "dma_agent"):
        _range("header", name, getattr(hdr, name), 0, 0xFFFFFFFF)
    if len(graph.stages) > L.MAX_STAGES:
        raise _error(f"{len(graph.stages)} stages; libmvnc 1.x reads the count as 16 bits "
                     f"(at most {L.MAX_STAGES})")
    last = graph.stages[-1]
    if last.output is None or last.output.location is not Location.OUTPUT:
        raise _error("the last stage must write the network output (libmvnc 1.x takes the "
                     "output size from the last stage record)")
    offsets = graph.constant_offsets
    constants = {c.name: c for c in graph.constants}
    data_start = L.data_section_offset(len(graph.stages))
    total = data_start + sum(c.size for c in graph.constants)
    if total > L.MAX_GRAPH_SIZE:
        raise _error(f"{total} bytes is more than libmvnc 1.x accepts ({L.MAX_GRAPH_SIZE})")
    w = ByteWriter()
    w.zeros(32)
    w.u32(total, L.GRAPH_VERSION)
    w.raw(text_field(graph.name, L.NAME_LENGTH, "network name"))
    w.raw(text_field(hdr.report_dir, L.NAME_LENGTH, "report dir"))
    w.u32(len(graph.stages), data_start)
    w.u16(hdr.first_shave, last_shave)
    w.u32(hdr.leon_mem_location, hdr.leon_mem_size, hdr.dma_agent)
    for i, stage in enumerate(graph.stages):
        w.raw(_record(i, stage, offsets, constants))
    w.zeros(data_start - len(w))
    f.write(w.getvalue())
    for c in graph.constants:
        f.write(c.data)
    return total


__all__ = ["GraphTargetError", "graph_bytes", "to_graph", "write_graph_file"]
