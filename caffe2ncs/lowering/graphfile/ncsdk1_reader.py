"""Reader of the NCSDK 1.x "graph version 2" format (``docs/graph-format.md``
section 2).  Validates the header against the file size, bounds the stage
count by the bytes that could hold the records before parsing any, checks
every code against the NCSDK 1.12 tables and every data-section pointer
against the data section, and raises
:class:`~caffe2ncs.errors.GraphFileError` naming the field and its byte offset.
"""

from __future__ import annotations

import os

from ..ir import (
    BUFFER_SLOTS,
    CONV_OPS,
    POOL_OPS,
    BufferRef,
    ConvParams,
    Dims3,
    Graph,
    GraphFormat,
    Location,
    LrnParams,
    Ncsdk1Header,
    OffsetParams,
    Op,
    PoolParams,
    PostOp,
    PowerParams,
    SoftmaxParams,
    Stage,
    Window,
)
from . import opparams
from .binary import ByteReader
from .codes import DTYPES_BY_CODE, OPS_BY_CODE, ORDERS_BY_CODE, PAD_STYLES_BY_CODE, known
from .common import BlobUse, check_blob_fits, split_data_section
from .ncsdk1_layout import (
    GRAPH_VERSION,
    HEADER_LENGTH,
    MAX_OUTPUT_ELEMENTS,
    MAX_SHAVES,
    MAX_STAGES,
    MIN_SHAVES,
    NAME_LENGTH,
    OFF_DATA_START,
    OFF_DMA_AGENT,
    OFF_FILE_SIZE,
    OFF_FIRST_SHAVE,
    OFF_LAST_SHAVE,
    OFF_LEON_MEM_LOCATION,
    OFF_LEON_MEM_SIZE,
    OFF_NAME,
    OFF_REPORT_DIR,
    OFF_STAGE_COUNT,
    OFF_VERSION,
    POINTER_SLOTS,
    STAGE_FIELD_OFFSETS,
    STAGE_LENGTH,
    STAGE_STRUCT,
)

FMT = GraphFormat.NCSDK1

_FIELDS = ("name", "op", "optMask", "radixX", "radixY", "strideX", "strideY", "padX", "padY",
           "padStyle", "inputDimX", "inputDimY", "inputDimZ", "tapDimX", "tapDimY", "tapDimZ",
           "outputDimX", "outputDimY", "outputDimZ", "inputStrideX", "inputStrideY",
           "inputStrideZ", "tapStrideX", "tapStrideY", "tapStrideZ", "outputStrideX",
           "outputStrideY", "outputStrideZ", "datatype", "precision", "storageOrder",
           "dataPointer", "dataIndex", "tapsPointer", "tapsIndex", "biasPointer", "biasIndex",
           "opParamsPointer", "opParamsIndex", "outputPointer", "outputIndex", "preOp", "postOp",
           "post_param1", "post_strideX", "post_strideY")


