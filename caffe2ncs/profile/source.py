"""What the profiler reads: a Caffe prototxt (lowered to the graph IR) or an
NCSDK graph file (read as it is)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InputFileError, UsageError
from ..lowering.ir import Graph

#: Suffixes taken as Caffe network text, and as graph files, whatever the content.
PROTOTXT_SUFFIXES = (".prototxt", ".pbtxt", ".pt")
GRAPH_SUFFIXES = (".graph", ".blob", ".mv")


@dataclass(frozen=True)
class ProfileInput:
    graph: Graph
    #: The Caffe network when the input was a prototxt, else None.
    net: object | None
    path: str
    kind: str  # "prototxt" or "graph"
    #: Per stage, the Caffe layers it implements, the one it is named after
    #: first (from the lowering), or None when not known.
    stage_layers: tuple[tuple[str, ...], ...] | None = None


def is_prototxt(path: str) -> bool:
    """A prototxt by its suffix, else by its first bytes (a graph file starts
    with 32 zero bytes (1.x) or a pseudo-ELF header with NULs (2.x); Caffe
    text has none)."""
    if path.lower().endswith(PROTOTXT_SUFFIXES):
        return True
    if path.lower().endswith(GRAPH_SUFFIXES):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return bool(head) and b"\0" not in head


def load_input(path: str | os.PathLike[str], weights: str | None = None,
               shaves: int = 12) -> ProfileInput:
    """Read ``path``: a graph file as it is, a prototxt (with optional
    ``weights``) lowered by :mod:`caffe2ncs.lowering` for ``shaves`` SHAVEs."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputFileError("no such file", path)
    if is_prototxt(path):
        from ..model import load

        net = load(path, weights) if weights else load(path)
        graph, stage_layers = lower_net(net, path, shaves)
        return ProfileInput(graph, net, path, "prototxt", stage_layers)
    if weights:
        raise UsageError("a caffemodel goes with a prototxt, not with a compiled graph file")
    from ..lowering.graphfile import load_graph

    return ProfileInput(load_graph(path), None, path, "graph")


def lower_net(net, path: str | None = None, shaves: int = 12):
    """``(graph, stage_layers)`` for ``net``: the lowering's NCSDK 1.x graph
    for ``shaves`` SHAVEs and, per stage, the Caffe layers it implements."""
    from ..lowering import lower_network

    lowered = lower_network(net, target="ncsdk1", shaves=shaves)
    return lowered.graph, tuple(tuple(ls) for ls in lowered.stage_layers)
