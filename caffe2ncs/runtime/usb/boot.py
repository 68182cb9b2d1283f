"""Booting a stick and resetting booted ones (libmvnc 1.x ``usb_boot.c``,
``usblink_resetall`` in ``usb_link_vsc.c``).

Booting: open the unbooted stick (03e7:2150), select configuration 1, claim
interface 0, take the first bulk OUT endpoint of interface 0 and write the
whole firmware file to it in chunks of that endpoint's ``wMaxPacketSize``, each
with a 2 s timeout.  There is no handshake: the ROM starts the image once it
has it all, and the stick drops off the bus and comes back as 03e7:f63b.  If
the stick vanishes during the last writes (libusb reports "no device"), libmvnc
treats the transfer as done, and so do we; waiting for 03e7:f63b then tells.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from typing import Any

from ...errors import DeviceError
from . import constants as C
from .discovery import StickInfo, find_sticks
from .errors import BootError, DeviceTimeoutError
from .link import UsbLink, is_gone, translate_usb_error
from .timing import Clock, Timeouts, seconds


def first_bulk_out_endpoint(dev: Any) -> Any:
    """The first bulk OUT endpoint of interface 0, alternate setting 0, of the first
    configuration (``usb_open_device``: ``cdesc->interface->altsetting``)."""
    import usb.util

    intf = dev[0][(C.BOOT_INTERFACE, 0)]
    for ep in intf:
        if (
            usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
            and usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_OUT
        ):
            return ep
    return None


def send_firmware(dev: Any, info: StickInfo, firmware: bytes, timeouts: Timeouts) -> int:
    """Write the firmware to an unbooted stick; returns the chunk size used.

    Raises :class:`BootError` (or another :class:`DeviceError`) on failure.  The
    handle is always released afterwards (``usb_boot``: release, close).
    """
    import usb.core
    import usb.util

    name = info.name
    try:
        try:
            dev.set_configuration(C.BOOT_CONFIGURATION)
            usb.util.claim_interface(dev, C.BOOT_INTERFACE)
            ep = first_bulk_out_endpoint(dev)
        except usb.core.USBError as err:
            raise translate_usb_error(err, name, "opening it to send the firmware") from None
        if ep is None:
            raise BootError(f"the stick {name} has no bulk OUT endpoint to send the firmware to")
        chunk = int(ep.wMaxPacketSize)
        if chunk <= 0:
            raise BootError(f"the stick {name} reports a bulk OUT endpoint of size {chunk}")
        timeout = timeouts.boot_chunk_ms
        total = len(firmware)
        done = 0
        while done < total:
            piece = firmware[done : done + chunk]
            try:
                n = dev.write(ep.bEndpointAddress, array.array("B", piece), timeout)
            except usb.core.USBTimeoutError:
                raise BootError(
                    f"the stick {name} stopped accepting the firmware after {done} of {total} "
                    f"bytes (no progress within {seconds(timeout)})"
                ) from None
            except usb.core.USBError as err:
                if is_gone(err):
                    break  # usb_boot.c send_file: LIBUSB_ERROR_NO_DEVICE ends the transfer
                raise translate_usb_error(
                    err, name, f"sending the firmware ({done} of {total} bytes sent)"
                ) from None
            if n != len(piece):
                raise BootError(
                    f"the stick {name} took {n} of {len(piece)} bytes of a firmware chunk "
                    f"({done} of {total} bytes sent)"
                )
            done += n
        return chunk
    finally:
        try:
            usb.util.dispose_resources(dev)
        except Exception:  # noqa: BLE001 - the stick is re-enumerating; nothing to release
            pass


def wait_for(
    backend: Any,
    pick: Callable[[list[tuple[Any, StickInfo]]], Any],
    timeout_s: float,
    poll_s: float,
    clock: Clock,
) -> Any:
    """Enumerate every ``poll_s`` until ``pick(sticks)`` returns something (not
    ``None``), at most ``timeout_s``; returns it, or ``None`` on timeout."""
    deadline = clock.monotonic() + timeout_s
    while True:
        found = pick(find_sticks(backend))
        if found is not None:
            return found
        if clock.monotonic() >= deadline:
            return None
        clock.sleep(poll_s)


def reset_booted(dev: Any, info: StickInfo, timeouts: Timeouts) -> None:
    """Send RESET to a booted stick nobody holds (it reboots into its ROM)."""
    link = UsbLink.open(dev, info.name, timeouts)
    try:
        link.reset()
    finally:
        link.close()


def reset_all(
    backend: Any,
    timeouts: Timeouts,
    clock: Clock,
    skip: Callable[[StickInfo], bool] = lambda i: False,
) -> list[str]:
    """``usblink_resetall``: reset every booted stick that no program holds, then
    wait (50 x 100 ms) until they are back as 03e7:2150.  Sticks that are busy
    (claimed elsewhere) or for which ``skip(info)`` is true are left alone.
    Returns the names of the sticks that were reset.  Never raises for a stick
    that cannot be reset: that stick just stays as it is.
    """
    import usb.core

    sticks = find_sticks(backend, (C.PRODUCT_ID_MYRIAD2_ROM, C.PRODUCT_ID_BOOTED))
    n_rom = sum(1 for _, i in sticks if i.product_id == C.PRODUCT_ID_MYRIAD2_ROM)
    reset = []
    for dev, info in sticks:
        if info.product_id != C.PRODUCT_ID_BOOTED or skip(info):
            continue
        try:
            reset_booted(dev, info, timeouts)
        except DeviceError:
            continue  # busy (another program), gone, or not answering: leave it
        except usb.core.USBError:
            continue
        reset.append(info.name)
    if reset:
        want = n_rom + len(reset)
        for _ in range(timeouts.reset_iterations):
            clock.sleep(timeouts.reset_poll_s)
            now = find_sticks(backend, (C.PRODUCT_ID_MYRIAD2_ROM,))
            if len(now) >= want:
                break
    return reset


def wait_unbooted(
    backend: Any, info: StickInfo, timeouts: Timeouts, clock: Clock, timeout_s: float
) -> tuple[Any, StickInfo]:
    """Wait for the stick at ``info``'s port path to be an unbooted Myriad 2."""

    def pick(sticks):
        for dev, i in sticks:
            if i.product_id == C.PRODUCT_ID_MYRIAD2_ROM and same_port(i, info):
                return dev, i
        return None

    found = wait_for(backend, pick, timeout_s, timeouts.boot_find_poll_s, clock)
    if found is None:
        raise DeviceTimeoutError(
            f"the stick {info.name} did not come back as an unbooted NCS (03e7:2150) within "
            f"{timeout_s:g} s; unplug it and plug it back in"
        )
    return found


def same_port(a: StickInfo, b: StickInfo) -> bool:
    """Same USB port.  The bus is deliberately not compared: a booted stick may
    reconnect at USB 3 speed, which Linux puts on a different (SuperSpeed) bus
    with the same port numbers; libmvnc also compares the port path only."""
    if a.port_path is None or b.port_path is None:
        return a.bus == b.bus and a.address == b.address
    return a.port_path == b.port_path
