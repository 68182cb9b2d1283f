"""The NCSDK 1.x host <-> device link on a booted stick (03e7:f63b).

This is libmvnc 1.x's ``usb_link_vsc.c`` in Python.  Every exchange starts with
the host writing a 64-byte ``usbHeader_t`` to bulk endpoint 0x01:

    uint8 cmd; uint8 hostready; uint16 reserved; uint32 dataLength; uint32 offset;
    char name[52]

* GET_MYRIAD_STATUS: header, then read a 4-byte status (:class:`MyriadStatus`).
* RESET_REQUEST: header only; the stick reboots into its ROM (03e7:2150).
* HOST_SET_DATA: header naming a buffer and its length; read a 4-byte permit,
  which must be 0xABCD; then write the data.
* HOST_GET_DATA: header with name, length and offset; read the permit 0xABCD;
  then read ``length`` bytes from endpoint 0x81.

Transfers use a 10 s timeout and are split at 10 MiB.  ``hostready`` tells the
firmware to start work (see :mod:`.device`).  USB failures become
:class:`caffe2ncs.errors.DeviceError` subclasses naming the stick and what was
being done.
"""

from __future__ import annotations

import errno as _errno
from typing import Any

from ...errors import DeviceError
from . import constants as C
from .errors import (
    REPLUG_HELP,
    UDEV_HELP,
    DeviceAccessError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceTimeoutError,
    LinkProtocolError,
)
from .timing import Timeouts, seconds


class PermitRefusedError(LinkProtocolError):
    """The stick answered a SET/GET header with something other than 0xABCD."""

    def __init__(self, message: str, permit: int) -> None:
        super().__init__(message)
        self.permit = permit


def is_gone(err: BaseException) -> bool:
    return getattr(err, "backend_error_code", None) == C.LIBUSB_ERROR_NO_DEVICE or (
        getattr(err, "errno", None) == _errno.ENODEV
    )


def is_busy(err: BaseException) -> bool:
    return getattr(err, "backend_error_code", None) == C.LIBUSB_ERROR_BUSY or (
        getattr(err, "errno", None) == _errno.EBUSY
    )


def is_access(err: BaseException) -> bool:
    return getattr(err, "backend_error_code", None) == C.LIBUSB_ERROR_ACCESS or (
        getattr(err, "errno", None) in (_errno.EACCES, _errno.EPERM)
    )


def translate_usb_error(
    err: BaseException, device: str, what: str, timeout_ms: int | None = None
) -> DeviceError:
    """A pyusb exception as the :class:`DeviceError` to show the user."""
    import usb.core

    if isinstance(err, usb.core.USBTimeoutError):
        limit = f" within {seconds(timeout_ms)}" if timeout_ms is not None else ""
        return DeviceTimeoutError(
            f"the stick {device} did not answer{limit} while {what}; {REPLUG_HELP}"
        )
    if is_gone(err):
        return DeviceGoneError(
            f"the stick {device} disappeared from the USB bus while {what} "
            "(unplugged, or it crashed and reset)"
        )
    if is_busy(err):
        return DeviceBusyError(
            f"the stick {device} is in use by another program (its USB interface is "
            f"claimed) - {what}"
        )
    if is_access(err):
        return DeviceAccessError(f"no permission to use the stick {device} ({what}); {UDEV_HELP}")
    text = getattr(err, "strerror", None) or str(err)
    return DeviceError(f"USB error on the stick {device} while {what}: {text}")


def pack_header(
    cmd: int, name: str = "", length: int = 0, offset: int = 0, host_ready: bool = False
) -> bytes:
    """The 64-byte ``usbHeader_t`` (name NUL-padded, as ``strcpy`` into a zeroed struct)."""
    raw = name.encode("ascii")
    if len(raw) >= C.HEADER_NAME_SIZE:
        raise ValueError(f"buffer name {name!r} longer than {C.HEADER_NAME_SIZE - 1} bytes")
    return C.HEADER_STRUCT.pack(cmd, 1 if host_ready else 0, 0, length, offset, raw)


