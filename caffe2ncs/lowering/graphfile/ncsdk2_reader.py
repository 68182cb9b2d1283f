"""Reader of the NCSDK 2.x "blob 2.3" format (``docs/graph-format.md`` section 3).

Everything is validated before it is used: header values, section offsets and
sizes against the file size, counts against the bytes that could hold them
(before any list is built), stage records against their ``next_stage`` links,
buffer descriptors against the relocation table, relocation entries against
the data section.  Any inconsistency is a :class:`~caffe2ncs.errors.GraphFileError`
naming the field and its byte offset.
"""

from __future__ import annotations

import dataclasses
import os
import struct

from ..ir import (
    PARAMS_FOR_OP,
    BufferRef,
    Constant,
    Dims3,
    ElfStub,
    Graph,
    GraphFormat,
    Location,
    Ncsdk2Header,
    Op,
    PostOp,
    Stage,
)
from . import opparams
from .binary import ByteReader
from .codes import (
    DTYPES_BY_CODE,
    OPS_BY_CODE,
    ORDERS_BY_CODE,
    PAD_STYLES_BY_CODE,
    known,
)
from .common import BlobUse, check_blob_fits, required_bytes, split_data_section
from .ncsdk2_layout import (
    BUFFER_SECTION_HEADER,
    DESCRIPTOR_SIZE,
    ELF_FIELDS,
    ELF_STRUCT,
    HEADER_SIZE,
    MAGIC,
    MAJOR_VERSION,
    MAX_SHAVES,
    MIN_SHAVES,
    MIN_STAGE_SIZE,
    MINOR_VERSION,
    OFF_BUFFER_SECTION,
    OFF_FILE_SIZE,
    OFF_INPUT_SIZE,
    OFF_MAGIC,
    OFF_MAJOR,
    OFF_MINOR,
    OFF_NUM_SHAVES,
    OFF_PERMUTATION,
    OFF_RELOCATION,
    OFF_STAGE_SECTION,
    ORPHAN_OP_PARAMS_OPS,
    POST_OP_WORDS,
    PRE_OP_WORDS,
    RELOC_ENTRY,
    RELOC_HEADER,
    STAGE_LAYOUTS,
    STAGE_SECTION_HEADER,
)

FMT = GraphFormat.NCSDK2


def read_ncsdk2(data: bytes, path: str | os.PathLike[str] | None = None) -> Graph:
    """Parse a blob 2.3 file into a :class:`~caffe2ncs.lowering.ir.Graph`."""
    r = ByteReader(data, path)
    return _Parser(r).parse()


