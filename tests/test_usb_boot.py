"""Opening a stick: selection, boot, re-enumeration, stale sticks (against the simulator).

All waiting happens on a virtual clock shared by host and simulator, so the
protocol's real time limits (2 s, 15 s, ...) are used unchanged and cost nothing.
"""

from __future__ import annotations

import pytest
from usbsim import make_rig

from caffe2ncs.errors import InputFileError
from caffe2ncs.runtime.usb import (
    BootError,
    Device,
    DeviceAccessError,
    DeviceBusyError,
    DeviceNotFoundError,
    Timeouts,
    open_device,
)

HEADER_STATUS = 0


def test_boot_writes_the_whole_image_in_wmaxpacketsize_chunks(tmp_path):
    rig = make_rig(tmp_path, firmware_size=200_000)
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.is_open
    s = rig.stick
    assert sum(s.boot_chunks) == 200_000
    assert s.boot_chunks[:-1] == [512] * (len(s.boot_chunks) - 1)
    assert s.boot_chunks[-1] == 200_000 - 512 * (len(s.boot_chunks) - 1)
    assert set(s.boot_timeouts) == {2000}
    assert s.set_configurations == [1]
    assert s.boots == 1
    assert rig.protocol_errors() == []


@pytest.mark.parametrize("packet", [64, 1024])
def test_chunk_size_follows_the_endpoint_descriptor(tmp_path, packet):
    rig = make_rig(tmp_path, firmware_size=70_000, max_packet_size=packet)
    with open_device(**rig.device_kwargs()):
        pass
    assert max(rig.stick.boot_chunks) == packet
    assert len(rig.stick.boot_chunks) == -(-70_000 // packet)


def test_waits_for_the_booted_stick_to_re_enumerate(tmp_path):
    rig = make_rig(tmp_path, boot_delay_s=6.0)
    rom_address = rig.stick.address
    with open_device(**rig.device_kwargs()) as dev:
        assert rig.clock.elapsed >= 6.0
        assert dev.info.product_id == 0xF63B and dev.info.state == "booted"
        assert dev.info.address != rom_address
        assert dev.name == "1.2"


def test_gives_up_after_15_s_and_the_stick_stays_usable(tmp_path):
    rig = make_rig(tmp_path, boot_delay_s=16.0)
    with pytest.raises(BootError) as err:
        open_device(**rig.device_kwargs())
    assert "within 15 s" in err.value.message and "03e7:f63b" in err.value.message
    assert 15.0 <= rig.clock.elapsed < 16.0
    # Later the stick does come up (booted, nobody holds it): opening it again
    # resets it and boots it afresh (this time quickly).
    rig.clock.sleep(2.0)
    assert rig.stick.present and rig.stick.pid == 0xF63B
    rig.stick.boot_delay_s = 1.0
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.is_open
    assert rig.stick.resets >= 1 and rig.stick.boots == 2


def test_wrong_firmware_never_boots(tmp_path):
    rig = make_rig(tmp_path)
    rig.firmware_path.write_bytes(rig.firmware[:-1] + b"\xff")  # last byte differs
    with pytest.raises(BootError) as err:
        open_device(**rig.device_kwargs())
    assert "MvNCAPI.mvcmd" in err.value.message
    assert rig.stick.boots == 0
    # After a replug and with the right image it works.
    rig.stick.replug()
    rig.firmware_path.write_bytes(rig.firmware)
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.is_open


def test_booted_stick_found_on_another_bus_at_the_same_port(tmp_path):
    # A stick that reconnects at USB 3 speed lands on Linux's SuperSpeed bus.
    rig = make_rig(tmp_path, booted_bus=2)
    with open_device(**rig.device_kwargs()) as dev:
        assert (dev.info.bus, dev.info.port_path) == (2, "1.2")


def test_stick_vanishing_during_the_last_chunk_still_counts_as_booted(tmp_path):
    rig = make_rig(tmp_path)
    rig.stick.faults.vanish_on_last_boot_chunk = True
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.is_open
    assert rig.stick.boots == 1 and rig.protocol_errors() == []


def test_polls_status_until_waiting(tmp_path):
    rig = make_rig(tmp_path, init_s=3.0, boot_delay_s=0.5)
    with open_device(**rig.device_kwargs()):
        polls = [h for h in rig.stick.headers if h[0] == HEADER_STATUS]
        assert len(polls) > 100  # every 10 ms for 3 s
        assert rig.clock.elapsed >= 3.5


def test_stick_that_never_becomes_ready(tmp_path):
    rig = make_rig(tmp_path, init_s=100.0)
    with pytest.raises(BootError) as err:
        open_device(**rig.device_kwargs())
    assert "INITIALIZED (0x11)" in err.value.message and "15 s" in err.value.message


def test_stale_booted_sticks_are_reset_on_first_use(tmp_path):
    rig = make_rig(tmp_path, sticks=[dict(booted=True), dict(booted=True)])
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.name == "1.2"
        assert [s.resets for s in rig.sticks] == [1, 1]  # both, as usblink_resetall does
        assert [s.boots for s in rig.sticks] == [1, 0]
        assert rig.sticks[1].pid == 0x2150


def test_stick_held_by_another_program_is_left_alone(tmp_path):
    rig = make_rig(tmp_path, sticks=[dict(booted=True), dict()])
    rig.sticks[0].faults.held_by_other_program = True
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.name == "1.3"
    assert rig.sticks[0].resets == 0 and rig.sticks[0].headers == []


def test_naming_a_stick_held_by_another_program_is_busy(tmp_path):
    rig = make_rig(tmp_path, sticks=[dict(booted=True)])
    rig.stick.faults.held_by_other_program = True
    with pytest.raises(DeviceBusyError) as err:
        open_device("1.2", **rig.device_kwargs())
    assert "another program" in err.value.message and err.value.exit_code == 3


def test_stall_while_booting(tmp_path):
    rig = make_rig(tmp_path)
    rig.stick.faults.stall = True
    with pytest.raises(BootError) as err:
        open_device(**rig.device_kwargs())
    assert "after 0 of 200000 bytes" in err.value.message and "2 s" in err.value.message


def test_select_by_port_path_or_bus_and_path(tmp_path):
    rig = make_rig(tmp_path, sticks=3)
    with open_device("1.3", **rig.device_kwargs()) as dev:
        assert dev.name == "1.3"
    with open_device("1-1.4", **rig.device_kwargs()) as dev:
        assert dev.name == "1.4"
    assert [s.boots for s in rig.sticks] == [0, 1, 1]


def test_only_an_ncs2(tmp_path):
    rig = make_rig(tmp_path, model="ncs2")
    with pytest.raises(DeviceNotFoundError) as err:
        open_device(**rig.device_kwargs())
    assert "NCS2 (Myriad X)" in err.value.message
    with pytest.raises(DeviceNotFoundError) as err:
        open_device("1.2", **rig.device_kwargs())
    assert "NCS2" in err.value.message
    assert rig.stick.boot_chunks == []


def test_no_stick_at_all_waits_then_says_so(tmp_path):
    rig = make_rig(tmp_path, sticks=0)
    with pytest.raises(DeviceNotFoundError) as err:
        open_device(**rig.device_kwargs())
    assert "no Neural Compute Stick found" in err.value.message
    assert rig.clock.elapsed >= 2.0  # libmvnc's 20 x 100 ms


def test_named_stick_missing_lists_what_is_there(tmp_path):
    rig = make_rig(tmp_path)
    with pytest.raises(DeviceNotFoundError) as err:
        open_device("3.1", **rig.device_kwargs())
    assert "3.1" in err.value.message and "1.2 (unbooted NCS (Myriad 2))" in err.value.message


def test_reopen_waits_for_the_reset_stick_to_come_back(tmp_path):
    rig = make_rig(tmp_path, reset_delay_s=1.5)  # longer than the 0.5 s pause after close
    with open_device("1.2", **rig.device_kwargs()):
        pass
    assert rig.stick.present is False
    with open_device("1.2", **rig.device_kwargs()) as dev:
        assert dev.is_open
    assert rig.stick.boots == 2 and rig.protocol_errors() == []


def test_permission_denied_points_at_udev(tmp_path):
    rig = make_rig(tmp_path)
    rig.stick.faults.access_denied = True
    with pytest.raises(DeviceAccessError) as err:
        open_device(**rig.device_kwargs())
    assert "udev" in err.value.message and "03e7:2150" in err.value.message


def test_firmware_problems_are_found_before_touching_usb(tmp_path):
    rig = make_rig(tmp_path)
    with pytest.raises(InputFileError):
        open_device(**rig.device_kwargs(firmware=tmp_path / "missing.mvcmd"))
    assert rig.backend.opened == []


def test_device_object_can_be_opened_again_after_close(tmp_path):
    rig = make_rig(tmp_path)
    dev = Device(**rig.device_kwargs(timeouts=Timeouts(close_settle_s=2.0)))
    for _ in range(3):
        with dev:
            assert dev.is_open
        assert not dev.is_open
    assert rig.stick.boots == 3 and rig.stick.resets == 3


def test_booted_stick_at_another_port_is_taken_only_after_a_while(tmp_path):
    # libmvnc falls back to any free booted stick when the path changed; we do
    # too, but only once ours has been missing for 5 s.
    rig = make_rig(tmp_path, booted_port_path=(3, 1), boot_delay_s=1.0)
    t0 = rig.clock.monotonic()
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.name == "3.1"
        assert rig.clock.monotonic() - t0 >= 5.0


def test_a_free_booted_stick_elsewhere_is_not_taken_while_ours_comes_back(tmp_path):
    rig = make_rig(tmp_path, sticks=[dict(boot_delay_s=2.0), dict()])
    other = rig.sticks[1]
    with open_device("1.2", **rig.device_kwargs()) as dev:
        pass
    # Now another program has booted 1.3 and not claimed it yet, while we open 1.2.
    other.boot_by_other_program()
    with open_device("1.2", **rig.device_kwargs()) as dev:
        assert dev.name == "1.2"
    assert other.headers == []  # never touched


def test_backend_objects_without_weak_references_work(tmp_path):
    # pyusb accepts any object that behaves like a backend ("duck typing").
    rig = make_rig(tmp_path, sticks=[dict(booted=True)])

    class Slotted:
        __slots__ = ("inner",)

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

    backend = Slotted(rig.backend)
    with open_device(**rig.device_kwargs(backend=backend)) as dev:
        assert dev.is_open
    with open_device(**rig.device_kwargs(backend=backend)) as dev:
        assert dev.is_open
    # The stale stick was reset once on first use, then once by each close.
    assert rig.stick.resets == 3 and rig.stick.boots == 2
