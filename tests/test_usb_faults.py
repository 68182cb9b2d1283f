"""Every failure the simulator can inject: a clear DeviceError, and a stick that
can be opened and used again afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from usbsim import make_graph, make_rig, toy_executor
from usbsim.toy import expected_output

from caffe2ncs.errors import DeviceError
from caffe2ncs.runtime.usb import (
    DeviceBusyError,
    DeviceGoneError,
    DeviceTimeoutError,
    LinkProtocolError,
    MyriadError,
    PermitRefusedError,
    Timeouts,
    open_device,
)

GRAPH = make_graph(3, (2, 3, 4))
X = np.arange(12, dtype=np.float16)


def assert_usable(rig, name=None):
    """Open the stick again and run one inference to completion."""
    with open_device(name, **rig.device_kwargs()) as dev, dev.allocate_graph(GRAPH) as g:
        r = g.infer(X)
    np.testing.assert_array_equal(r.output, expected_output(GRAPH, X.tobytes()))


def test_unplugged_mid_run(tmp_path):
    rig = make_rig(tmp_path)
    dev = open_device(**rig.device_kwargs())
    g = dev.allocate_graph(GRAPH)
    rig.stick.faults.unplug_on_run = True
    g.load_tensor(X)
    with pytest.raises(DeviceGoneError) as err:
        g.get_result()
    assert "disappeared from the USB bus" in err.value.message and "1.2" in err.value.message
    assert err.value.exit_code == 3
    # Everything after that says what happened, without touching USB.
    with pytest.raises(DeviceError, match="failed earlier"):
        dev.status()
    dev.close()  # never raises
    assert not dev.is_open
    rig.stick.replug()
    assert_usable(rig)


def test_unplugged_between_calls(tmp_path):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev:
        rig.stick.unplug()
        with pytest.raises(DeviceGoneError):
            dev.allocate_graph(GRAPH)
    rig.stick.replug()
    assert_usable(rig)


def test_never_finishes(tmp_path):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(GRAPH) as g:
        rig.stick.faults.never_finish = True
        g.load_tensor(X)
        t0 = rig.clock.monotonic()
        with pytest.raises(DeviceTimeoutError) as err:
            g.get_result()
        waited = rig.clock.monotonic() - t0
    assert 15.0 <= waited < 15.1  # libmvnc's 15 s, on the virtual clock
    assert "no result within 15 s" in err.value.message
    assert rig.stick.resets == 1  # the with block closed (reset) the stick
    assert_usable(rig)


def test_result_timeout_is_overridable(tmp_path):
    rig = make_rig(tmp_path)
    kwargs = rig.device_kwargs(timeouts=Timeouts(result_s=0.25))
    with open_device(**kwargs) as dev, dev.allocate_graph(GRAPH) as g:
        rig.stick.faults.never_finish = True
        g.load_tensor(X)
        t0 = rig.clock.monotonic()
        with pytest.raises(DeviceTimeoutError, match="within 0.25 s"):
            g.get_result()
        assert rig.clock.monotonic() - t0 == pytest.approx(0.25, abs=0.002)


@pytest.mark.parametrize("buffer", ["blobFile", "auxBuffer"])
def test_wrong_permit_when_sending(tmp_path, buffer):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev:
        rig.stick.faults.wrong_permit_for = buffer
        with pytest.raises(PermitRefusedError) as err:
            dev.allocate_graph(GRAPH)
        assert err.value.permit == 0xDEAD
        assert f"refused '{buffer}'" in err.value.message and "0xDEAD" in err.value.message
        assert "0xABCD" in err.value.message
    assert rig.protocol_errors() == []  # the host sent no payload after the refusal
    assert_usable(rig)


def test_wrong_permit_when_reading_the_aux_buffer(tmp_path):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(GRAPH) as g:
        rig.stick.faults.wrong_permit_for = "auxBuffer"
        g.load_tensor(X)
        with pytest.raises(PermitRefusedError, match="refused 'auxBuffer'"):
            g.get_result()
        with pytest.raises(RuntimeError, match="cannot be used"):
            g.load_tensor(X)
    assert_usable(rig)


def test_wrong_permit_on_input(tmp_path):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(GRAPH) as g:
        rig.stick.faults.wrong_permit_for = "input1"
        with pytest.raises(LinkProtocolError, match="refused 'input1'"):
            g.load_tensor(X)
    assert_usable(rig)


def test_output_refused_is_retried_as_not_ready(tmp_path):
    # A refused permit on "output" means "not ready" to libmvnc: it retries.
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(GRAPH) as g:
        rig.stick.faults.wrong_permit_for = "output"
        r = g.infer(X)
    np.testing.assert_array_equal(r.output, expected_output(GRAPH, X.tobytes()))


@pytest.mark.parametrize("buffer, size", [("output", 48), ("auxBuffer", 236)])
def test_short_read(tmp_path, buffer, size):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(GRAPH) as g:
        rig.stick.faults.short_read_for = buffer
        g.load_tensor(X)
        with pytest.raises(LinkProtocolError) as err:
            g.get_result()
    msg = err.value.message
    assert (
        "short read" in msg
        and f"received {size // 2} of {size} bytes" in msg
        and f"'{buffer}'" in msg
    )
    assert_usable(rig)


def test_stick_stops_answering(tmp_path):
    rig = make_rig(tmp_path)
    dev = open_device(**rig.device_kwargs())
    g = dev.allocate_graph(GRAPH)
    rig.stick.faults.stall = True
    t0 = rig.clock.monotonic()
    with pytest.raises(DeviceTimeoutError) as err:
        g.load_tensor(X)
    assert "did not answer within 10 s" in err.value.message and "unplug" in err.value.message
    assert rig.clock.monotonic() - t0 == pytest.approx(10.0)
    dev.close()  # the RESET times out too; close still releases everything
    assert not dev.is_open
    rig.stick.faults.stall = False
    rig.stick.replug()
    assert_usable(rig)


def test_second_open_in_the_same_program(tmp_path):
    rig = make_rig(tmp_path)
    first = open_device("1.2", **rig.device_kwargs())
    with pytest.raises(DeviceBusyError, match="already open in this program"):
        open_device("1.2", **rig.device_kwargs())
    with pytest.raises(DeviceBusyError, match="every attached"):
        open_device(**rig.device_kwargs())
    # The first one is unaffected.
    r = first.allocate_graph(GRAPH).infer(X)
    np.testing.assert_array_equal(r.output, expected_output(GRAPH, X.tobytes()))
    first.close()
    assert_usable(rig, "1.2")


def test_open_while_another_program_holds_the_stick(tmp_path):
    rig = make_rig(tmp_path)
    with open_device("1.2", **rig.device_kwargs()):
        rig.stick.faults.held_by_other_program = True
    # Our close reset the stick; now another program has booted and claimed it.
    rig.clock.sleep(1.0)
    rig.stick.boot_by_other_program()
    with pytest.raises(DeviceBusyError) as err:
        open_device("1.2", **rig.device_kwargs())
    assert "in use by another program" in err.value.message
    assert rig.stick.resets == 1  # we did not reset someone else's stick
    rig.stick.faults.held_by_other_program = False  # the other program exits
    assert_usable(rig, "1.2")


def test_claim_race_on_the_booted_stick_is_busy_not_a_crash(tmp_path):
    # Two handles in one process: the second claim fails like it does in libusb.
    rig = make_rig(tmp_path)
    import usb.core
    import usb.util

    with open_device(**rig.device_kwargs()) as dev:
        other = usb.core.find(backend=rig.backend, idVendor=0x03E7, idProduct=0xF63B)
        with pytest.raises(usb.core.USBError) as err:
            usb.util.claim_interface(other, 0)
        assert err.value.backend_error_code == -6
        usb.util.dispose_resources(other)
        assert dev.status() == 0x22


@pytest.mark.parametrize("via", ["fault", "executor"])
def test_device_side_error_text(tmp_path, via):
    text = "Matmul scratch memory [112640] lower than required [165392]"
    rig = make_rig(tmp_path)
    if via == "executor":
        rig.stick.executor = lambda graph, x: (bytes(48), [1.0, 2.0, 3.0], text)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(GRAPH) as g:
        if via == "fault":
            rig.stick.faults.device_error = text
        g.load_tensor(X)
        with pytest.raises(MyriadError) as err:
            g.get_result()
    e = err.value
    assert e.debug_message == text
    assert e.message == f'the stick 1.2 reported an error: "{text}"'
    assert e.exit_code == 3
    # libmvnc returns the data along with MVNC_MYRIAD_ERROR
    assert e.result.output.shape == (24,) and e.result.stage_times_ms.size == 3
    rig.stick.executor = toy_executor
    assert_usable(rig)
