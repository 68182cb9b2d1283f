"""Finding Neural Compute Sticks on the USB bus.

A stick shows up as one of three USB ids (vendor 03e7): 2150, an unbooted NCS
(Myriad 2); 2485, an unbooted NCS2 (Myriad X); f63b, a stick whose firmware is
running (either model).  libmvnc names a stick by its USB port path ("1.2": port
2 of the hub on port 1), which stays the same across the re-enumeration that
booting causes; so do we.

Listing never changes a stick's state (libmvnc's enumeration also resets stale
booted sticks; we only do that when opening one, see :mod:`.device`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import DeviceError
from . import constants as C
from .backend import BackendChoice, resolve_backend
from .errors import NoUsbBackendError

UNBOOTED = "unbooted"
BOOTED = "booted"


@dataclasses.dataclass(frozen=True)
class StickInfo:
    """One attached stick, as seen on the bus."""

    bus: int | None
    #: USB port numbers from the root hub, dot-separated ("1.2"); ``None`` when the
    #: backend cannot tell.
    port_path: str | None
    address: int | None
    vendor_id: int
    product_id: int

    @property
    def state(self) -> str:
        return BOOTED if self.product_id == C.PRODUCT_ID_BOOTED else UNBOOTED

    @property
    def model(self) -> str | None:
        """ "NCS (Myriad 2)" / "NCS2 (Myriad X)"; ``None`` once booted (both models
        then use the same id)."""
        return C.MODEL_NAMES.get(self.product_id)

    @property
    def name(self) -> str:
        """libmvnc's device name: the port path ("1.2")."""
        if self.port_path:
            return self.port_path
        return f"bus{self.bus}-addr{self.address}"

    @property
    def usb_id(self) -> str:
        return f"{self.vendor_id:04x}:{self.product_id:04x}"

    def matches(self, name: str) -> bool:
        """True for the port path ("1.2") or bus and path ("1-1.2", as in sysfs)."""
        if name == self.name:
            return True
        return self.port_path is not None and name == f"{self.bus}-{self.port_path}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "bus": self.bus,
            "port_path": self.port_path,
            "address": self.address,
            "state": self.state,
            "model": self.model,
            "vendor_id": f"{self.vendor_id:04x}",
            "product_id": f"{self.product_id:04x}",
        }


@dataclasses.dataclass(frozen=True)
class DeviceScan:
    """The result of looking: the sticks, and which backend looked (or why none could)."""

    devices: list[StickInfo]
    backend: str | None
    #: Set when there is no USB backend; says how to get one.
    no_backend: str | None = None


def port_path_of(dev: Any) -> str | None:
    """``dev.port_numbers`` (1, 2) -> "1.2", like libmvnc's ``gen_addr``."""
    numbers = getattr(dev, "port_numbers", None)
    if not numbers:
        return None
    return ".".join(str(int(n)) for n in numbers)


def info_of(dev: Any) -> StickInfo:
    return StickInfo(
        bus=dev.bus,
        port_path=port_path_of(dev),
        address=dev.address,
        vendor_id=int(dev.idVendor),
        product_id=int(dev.idProduct),
    )


def find_sticks(
    backend: Any, product_ids: tuple[int, ...] = C.PRODUCT_IDS
) -> list[tuple[Any, StickInfo]]:
    """``(pyusb Device, StickInfo)`` for every attached stick with one of the ids,
    in bus order (bus, port path)."""
    import usb.core

    found = []
    try:
        for dev in usb.core.find(find_all=True, backend=backend, idVendor=C.VENDOR_ID):
            if int(dev.idProduct) in product_ids:
                found.append((dev, info_of(dev)))
    except usb.core.USBError as err:
        raise DeviceError(f"cannot list the USB devices: {err.strerror or err}") from None
    found.sort(key=lambda pair: _sort_key(pair[1]))
    return found


def _sort_key(info: StickInfo):
    path = tuple(int(p) for p in info.port_path.split(".")) if info.port_path else ()
    return (info.bus if info.bus is not None else -1, path, info.address or 0)


def scan_devices(backend: Any = None) -> DeviceScan:
    """Every attached stick; with no USB backend an empty list and the reason."""
    try:
        choice: BackendChoice = resolve_backend(backend)
    except NoUsbBackendError as err:
        return DeviceScan(devices=[], backend=None, no_backend=err.message)
    return DeviceScan(
        devices=[info for _, info in find_sticks(choice.backend)],
        backend=choice.description,
    )


def list_devices(backend: Any = None) -> list[StickInfo]:
    """Every attached stick (an empty list when none, or when there is no USB
    backend at all - use :func:`scan_devices` to tell the two apart)."""
    return scan_devices(backend).devices
