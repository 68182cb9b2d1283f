"""THE INJECTION POINT: what the simulated stick runs a graph with.

A simulated stick does not interpret graphs itself.  When the host starts an
inference (an input sent with hostready = 1, or the auxBuffer read that starts
the queued input), the stick calls its executor::

    output_fp16, stage_times_ms, debug_message = executor(graph_bytes, input_fp16_bytes)

* ``graph_bytes``: the exact "blobFile" the host sent (an NCSDK 1.x graph file);
* ``input_fp16_bytes``: the exact "input1"/"input2" payload (fp16, HWC, little-endian);
* returns ``output_fp16`` - the bytes the stick returns as "output"; must be
  ``2 * noutputs`` long, with ``noutputs`` taken from the graph's last stage as
  the host does (the simulator checks this); ``stage_times_ms`` - one float per
  stage (the simulator checks the count), which the stick reports in the
  auxBuffer and, summed, uses as the inference's duration on the virtual clock;
  ``debug_message`` - "" for success, or the firmware's error text (at most 119
  bytes of it fit), which the host raises as ``MyriadError``.

Plug an executor in with ``SimStick(executor=...)`` (or assign
``stick.executor`` later).  Tests use the small deterministic
:func:`usbsim.toy.toy_executor`; the fp16 graph emulator is meant to be plugged
in here, wrapped to this signature, e.g.::

    def emulator_executor(graph: bytes, input_fp16: bytes):
        out, times = caffe2ncs_emulator.run(graph, input_fp16)   # whatever its API is
        return out.astype("<f2").tobytes(), times, ""

    stick = SimStick(executor=emulator_executor, firmware=..., clock=...)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Executor(Protocol):
    def __call__(self, graph: bytes, input_fp16: bytes) -> tuple[bytes, Sequence[float], str]: ...
