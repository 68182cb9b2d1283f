"""Lowering: Caffe ``Net`` -> graph IR -> NCSDK graph file ("blob").

* :mod:`caffe2ncs.lowering.ir` - the graph IR: a :class:`~caffe2ncs.lowering.ir.Graph`
  of device :class:`~caffe2ncs.lowering.ir.Stage` objects, constant buffers and
  buffer references, independent of the NCSDK version it will be written for.
* :mod:`caffe2ncs.lowering.graphfile` - readers and writers of the two NCSDK graph
  file formats (``read_graph``, ``write_graph``, ``convert``); the byte layout is
  documented in ``docs/graph-format.md``.
"""
