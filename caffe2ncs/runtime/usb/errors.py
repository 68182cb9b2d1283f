"""The device errors of the USB runtime.

All of them are :class:`caffe2ncs.errors.DeviceError` (exit code 3), so the CLI
prints them as one line without a traceback.  The subclasses let callers (and
tests) tell the cases apart; the messages are written for the person holding
the stick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import DeviceError

if TYPE_CHECKING:  # pragma: no cover
    from .device import Result

LIBUSB_HELP = (
    "install libusb 1.0 with your operating system's package manager "
    "(Debian/Ubuntu: 'sudo apt install libusb-1.0-0', Fedora: 'sudo dnf install libusb1', "
    "macOS: 'brew install libusb'), or run 'pip install libusb-package' "
    "(a copy of libusb that pyusb can load)"
)

UDEV_HELP = (
    "on Linux, install udev rules that give you access to 03e7:2150, 03e7:2485 and "
    "03e7:f63b (see docs/usb.md), then unplug and replug the stick"
)

REPLUG_HELP = "if it keeps failing, unplug the stick and plug it back in"


class NoUsbBackendError(DeviceError):
    """pyusb found no USB library (libusb) to talk through."""


class DeviceNotFoundError(DeviceError):
    """No (usable) stick is attached, or not the one asked for."""


class DeviceBusyError(DeviceError):
    """The stick is in use: by another program, or already open in this one."""


class DeviceAccessError(DeviceError):
    """The operating system refused access to the stick (permissions)."""


class DeviceTimeoutError(DeviceError):
    """The stick stopped answering within the protocol's time limits."""


class DeviceGoneError(DeviceError):
    """The stick disappeared from the bus (unplugged, or crashed and reset)."""


class LinkProtocolError(DeviceError):
    """The stick answered, but not as the protocol says (wrong permit, short data)."""


class BootError(DeviceError):
    """Sending the firmware or waiting for the booted stick failed."""


class MyriadError(DeviceError):
    """The firmware reported an error of its own (the auxBuffer debug text).

    ``debug_message`` is the device's text (for example ``Matmul scratch memory
    [112640] lower than required [165392]``); ``result`` is what came back with
    it (output, per-stage times), as libmvnc also returns the data with
    ``MVNC_MYRIAD_ERROR``.
    """

    def __init__(self, message: str, debug_message: str, result: Result | None = None) -> None:
        super().__init__(message)
        self.debug_message = debug_message
        self.result = result
