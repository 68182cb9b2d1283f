"""Lowering: Caffe ``Net`` -> graph IR -> NCSDK graph file ("blob").

* :func:`lower` / :func:`lower_network` (:mod:`caffe2ncs.lowering.lower`) - a
  loaded network to a :class:`~caffe2ncs.lowering.ir.Graph` for one of the two
  NCSDK generations, with the stage <-> Caffe layer mapping;
* :func:`write_graph_file` (:mod:`caffe2ncs.lowering.emit`) - a graph to disk,
  streaming the weights;
* :mod:`caffe2ncs.lowering.ir` - the graph IR: a :class:`~caffe2ncs.lowering.ir.Graph`
  of device :class:`~caffe2ncs.lowering.ir.Stage` objects, constant buffers and
  buffer references, independent of the NCSDK version it will be written for.
* :mod:`caffe2ncs.lowering.graphfile` - readers and writers of the two NCSDK graph
  file formats (``read_graph``, ``write_graph``, ``convert``); the byte layout is
  documented in ``docs/graph-format.md``.

``import caffe2ncs.lowering`` stays cheap: the lowering modules load on first use.
"""

from __future__ import annotations

_LAZY = {
    "lower": ("caffe2ncs.lowering.lower", "lower"),
    "lower_network": ("caffe2ncs.lowering.lower", "lower_network"),
    "Lowered": ("caffe2ncs.lowering.lower", "Lowered"),
    "write_graph_file": ("caffe2ncs.lowering.emit", "write_graph_file"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'caffe2ncs.lowering' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value