class _Parser:
    def __init__(self, r: ByteReader) -> None:
        self.r = r

    # ---------------------------------------------------------------- header

    def parse(self) -> Graph:
        r = self.r
        r.need(0, HEADER_SIZE, "blob header")
        magic = r.u32(OFF_MAGIC, "magic")
        if magic != MAGIC:
            raise r.error(f"is {magic}, not the blob magic {MAGIC}", OFF_MAGIC, "magic")
        major = r.u32(OFF_MAJOR, "blob_major_version")
        minor = r.u32(OFF_MINOR, "blob_minor_version")
        if (major, minor) != (MAJOR_VERSION, MINOR_VERSION):
            raise r.error(f"blob version {major}.{minor} is not supported (supported: NCSDK 2.x "
                          f"blob {MAJOR_VERSION}.{MINOR_VERSION} and NCSDK 1.x graph version 2)",
                          OFF_MAJOR, "blob_major_version")
        file_size = r.u32(OFF_FILE_SIZE, "file_size")
        if file_size != r.size:
            raise r.error(f"says {file_size} bytes but the file has {r.size} "
                          f"({'truncated' if r.size < file_size else 'trailing data'})",
                          OFF_FILE_SIZE, "file_size")
        shaves = r.u32(OFF_NUM_SHAVES, "num_shaves")
        if not MIN_SHAVES <= shaves <= MAX_SHAVES:
            raise r.error(f"is {shaves}, outside {MIN_SHAVES}-{MAX_SHAVES}", OFF_NUM_SHAVES,
                          "num_shaves")
        elf = ElfStub(**dict(zip(ELF_FIELDS, ELF_STRUCT.unpack_from(r.data, 0), strict=True)))

        stage_off = r.u32(OFF_STAGE_SECTION, "stage_section_offset")
        buf_off = r.u32(OFF_BUFFER_SECTION, "buffer_section_offset")
        reloc_off = r.u32(OFF_RELOCATION, "relocation_offset")
        input_size = r.u32(OFF_INPUT_SIZE, "size_of_input")

        permutation = None
        perm_flag = r.u32(OFF_PERMUTATION, "permutation_enabled")
        header_end = HEADER_SIZE
        if perm_flag == 1:
            n = r.u32(HEADER_SIZE, "permutation_size")
            if 4 * n > max(0, stage_off - HEADER_SIZE - 4):
                raise r.error(f"{n} ids do not fit before the stage section at {stage_off}",
                              HEADER_SIZE, "permutation_size")
            permutation = r.u32s(HEADER_SIZE + 4, n, "permutation ids")
            header_end = HEADER_SIZE + 4 + 4 * n
        elif perm_flag != 0:
            raise r.error(f"is {perm_flag}, must be 0 or 1", OFF_PERMUTATION, "permutation_enabled")

        for value, off, field in ((stage_off, OFF_STAGE_SECTION, "stage_section_offset"),
                                  (buf_off, OFF_BUFFER_SECTION, "buffer_section_offset"),
                                  (reloc_off, OFF_RELOCATION, "relocation_offset")):
            if value >= r.size:
                raise r.error(f"{value} is past the end of the {r.size}-byte file", off, field)
        if not header_end <= stage_off:
            raise r.error(f"{stage_off} overlaps the header (which ends at {header_end})",
                          OFF_STAGE_SECTION, "stage_section_offset")
        if not stage_off < buf_off:
            raise r.error(f"{buf_off} is not after the stage section at {stage_off}",
                          OFF_BUFFER_SECTION, "buffer_section_offset")
        if not buf_off < reloc_off:
            raise r.error(f"{reloc_off} is not after the buffer section at {buf_off}",
                          OFF_RELOCATION, "relocation_offset")

        stages_raw, output_size = self.parse_stage_section(stage_off, buf_off)
        data, data_off = self.parse_buffer_section(buf_off, reloc_off)
        blob_entries, work_entries = self.parse_relocations(reloc_off)

        stages = self.resolve(stages_raw, blob_entries, work_entries, data, data_off)
        graph = Graph(
            stages=tuple(s for s, _ in stages),
            constants=tuple(self.constants),
            format=FMT,
            shave_count=shaves,
            ncsdk2=Ncsdk2Header(elf=elf, permutation=permutation),
        )
        check_blob_fits(graph, lambda m: r.error(m, None, "buffer descriptor"))
        if graph.input is None:
            raise r.error("no stage reads the network input")
        if graph.input.elements != input_size:
            raise r.error(f"is {input_size} but the network input buffer holds "
                          f"{graph.input.elements} elements", OFF_INPUT_SIZE, "size_of_input")
        if graph.output is None:
            raise r.error("no stage writes the network output")
        if graph.output.elements != output_size:
            raise r.error(f"is {output_size} but the network output buffer holds "
                          f"{graph.output.elements} elements", stage_off + 8, "size_of_output")
        return graph

    # ---------------------------------------------------------------- stages

    def parse_stage_section(self, stage_off: int, buf_off: int) -> tuple[list, int]:
        r = self.r
        count = r.u32(stage_off, "stage_count")
        size = r.u32(stage_off + 4, "size_of_stage_section")
        output_size = r.u32(stage_off + 8, "size_of_output")
        if stage_off + size != buf_off:
            raise r.error(f"is {size}, but the buffer section starts {buf_off - stage_off} bytes "
                          f"after the stage section", stage_off + 4, "size_of_stage_section")
        end = stage_off + size
        max_count = max(0, (size - STAGE_SECTION_HEADER) // MIN_STAGE_SIZE)
        if not 1 <= count <= max_count:
            raise r.error(f"is {count}; a {size}-byte stage section holds 1 to {max_count} stages",
                          stage_off, "stage_count")
        self.section_end = end
        stages = []
        pos = stage_off + STAGE_SECTION_HEADER
        for i in range(count):
            raw, stage_end = self.parse_stage(i, pos, end)
            nxt = r.u32(pos, f"stage {i} next_stage")
            if i + 1 < count:
                if stage_off + nxt != stage_end:
                    raise r.error(f"is {nxt}, but the stage's fields end at section offset "
                                  f"{stage_end - stage_off}", pos, f"stage {i} next_stage")
                pos = stage_end
            elif nxt != 0:
                raise r.error(f"is {nxt}, must be 0 for the last stage", pos,
                              f"stage {i} next_stage")
            stages.append(raw)
        return stages, output_size

    def parse_stage(self, i: int, pos: int, end: int) -> tuple[dict, int]:
        r = self.r

        def word(off: int, what: str) -> int:
            if off + 4 > end:
                raise r.error(f"runs past the end of the stage section ({end})", off,
                              f"stage {i} {what}")
            return r.u32(off, f"stage {i} {what}")

        code = word(pos + 4, "stage_type")
        op = OPS_BY_CODE[FMT].get(code)
        if op is None:
            raise r.error(f"{code} is not an NCSDK 2.05 op code (known: {known(OPS_BY_CODE[FMT])})",
                          pos + 4, f"stage {i} stage_type")
        if op not in STAGE_LAYOUTS:
            raise r.error(f"{op.value} (code {code}) has no known blob 2.3 stage layout", pos + 4,
                          f"stage {i} stage_type")
        raw: dict = {"op": op, "implementation": word(pos + 8, "implementation"), "fields": {},
                     "bufs": {}, "pos": pos}
        off = pos + 12
        for kind, name in STAGE_LAYOUTS[op]:
            if kind == "buf":
                if off + DESCRIPTOR_SIZE > end:
                    raise r.error(f"runs past the end of the stage section ({end})", off,
                                  f"stage {i} {name} buffer descriptor")
                raw["bufs"][name] = (off, r.u32s(off, 10, f"stage {i} {name} buffer descriptor"))
                off += DESCRIPTOR_SIZE
                continue
            v = word(off, name)
            if kind == "pad_style":
                if v not in PAD_STYLES_BY_CODE:
                    raise r.error(f"{v} is not a pad style (0-3)", off, f"stage {i} padStyle")
                v = PAD_STYLES_BY_CODE[v]
            elif kind == "i32":
                v = struct.unpack("<i", struct.pack("<I", v))[0]
            elif kind == "f32":
                v = struct.unpack("<f", struct.pack("<I", v))[0]
            raw["fields"][name] = v
            off += 4
        pre_code = word(off, "preop_type")
        pre = OPS_BY_CODE[FMT].get(pre_code)
        if pre not in PRE_OP_WORDS:
            raise r.error(f"{pre_code} is not a supported pre-op (only 5 = none is known)", off,
                          f"stage {i} preop_type")
        off += 4
        post_code = word(off, "postop_type")
        post = OPS_BY_CODE[FMT].get(post_code)
        if post not in POST_OP_WORDS:
            raise r.error(f"{post_code} is not a supported post-op (known: "
                          f"{', '.join(f'{o.value}' for o in POST_OP_WORDS)})", off,
                          f"stage {i} postop_type")
        off += 4
        post_words = [word(off + 4 * k, "post-op field") for k in range(POST_OP_WORDS[post])]
        off += 4 * len(post_words)
        raw["pre_op"] = pre
        raw["post_op"] = PostOp(post, *post_words)
        return raw, off

    # ---------------------------------------------------------------- buffers / relocations

    def parse_buffer_section(self, buf_off: int, reloc_off: int) -> tuple[bytes, int]:
        r = self.r
        size = r.u32(buf_off, "size_of_buffer_section")
        if buf_off + size != reloc_off or size < BUFFER_SECTION_HEADER:
            raise r.error(f"is {size}, but the relocation table starts {reloc_off - buf_off} bytes "
                          f"after the buffer section", buf_off, "size_of_buffer_section")
        data_off = buf_off + BUFFER_SECTION_HEADER
        return r.raw(data_off, size - BUFFER_SECTION_HEADER, "data section"), data_off

    def parse_relocations(self, reloc_off: int) -> tuple[list, list]:
        r = self.r
        total, blob_off, blob_size, work_off, work_size = r.u32s(reloc_off, 5, "relocation header")
        fields = ("relocation_buffer_size", "blob_buffer_reloc_offset", "blob_buffer_reloc_size",
                  "work_buffer_reloc_offset", "work_buffer_reloc_size")
        if reloc_off + total != r.size:
            raise r.error(f"is {total}, but the relocation table starts at {reloc_off} of a "
                          f"{r.size}-byte file", reloc_off, fields[0])
        if blob_off != reloc_off + RELOC_HEADER:
            raise r.error(f"is {blob_off}, must be {reloc_off + RELOC_HEADER}", reloc_off + 4,
                          fields[1])
        for value, k in ((blob_size, 2), (work_size, 4)):
            if value % RELOC_ENTRY:
                raise r.error(f"is {value}, not a multiple of {RELOC_ENTRY}", reloc_off + 4 * k,
                              fields[k])
        if work_off != blob_off + blob_size:
            raise r.error(f"is {work_off}, must follow the blob entries at {blob_off + blob_size}",
                          reloc_off + 12, fields[3])
        if RELOC_HEADER + blob_size + work_size != total:
            raise r.error(f"is {total}, but header and entries take "
                          f"{RELOC_HEADER + blob_size + work_size}", reloc_off, fields[0])

        def entries(off: int, size: int, what: str) -> list:
            words = r.u32s(off, size // 4, what)
            return [(words[k], words[k + 1], off + 4 * k) for k in range(0, len(words), 2)]

        return (entries(blob_off, blob_size, "blob relocation entries"),
                entries(work_off, work_size, "work relocation entries"))

    # ---------------------------------------------------------------- assembling the IR

    def resolve(self, stages_raw: list, blob_entries: list, work_entries: list, data: bytes,
                data_off: int) -> list:
        r = self.r
        names = [f"{raw['op'].value}_{i}" for i, raw in enumerate(stages_raw)]
        uses: list[BlobUse] = []
        resolved: list[dict] = []
        for i, raw in enumerate(stages_raw):
            resolved.append({slot: self.descriptor(i, slot, off, words, blob_entries,
                                                   work_entries, uses, raw["op"])
                             for slot, (off, words) in raw["bufs"].items()})
        # Now that every data-section offset is known, cut the constants and
        # point the BLOB references at them by name.
        by_offset = split_data_section(data, uses, names, r, data_off)
        for use in uses:
            ref = resolved[use.stage_index][use.slot]
            resolved[use.stage_index][use.slot] = dataclasses.replace(
                ref, constant=by_offset[use.offset].name)

        stages = []
        for i, (raw, refs) in enumerate(zip(stages_raw, resolved, strict=True)):
            op = raw["op"]
            params_cls = PARAMS_FOR_OP.get(op)
            try:
                params = params_cls(**raw["fields"]) if params_cls else None
                stage = Stage(op=op, name=names[i], params=params, pre_op=raw["pre_op"],
                              post_op=raw["post_op"], implementation=raw["implementation"],
                              **refs)
            except (TypeError, ValueError) as err:
                raise r.error(f"invalid parameters: {err}", raw["pos"], f"stage {i}") from None
            stages.append((stage, raw))

        # NCSDK 2.05 writes a convolution's 1.x op-params array (int32[dilation])
        # into the data section without referencing it; give it back to its stage.
        constants = list(by_offset.values())
        for k, (stage, raw) in enumerate(stages):
            if stage.op in ORPHAN_OP_PARAMS_OPS and stage.op_params is None:
                stage, constants = _attach_orphan(stage, constants)
                stages[k] = (stage, raw)
        self.constants = constants
        return stages

    def descriptor(self, i: int, slot: str, off: int, words: tuple, blob_entries: list,
                   work_entries: list, uses: list, op: Op) -> BufferRef | None:
        """The IR reference for one 10-word descriptor (None for an all-zero one).
        A BLOB reference gets a placeholder constant name and its data-section
        offset is recorded in ``uses``."""
        r = self.r
        what = f"stage {i} {slot} buffer"
        if not any(words):
            return None
        dims, strides = Dims3(*words[0:3]), Dims3(*words[3:6])
        offset, loc, dt_code, order_code = words[6:10]
        dtype = DTYPES_BY_CODE[FMT].get(dt_code)
        if dtype is None:
            raise r.error(f"dataType {dt_code} is not a blob 2.3 data type (known: "
                          f"{known(DTYPES_BY_CODE[FMT])})", off + 32, what)
        order = ORDERS_BY_CODE[FMT].get(order_code)
        if order is None:
            raise r.error(f"order {order_code} is not a storage order (0-5)", off + 36, what)
        common = {"dims": dims, "strides": strides, "dtype": dtype, "order": order}
        if loc in (0, 1, 2):
            location = (Location.NONE, Location.INPUT, Location.OUTPUT)[loc]
            return BufferRef(location=location, offset=offset, **common)
        if loc == 3:
            if offset >= len(blob_entries):
                raise r.error(f"relocation index {offset} is past the {len(blob_entries)} blob "
                              f"relocation entries", off + 24, what)
            data_offset, entry_loc, entry_pos = blob_entries[offset]
            if entry_loc != 3:
                raise r.error(f"blob relocation entry {offset} has location {entry_loc}, not 3",
                              entry_pos + 4, "blob relocation entry")
            uses.append(BlobUse(data_offset, i, slot, op, entry_pos))
            return BufferRef(location=Location.BLOB, constant="?", **common)
        if offset >= len(work_entries):
            raise r.error(f"relocation index {offset} is past the {len(work_entries)} work "
                          f"relocation entries", off + 24, what)
        scratch, entry_loc, entry_pos = work_entries[offset]
        if entry_loc != loc:
            raise r.error(f"work relocation entry {offset} has location {entry_loc}, but the "
                          f"descriptor says {loc}", entry_pos + 4, "work relocation entry")
        return BufferRef(location=Location.WORK, offset=scratch, work_index=loc, **common)


def _attach_orphan(stage: Stage, constants: list[Constant]) -> tuple[Stage, list[Constant]]:
    """If the constant holding ``stage``'s last BLOB reference ends with a
    64-byte block that is exactly the stage's 1.x op-params encoding, split it
    off into its own constant and reference it as ``stage.op_params``."""
    blob_refs = [(slot, ref) for slot, ref in stage.buffers() if ref.location is Location.BLOB]
    if not blob_refs:
        return stage, constants
    slot, ref = blob_refs[-1]
    idx = next(k for k, c in enumerate(constants) if c.name == ref.constant)
    host = constants[idx]
    enc = opparams.encoded_constant(f"{stage.name}/op_params", stage.op, stage.params)
    if enc is None:
        return stage, constants
    keep = host.size - enc.size
    if keep <= 0 or keep < required_bytes(stage, slot, ref) or host.data[keep:] != enc.data:
        return stage, constants
    names = {c.name for c in constants}
    if enc.name in names:
        return stage, constants
    head = Constant(host.name, host.data[:keep], host.dtype)
    constants = constants[:idx] + [head, enc] + constants[idx + 1:]
    return dataclasses.replace(stage, op_params=BufferRef.blob(enc.name)), constants

