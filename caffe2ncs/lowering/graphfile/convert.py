"""Converting a graph between the two formats' conventions.

:func:`convert` returns a graph the target's writer accepts and its reader
gives back unchanged, or raises
:class:`~caffe2ncs.lowering.graphfile.binary.GraphTargetError` naming the
stage and what the target lacks.  What changes:

to NCSDK 1.x
    ops/pre-ops/post-ops must have an NCSDK 1.12 code; stages get names
    (``<op>_<index>``) when they have none; convolution, softmax, crop and
    power stages get their op-params constant (``int32[dilation]``, ...) when
    they have none, placed after the stage's other constants; every buffer of
    a stage takes the data type and storage order of its input (1.x stores one
    per stage); bias/op-params references lose their dims (1.x stores none).

to NCSDK 2.x
    ops must have an NCSDK 2.05 code and a known blob 2.3 record layout; the
    pre-op must be NONE; post-ops without fields (NONE, BIAS) lose their
    parameter; op-params references the record cannot hold are dropped (and
    their constant when nothing else uses it), except a convolution's
    ``int32[dilation]``, which NCSDK 2.05 writes unreferenced right after the
    bias and which is added/moved there; BLOB taps of convolution /
    fully-connected stages get storage order XYZ and their biases ZYX, as
    NCSDK 2.05 writes them; 1.x-only fields (``precision``,
    ``ncsdk1_window``) are reset.
"""

from __future__ import annotations

import dataclasses

from ..ir import (
    CONV_OPS,
    BufferRef,
    Constant,
    DataType,
    Dims3,
    Graph,
    GraphFormat,
    Location,
    Ncsdk1Header,
    Ncsdk2Header,
    Op,
    PostOp,
    Stage,
    StorageOrder,
)
from . import opparams
from .binary import GraphTargetError
from .codes import OP_CODES
from .common import unique_name
from .ncsdk2_layout import ORPHAN_OP_PARAMS_OPS, POST_OP_WORDS, PRE_OP_WORDS, STAGE_LAYOUTS

_ZERO = Dims3(0, 0, 0)
#: Ops whose BLOB taps/bias NCSDK 2.05 labels XYZ/ZYX.
_WEIGHTED_OPS = frozenset(CONV_OPS | {Op.FULLY_CONNECTED})


def convert(graph: Graph, target: GraphFormat | str) -> Graph:
    """``graph`` adapted to ``target`` (a no-op for a graph read from a file of
    that format)."""
    target = GraphFormat(target)
    if target is GraphFormat.NCSDK1:
        return _to_ncsdk1(graph)
    return _to_ncsdk2(graph)


def _where(i: int, stage: Stage) -> str:
    return f"stage {i} ({stage.name or stage.op.value})"


def _to_ncsdk1(graph: Graph) -> Graph:
    codes = OP_CODES[GraphFormat.NCSDK1]
    constants = list(graph.constants)
    taken = {c.name for c in constants}
    stages = []
    for i, stage in enumerate(graph.stages):
        for what, op in (("op", stage.op), ("pre-op", stage.pre_op), ("post-op", stage.post_op.op)):
            if op not in codes:
                raise GraphTargetError(f"cannot convert to NCSDK 1.x: {_where(i, stage)}: {what} "
                                       f"{op.value} has no op code in NCSDK 1.12")
        changes: dict = {}
        name = stage.name or f"{stage.op.value}_{i}"
        name = name.encode("ascii", "replace").decode("ascii")[:100].replace("\0", "?")
        changes["name"] = name
        if opparams.buffered_fields(stage.op, stage.params) is not None and (
                stage.op_params is None or stage.op_params.location is not Location.BLOB):
            const = opparams.encoded_constant(unique_name(f"{name}/op_params", taken), stage.op,
                                              stage.params)
            _insert_after_stage(constants, stage, const)
            changes["op_params"] = BufferRef.blob(const.name)
        stage = dataclasses.replace(stage, **changes)
        base = stage.input or stage.output
        dtype = base.dtype if base else DataType.FP16
        order = base.order if base else StorageOrder.YXZ
        refs = {}
        for slot, ref in stage.buffers():
            dims = (ref.dims, ref.strides) if slot not in ("bias", "op_params") else (_ZERO, _ZERO)
            refs[slot] = dataclasses.replace(ref, dims=dims[0], strides=dims[1], dtype=dtype,
                                             order=order)
        stages.append(dataclasses.replace(stage, **refs))
    if graph.ncsdk2.permutation is not None:
        raise GraphTargetError("cannot convert to NCSDK 1.x: the graph has a (Myriad X) input "
                               "permutation, which 1.x cannot store")
    return _canonical(graph.replace(stages=tuple(stages), constants=tuple(constants),
                                    format=GraphFormat.NCSDK1, ncsdk2=Ncsdk2Header()))


