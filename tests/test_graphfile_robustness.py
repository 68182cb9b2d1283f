"""Truncated, tampered and absurd graph files: only GraphFileError, never a crash
or a huge allocation, and messages that name the field and the byte offset."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from conftest import SAMPLES, sample_dirs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_graphfile_ir import conv_relu_graph, misc_ops_graph, ssd_tail_graph

from caffe2ncs.errors import GraphFileError
from caffe2ncs.lowering.graphfile import read_graph, write_graph
from caffe2ncs.lowering.graphfile.ncsdk1_layout import HEADER_LENGTH, STAGE_LENGTH


def _smallest_sample() -> bytes:
    dirs = sample_dirs()
    if not dirs:
        pytest.skip(f"vendor samples not found at {SAMPLES}")
    return min(((d / "graph.mv").read_bytes() for d in dirs), key=len)


def _ncsdk1_file() -> bytes:
    return write_graph(conv_relu_graph(), "ncsdk1")


def _patch(data: bytes, offset: int, value: int, fmt: str = "<I") -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


def _u32(data: bytes, offset: int) -> int:
    return struct.unpack_from("<I", data, offset)[0]


def _read_or_error(data: bytes):
    """Parse; a successful parse must re-encode into a file that reads back equal."""
    try:
        graph = read_graph(data, "x.graph")
    except GraphFileError as err:
        assert err.path == "x.graph" and str(err).startswith("x.graph: ")
        assert "\n" not in str(err)
        return None
    again = read_graph(write_graph(graph, graph.format))
    assert again == graph
    return graph


# ---------------------------------------------------------------- truncation


def test_every_truncation_of_a_vendor_file_is_a_graph_file_error() -> None:
    data = _smallest_sample()
    for n in range(len(data)):
        with pytest.raises(GraphFileError):
            read_graph(data[:n])
    assert read_graph(data).stages


def test_every_truncation_of_an_ncsdk1_file_is_a_graph_file_error() -> None:
    data = _ncsdk1_file()
    for n in range(len(data)):
        with pytest.raises(GraphFileError):
            read_graph(data[:n])


def test_truncation_message_names_the_field() -> None:
    data = _smallest_sample()
    with pytest.raises(GraphFileError, match=r"file_size at byte offset 38: says \d+ bytes but "
                                             r"the file has 1000 \(truncated\)"):
        read_graph(data[:1000])
    with pytest.raises(GraphFileError, match="not an NCSDK graph file: only 20 bytes"):
        read_graph(data[:20])


def test_garbage_is_not_a_graph_file() -> None:
    with pytest.raises(GraphFileError, match="no blob magic 8708 at byte offset 34"):
        read_graph(b"\x89PNG\r\n" + bytes(range(200)))


# ---------------------------------------------------------------- random damage

_FILES: dict[str, bytes] = {}


def _files() -> dict[str, bytes]:
    if not _FILES:
        _FILES["ncsdk1"] = _ncsdk1_file()
        _FILES["ncsdk1-ssd"] = write_graph(ssd_tail_graph(), "ncsdk1")
        _FILES["ncsdk2-ssd"] = write_graph(ssd_tail_graph(), "ncsdk2")
        _FILES["ncsdk1-misc"] = write_graph(misc_ops_graph(), "ncsdk1")
        _FILES["ncsdk2-misc"] = write_graph(misc_ops_graph(), "ncsdk2")
        dirs = sample_dirs()
        if dirs:
            _FILES["vendor"] = min(((d / "graph.mv").read_bytes() for d in dirs), key=len)
    return _FILES


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(["vendor", "ncsdk1", "ncsdk1-ssd", "ncsdk2-ssd", "ncsdk1-misc",
                              "ncsdk2-misc"]),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=6),
       near_start=st.booleans())
def test_random_byte_changes_never_crash(which, flips, near_start) -> None:
    files = _files()
    data = bytearray(files.get(which, files["ncsdk1"]))
    for where, value in flips:
        span = min(len(data), 1200) if near_start else len(data)  # headers and records
        data[int(where * span)] = value
    _read_or_error(bytes(data))


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(0, 700), value=st.sampled_from([0, 1, 3, 4, 0x7FFFFFFF, 0xFFFFFFFF,
                                                          0x80000000, 64, 65]))
def test_absurd_words_in_the_vendor_header_and_stages(offset, value) -> None:
    data = _files().get("vendor") or pytest.skip("vendor samples not found")
    if offset + 4 <= len(data):
        _read_or_error(_patch(data, offset, value))


# ---------------------------------------------------------------- absurd counts and offsets


def _small_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("field,offset_of,needle", [
    ("stage_count", lambda d: _u32(d, 54), r"stage_count at byte offset 80: is 4294967295"),
    ("relocation_offset", lambda d: 62,
     r"relocation_offset at byte offset 62: 4294967295 is past the end of the \d+-byte file"),
    ("buffer_section_offset", lambda d: 58, r"buffer_section_offset at byte offset 58"),
    ("size_of_buffer_section", lambda d: _u32(d, 58), r"size_of_buffer_section at byte offset"),
    ("blob_buffer_reloc_size", lambda d: _u32(d, 62) + 8, r"blob_buffer_reloc_size at byte"),
    ("relocation index", lambda d: _u32(d, 54) + 12 + 12 + 32 + 40 + 24,
     r"stage 0 output buffer at byte offset 200: relocation index 4294967295 is past the 4 work"),
])
def test_absurd_ncsdk2_values_are_clean_errors_without_big_allocations(field, offset_of,
                                                                        needle) -> None:
    data = _smallest_sample()
    bad = _patch(data, offset_of(data), 0xFFFFFFFF)

    def attempt():
        with pytest.raises(GraphFileError, match=needle):
            read_graph(bad)

    assert _small_peak(attempt) < 4 * len(data) + (1 << 20)


def test_absurd_permutation_size_is_rejected_before_reading_ids() -> None:
    data = _patch(_patch(_smallest_sample(), 70, 1), 74, 0x3FFFFFFF)
    with pytest.raises(GraphFileError, match=r"permutation_size at byte offset 74: 1073741823 ids "
                                             r"do not fit"):
        read_graph(data)


def test_absurd_ncsdk1_stage_count_and_data_offset() -> None:
    data = _ncsdk1_file()
    peak = _small_peak(lambda: pytest.raises(GraphFileError, read_graph,
                                             _patch(data, 240, 0x7FFFFFFF)))
    assert peak < 4 * len(data) + (1 << 20)
    with pytest.raises(GraphFileError, match=r"stage count at byte offset 240: is 2147483647; a "
                                             r"\d+-byte file holds 1 to \d+ stage records"):
        read_graph(_patch(data, 240, 0x7FFFFFFF))
    with pytest.raises(GraphFileError, match="data section offset at byte offset 244"):
        read_graph(_patch(data, 244, len(data) + 1))


def test_ncsdk1_blob_pointer_outside_or_unaligned() -> None:
    data = _ncsdk1_file()
    taps_pointer = HEADER_LENGTH + 193  # stage 0 tapsPointer
    size = len(data) - _u32(data, 244)
    with pytest.raises(GraphFileError, match=rf"stage 0 taps buffer at byte offset {taps_pointer}:"
                                             rf" points at data offset {size}, outside"):
        read_graph(_patch(data, taps_pointer, size))
    with pytest.raises(GraphFileError, match="not 64-byte aligned"):
        read_graph(_patch(data, taps_pointer, 8))
    # An unknown op code names the record field.
    with pytest.raises(GraphFileError, match=rf"stage 1 op at byte offset "
                                             rf"{HEADER_LENGTH + STAGE_LENGTH + 100}: 200 is not"):
        read_graph(_patch(data, HEADER_LENGTH + STAGE_LENGTH + 100, 200, "<B"))


# ---------------------------------------------------------------- versions


def test_unknown_ncsdk2_version_names_found_and_supported() -> None:
    data = _patch(_smallest_sample(), 46, 4)
    with pytest.raises(GraphFileError, match=r"blob version 2.4 is not supported \(supported: "
                                             r"NCSDK 2.x blob 2.3 and NCSDK 1.x graph version 2\)"):
        read_graph(data)
    with pytest.raises(GraphFileError, match="blob version 3.3 is not supported"):
        read_graph(_patch(_smallest_sample(), 42, 3))


def test_unknown_ncsdk1_version_names_found_and_supported() -> None:
    with pytest.raises(GraphFileError, match=r"graph version at byte offset 36: graph version 3 "
                                             r"is not supported \(supported: NCSDK 1.x graph "
                                             r"version 2 and NCSDK 2.x blob 2.3\)"):
        read_graph(_patch(_ncsdk1_file(), 36, 3))


def test_inconsistent_counts_are_rejected() -> None:
    data = _smallest_sample()
    with pytest.raises(GraphFileError, match=r"size_of_input at byte offset 66: is 12289 but the "
                                             r"network input buffer holds 12288 elements"):
        read_graph(_patch(data, 66, 12289))
    stage_off = _u32(data, 54)
    with pytest.raises(GraphFileError,
                       match=rf"stage 0 next_stage at byte offset {stage_off + 12}"):
        read_graph(_patch(data, stage_off + 12, 200))


def test_non_finite_power_parameters_are_rejected() -> None:
    data = write_graph(misc_ops_graph(), "ncsdk2")
    g = read_graph(data)
    assert g.stages[0].params.scale == 0.5
    stage0 = _u32(data, 54) + 12
    nan = struct.unpack("<I", struct.pack("<f", float("nan")))[0]
    with pytest.raises(GraphFileError, match=r"stage 0 at byte offset \d+: invalid parameters: "
                                             r"power shift nan is not a finite float32"):
        read_graph(_patch(data, stage0 + 12, nan))
