"""A pyusb backend (``usb.backend.IBackend``) whose bus holds simulated sticks.

The host code gets this object where it would get libusb's backend and cannot
tell the difference: devices come from ``enumerate_devices``, descriptors from
``get_*_descriptor``, and transfers go through ``bulk_write``/``bulk_read`` with
the same exceptions pyusb's libusb1 backend raises (``USBError`` with libusb's
error code and errno, ``USBTimeoutError``).
"""

from __future__ import annotations

import errno
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from .clock import VirtualClock
from .stick import PID_BOOTED, SimStick, no_device

EP_OUT, EP_IN = 0x01, 0x81
BULK = 0x02


class DevId:
    """What ``enumerate_devices`` yields: one appearance of a device on the bus."""

    def __init__(self, stick: SimStick | None, incarnation: int, desc: SimpleNamespace) -> None:
        self.stick = stick
        self.incarnation = incarnation
        self.desc = desc


class Handle:
    def __init__(self, devid: DevId) -> None:
        self.devid = devid
        self.stick = devid.stick
        self.claimed: set[int] = set()
        self.closed = False


def _device_descriptor(
    vid: int, pid: int, bus: int, address: int, ports: tuple[int, ...], bcd_usb: int
) -> SimpleNamespace:
    return SimpleNamespace(
        bLength=18,
        bDescriptorType=1,
        bcdUSB=bcd_usb,
        bDeviceClass=0,
        bDeviceSubClass=0,
        bDeviceProtocol=0,
        bMaxPacketSize0=64,
        idVendor=vid,
        idProduct=pid,
        bcdDevice=0x0001,
        iManufacturer=0,
        iProduct=0,
        iSerialNumber=0,
        bNumConfigurations=1,
        address=address,
        bus=bus,
        port_number=ports[-1] if ports else None,
        port_numbers=ports,
        speed=3,  # LIBUSB_SPEED_HIGH
    )