def _to_ncsdk2(graph: Graph) -> Graph:
    codes = OP_CODES[GraphFormat.NCSDK2]
    constants = list(graph.constants)
    taken = {c.name for c in constants}
    stages = []
    for i, stage in enumerate(graph.stages):
        where = _where(i, stage)
        if stage.op not in codes or stage.op not in STAGE_LAYOUTS:
            why = "has no op code in NCSDK 2.05" if stage.op not in codes else \
                "has no known blob 2.3 record layout"
            raise GraphTargetError(f"cannot convert to NCSDK 2.x: {where}: {stage.op.value} {why}")
        if stage.pre_op not in PRE_OP_WORDS:
            raise GraphTargetError(f"cannot convert to NCSDK 2.x: {where}: pre-op "
                                   f"{stage.pre_op.value} is not supported")
        post = stage.post_op
        if post.op not in POST_OP_WORDS:
            raise GraphTargetError(f"cannot convert to NCSDK 2.x: {where}: post-op "
                                   f"{post.op.value} is not supported by blob 2.3")
        if POST_OP_WORDS[post.op] == 0:
            post = PostOp(post.op)
        slots = {name for kind, name in STAGE_LAYOUTS[stage.op] if kind == "buf"}
        changes: dict = {"post_op": post, "precision": DataType.FP16, "ncsdk1_window": None}
        for slot, _ref in stage.buffers():
            if slot in slots or slot == "op_params":
                continue
            raise GraphTargetError(f"cannot convert to NCSDK 2.x: {where}: a {stage.op.value} "
                                   f"record has no {slot} buffer")
        if "op_params" not in slots:
            existing = stage.op_params
            bare = dataclasses.replace(stage, op_params=None)
            changes["op_params"] = None
            const = None
            if existing is not None and existing.location is Location.BLOB:
                old = next(c for c in constants if c.name == existing.constant)
                if stage.op in ORPHAN_OP_PARAMS_OPS and opparams.matches(stage.op, stage.params,
                                                                         old):
                    constants.remove(old)  # keep it, moved after the stage's bias below
                    const = old
            if stage.op in ORPHAN_OP_PARAMS_OPS:
                if const is None:
                    const = opparams.encoded_constant(
                        unique_name(f"{stage.name or stage.op.value}/op_params", taken),
                        stage.op, stage.params)
                _insert_after_stage(constants, bare, const)
                changes["op_params"] = BufferRef.blob(const.name)
        if stage.op in _WEIGHTED_OPS:
            for slot, order in (("taps", StorageOrder.XYZ), ("bias", StorageOrder.ZYX)):
                ref = getattr(stage, slot)
                if ref is not None and ref.location is Location.BLOB:
                    changes[slot] = dataclasses.replace(ref, order=order)
        stages.append(dataclasses.replace(stage, **changes))
    stages = [dataclasses.replace(s, name=f"{s.op.value}_{i}") for i, s in enumerate(stages)]
    return _canonical(graph.replace(stages=tuple(stages), constants=tuple(constants),
                                    format=GraphFormat.NCSDK2, name="", ncsdk1=Ncsdk1Header()))


def _canonical(graph: Graph) -> Graph:
    """Name and type the constants as the readers will (neither format stores
    constant names or element types), and drop constants no stage references
    (a reader would merge them into the constant before them)."""
    first_use: dict[str, tuple[str, str]] = {}
    for stage in graph.stages:
        for slot, ref in stage.buffers():
            if ref.location is Location.BLOB:
                first_use.setdefault(ref.constant, (
                    f"{stage.name}/{slot}", opparams.constant_dtype(stage.op, slot)))
    taken: set[str] = set()
    renamed: dict[str, str] = {}
    constants = []
    for c in graph.constants:
        if c.name not in first_use:
            continue
        base, dtype = first_use[c.name]
        renamed[c.name] = unique_name(base, taken)
        constants.append(Constant(renamed[c.name], c.data, dtype))
    stages = []
    for stage in graph.stages:
        refs = {slot: dataclasses.replace(ref, constant=renamed[ref.constant])
                for slot, ref in stage.buffers() if ref.location is Location.BLOB}
        stages.append(dataclasses.replace(stage, **refs))
    return graph.replace(stages=tuple(stages), constants=tuple(constants))


def _insert_after_stage(constants: list[Constant], stage: Stage, const: Constant) -> None:
    """Put ``const`` right after the last constant ``stage`` references (or at
    the end when it references none)."""
    names = [c.name for c in constants]
    refs = [ref.constant for _, ref in stage.buffers() if ref.location is Location.BLOB]
    positions = [names.index(n) for n in refs if n in names]
    pos = max(positions) + 1 if positions else len(constants)
    constants.insert(pos, const)
