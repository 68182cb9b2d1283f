"""A profile: per-layer rows (stages summed into the Caffe layer they came
from), the edges between them, totals, and the JSON shape of ``profile --json``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..lowering.ir import Graph
from .costmodel import StageCost, vendor_bandwidth_mb_s
from .dataflow import INPUT, stage_edges

#: Bumped when the JSON shape changes incompatibly.
JSON_SCHEMA_VERSION = 1


@dataclass
class LayerRow:
    """One line of the table: a Caffe layer (prototxt input) or a stage (graph input)."""

    index: int
    name: str
    type: str
    stages: list[StageCost] = field(default_factory=list)
    #: Per-stage measured times, when measured on a stick.
    measured_stage_ms: list[float] | None = None

    @property
    def mflops(self) -> float:
        return sum(s.mflops for s in self.stages)

    @property
    def predicted_ms(self) -> float:
        return sum(s.time_ms for s in self.stages)

    @property
    def measured_ms(self) -> float | None:
        return None if self.measured_stage_ms is None else sum(self.measured_stage_ms)

    @property
    def time_ms(self) -> float:
        """Measured when measured, else predicted."""
        measured = self.measured_ms
        return self.predicted_ms if measured is None else measured

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.stages)

    @property
    def bandwidth_mb_s(self) -> float:
        """The vendor's bandwidth column (its formula, summed over the stages)."""
        return vendor_bandwidth_mb_s(sum(s.vendor_bytes for s in self.stages), self.time_ms)

    @property
    def compute_ms(self) -> float:
        return sum(s.compute_ms for s in self.stages)

    @property
    def memory_ms(self) -> float:
        return sum(s.memory_ms for s in self.stages)

    @property
    def overhead_ms(self) -> float:
        return sum(s.overhead_ms for s in self.stages)

    @property
    def bound(self) -> str:
        parts = {"compute": self.compute_ms, "memory": self.memory_ms,
                 "overhead": self.overhead_ms}
        return max(parts, key=parts.__getitem__)


@dataclass
class Profile:
    source: str
    #: "prototxt" or "graph"
    kind: str
    #: "model" (predicted) or "ncs" (measured on a stick; predictions kept beside)
    mode: str
    shaves: int
    graph_name: str
    rows: list[LayerRow]
    #: ``(src, dst)`` row indices; ``src == -1`` is the network input.
    edges: list[tuple[int, int]]
    #: Tensor dims of the network input (x, y, z), for the picture.
    input_dims: tuple[int, int, int] | None = None

    @property
    def total_ms(self) -> float:
        return sum(r.time_ms for r in self.rows)

    @property
    def predicted_total_ms(self) -> float:
        return sum(r.predicted_ms for r in self.rows)

    @property
    def measured_total_ms(self) -> float | None:
        if self.mode != "ncs":
            return None
        return sum(r.measured_ms or 0.0 for r in self.rows)

    @property
    def total_mflops(self) -> float:
        return sum(r.mflops for r in self.rows)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    @property
    def bandwidth_mb_s(self) -> float:
        """The summary box's bandwidth: the vendor's per-layer byte counts over
        the total time, as mvNCProfile's summary."""
        return vendor_bandwidth_mb_s(sum(s.vendor_bytes for r in self.rows for s in r.stages),
                                     self.total_ms)

    @property
    def dram_mb_s(self) -> float:
        """Our count of bytes moved over the total time."""
        return self.total_bytes / (1024 * 1024) / (self.total_ms / 1e3) if self.total_ms else 0.0

    @property
    def bound(self) -> str:
        """"compute" or "memory": which of the model's terms is larger summed
        over the network (the vendor's report always said "Compute bound")."""
        compute = sum(r.compute_ms for r in self.rows)
        memory = sum(r.memory_ms for r in self.rows)
        return "compute" if compute >= memory else "memory"

    def to_json(self, model: dict[str, Any] | None = None) -> dict[str, Any]:
        layers = []
        for r in self.rows:
            entry: dict[str, Any] = {
                "index": r.index,
                "name": r.name,
                "type": r.type,
                "mflops": round(r.mflops, 6),
                "bandwidth_mb_s": round(r.bandwidth_mb_s, 3),
                "time_ms": round(r.time_ms, 6),
                "predicted_ms": round(r.predicted_ms, 6),
                "measured_ms": None if r.measured_ms is None else round(r.measured_ms, 6),
                "bytes": r.bytes,
                "dram_mb_s": round(r.bytes / 1048576 / (r.time_ms / 1e3), 3)
                if r.time_ms > 0 else 0.0,
                "compute_ms": round(r.compute_ms, 6),
                "memory_ms": round(r.memory_ms, 6),
                "overhead_ms": round(r.overhead_ms, 6),
                "bound": r.bound,
                "stages": [s.name for s in r.stages],
            }
            layers.append(entry)
        return {
            "profile_schema": JSON_SCHEMA_VERSION,
            "source": self.source,
            "input_kind": self.kind,
            "mode": self.mode,
            "shaves": self.shaves,
            "layers": layers,
            "edges": [list(e) for e in self.edges],
            "total_ms": round(self.total_ms, 6),
            "predicted_total_ms": round(self.predicted_total_ms, 6),
            "measured_total_ms": None if self.measured_total_ms is None
            else round(self.measured_total_ms, 6),
            "total_mflops": round(self.total_mflops, 6),
            "bandwidth_mb_s": round(self.bandwidth_mb_s, 3),
            "bound": self.bound,
            "model": model or {},
        }


