"""Neural Compute Sticks over USB, without the vendor SDK: discovery, booting and
the NCSDK 1.x host-device link, in pure Python on top of pyusb.

Public API:

* :func:`list_devices` / :func:`scan_devices` - attached sticks (:class:`StickInfo`);
* :func:`open_device` / :class:`Device` - boot a stick and connect to it;
* :class:`Graph` - a graph allocated on a device: ``load_tensor``, ``get_result``,
  ``infer`` -> :class:`Result` (fp16 output, per-stage times);
* :class:`Timeouts`, :class:`SystemClock` - the protocol's time limits and clock;
* the errors in :mod:`.errors` (all :class:`caffe2ncs.errors.DeviceError`).

Only the NCSDK 1.x link (firmware ``MvNCAPI.mvcmd``, NCS / Myriad 2) is
implemented; the NCSDK 2.x XLink protocol is not.  See ``docs/usb.md``.
"""

from __future__ import annotations

from . import constants
from .backend import BackendChoice, resolve_backend
from .device import Device, DeviceOptions, Graph, Result, open_device
from .discovery import BOOTED, UNBOOTED, DeviceScan, StickInfo, list_devices, scan_devices
from .errors import (
    BootError,
    DeviceAccessError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    LinkProtocolError,
    MyriadError,
    NoUsbBackendError,
)
from .firmware import Firmware, load_firmware
from .graphinfo import GraphInfo, graph_info
from .link import PermitRefusedError
from .timing import Clock, SystemClock, Timeouts

__all__ = [
    "BOOTED",
    "UNBOOTED",
    "BackendChoice",
    "BootError",
    "Clock",
    "Device",
    "DeviceAccessError",
    "DeviceBusyError",
    "DeviceGoneError",
    "DeviceNotFoundError",
    "DeviceOptions",
    "DeviceScan",
    "DeviceTimeoutError",
    "Firmware",
    "Graph",
    "GraphInfo",
    "LinkProtocolError",
    "MyriadError",
    "NoUsbBackendError",
    "PermitRefusedError",
    "Result",
    "StickInfo",
    "SystemClock",
    "Timeouts",
    "constants",
    "graph_info",
    "list_devices",
    "load_firmware",
    "open_device",
    "resolve_backend",
    "scan_devices",
]
