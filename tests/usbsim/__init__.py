"""A simulated Intel Movidius Neural Compute Stick, for tests.

It is a pyusb backend (:class:`SimBackend`) whose bus holds simulated sticks
(:class:`SimStick`), modelled at the lowest layer the host uses - USB
descriptors and bulk transfers - so the host code runs unchanged against it:
pass the backend to the host API, or name a factory from :mod:`usbsim.factories`
in ``CAFFE2NCS_PYUSB_BACKEND`` for a CLI subprocess.

The stick executes graphs through an injected executor; see
:mod:`usbsim.executor` for the contract and for :func:`emulator_executor`, which
runs the received graph files with caffe2ncs's fp16 emulator.
:mod:`usbsim.remote` serves a bus to CLI subprocesses, so that its sticks keep
their state from one run to the next.
"""

from .backend import SimBackend
from .clock import RealClock, VirtualClock
from .executor import Executor, emulator_executor
from .stick import Faults, SimStick, parse_graph
from .toy import Rig, make_firmware, make_graph, make_rig, toy_executor

__all__ = [
    "Executor",
    "Faults",
    "RealClock",
    "Rig",
    "SimBackend",
    "SimStick",
    "VirtualClock",
    "emulator_executor",
    "make_firmware",
    "make_graph",
    "make_rig",
    "parse_graph",
    "toy_executor",
]
