"""Which stage feeds which: the edges of the network picture, from the graph IR alone.

A stage reads what the last stages to write the same part of the same buffer
wrote.  Buffers are the network input, the network output and the work
buffers (by ``work_index``); "the same part" is decided on the 3-D box each
reference covers in its buffer, so that an implicit concat (branches writing
at channel offsets), a slice (a reader at a channel offset) and a spatial
concat each give the right edges.  References whose strides differ from the
rest of their buffer fall back to comparing byte ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lowering.ir import BufferRef, Graph, Location

#: The source of edges from the network input.
INPUT = -1

_READ_SLOTS = ("input", "taps", "bias")
_ACTIVATION = (Location.INPUT, Location.OUTPUT, Location.WORK)


@dataclass(frozen=True)
class _Region:
    key: tuple
    lo: tuple[int, int, int]
    hi: tuple[int, int, int]
    byte_lo: int
    byte_hi: int
    strides: tuple[int, int, int]

    def overlaps(self, other: _Region) -> bool:
        if self.strides == other.strides and self.strides != (0, 0, 0):
            return all(a < d and c < b for a, b, c, d in zip(self.lo, self.hi, other.lo,
                                                             other.hi, strict=True))
        return self.byte_lo < other.byte_hi and other.byte_lo < self.byte_hi


def _key(ref: BufferRef) -> tuple:
    if ref.location is Location.WORK:
        return ("work", ref.work_index)
    return (ref.location.value,)


def _bases(graph: Graph) -> dict[tuple, int]:
    """The lowest offset each buffer is referenced at (its origin)."""
    bases: dict[tuple, int] = {}
    for stage in graph.stages:
        for _slot, ref in stage.buffers():
            if ref.location in _ACTIVATION:
                key = _key(ref)
                bases[key] = min(bases.get(key, ref.offset), ref.offset)
    return bases


def _region(ref: BufferRef, base: int) -> _Region:
    rel = ref.offset - base
    strides = tuple(ref.strides)
    coords = [0, 0, 0]
    for axis in sorted(range(3), key=lambda a: -strides[a]):
        if strides[axis] > 0:
            coords[axis], rel = divmod(rel, strides[axis])
    dims = tuple(ref.dims)
    lo = tuple(coords)
    hi = tuple(c + max(d, 1) for c, d in zip(coords, dims, strict=True))
    extent = max(ref.extent, 1)
    return _Region(_key(ref), lo, hi, ref.offset, ref.offset + extent, strides)  # type: ignore[arg-type]


def stage_edges(graph: Graph) -> list[tuple[int, int]]:
    """``(producer, consumer)`` stage indices, :data:`INPUT` for the network
    input, in consumer order, without duplicates."""
    bases = _bases(graph)
    writers: dict[tuple, list[tuple[_Region, int]]] = {}
    edges: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()

    def add(src: int, dst: int) -> None:
        if src != dst and (src, dst) not in seen:
            seen.add((src, dst))
            edges.append((src, dst))

    for i, stage in enumerate(graph.stages):
        for slot in _READ_SLOTS:
            ref = getattr(stage, slot)
            if ref is None or ref.location not in _ACTIVATION:
                continue
            if ref.location is Location.INPUT:
                add(INPUT, i)
                continue
            region = _region(ref, bases[_key(ref)])
            for written, j in writers.get(region.key, []):
                if written.overlaps(region):
                    add(j, i)
        out = stage.output
        if out is not None and out.location in _ACTIVATION and out.location is not Location.INPUT:
            region = _region(out, bases[_key(out)])
            kept = [(r, j) for r, j in writers.get(region.key, [])
                    if not _covers(region, r)]
            kept.append((region, i))
            writers[region.key] = kept
    return edges


def _covers(outer: _Region, inner: _Region) -> bool:
    if outer.strides == inner.strides and outer.strides != (0, 0, 0):
        return all(a <= c and d <= b for a, b, c, d in zip(outer.lo, outer.hi, inner.lo,
                                                           inner.hi, strict=True))
    return outer.byte_lo <= inner.byte_lo and inner.byte_hi <= outer.byte_hi
