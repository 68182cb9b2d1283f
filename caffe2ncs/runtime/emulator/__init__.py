"""A device-faithful fp16 emulator of the Neural Compute Stick (NCS1, Myriad 2):
it executes NCSDK graph files (both formats) stage by stage, the way the
firmware does -- fp16 activations in one scratch area, fp16 weights, float32
arithmetic inside a stage, the fused post-operation applied before the one
fp16 rounding of each stage's output.  ``docs/emulator.md`` describes the
model and its limits.

API::

    from caffe2ncs.runtime.emulator import Emulator, run

    out = run(graph, x_hwc)        # graph: Graph (or graph-file bytes); x: (H, W, C)
    emu = Emulator(graph)          # validate + decode weights once, run many times
    out = emu.run(x_hwc)           # 1-D fp16, the device's output (HWC order)
    tr = emu.trace(x_hwc)          # tr.output, tr.stages[i].output (fp16 HWC), .seconds
    output_hwc(graph, out)         # (H, W, C) view of a flat output

and :func:`stick_executor`, the executor signature of the simulated USB stick
(``tests/usbsim``).  One kernel module per stage type (``op_*.py``), each a
numpy definition of the operation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ...errors import Caffe2NcsError
from ...lowering.ir import Graph
from .errors import InputShapeError
from .executor import SUPPORTED_OPS, Emulator, StageRecord, Trace, as_input, stage_label
from .numerics import to_fp16

__all__ = ["SUPPORTED_OPS", "Emulator", "InputShapeError", "StageRecord", "Trace", "as_input",
           "output_hwc", "run", "stage_label", "stick_executor", "to_fp16"]


def run(graph: Graph | bytes, input_hwc: np.ndarray, *,
        path: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Run one inference of ``graph`` (a :class:`Graph` or the bytes of a graph
    file) on ``input_hwc`` (``(H, W, C)``, rounded to fp16); returns the
    device's output, 1-D fp16 in HWC order (:meth:`Emulator.run`)."""
    if isinstance(graph, bytes | bytearray | memoryview):
        from ...lowering.graphfile import read_graph

        graph = read_graph(bytes(graph), path)
    return Emulator(graph, path=path).run(input_hwc)


def output_hwc(graph: Graph | Emulator, output: np.ndarray) -> np.ndarray:
    """A flat device output as ``(H, W, C)`` (the shape of the graph's output)."""
    shape = graph.output_shape if isinstance(graph, Emulator) else graph.output.shape_hwc
    return np.asarray(output).reshape(shape)


def stick_executor(graph: bytes, input_fp16: bytes) -> tuple[bytes, Sequence[float], str]:
    """The emulator behind the simulated stick's executor contract
    (``tests/usbsim/executor.py``): graph-file bytes and the fp16 HWC input
    bytes in; the fp16 output bytes, one time per stage (the emulator's host
    milliseconds -- not a model of the device's time) and a debug message out.

    A graph the emulator refuses gives a zero output and the error as the debug
    message, which the host raises as the firmware's ``MyriadError``.
    """
    from ...lowering.graphfile import read_graph

    parsed = read_graph(bytes(graph))
    n_out = parsed.output.elements if parsed.output is not None else 0
    try:
        emu = Emulator(parsed)
        traced = emu.trace(np.frombuffer(input_fp16, dtype="<f2"))
        times = [r.seconds * 1000 for r in traced.stages]
        return traced.output.astype("<f2").tobytes(), times, ""
    except Caffe2NcsError as err:
        return bytes(2 * n_out), [0.0] * len(parsed.stages), str(err)[:119]
