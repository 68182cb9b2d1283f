"""NCSDK graph files ("blobs"): read either format into the IR, write the IR as either.

* :func:`read_graph` detects the format (2.x: magic 8708 at byte 34; 1.x: 32
  zero bytes then a graph version at byte 36) and parses it, validating
  everything; problems are :class:`~caffe2ncs.errors.GraphFileError`.
* :func:`write_graph` encodes a graph for ``"ncsdk2"`` (NCSDK 2.x, blob 2.3)
  or ``"ncsdk1"`` (NCSDK 1.x, graph version 2), converting it first
  (:func:`convert`) when it was made for the other format.  What a format
  cannot express raises :class:`GraphTargetError`.
* :func:`load_graph` reads a file from disk (``InputFileError`` when it
  cannot be read).

The byte layouts are documented in ``docs/graph-format.md``.
"""

from __future__ import annotations

import os
import struct

from ...errors import GraphFileError, InputFileError, unreadable
from ..ir import Graph, GraphFormat
from .binary import GraphTargetError
from .convert import convert

__all__ = ["GraphTargetError", "convert", "detect_format", "load_graph", "read_graph",
           "write_graph", "MAX_FILE_SIZE"]

from ...limits import MAX_GRAPH_FILE_BYTES as MAX_FILE_SIZE  # noqa: E402 - refused before reading


def detect_format(data: bytes, path: str | os.PathLike[str] | None = None) -> GraphFormat:
    """Which format ``data`` is in, from its first 40 bytes."""
    if len(data) >= 38 and struct.unpack_from("<I", data, 34)[0] == 8708:
        return GraphFormat.NCSDK2
    if len(data) >= 40 and not any(data[:32]):
        return GraphFormat.NCSDK1
    if len(data) < 40:
        raise GraphFileError(f"not an NCSDK graph file: only {len(data)} bytes", path)
    raise GraphFileError("not an NCSDK graph file: no blob magic 8708 at byte offset 34 "
                         "(NCSDK 2.x) and no zero bytes 0-31 before a graph version at byte "
                         "offset 36 (NCSDK 1.x)", path)


def read_graph(data: bytes, path: str | os.PathLike[str] | None = None) -> Graph:
    """Parse a graph file of either format.  ``path`` only names the file in errors."""
    fmt = detect_format(data, path)
    if fmt is GraphFormat.NCSDK2:
        from .ncsdk2_reader import read_ncsdk2

        return read_ncsdk2(data, path)
    from .ncsdk1_reader import read_ncsdk1

    return read_ncsdk1(data, path)


def write_graph(graph: Graph, target: GraphFormat | str = GraphFormat.NCSDK2) -> bytes:
    """Encode ``graph`` as ``target`` (``"ncsdk2"`` or ``"ncsdk1"``)."""
    try:
        target = GraphFormat(target)
    except ValueError:
        raise ValueError(f"unknown graph format {target!r} (use 'ncsdk1' or 'ncsdk2')") from None
    if graph.format is not target:
        graph = convert(graph, target)
    if target is GraphFormat.NCSDK2:
        from .ncsdk2_writer import write_ncsdk2

        return write_ncsdk2(graph)
    from .ncsdk1_writer import write_ncsdk1

    return write_ncsdk1(graph)


def load_graph(path: str | os.PathLike[str]) -> Graph:
    """Read and parse the graph file at ``path``."""
    try:
        size = os.path.getsize(path)
        if os.path.isdir(path):
            raise InputFileError("is a directory, not a graph file", path)
        if size > MAX_FILE_SIZE:
            raise InputFileError(f"is {size} bytes, larger than any NCS graph "
                                 f"({MAX_FILE_SIZE} bytes)", path)
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except InputFileError:
        raise
    except OSError as err:
        raise unreadable(err, path, "graph file") from None
    return read_graph(data, path)