def read_ncsdk1(data: bytes, path: str | os.PathLike[str] | None = None) -> Graph:
    """Parse a 1.x graph file into a :class:`~caffe2ncs.lowering.ir.Graph`."""
    r = ByteReader(data, path)
    r.need(0, HEADER_LENGTH, "graph header")
    if any(r.raw(0, 32, "header")):
        raise r.error("must be zero", 0, "bytes 0-31 (VCS fix)")
    version = r.u32(OFF_VERSION, "graph version")
    if version != GRAPH_VERSION:
        raise r.error(f"graph version {version} is not supported (supported: NCSDK 1.x graph "
                      f"version {GRAPH_VERSION} and NCSDK 2.x blob 2.3)", OFF_VERSION,
                      "graph version")
    file_size = r.u32(OFF_FILE_SIZE, "file size")
    if file_size != r.size:
        raise r.error(f"says {file_size} bytes but the file has {r.size} "
                      f"({'truncated' if r.size < file_size else 'trailing data'})",
                      OFF_FILE_SIZE, "file size")
    name = r.text(OFF_NAME, NAME_LENGTH, "network name")
    report_dir = r.text(OFF_REPORT_DIR, NAME_LENGTH, "report dir")
    count = r.u32(OFF_STAGE_COUNT, "stage count")
    max_count = min((r.size - HEADER_LENGTH) // STAGE_LENGTH, MAX_STAGES)
    if not 1 <= count <= max_count:
        raise r.error(f"is {count}; a {r.size}-byte file holds 1 to {max_count} stage records",
                      OFF_STAGE_COUNT, "stage count")
    data_start = r.u32(OFF_DATA_START, "data section offset")
    stages_end = HEADER_LENGTH + STAGE_LENGTH * count
    if not stages_end <= data_start <= r.size:
        raise r.error(f"is {data_start}, outside {stages_end}..{r.size} (after the stage records, "
                      f"inside the file)", OFF_DATA_START, "data section offset")
    first, last = r.u16(OFF_FIRST_SHAVE, "firstShave"), r.u16(OFF_LAST_SHAVE, "lastShave")
    shaves = last - first + 1
    if not MIN_SHAVES <= shaves <= MAX_SHAVES:
        raise r.error(f"firstShave {first} and lastShave {last} give {shaves} SHAVEs, outside "
                      f"{MIN_SHAVES}-{MAX_SHAVES}", OFF_FIRST_SHAVE, "firstShave/lastShave")
    header = Ncsdk1Header(
        report_dir=report_dir, first_shave=first,
        leon_mem_location=r.u32(OFF_LEON_MEM_LOCATION, "leonMemLocation"),
        leon_mem_size=r.u32(OFF_LEON_MEM_SIZE, "leonMemSize"),
        dma_agent=r.u32(OFF_DMA_AGENT, "dmaAgent"))

    records = []
    for i in range(count):
        base = HEADER_LENGTH + STAGE_LENGTH * i
        r.need(base, STAGE_LENGTH, f"stage {i} record")
        rec = dict(zip(_FIELDS, STAGE_STRUCT.unpack_from(r.data, base), strict=True))
        records.append((base, rec))

    names = []
    for i, (base, rec) in enumerate(records):
        try:
            names.append(rec["name"].split(b"\0", 1)[0].decode("ascii"))
        except UnicodeDecodeError:
            raise r.error("is not ASCII text", base, f"stage {i} name") from None

    uses: list[BlobUse] = []
    partial = [_parse_record(r, i, base, rec, names[i], uses) for i, (base, rec) in
               enumerate(records)]
    data = r.raw(data_start, r.size - data_start, "data section")
    constants = split_data_section(data, uses, names, r, data_start)
    by_offset = {off: c.name for off, c in constants.items()}

    stages = []
    for i, (fields, refs) in enumerate(partial):
        for slot, ref in list(refs.items()):
            if ref is not None and ref.location is Location.BLOB:
                refs[slot] = BufferRef(ref.dims, ref.strides, Location.BLOB, 0,
                                       by_offset[ref.offset], dtype=ref.dtype, order=ref.order)
        op = fields["op"]
        try:
            params = _params(r, i, records[i][0], records[i][1], op, refs.get("op_params"),
                             {c.name: c for c in constants.values()})
            fields["params"], fields["ncsdk1_window"] = params
            stages.append(Stage(**fields, **refs))
        except (TypeError, ValueError) as err:
            raise r.error(f"invalid parameters: {err}", records[i][0], f"stage {i}") from None

    graph = Graph(stages=tuple(stages), constants=tuple(constants.values()), format=FMT,
                  name=name, shave_count=shaves, ncsdk1=header)
    check_blob_fits(graph, lambda m: r.error(m, None, "stage record"))
    last_out = stages[-1].output
    last_base = records[-1][0]
    if last_out is None or last_out.location is not Location.OUTPUT:
        raise r.error("the last stage does not write the network output (libmvnc 1.x takes the "
                      "output size from the last stage)", last_base + 211, f"stage {count - 1}")
    n_out = last_out.dims.x * last_out.dims.y * (last_out.strides.x // 2)
    if n_out > MAX_OUTPUT_ELEMENTS:
        raise r.error(f"gives {n_out} output elements, more than libmvnc's limit "
                      f"{MAX_OUTPUT_ELEMENTS}", last_base + 136, f"stage {count - 1} outputDim")
    if graph.input is None:
        raise r.error("no stage reads the network input")
    return graph


def _parse_record(r: ByteReader, i: int, base: int, rec: dict, name: str,
                  uses: list[BlobUse]) -> tuple[dict, dict]:
    def where(field: str) -> tuple[int, str]:
        return base + STAGE_FIELD_OFFSETS[field], f"stage {i} {field}"

    ops = OPS_BY_CODE[FMT]
    op = ops.get(rec["op"])
    if op is None:
        raise r.error(f"{rec['op']} is not an NCSDK 1.12 op code (known: {known(ops)})",
                      *where("op"))
    pre, post = ops.get(rec["preOp"]), ops.get(rec["postOp"])
    if pre is None:
        raise r.error(f"{rec['preOp']} is not an NCSDK 1.12 op code", *where("preOp"))
    if post is None:
        raise r.error(f"{rec['postOp']} is not an NCSDK 1.12 op code", *where("postOp"))
    dtype = DTYPES_BY_CODE[FMT].get(rec["datatype"])
    if dtype is None:
        raise r.error(f"{rec['datatype']} is not a data type (known: "
                      f"{known(DTYPES_BY_CODE[FMT])})", *where("datatype"))
    precision = DTYPES_BY_CODE[FMT].get(rec["precision"])
    if precision is None:
        raise r.error(f"{rec['precision']} is not a data type (known: "
                      f"{known(DTYPES_BY_CODE[FMT])})", *where("precision"))
    order = ORDERS_BY_CODE[FMT].get(rec["storageOrder"])
    if order is None:
        raise r.error(f"{rec['storageOrder']} is not a storage order (0-5)",
                      *where("storageOrder"))
    if rec["padStyle"] not in PAD_STYLES_BY_CODE:
        raise r.error(f"{rec['padStyle']} is not a pad style (0-3)", *where("padStyle"))
    for f in ("radixX", "radixY"):
        if rec[f] < 0:
            raise r.error(f"is {rec[f]}: a kernel size cannot be negative", *where(f))

    dims = {
        "input": (Dims3(rec["inputDimX"], rec["inputDimY"], rec["inputDimZ"]),
                  Dims3(rec["inputStrideX"], rec["inputStrideY"], rec["inputStrideZ"])),
        "taps": (Dims3(rec["tapDimX"], rec["tapDimY"], rec["tapDimZ"]),
                 Dims3(rec["tapStrideX"], rec["tapStrideY"], rec["tapStrideZ"])),
        "output": (Dims3(rec["outputDimX"], rec["outputDimY"], rec["outputDimZ"]),
                   Dims3(rec["outputStrideX"], rec["outputStrideY"], rec["outputStrideZ"])),
    }
    zero = (Dims3(0, 0, 0), Dims3(0, 0, 0))
    refs: dict[str, BufferRef | None] = {}
    # Slots in BUFFER_SLOTS order (not record order), so that a constant used
    # twice by one stage is named after the same slot as by the 2.x reader.
    for slot, field in sorted(POINTER_SLOTS, key=lambda sf: BUFFER_SLOTS.index(sf[0])):
        prefix = field[: -len("Pointer")]
        pointer, index = rec[field], rec[prefix + "Index"]
        d, s = dims.get(slot, zero)
        if pointer == 0 and index == 0 and not any(d) and not any(s):
            refs[slot] = None
            continue
        common = {"dims": d, "strides": s, "dtype": dtype, "order": order}
        if index >= 4:
            refs[slot] = BufferRef(location=Location.WORK, offset=pointer, work_index=index,
                                   **common)
        elif index == 3:
            uses.append(BlobUse(pointer, i, slot, op, base + STAGE_FIELD_OFFSETS[field]))
            # The constant's name is filled in once the data section is split.
            refs[slot] = BufferRef(location=Location.BLOB, offset=pointer, constant="?", **common)
        else:
            location = (Location.NONE, Location.INPUT, Location.OUTPUT)[index]
            refs[slot] = BufferRef(location=location, offset=pointer, **common)

    fields = {
        "op": op, "name": name, "implementation": rec["optMask"], "pre_op": pre,
        "post_op": PostOp(post, rec["post_param1"], rec["post_strideX"], rec["post_strideY"]),
        "precision": precision,
    }
    return fields, refs


def _params(r: ByteReader, i: int, base: int, rec: dict, op: Op, op_ref, constants):
    """Typed params of the stage and the leftover window bytes (ncsdk1_window)."""
    window = Window(rec["radixX"], rec["radixY"], rec["strideX"], rec["strideY"], rec["padX"],
                    rec["padY"], PAD_STYLES_BY_CODE[rec["padStyle"]])
    geometry = {k: getattr(window, k) for k in Window.__dataclass_fields__}
    if op in POOL_OPS:
        return PoolParams(**geometry), None
    buffered = opparams.default_fields(op)
    if buffered is not None and op_ref is not None and op_ref.location is Location.BLOB:
        buffered = opparams.decode(op, constants[op_ref.constant].data)
        if buffered is None:  # pragma: no cover - constants are >= 64 bytes
            raise r.error("op-params buffer too short", base + 205, f"stage {i} opParams")
    if op in CONV_OPS:
        return ConvParams(**geometry, **buffered), None
    leftover = window if any(v for k, v in geometry.items() if k != "pad_style") or \
        window.pad_style.value != "none" else None
    if op in (Op.LRN, Op.INNER_LRN):
        lrn_default = Window(window.kernel_x, window.kernel_x, 1, 1, 0, 0)
        return LrnParams(window.kernel_x), (None if window == lrn_default else window)
    if op is Op.SOFTMAX:
        return SoftmaxParams(**buffered), leftover
    if op is Op.CROP:
        return OffsetParams(**buffered), leftover
    if op is Op.RESHAPE:
        return OffsetParams(), leftover
    if op is Op.POWER:
        return PowerParams(**buffered), leftover
    return None, leftover
