"""Firmware location and plausibility checks (caffe2ncs.runtime.usb.firmware)."""

from __future__ import annotations

import pytest
from usbsim import make_firmware, make_graph

from caffe2ncs.errors import InputFileError, UsageError
from caffe2ncs.runtime.usb import load_firmware


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("CAFFE2NCS_FIRMWARE", raising=False)


def test_reads_the_given_path(tmp_path):
    data = make_firmware(300_000)
    p = tmp_path / "MvNCAPI.mvcmd"
    p.write_bytes(data)
    fw = load_firmware(p)
    assert fw.path == p and fw.data == data


def test_environment_variable_is_used_when_no_path_is_given(tmp_path, monkeypatch):
    p = tmp_path / "fw.mvcmd"
    p.write_bytes(make_firmware(100_000))
    monkeypatch.setenv("CAFFE2NCS_FIRMWARE", str(p))
    assert load_firmware().path == p
    assert load_firmware(None).data == p.read_bytes()


def test_argument_wins_over_environment(tmp_path, monkeypatch):
    a, b = tmp_path / "a.mvcmd", tmp_path / "b.mvcmd"
    a.write_bytes(make_firmware(100_000, "a"))
    b.write_bytes(make_firmware(100_000, "b"))
    monkeypatch.setenv("CAFFE2NCS_FIRMWARE", str(b))
    assert load_firmware(a).data == a.read_bytes()


def test_no_firmware_at_all_explains_where_to_get_it():
    with pytest.raises(UsageError) as err:
        load_firmware()
    msg = err.value.message
    assert "--firmware" in msg and "CAFFE2NCS_FIRMWARE" in msg
    assert "MvNCAPI.mvcmd" in msg and "/usr/local/lib/mvnc/MvNCAPI.mvcmd" in msg
    assert err.value.exit_code == 2


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError) as err:
        load_firmware(tmp_path / "nope.mvcmd")
    assert err.value.path == str(tmp_path / "nope.mvcmd")
    assert "not found" in err.value.message


def test_directory_suggests_the_file_inside(tmp_path):
    (tmp_path / "MvNCAPI.mvcmd").write_bytes(make_firmware(100_000))
    with pytest.raises(InputFileError) as err:
        load_firmware(tmp_path)
    assert "directory" in err.value.message and "MvNCAPI.mvcmd" in err.value.message


def test_unreadable_file(tmp_path, monkeypatch):
    from pathlib import Path

    p = tmp_path / "MvNCAPI.mvcmd"
    p.write_bytes(make_firmware(100_000))

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)  # also works when tests run as root
    with pytest.raises(InputFileError) as err:
        load_firmware(p)
    assert "permission denied" in err.value.message and err.value.path == str(p)


@pytest.mark.parametrize(
    "content, text",
    [
        (b"", "empty"),
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 865724\n",
            "Git LFS pointer",
        ),
        (b"<!DOCTYPE html><html><body>Not Found</body></html>" * 2000, "HTML"),
        (b"MA2x" + bytes(1000), "too small"),
    ],
)
def test_files_that_are_not_firmware(tmp_path, content, text):
    p = tmp_path / "MvNCAPI.mvcmd"
    p.write_bytes(content)
    with pytest.raises(InputFileError) as err:
        load_firmware(p)
    assert text in err.value.message


def test_a_graph_file_is_not_firmware(tmp_path):
    p = tmp_path / "graph"
    p.write_bytes(make_graph(3, data=bytes(100_000)))
    with pytest.raises(InputFileError) as err:
        load_firmware(p)
    assert "graph file" in err.value.message


def test_oversized_file_is_rejected_without_reading_it(tmp_path):
    p = tmp_path / "MvNCAPI.mvcmd"
    with open(p, "wb") as f:
        f.truncate(40 * 1024 * 1024)  # sparse
    with pytest.raises(InputFileError) as err:
        load_firmware(p)
    assert "too large" in err.value.message


@pytest.mark.parametrize(
    "name, text", [("MvNCAPI-ma2480.mvcmd", "NCS2"), ("MvNCAPI-ma2450.mvcmd", "XLink")]
)
def test_ncsdk2_firmware_images_are_refused_by_name(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(make_firmware(1_375_996))
    with pytest.raises(InputFileError) as err:
        load_firmware(p)
    assert text in err.value.message and "1.x" in err.value.message
