"""What the host reads from a 1.x graph file before sending it (libmvnc's checks)."""

from __future__ import annotations

import struct

import pytest
from conftest import SAMPLES
from usbsim import make_graph

from caffe2ncs.errors import GraphFileError
from caffe2ncs.runtime.usb import graph_info


def test_stage_count_and_output_size_come_from_the_last_stage():
    g = bytearray(make_graph(4, (7, 5, 3)))
    # Make the first stages' outputs different: only the last one counts.
    struct.pack_into("<3I", g, 264 + 136, 100, 100, 100)
    struct.pack_into("<I", g, 264 + 172, 200)
    info = graph_info(bytes(g))
    assert info.nstages == 4
    assert info.noutputs == 7 * 5 * 3  # outputDimX * outputDimY * outputStrideX / 2
    assert info.output_size == 2 * 7 * 5 * 3
    assert info.aux_size == 224 + 4 * 4


def test_output_size_uses_the_output_stride_not_the_channel_count():
    # An implicit concat: the last stage writes 8 channels into a 24-channel buffer.
    g = bytearray(make_graph(1, (2, 2, 8)))
    struct.pack_into("<I", g, 264 + 172, 2 * 24)
    assert graph_info(bytes(g)).noutputs == 2 * 2 * 24


def test_stage_count_is_read_as_16_bits():
    g = bytearray(make_graph(2))
    g[242] = 1  # the upper half of the 32-bit field is ignored by libmvnc
    assert graph_info(bytes(g)).nstages == 2


@pytest.mark.parametrize(
    "mutate, text",
    [
        (lambda g: g[: 264 + 226], "too short"),
        (lambda g: g[:36] + b"\x03" + g[37:], "unsupported graph version 3"),
        (lambda g: g[:240] + b"\0\0" + g[242:], "no stages"),
        (lambda g: g[:240] + struct.pack("<H", 9) + g[242:], "claims 9 stages"),
        (lambda g: g[: 264 + 136] + struct.pack("<II", 0, 4) + g[264 + 144 :], "empty output"),
        (
            lambda g: g[: 264 + 136] + struct.pack("<II", 8192, 8192) + g[264 + 144 :],
            "more than the 64 Mi",
        ),
    ],
)
def test_rejections(mutate, text):
    with pytest.raises(GraphFileError) as err:
        graph_info(mutate(make_graph(1, (2, 2, 4))))
    assert text in err.value.message


def test_larger_than_512_mib_is_rejected():
    class Huge(bytes):
        def __len__(self):
            return 512 * 1024 * 1024 + 1

    with pytest.raises(GraphFileError) as err:
        graph_info(Huge(make_graph(1)))
    assert "512 MiB" in err.value.message


def test_ncsdk2_blob_is_named_as_such():
    fake_v2 = bytearray(600)
    struct.pack_into("<I", fake_v2, 34, 8708)
    struct.pack_into("<I", fake_v2, 42, 2)
    with pytest.raises(GraphFileError) as err:
        graph_info(bytes(fake_v2))
    assert "NCSDK 2.x graph" in err.value.message


def test_real_ncsdk2_graph_file_is_refused():
    path = SAMPLES / "conv_with_8_filters" / "graph.mv"
    if not path.is_file():
        pytest.skip(f"vendor samples not found in {SAMPLES}")
    with pytest.raises(GraphFileError) as err:
        graph_info(path.read_bytes())
    assert "NCSDK 2.x graph" in err.value.message