# --------------------------------------------------------------------------- building

_SEPARATOR = re.compile(r"[^0-9A-Za-z]")


def layer_of(stage_name: str, layers: dict[str, str], tops: dict[str, str]) -> str | None:
    """The Caffe layer a stage came from: its own name, the layer whose top it
    is named after, or the longest layer name it starts with followed by a
    separator (``conv2/group1``, ``conv2_g1`` -> ``conv2``)."""
    if stage_name in layers:
        return stage_name
    if stage_name in tops:
        return tops[stage_name]
    best = None
    for name in layers:
        if (len(stage_name) > len(name) and stage_name.startswith(name)
                and _SEPARATOR.match(stage_name[len(name)])
                and (best is None or len(name) > len(best))):
            best = name
    return best


def build_profile(graph: Graph, costs: list[StageCost], *, source: str, kind: str,
                  shaves: int, net=None, measured_ms=None, stage_layers=None) -> Profile:
    """Group ``costs`` (one per stage of ``graph``) into rows: per Caffe layer
    of ``net`` when given, else per stage; ``measured_ms`` are per-stage times
    from a stick.  ``stage_layers`` (from the lowering: per stage, the Caffe
    layers it implements, the one it is named after first) decides the layer
    of each stage; without it the stage's name does (:func:`layer_of`)."""
    stage_row: list[int] = []
    rows: list[LayerRow] = []
    by_key: dict[str, int] = {}
    layer_types: dict[str, str] = {}
    tops: dict[str, str] = {}
    if net is not None:
        for layer in net.layers:
            layer_types[layer.name] = layer.type
            for top in layer.tops:
                tops.setdefault(top, layer.name)
    for i, cost in enumerate(costs):
        key, typ = cost.name, cost.op.value
        if net is not None:
            if stage_layers is not None and stage_layers[i]:
                found = stage_layers[i][0]
            else:
                found = layer_of(cost.name, layer_types, tops)
            if found is not None:
                key, typ = found, layer_types.get(found, cost.op.value)
        if key not in by_key:
            by_key[key] = len(rows)
            rows.append(LayerRow(len(rows), key, typ))
        row = rows[by_key[key]]
        row.stages.append(cost)
        if measured_ms is not None:
            if row.measured_stage_ms is None:
                row.measured_stage_ms = []
            row.measured_stage_ms.append(float(measured_ms[i]))
        stage_row.append(by_key[key])
    edges: list[tuple[int, int]] = []
    seen = set()
    for src, dst in stage_edges(graph):
        a = INPUT if src == INPUT else stage_row[src]
        b = stage_row[dst]
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            edges.append((a, b))
    inp = graph.input
    return Profile(source=source, kind=kind, mode="ncs" if measured_ms is not None else "model",
                   shaves=shaves, graph_name=graph.name, rows=rows, edges=edges,
                   input_dims=tuple(inp.dims) if inp is not None else None)
