"""A simulated Intel Movidius Neural Compute Stick, for tests.

It is a pyusb backend (:class:`SimBackend`) whose bus holds simulated sticks
(:class:`SimStick`), modelled at the lowest layer the host uses - USB
descriptors and bulk transfers - so the host code runs unchanged against it:
pass the backend to the host API, or name a factory from :mod:`usbsim.factories`
in ``CAFFE2NCS_PYUSB_BACKEND`` for a CLI subprocess.

The stick executes graphs through an injected executor; see
:mod:`usbsim.executor` for the contract and where the fp16 emulator plugs in.
"""

from .backend import SimBackend
from .clock import RealClock, VirtualClock
from .executor import Executor
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
    "make_firmware",
    "make_graph",
    "make_rig",
    "parse_graph",
    "toy_executor",
]
