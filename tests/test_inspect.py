"""``caffe2ncs inspect``, run as a real subprocess on the vendor's files and ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES, sample_dirs
from test_graphfile_ir import concat_graph, ssd_tail_graph

from caffe2ncs.lowering.graphfile import write_graph

# What the samples' README says each network is (TensorFlow, NHWC, batch 1):
# input HxWxC, then per conv (filters, pad style), then FC to 1 and the final op.
README = {
    "conv_with_8_filters_and_padding_valid": ((64, 64, 3), [(8, "tf_valid", (31, 31, 8))], True),
    "conv_with_8_filters": ((64, 64, 3), [(8, "tf_same", (32, 32, 8))], True),
    "conv_with_8_filters_and_padding_same": ((64, 64, 3), [(8, "tf_same", (32, 32, 8))], True),
    "conv_with_1_filter_and_padding_valid": ((64, 64, 3), [(1, "tf_valid", (31, 31, 1))], True),
    "conv_with_1_filter_and_padding_same": ((64, 64, 3), [(1, "tf_same", (32, 32, 1))], True),
    "conv_with_regression": ((128, 96, 3), [(32, "tf_same", (64, 48, 32)),
                                            (64, "tf_same", (32, 24, 64))], False),
}


def _readme_params():
    dirs = {d.name: d for d in sample_dirs()}
    if not dirs:
        return [pytest.param(None, None, marks=pytest.mark.skip(
            reason=f"vendor samples not found at {SAMPLES}"))]
    return [pytest.param(dirs[name] / "graph.mv", spec, id=name)
            for name, spec in README.items() if name in dirs]


def _inspect_json(cli, path) -> dict:
    proc = cli("inspect", path, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("path,spec", _readme_params())
def test_json_matches_the_readme(cli, path: Path, spec) -> None:
    (h, w, c), convs, sigmoid = spec
    report = _inspect_json(cli, path)
    assert report["format"] == "ncsdk2" and report["format_version"] == "2.3"
    assert report["file_size"] == path.stat().st_size and report["shave_count"] == 12
    assert report["input"]["shape_hwc"] == [h, w, c]
    stages = report["stages"]
    ops = [s["op"] for s in stages]
    assert ops == ["convolution"] * len(convs) + ["fully_connected"] + (["sigmoid"] if sigmoid
                                                                         else [])
    for stage, (filters, pad_style, out_hwc) in zip(stages, convs, strict=False):
        p = stage["params"]
        assert (p["kernel_x"], p["kernel_y"], p["stride_x"], p["stride_y"]) == (3, 3, 2, 2)
        assert p["pad_style"] == pad_style and p["dilation"] == 1
        assert stage["post_op"]["op"] == "relu"
        taps = stage["buffers"]["taps"]
        assert taps["location"] == "blob" and taps["dims"][2] == filters
        x, y, z = stage["buffers"]["output"]["dims"]
        assert (y, x, z) == out_hwc
    fc = stages[len(convs)]
    assert fc["buffers"]["output"]["dims"] == [1, 1, 1]
    assert fc["buffers"]["input"]["dims"][2] == out_hwc[0] * out_hwc[1] * out_hwc[2]  # flatten
    assert fc["post_op"]["op"] == "bias"
    assert stages[-1]["buffers"]["output"]["location"] == "output"
    assert report["output"]["elements"] == 1


@pytest.mark.parametrize("path,spec", _readme_params())
def test_text_dump_shows_the_stages(cli, path: Path, spec) -> None:
    (h, w, c), convs, sigmoid = spec
    proc = cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "NCSDK 2.x blob 2.3" in out and f"{path.stat().st_size} bytes" in out
    assert f"input:  {h}x{w}x{c}" in out
    lines = [ln for ln in out.splitlines() if ln.split()[:1] and ln.split()[0].isdigit()]
    assert len(lines) == len(convs) + 1 + sigmoid
    for line, (_filters, pad_style, (oh, ow, oc)) in zip(lines, convs, strict=False):
        fields = line.split()
        assert fields[2] == "convolution" and f"{oh}x{ow}x{oc}" in fields
        assert "3x3" in fields and "2x2" in fields and pad_style in fields and "relu" in fields
    assert "fully_connected" in lines[len(convs)] and "1x1x1" in lines[len(convs)]
    if sigmoid:
        assert "sigmoid" in lines[-1] and "out=output" in lines[-1]


def test_deconv_sample(cli) -> None:
    path = SAMPLES / "conv_deconv_output_shape_wrong" / "graph.mv"
    if not path.is_file():
        pytest.skip(f"vendor sample not found at {path}")
    report = _inspect_json(cli, path)
    assert [s["op"] for s in report["stages"]].count("deconvolution") == 3
    assert report["output"]["shape_hwc"] == [127, 127, 1]
    assert report["stages"][-1]["post_op"]["op"] == "bias"


def test_json_shape_is_stable(cli, tmp_path: Path) -> None:
    path = tmp_path / "ssd.graph"
    path.write_bytes(write_graph(ssd_tail_graph(), "ncsdk1"))
    report = _inspect_json(cli, path)
    assert set(report) == {"inspect_schema", "file", "format", "format_version", "description",
                           "file_size", "name", "shave_count", "header", "input", "output",
                           "scratch_size", "data_size", "constants", "stages"}
    assert report["inspect_schema"] == 1
    assert report["format"] == "ncsdk1" and report["format_version"] == "2.0"
    assert report["name"] == "ssd_tail" and report["header"]["last_shave"] == 11
    stage = report["stages"][3]
    assert set(stage) == {"index", "name", "op", "op_code", "implementation", "params", "buffers",
                          "pre_op", "post_op", "precision", "ncsdk1_window"}
    assert stage["op"] == "detection_output" and stage["op_code"] == 41
    assert set(stage["buffers"]) == {"input", "output", "taps", "bias", "op_params"}
    assert set(stage["buffers"]["op_params"]) == {"location", "work_index", "offset", "constant",
                                                  "dims", "strides", "dtype", "order"}
    assert report["constants"][0] == {"name": "norm/op_params", "offset": 0, "size": 64,
                                      "dtype": "uint8"}


def test_our_ncsdk1_file_text(cli, tmp_path: Path) -> None:
    path = tmp_path / "concat.graph"
    path.write_bytes(write_graph(concat_graph(), "ncsdk1"))
    proc = cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    assert "NCSDK 1.x graph version 2" in proc.stdout
    assert "output: 6x6x10" in proc.stdout  # both branches of the implicit concat
    assert "out=output+8" in proc.stdout  # the second branch writes at channel 4


@pytest.mark.parametrize("content,needle", [
    (b"\0" * 32 + b"\x10\0\0\0\2\0\0\0" + b"\0" * 260,
     "file size at byte offset 32: says 16 bytes but the file has 300 (trailing data)"),
    (b"\0" * 32 + b"\x10\0\0\0\2\0\0\0" + b"\0" * 60,
     "graph header at byte offset 0: needs 264 bytes but the file is 100 bytes long"),
    (b"garbage, not a graph file at all" * 4, "not an NCSDK graph file"),
], ids=["ncsdk1-size", "ncsdk1-short", "garbage"])
def test_bad_file_is_exit_2_with_one_line(cli, tmp_path: Path, content, needle) -> None:
    path = tmp_path / "bad.graph"
    path.write_bytes(content)
    proc = cli("inspect", path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr and needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_truncated_vendor_file_is_exit_2(cli, tmp_path: Path) -> None:
    dirs = sample_dirs()
    if not dirs:
        pytest.skip(f"vendor samples not found at {SAMPLES}")
    path = tmp_path / "cut.graph"
    path.write_bytes((dirs[0] / "graph.mv").read_bytes()[:5000])
    proc = cli("inspect", path, "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"{path}: error: file_size at byte offset 38: says "
                                   f"{(dirs[0] / 'graph.mv').stat().st_size} bytes but the file "
                                   f"has 5000 (truncated)")


def test_unreadable_paths_are_exit_2(cli, tmp_path: Path) -> None:
    missing = cli("inspect", tmp_path / "nope.graph")
    assert missing.returncode == 2 and "nope.graph: error: no such file" in missing.stderr
    directory = cli("inspect", tmp_path)
    assert directory.returncode == 2 and "is a directory" in directory.stderr
