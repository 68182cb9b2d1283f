"""The table of layer implementations and what each one is handed.

A layer implementation is a function of one :class:`Call` returning the
values of the layer's tops, in order.  It must not modify its bottoms or
its learned blobs (they may be the caller's arrays or other blobs' values):
every result is a new array or a view of an unmodified one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import CaffemodelError, NetGraphError, UnsupportedNetworkError
from ...model.net import Layer, Net

#: the most negative float32, Caffe's ``-FLT_MAX`` (the start of a max)
FLT_MAX = float(np.finfo(np.float32).max)

Op = Callable[["Call"], Sequence[np.ndarray]]
OPS: dict[str, Op] = {}


def op(*types: str) -> Callable[[Op], Op]:
    """Register the implementation of one or more Caffe layer types."""

    def register(fn: Op) -> Op:
        for t in types:
            OPS[t] = fn
        return fn

    return register


@dataclass(frozen=True, eq=False)
class Call:
    """One layer about to run: its description, inputs and learned blobs."""

    net: Net
    layer: Layer
    #: the layer's (upgraded) LayerParameter message, read-only by convention
    pb: object
    bottoms: tuple[np.ndarray, ...]
    #: the learned blobs, cast to ``dtype`` (empty when the layer has none)
    blobs: tuple[np.ndarray, ...]
    dtype: np.dtype

    @property
    def x(self) -> np.ndarray:
        """The first bottom."""
        return self.bottoms[0]

    def blob(self, i: int, what: str) -> np.ndarray:
        if i >= len(self.blobs):
            raise self.missing_weights(what)
        return self.blobs[i]

    def missing_weights(self, what: str) -> CaffemodelError:
        return CaffemodelError(
            f"layer {self.layer.name!r} ({self.layer.type}) has no {what} "
            f"({len(self.blobs)} learned blob(s) given): load the network with its "
            "caffemodel, or pass weights=synthesize(net, seed)", *where(self.net, self.layer))

    def unsupported(self, message: str) -> UnsupportedNetworkError:
        """The reference cannot run this layer as configured."""
        return UnsupportedNetworkError(
            f"layer {self.layer.name!r} ({self.layer.type}): {message}",
            *where(self.net, self.layer))

    def invalid(self, message: str) -> NetGraphError:
        """Caffe itself would refuse this layer on these inputs (a CHECK failure)."""
        return NetGraphError(
            f"layer {self.layer.name!r} ({self.layer.type}): {message}",
            *where(self.net, self.layer))

    def need_bottoms(self, lo: int, hi: int | None = None) -> None:
        hi = lo if hi is None else hi
        n = len(self.bottoms)
        if not lo <= n <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.invalid(f"takes {want} bottom(s), has {n}")


def where(net: Net, layer: Layer) -> tuple[str | None, int | None, int | None]:
    """(path, line, column) of a layer, for error messages."""
    node = layer.locate("type") or layer.node
    pos = net.position(node) if node is not None else None
    line, column = pos if pos is not None else (None, None)
    return net.path, line, column
