"""Neural Compute Sticks over USB, without the vendor SDK: discovery, booting and
the NCSDK 1.x host-device link, in pure Python on top of pyusb.

Public API (imported lazily, so that ``caffe2ncs.runtime.usb.options`` stays
cheap for the CLI's ``add_arguments``):

* :func:`list_devices` / :func:`scan_devices` - attached sticks (:class:`StickInfo`);
* :func:`open_device` / :class:`Device` - boot a stick and connect to it;
* :class:`Graph` - a graph allocated on a device: ``load_tensor``, ``get_result``,
  ``infer`` -> :class:`Result` (fp16 output, per-stage times);
* :func:`run_graph` - open, allocate, run some inputs, close: the whole cycle;
* :class:`Timeouts`, :class:`SystemClock` - the protocol's time limits and clock;
* the errors in :mod:`.errors` (all :class:`caffe2ncs.errors.DeviceError`).

Only the NCSDK 1.x link (firmware ``MvNCAPI.mvcmd``, NCS / Myriad 2) is
implemented; the NCSDK 2.x XLink protocol is not.  See ``docs/usb.md``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "BOOTED": "discovery",
    "UNBOOTED": "discovery",
    "DeviceScan": "discovery",
    "StickInfo": "discovery",
    "list_devices": "discovery",
    "scan_devices": "discovery",
    "BackendChoice": "backend",
    "resolve_backend": "backend",
    "Device": "device",
    "DeviceOptions": "device",
    "Graph": "device",
    "Result": "device",
    "open_device": "device",
    "run_graph": "device",
    "BootError": "errors",
    "DeviceAccessError": "errors",
    "DeviceBusyError": "errors",
    "DeviceGoneError": "errors",
    "DeviceNotFoundError": "errors",
    "DeviceTimeoutError": "errors",
    "LinkProtocolError": "errors",
    "MyriadError": "errors",
    "NoUsbBackendError": "errors",
    "Firmware": "firmware",
    "load_firmware": "firmware",
    "GraphInfo": "graphinfo",
    "graph_info": "graphinfo",
    "PermitRefusedError": "link",
    "Clock": "timing",
    "SystemClock": "timing",
    "Timeouts": "timing",
}

__all__ = sorted([*_LAZY, "constants"])


def __getattr__(name: str):
    if name == "constants":
        return importlib.import_module(f"{__name__}.constants")
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
