"""Where each value lives: the network input, the network output, or a work
buffer in the device's scratch area - and which values share one.

* The network output is written straight into the output tensor by the
  stage(s) that compute it.  When it is the network input itself, a slice of
  another value, or an implicit concat along the height (whose last writer
  would not describe the whole output, which is what libmvnc 1.x reads the
  output size from), a ``copy`` stage writes it there instead.
* **Implicit concat** (the NCSDK's only kind): the Concat's output gets one
  buffer and each input is computed straight into its part of it - at a
  channel offset with the concat's strides (``strideX = 2*sum(C)``), or, for a
  concat along the height, at a row offset.  Nested concats nest the same
  way.  An input that cannot be written in place - the network input, a
  slice, a value already placed in another concat, a value given twice - is
  copied into its part by a ``copy`` stage named ``<concat>_<blob>`` (the
  names of the toolkit's explicit-concat copies).
* **Slice**: each top is a view of the bottom's buffer at a channel (or row)
  offset; nothing is copied here (consumers that need a dense input get a
  copy when their stages are made, :mod:`.stages`).
* Everything else gets a work buffer of its own, as both SDKs do (no reuse).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnsupportedNetworkError
from ..model.frozen import unwrap
from .netgraph import NetGraph, Node, Value


@dataclass(eq=False)
class Home:
    """One physical buffer: ``kind`` is ``"input"``, ``"output"`` or ``"work"``;
    ``(w, h, c)`` its full size (channel-minor fp16)."""

    kind: str
    w: int
    h: int
    c: int

    @property
    def strides(self) -> tuple[int, int, int]:
        return (2 * self.c, 2 * self.c * self.w, 2)


@dataclass(eq=False)
class Loc:
    """A value's place: a region of ``home`` starting at channel ``c_off`` and row ``y_off``."""

    home: Home
    c_off: int = 0
    y_off: int = 0

    def shifted(self, c: int = 0, y: int = 0) -> Loc:
        return Loc(self.home, self.c_off + c, self.y_off + y)

    def byte_offset(self, c: int = 0) -> int:
        sx, sy, _ = self.home.strides
        return 2 * (self.c_off + c) + self.y_off * sy


def is_dense(value: Value) -> bool:
    """Does the value fill its buffer (so it can be read as a plain tensor)?"""
    home = value.loc.home
    return (home.c, home.h, home.w) == value.shape


def concat_axis(node: Node, net) -> int:
    """The concat's axis in device terms: 0 = channels, 1 = height."""
    cp = unwrap(node.layer.param).concat_param
    axis = cp.concat_dim if cp.HasField("concat_dim") else cp.axis
    rank = len(net.layer_shapes[node.layer.index].outputs[0])
    if axis < 0:
        axis += rank
    if axis == 1:
        return 0
    if axis == 2 and rank >= 3:
        return 1
    raise UnsupportedNetworkError(
        f"Concat {node.name!r} joins along axis {axis}; the NCSDK concatenates only along "
        "channels (axis 1) or height (axis 2)")


def plan(graph: NetGraph) -> None:
    """Give every value of ``graph`` a :class:`Loc`; add the copies concats need."""
    net = graph.net
    if graph.input is not None:
        graph.input.loc = Loc(Home("input", graph.input.w, graph.input.h, graph.input.c))

    out = graph.output
    producer = out.producer
    direct = producer is not None and producer.kind != "Slice" and not (
        producer.kind == "Concat" and concat_axis(producer, net) == 1)
    if direct:
        out.loc = Loc(Home("output", out.w, out.h, out.c))
    else:
        graph.final_copy = True

    concats = [n for n in graph.nodes if n.kind == "Concat"]
    placed_in: dict[int, Node] = {}
    for node in reversed(concats):
        value = node.outputs[0]
        if value.loc is None:
            value.loc = Loc(Home("work", value.w, value.h, value.c))
        axis = concat_axis(node, net)
        offset = 0
        for part in node.inputs:
            slot = value.loc.shifted(c=offset) if axis == 0 else value.loc.shifted(y=offset)
            if _placeable(part, graph) and id(part) not in placed_in:
                part.loc = slot
                placed_in[id(part)] = node
            else:
                copy = Value(part.blob, part.shape, None)
                copy.loc = slot
                node.copies.append((part, copy))
            offset += part.c if axis == 0 else part.h

    for node in graph.nodes:
        for i, value in enumerate(node.outputs):
            if value.loc is not None:
                continue
            if node.kind == "Slice":
                value.loc = _slice_loc(node, i, net)
            else:
                value.loc = Loc(Home("work", value.w, value.h, value.c))


def _placeable(value: Value, graph: NetGraph) -> bool:
    return (value.loc is None and value.producer is not None
            and value.producer.kind != "Slice" and value is not graph.output)


def _slice_loc(node: Node, index: int, net) -> Loc:
    src = node.inputs[0]
    sp = unwrap(node.layer.param).slice_param
    rank = len(net.layer_shapes[node.layer.index].inputs[0])
    axis = sp.slice_dim if sp.HasField("slice_dim") else sp.axis
    if axis < 0:
        axis += rank
    before = sum(v.c if axis == 1 else v.h for v in node.outputs[:index])
    if axis == 1:
        return src.loc.shifted(c=before)
    if axis == 2 and rank >= 3:
        return src.loc.shifted(y=before)
    raise UnsupportedNetworkError(
        f"Slice {node.name!r} splits along axis {axis}; the NCSDK slices only along channels "
        "(axis 1) or height (axis 2)")
