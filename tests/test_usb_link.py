"""The 1.x link's byte-level behaviour (caffe2ncs.runtime.usb.link), against a
scripted fake pyusb device, so that each transfer can be checked."""

from __future__ import annotations

import errno
import struct

import pytest
import usb.core

from caffe2ncs.errors import DeviceError
from caffe2ncs.runtime.usb import (
    DeviceAccessError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceTimeoutError,
    LinkProtocolError,
    PermitRefusedError,
    Timeouts,
)
from caffe2ncs.runtime.usb.link import UsbLink, pack_header

MiB = 1024 * 1024


class FakeDev:
    """Records writes; answers reads from a script of byte strings (or exceptions)."""

    def __init__(self, replies=(), accept=None):
        self.replies = list(replies)
        self.writes: list[tuple[int, bytes, int]] = []
        self.reads: list[tuple[int, int, int]] = []
        self.accept = accept  # max bytes accepted per write (None = all)

    def write(self, ep, data, timeout):
        data = bytes(data)
        self.writes.append((ep, data, timeout))
        return len(data) if self.accept is None else min(self.accept, len(data))

    def read(self, ep, buf, timeout):
        self.reads.append((ep, len(buf), timeout))
        if not self.replies:
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        n = min(len(buf), len(reply))
        buf[:n] = type(buf)("B", reply[:n])
        if n < len(reply):
            self.replies.insert(0, reply[n:])
        return n


def link(dev, **timeouts) -> UsbLink:
    return UsbLink(dev, "1.2", Timeouts(**timeouts))


PERMIT = struct.pack("<I", 0xABCD)


def test_header_layout_is_usbHeader_t():
    h = pack_header(2, "input1", length=0x01020304, offset=0x0A0B0C0D, host_ready=True)
    assert len(h) == 64
    assert h[0] == 2 and h[1] == 1 and h[2:4] == b"\0\0"
    assert h[4:8] == bytes([4, 3, 2, 1]) and h[8:12] == bytes([0x0D, 0x0C, 0x0B, 0x0A])
    assert h[12:18] == b"input1" and h[18:] == bytes(46)
    assert pack_header(0) == bytes(64)


def test_buffer_names_must_fit_with_their_nul():
    pack_header(2, "x" * 51)
    with pytest.raises(ValueError):
        pack_header(2, "x" * 52)


def test_set_data_is_header_permit_payload():
    dev = FakeDev([PERMIT])
    link(dev).set_data("config", b"abcd" * 10, host_ready=False)
    assert [(ep, len(d)) for ep, d, _ in dev.writes] == [(0x01, 64), (0x01, 40)]
    assert dev.writes[0][1] == pack_header(2, "config", 40, 0, False)
    assert dev.writes[1][1] == b"abcd" * 10
    assert dev.reads == [(0x81, 4, 10000)]
    assert {t for _, _, t in dev.writes} == {10000}


def test_get_data_sends_offset_and_reads_the_length():
    dev = FakeDev([PERMIT, b"\x01" * 300])
    data = link(dev).get_data("output", 300, offset=16, host_ready=True)
    assert data == b"\x01" * 300
    assert dev.writes == [(0x01, pack_header(3, "output", 300, 16, True), 10000)]
    assert [n for _, n, _ in dev.reads] == [4, 300]


def test_status_and_reset():
    dev = FakeDev([struct.pack("<I", 0x22)])
    lk = link(dev)
    assert lk.status() == 0x22
    lk.reset()
    assert [d for _, d, _ in dev.writes] == [pack_header(0), pack_header(1)]


def test_refused_permit_stops_before_the_payload():
    dev = FakeDev([struct.pack("<I", 0xDEAD)])
    with pytest.raises(PermitRefusedError) as err:
        link(dev).set_data("blobFile", b"x" * 1000)
    assert err.value.permit == 0xDEAD
    assert (
        "0xDEAD" in err.value.message
        and "0xABCD" in err.value.message
        and "blobFile" in err.value.message
    )
    assert len(dev.writes) == 1  # the header only
    assert isinstance(err.value, LinkProtocolError) and isinstance(err.value, DeviceError)


def test_writes_are_split_at_10_mib_and_partial_writes_resumed():
    payload = bytes(range(256)) * (25 * MiB // 256)
    dev = FakeDev([PERMIT])
    link(dev).set_data("blobFile", payload)
    sizes = [len(d) for _, d, _ in dev.writes[1:]]
    assert sizes == [10 * MiB, 10 * MiB, 5 * MiB]
    assert b"".join(d for _, d, _ in dev.writes[1:]) == payload

    dev = FakeDev([PERMIT], accept=3000)  # the device takes 3000 bytes per transfer
    link(dev).set_data("input1", b"\x07" * 7000)
    assert [len(d) for _, d, _ in dev.writes[1:]] == [7000, 4000, 1000]


def test_reads_are_split_at_10_mib_and_short_transfers_accumulated():
    big = b"\x05" * (21 * MiB)
    dev = FakeDev([PERMIT, big])
    assert link(dev).get_data("output", len(big)) == big
    assert [n for _, n, _ in dev.reads] == [4, 10 * MiB, 10 * MiB, 1 * MiB]

    dev = FakeDev([PERMIT, b"a" * 10, b"b" * 20, b"c" * 30])
    assert link(dev).get_data("output", 60) == b"a" * 10 + b"b" * 20 + b"c" * 30


def test_no_answer_is_a_timeout_naming_the_limit():
    dev = FakeDev([])
    with pytest.raises(DeviceTimeoutError) as err:
        link(dev).status()
    assert (
        "1.2" in err.value.message and "10 s" in err.value.message and "status" in err.value.message
    )


def test_timeouts_are_overridable():
    dev = FakeDev([])
    with pytest.raises(DeviceTimeoutError) as err:
        link(dev, link_transfer_ms=250).status()
    assert dev.writes[0][2] == 250 and dev.reads[0][2] == 250
    assert "0.25 s" in err.value.message


def test_partial_data_then_silence_is_a_short_read():
    dev = FakeDev([PERMIT, b"z" * 24])
    with pytest.raises(LinkProtocolError) as err:
        link(dev).get_data("output", 48)
    assert "short read" in err.value.message and "24 of 48" in err.value.message


def test_empty_transfer_is_a_short_read():
    dev = FakeDev([PERMIT, b""])
    with pytest.raises(LinkProtocolError) as err:
        link(dev).get_data("auxBuffer", 228)
    assert "0 of 228" in err.value.message


def test_device_that_accepts_nothing():
    dev = FakeDev([], accept=0)
    with pytest.raises(LinkProtocolError) as err:
        link(dev).reset()
    assert "accepted nothing" in err.value.message


@pytest.mark.parametrize(
    "exc, cls, text",
    [
        (
            usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV),
            DeviceGoneError,
            "disappeared",
        ),
        (usb.core.USBError("Resource busy", -6, errno.EBUSY), DeviceBusyError, "another program"),
        (
            usb.core.USBError("Access denied (insufficient permissions)", -3, errno.EACCES),
            DeviceAccessError,
            "udev",
        ),
        (usb.core.USBError("Pipe error", -9, errno.EPIPE), DeviceError, "Pipe error"),
    ],
)
def test_usb_errors_become_device_errors(exc, cls, text):
    dev = FakeDev([exc])
    with pytest.raises(cls) as err:
        link(dev).status()
    assert text in err.value.message and "1.2" in err.value.message
    assert err.value.exit_code == 3