class SimBackend(usb.backend.IBackend):
    """A USB bus with simulated sticks (and, by default, two unrelated devices)."""

    def __init__(
        self,
        sticks: list[SimStick] | tuple[SimStick, ...] = (),
        clock: Any = None,
        others: bool = True,
    ) -> None:
        super().__init__()
        self.clock = clock if clock is not None else VirtualClock()
        self._address = 1
        self.sticks: list[SimStick] = []
        # A root hub and a mouse, which discovery must ignore.
        self.others = [(0x1D6B, 0x0002, 1, 1, ()), (0x046D, 0xC077, 1, 9, (4,))] if others else []
        self.opened: list[Handle] = []
        for stick in sticks:
            self.add(stick)

    def next_address(self) -> int:
        self._address += 1
        return self._address

    def add(self, stick: SimStick) -> SimStick:
        stick.attach(self)
        self.sticks.append(stick)
        return stick

    # -- enumeration -------------------------------------------------------------

    def enumerate_devices(self):
        devs = []
        for vid, pid, bus, address, ports in self.others:
            devs.append(DevId(None, 0, _device_descriptor(vid, pid, bus, address, ports, 0x200)))
        for stick in self.sticks:
            if stick.present:
                desc = _device_descriptor(
                    0x03E7, stick.pid, stick.bus, stick.address, stick.port_path, 0x200
                )
                devs.append(DevId(stick, stick.incarnation, desc))
        return iter(devs)

    def get_parent(self, dev):
        return None

    def get_device_descriptor(self, dev: DevId):
        return dev.desc

    def _packet_size(self, dev: DevId) -> int:
        return dev.stick.max_packet_size if dev.stick is not None else 64

    def get_configuration_descriptor(self, dev: DevId, config: int):
        if config != 0:
            raise IndexError(config)
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=2,
            wTotalLength=9 + 9 + 7 + 7,
            bNumInterfaces=1,
            bConfigurationValue=1,
            iConfiguration=0,
            bmAttributes=0x80,
            bMaxPower=250,  # 500 mA
            extra_descriptors=[],
        )

    def get_interface_descriptor(self, dev: DevId, intf: int, alt: int, config: int):
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError((intf, alt, config))
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=4,
            bInterfaceNumber=0,
            bAlternateSetting=0,
            bNumEndpoints=2,
            bInterfaceClass=0xFF,
            bInterfaceSubClass=0x11,
            bInterfaceProtocol=0xFF,
            iInterface=0,
            extra_descriptors=[],
        )

    def get_endpoint_descriptor(self, dev: DevId, ep: int, intf: int, alt: int, config: int):
        if (intf, alt, config) != (0, 0, 0) or ep not in (0, 1):
            raise IndexError((ep, intf, alt, config))
        # Deliberately IN first: the host must pick the first *OUT* endpoint.
        address = EP_IN if ep == 0 else EP_OUT
        return SimpleNamespace(
            bLength=7,
            bDescriptorType=5,
            bEndpointAddress=address,
            bmAttributes=BULK,
            wMaxPacketSize=self._packet_size(dev),
            bInterval=0,
            bRefresh=0,
            bSynchAddress=0,
            extra_descriptors=[],
        )

    # -- handles -------------------------------------------------------------------

    def _check(self, handle: Handle) -> SimStick:
        stick = handle.stick
        if handle.closed:
            raise usb.core.USBError("Invalid parameter", -2, errno.EINVAL)
        if stick is None or not stick.valid(handle.devid.incarnation):
            raise no_device()
        return stick

    def open_device(self, dev: DevId) -> Handle:
        stick = dev.stick
        if stick is None:
            raise usb.core.USBError("Access denied (insufficient permissions)", -3, errno.EACCES)
        if not stick.valid(dev.incarnation):
            raise no_device()
        if stick.faults.access_denied:
            raise usb.core.USBError("Access denied (insufficient permissions)", -3, errno.EACCES)
        handle = Handle(dev)
        self.opened.append(handle)
        return handle

    def close_device(self, handle: Handle) -> None:
        # libusb_close never fails, even on a vanished device.
        stick = handle.stick
        if stick is not None and stick.claimed_by is handle:
            stick.claimed_by = None
        handle.claimed.clear()
        handle.closed = True

    def set_configuration(self, handle: Handle, config_value: int) -> None:
        stick = self._check(handle)
        stick.set_configurations.append(config_value)
        if config_value != 1:
            raise usb.core.USBError("Entity not found", -5, errno.ENOENT)

    def get_configuration(self, handle: Handle) -> int:
        self._check(handle)
        return 1

    def set_interface_altsetting(self, handle: Handle, intf: int, altsetting: int) -> None:
        self._check(handle)
        if (intf, altsetting) != (0, 0):
            raise usb.core.USBError("Entity not found", -5, errno.ENOENT)

    def claim_interface(self, handle: Handle, intf: int) -> None:
        stick = self._check(handle)
        if intf != 0:
            raise usb.core.USBError("Entity not found", -5, errno.ENOENT)
        other = stick.claimed_by
        if stick.faults.held_by_other_program or (
            other is not None and other is not handle and not other.closed
        ):
            raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
        stick.claimed_by = handle
        handle.claimed.add(intf)

    def release_interface(self, handle: Handle, intf: int) -> None:
        stick = handle.stick
        handle.claimed.discard(intf)
        if stick is not None and stick.claimed_by is handle:
            stick.claimed_by = None
        self._check(handle)  # libusb reports "no device" for a vanished stick

    # -- transfers -------------------------------------------------------------------

    def bulk_write(self, handle: Handle, ep: int, intf: int, data, timeout: int) -> int:
        stick = self._check(handle)
        if ep != EP_OUT:
            stick.error(f"bulk write to endpoint 0x{ep:02X}")
        if intf not in handle.claimed:
            stick.error("bulk write without claiming interface 0")
        return stick.out(bytes(data), int(timeout))

    def bulk_read(self, handle: Handle, ep: int, intf: int, buff, timeout: int) -> int:
        stick = self._check(handle)
        if ep != EP_IN:
            stick.error(f"bulk read from endpoint 0x{ep:02X}")
        if intf not in handle.claimed:
            stick.error("bulk read without claiming interface 0")
        data = stick.in_(len(buff), int(timeout))
        buff[: len(data)] = type(buff)("B", data)
        return len(data)

    # -- helpers for tests ------------------------------------------------------------

    def booted_sticks(self) -> list[SimStick]:
        return [s for s in self.sticks if s.present and s.pid == PID_BOOTED]