class UsbLink:
    """The link to one booted stick, over a pyusb ``Device`` whose interface 0 we hold.

    Create it with :meth:`open`; it owns the claim until :meth:`close`.
    """

    def __init__(self, dev: Any, device_name: str, timeouts: Timeouts) -> None:
        self.dev = dev
        self.device_name = device_name
        self.timeouts = timeouts
        self.closed = False

    @classmethod
    def open(cls, dev: Any, device_name: str, timeouts: Timeouts) -> UsbLink:
        """Claim interface 0 of a booted stick (``usblink_open``)."""
        import usb.core
        import usb.util

        try:
            try:
                dev.get_active_configuration()
            except usb.core.USBError as err:
                # libmvnc never sets a configuration on the booted stick, because
                # the OS has already done so; only set one if there really is none.
                if is_gone(err) or is_busy(err) or is_access(err):
                    raise
                dev.set_configuration(C.BOOT_CONFIGURATION)
            usb.util.claim_interface(dev, C.LINK_INTERFACE)
        except usb.core.USBError as err:
            _dispose(dev)
            raise translate_usb_error(err, device_name, "opening it") from None
        return cls(dev, device_name, timeouts)

    def close(self) -> None:
        """Release the interface and the handle; never raises (libmvnc ignores these errors too)."""
        if not self.closed:
            self.closed = True
            _dispose(self.dev)

    # -- raw transfers (usb_write / usb_read) --------------------------------

    def write(self, data: bytes | memoryview, what: str) -> None:
        import array

        import usb.core

        view = memoryview(data).cast("B")
        total = len(view)
        done = 0
        timeout = self.timeouts.link_transfer_ms
        while done < total:
            # array('B') is what pyusb hands to the backend; built from bytes it is
            # one copy (pyusb would iterate a memoryview element by element).
            piece = array.array("B", bytes(view[done : done + C.MAX_TRANSFER_SIZE]))
            try:
                n = self.dev.write(C.ENDPOINT_OUT, piece, timeout)
            except usb.core.USBError as err:
                raise translate_usb_error(err, self.device_name, what, timeout) from None
            except ValueError as err:  # pyusb: no such endpoint in the active configuration
                raise DeviceError(
                    f"the stick {self.device_name} has no usable endpoint "
                    f"0x{C.ENDPOINT_OUT:02x}: {err}"
                ) from None
            if n <= 0:
                raise LinkProtocolError(
                    f"the stick {self.device_name} accepted nothing ({done} of {total} bytes "
                    f"sent) while {what}"
                )
            done += n

    def read(self, size: int, what: str) -> bytes:
        import usb.core
        import usb.util

        out = bytearray()
        timeout = self.timeouts.link_transfer_ms
        while len(out) < size:
            want = min(size - len(out), C.MAX_TRANSFER_SIZE)
            buf = usb.util.create_buffer(want)
            try:
                n = self.dev.read(C.ENDPOINT_IN, buf, timeout)
            except usb.core.USBTimeoutError:
                if out:
                    raise LinkProtocolError(
                        f"short read from the stick {self.device_name} while {what}: "
                        f"received {len(out)} of {size} bytes, then nothing for "
                        f"{seconds(timeout)}; {REPLUG_HELP}"
                    ) from None
                raise DeviceTimeoutError(
                    f"the stick {self.device_name} did not answer within {seconds(timeout)} "
                    f"while {what}; {REPLUG_HELP}"
                ) from None
            except usb.core.USBError as err:
                raise translate_usb_error(err, self.device_name, what, timeout) from None
            except ValueError as err:
                raise DeviceError(
                    f"the stick {self.device_name} has no usable endpoint "
                    f"0x{C.ENDPOINT_IN:02x}: {err}"
                ) from None
            if n <= 0:
                raise LinkProtocolError(
                    f"short read from the stick {self.device_name} while {what}: received "
                    f"{len(out)} of {size} bytes, then an empty transfer"
                )
            out += bytes(buf[:n])
        return bytes(out)

    # -- the four commands ----------------------------------------------------

    def status(self) -> int:
        """``usblink_getmyriadstatus``: the raw status value (see :class:`MyriadStatus`)."""
        what = "reading its status"
        self.write(pack_header(C.Command.GET_MYRIAD_STATUS), what)
        (value,) = C.STATUS_STRUCT.unpack(self.read(C.STATUS_STRUCT.size, what))
        return value

    def reset(self) -> None:
        """``usblink_resetmyriad``: the stick reboots into its ROM (re-enumerates as 2150)."""
        self.write(pack_header(C.Command.RESET_REQUEST), "asking it to reset")

    def set_data(self, name: str, data: bytes, host_ready: bool = False) -> None:
        """``usblink_setdata``: send the named buffer."""
        what = f"sending '{name}' ({len(data)} bytes)"
        self.write(pack_header(C.Command.HOST_SET_DATA, name, len(data), 0, host_ready), what)
        self._permit(name, what)
        self.write(data, what)

    def get_data(self, name: str, length: int, offset: int = 0, host_ready: bool = False) -> bytes:
        """``usblink_getdata``: read ``length`` bytes of the named buffer from ``offset``.

        Raises :class:`PermitRefusedError` when the stick refuses (for "output" this
        means "not ready yet", and the caller retries).
        """
        what = f"reading '{name}' ({length} bytes)"
        self.write(pack_header(C.Command.HOST_GET_DATA, name, length, offset, host_ready), what)
        self._permit(name, what)
        return self.read(length, what)

    def _permit(self, name: str, what: str) -> None:
        (permit,) = C.PERMIT_STRUCT.unpack(self.read(C.PERMIT_STRUCT.size, what))
        if permit != C.PERMIT_OK:
            raise PermitRefusedError(
                f"the stick {self.device_name} refused '{name}': it answered the permit "
                f"0x{permit:04X} instead of 0x{C.PERMIT_OK:04X}",
                permit,
            )


def _dispose(dev: Any) -> None:
    """Release every claimed interface and close the handle, ignoring errors (the
    stick may already have re-enumerated or been unplugged)."""
    import usb.util

    try:
        usb.util.dispose_resources(dev)
    except Exception:  # noqa: BLE001 - best effort by design, like libmvnc's close
        pass
