"""Backend factories for ``CAFFE2NCS_PYUSB_BACKEND=usbsim.factories:<name>``.

A CLI subprocess cannot be handed a backend object, so tests put ``tests/`` on
``PYTHONPATH`` and name one of these.  The sticks run received graphs with
caffe2ncs's fp16 emulator (:func:`usbsim.executor.emulator_executor`) and use
the real clock with no boot or reset delays, so nothing waits for long.
``USBSIM_FIRMWARE`` (a path) is the image the simulated ROMs accept; without
it they accept none.

These buses live and die with the process that calls the factory.  For a bus
whose sticks keep their state from one CLI run to the next, start a
:class:`usbsim.remote.StickServer` in the test and use :func:`remote`.
"""

from __future__ import annotations

import os
from pathlib import Path

import usb.core

from .backend import SimBackend
from .clock import RealClock
from .executor import emulator_executor
from .stick import SimStick


def _firmware() -> bytes | None:
    path = os.environ.get("USBSIM_FIRMWARE")
    return Path(path).read_bytes() if path else None


def _stick(port_path, bus=1, **kw) -> SimStick:
    kw.setdefault("firmware", _firmware())
    kw.setdefault("executor", emulator_executor)
    return SimStick(port_path, bus, boot_delay_s=0.0, reset_delay_s=0.0, init_s=0.0, **kw)


def empty() -> SimBackend:
    """A bus with no stick (only a hub and a mouse)."""
    return SimBackend([], clock=RealClock())


def one_ncs() -> SimBackend:
    """One unbooted NCS at port 1.2."""
    return SimBackend([_stick((1, 2))], clock=RealClock())


def toy_ncs() -> SimBackend:
    """One unbooted NCS at port 1.2 that runs :func:`usbsim.toy.toy_executor`
    instead of the emulator: known stage times (1.5 + 0.25 i ms for stage i)."""
    from .toy import toy_executor

    return SimBackend([_stick((1, 2), executor=toy_executor)], clock=RealClock())


def mixed() -> SimBackend:
    """An unbooted NCS at 1.2, an unbooted NCS2 at 1.3 and a booted stick at 2-4
    (bus 2, port 4)."""
    return SimBackend(
        [_stick((1, 2)), _stick((1, 3), model="ncs2"), _stick((4,), bus=2, booted=True)],
        clock=RealClock(),
    )


def remote():
    """The bus of the :class:`usbsim.remote.StickServer` named by ``USBSIM_SERVER``
    and ``USBSIM_AUTHKEY`` (what ``StickServer.env()`` sets)."""
    from .remote import connect_from_environment

    return connect_from_environment()


def no_backend():
    """Behaves like a system without libusb."""
    raise usb.core.NoBackendError("No backend available")


def returns_none():
    return None
