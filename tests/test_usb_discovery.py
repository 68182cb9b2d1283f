"""Discovery and backend selection (caffe2ncs.runtime.usb.discovery / .backend)."""

from __future__ import annotations

import pytest
import usb.backend.libusb0
import usb.backend.libusb1
import usb.backend.openusb
import usb.core
from usbsim import SimBackend, SimStick
from usbsim.clock import VirtualClock

from caffe2ncs.errors import UsageError
from caffe2ncs.runtime.usb import (
    NoUsbBackendError,
    StickInfo,
    list_devices,
    resolve_backend,
    scan_devices,
)


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch):
    monkeypatch.delenv("CAFFE2NCS_PYUSB_BACKEND", raising=False)


def mixed_bus() -> SimBackend:
    return SimBackend(
        [
            SimStick((1, 3), model="ncs2"),
            SimStick((1, 2)),
            SimStick((4,), bus=2, booted=True),
        ],
        clock=VirtualClock(),
    )


def test_lists_every_stick_with_state_model_and_port_path_in_bus_order():
    devices = list_devices(mixed_bus())
    assert [(d.bus, d.port_path, d.state, d.model, d.usb_id) for d in devices] == [
        (1, "1.2", "unbooted", "NCS (Myriad 2)", "03e7:2150"),
        (1, "1.3", "unbooted", "NCS2 (Myriad X)", "03e7:2485"),
        (2, "4", "booted", None, "03e7:f63b"),
    ]
    # The hub and the mouse on the simulated bus are not sticks.
    assert all(d.vendor_id == 0x03E7 for d in devices)


def test_names_are_libmvnc_port_paths_and_match_bus_qualified_names():
    ncs = list_devices(mixed_bus())[0]
    assert ncs.name == "1.2"
    assert ncs.matches("1.2") and ncs.matches("1-1.2")
    assert not ncs.matches("2-1.2") and not ncs.matches("1.3")


def test_to_json_is_plain_data():
    booted = list_devices(mixed_bus())[2]
    assert booted.to_json() == {
        "name": "4",
        "bus": 2,
        "port_path": "4",
        "address": booted.address,
        "state": "booted",
        "model": None,
        "vendor_id": "03e7",
        "product_id": "f63b",
    }


def test_a_device_without_port_numbers_gets_a_bus_and_address_name():
    info = StickInfo(bus=3, port_path=None, address=7, vendor_id=0x03E7, product_id=0x2150)
    assert info.name == "bus3-addr7"
    assert info.matches("bus3-addr7") and not info.matches("3-")


def test_listing_does_not_change_any_stick():
    bus = mixed_bus()
    before = [(s.mode, s.incarnation) for s in bus.sticks]
    list_devices(bus)
    list_devices(bus)
    assert [(s.mode, s.incarnation) for s in bus.sticks] == before
    assert all(not s.headers and not s.boot_chunks for s in bus.sticks)


def test_empty_bus_gives_an_empty_list():
    scan = scan_devices(SimBackend([], clock=VirtualClock()))
    assert scan.devices == [] and scan.no_backend is None
    assert "SimBackend" in scan.backend


# -- backend selection -------------------------------------------------------


def test_explicit_backend_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("CAFFE2NCS_PYUSB_BACKEND", "usbsim.factories:no_backend")
    bus = mixed_bus()
    assert resolve_backend(bus).backend is bus


def test_environment_factory_is_called(monkeypatch):
    monkeypatch.setenv("CAFFE2NCS_PYUSB_BACKEND", "usbsim.factories:mixed")
    choice = resolve_backend()
    assert isinstance(choice.backend, SimBackend)
    assert "CAFFE2NCS_PYUSB_BACKEND" in choice.description
    assert [d.name for d in list_devices()] == ["1.2", "1.3", "4"]


@pytest.mark.parametrize("factory", ["no_backend", "returns_none"])
def test_factory_without_a_backend_is_no_backend_not_a_crash(monkeypatch, factory):
    monkeypatch.setenv("CAFFE2NCS_PYUSB_BACKEND", f"usbsim.factories:{factory}")
    with pytest.raises(NoUsbBackendError) as err:
        resolve_backend()
    assert "pip install libusb-package" in err.value.message
    scan = scan_devices()
    assert scan.devices == [] and "no USB backend" in scan.no_backend
    assert list_devices() == []


@pytest.mark.parametrize(
    "spec, text",
    [
        ("usbsim.factories", "expected 'module:callable'"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("usbsim.factories:nope", "has no attribute 'nope'"),
        ("usbsim.factories:__doc__", "is not callable"),
    ],
)
def test_malformed_factory_spec_is_a_usage_error(monkeypatch, spec, text):
    monkeypatch.setenv("CAFFE2NCS_PYUSB_BACKEND", spec)
    with pytest.raises(UsageError) as err:
        resolve_backend()
    assert text in err.value.message


def test_factory_that_crashes_is_reported_as_no_backend(monkeypatch):
    import usbsim.factories as f

    def boom():
        raise OSError("cannot open /dev/fake")

    monkeypatch.setattr(f, "boom", boom, raising=False)
    monkeypatch.setenv("CAFFE2NCS_PYUSB_BACKEND", "usbsim.factories:boom")
    with pytest.raises(NoUsbBackendError) as err:
        resolve_backend()
    assert "OSError: cannot open /dev/fake" in err.value.message


def _no_system_libusb(monkeypatch):
    for module in (usb.backend.libusb1, usb.backend.openusb, usb.backend.libusb0):
        monkeypatch.setattr(module, "get_backend", lambda *a, **k: None)


def test_falls_back_to_libusb_package(monkeypatch):
    import libusb_package

    _no_system_libusb(monkeypatch)
    sentinel = object()
    monkeypatch.setattr(libusb_package, "get_libusb1_backend", lambda: sentinel)
    choice = resolve_backend()
    assert choice.backend is sentinel
    assert choice.description == "libusb1 from libusb-package"


def test_pyusb_default_is_preferred_to_libusb_package(monkeypatch):
    import libusb_package

    sentinel = object()
    monkeypatch.setattr(usb.backend.libusb1, "get_backend", lambda *a, **k: sentinel)
    monkeypatch.setattr(libusb_package, "get_libusb1_backend", lambda: pytest.fail("not needed"))
    assert resolve_backend().backend is sentinel


def test_no_libusb_anywhere_says_how_to_get_one(monkeypatch):
    import libusb_package

    _no_system_libusb(monkeypatch)
    monkeypatch.setattr(libusb_package, "get_libusb1_backend", lambda: None)
    with pytest.raises(NoUsbBackendError) as err:
        resolve_backend()
    msg = err.value.message
    assert "libusb-1.0-0" in msg and "pip install libusb-package" in msg
    assert err.value.exit_code == 3
    scan = scan_devices()
    assert scan.devices == [] and scan.backend is None and scan.no_backend == msg


def test_usb_error_while_listing_is_a_device_error():
    from caffe2ncs.errors import DeviceError

    class Broken(SimBackend):
        def enumerate_devices(self):
            raise usb.core.USBError("Input/Output Error", -1, 5)

    with pytest.raises(DeviceError) as err:
        list_devices(Broken([], clock=VirtualClock()))
    assert "cannot list the USB devices" in err.value.message
