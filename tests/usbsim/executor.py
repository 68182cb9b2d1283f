"""What the simulated stick runs a graph with: its "firmware".

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
  auxBuffer and, summed, is the inference's duration on the stick's clock;
  ``debug_message`` - "" for success, or the firmware's error text (at most 119
  bytes of it fit), which the host raises as ``MyriadError``.

Two executors:

* :func:`emulator_executor` - the real thing: the received graph file is parsed
  and run by caffe2ncs's fp16 emulator (:mod:`caffe2ncs.runtime.emulator`), the
  output is the emulator's, and the stage times are how long each stage took
  on the simulated device (the emulator's time per stage, measured like the
  firmware measures its stages).  A graph the emulator cannot load or run gives
  a zero output and the reason as the debug text, as a firmware error would.
  The sticks of :mod:`usbsim.factories` (the CLI tests) use it.
* :func:`usbsim.toy.toy_executor` - a deterministic stand-in for the synthetic
  graphs of :func:`usbsim.toy.make_graph`, which carry no real network.

Plug an executor in with ``SimStick(executor=...)`` (or assign
``stick.executor`` later).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Executor(Protocol):
    def __call__(self, graph: bytes, input_fp16: bytes) -> tuple[bytes, Sequence[float], str]: ...


#: Room for text in the auxBuffer's 120-byte debug area (NUL-terminated).
DEBUG_TEXT_MAX = 119


def emulator_executor(graph: bytes, input_fp16: bytes) -> tuple[bytes, Sequence[float], str]:
    """Run the received graph file with the fp16 emulator (see the module text)."""
    from caffe2ncs.errors import Caffe2NcsError
    from caffe2ncs.runtime.emulator import stick_executor

    from .stick import parse_graph

    try:
        # Parses the graph file, runs it stage by stage, times each stage; a graph
        # it refuses comes back as a zero output with the reason as debug text.
        return stick_executor(graph, input_fp16)
    except Caffe2NcsError as err:  # the graph file itself could not be read
        try:
            nstages, noutputs = parse_graph(graph)
        except ValueError:
            nstages = noutputs = 0
        text = f"cannot load the graph: {err.message}"
        return bytes(2 * noutputs), [0.0] * nstages, text[:DEBUG_TEXT_MAX]
