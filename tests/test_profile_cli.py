"""``caffe2ncs profile`` end to end: graph files (the vendor's and hand-built
ones), per-layer grouping, JSON, HTML, SHAVEs, and measuring on the simulated stick."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import sample_dirs
from profile_support import lowered_with_layers

from caffe2ncs.lowering.graphfile import write_graph
from caffe2ncs.lowering.ir import (
    BufferRef,
    Constant,
    ConvParams,
    Graph,
    GraphFormat,
    Op,
    PadStyle,
    PoolParams,
    PostOp,
    SoftmaxParams,
    Stage,
    hwc_strides,
    hwck_taps_strides,
    layout_work_buffers,
)
from caffe2ncs.model import loads
from caffe2ncs.profile import DEFAULT_MODEL, build_profile
from caffe2ncs.profile.dataflow import INPUT, stage_edges

TESTS = Path(__file__).resolve().parent


def _taps(name, k, c, kk):
    return (Constant(f"{name}/taps", bytes(kk * c * k * 2)), Constant(f"{name}/bias", bytes(2 * k)))


def concat_graph() -> Graph:
    """input 16x16x8 -> two 1x1 convs (8 and 4 channels) writing one 16x16x12
    buffer at channel offsets 0 and 8 (an implicit concat) -> 2x2 max pool ->
    softmax into the output."""
    consts = []
    stages = []
    whole = hwc_strides((16, 16, 12))
    for name, k, off in (("branch_a", 8, 0), ("branch_b", 4, 16)):
        taps, bias = _taps(name, k, 8, 1)
        consts += [taps, bias]
        stages.append(Stage(Op.CONVOLUTION, name, ConvParams(1, 1, 1, 1, 0, 0, PadStyle.CAFFE),
                            BufferRef.input((16, 16, 8)),
                            BufferRef.work(4, off, (16, 16, k), whole),
                            BufferRef.blob(taps.name, (1, 8, k), hwck_taps_strides(k, 8)),
                            BufferRef.blob(bias.name), post_op=PostOp.relu()))
    stages.append(Stage(Op.MAX_POOLING, "pool", PoolParams(2, 2, 2, 2, 0, 0, PadStyle.CAFFE),
                        BufferRef.work(4, 0, (16, 16, 12), whole),
                        BufferRef.work(5, 0, (8, 8, 12))))
    stages.append(Stage(Op.SOFTMAX, "prob", SoftmaxParams(1), BufferRef.work(5, 0, (8, 8, 12)),
                        BufferRef.output((8, 8, 12))))
    return layout_work_buffers(Graph(tuple(stages), tuple(consts), GraphFormat.NCSDK1,
                                     name="concat", shave_count=12))


@pytest.fixture
def concat_file(tmp_path) -> Path:
    path = tmp_path / "concat.graph"
    path.write_bytes(write_graph(concat_graph(), "ncsdk1"))
    return path


def test_dataflow_edges_of_an_implicit_concat():
    assert stage_edges(concat_graph()) == [(INPUT, 0), (INPUT, 1), (0, 2), (1, 2), (2, 3)]


def test_table_of_a_graph_file(cli, concat_file):
    r = cli("profile", concat_file)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Detailed Per Layer Profile"
    assert lines[1].split() == ["#", "Name", "MFLOPs", "Bandwidth", "MB/s", "time", "(ms)"]
    body = [line.split() for line in lines[2:6]]
    assert [row[1] for row in body] == ["branch_a", "branch_b", "pool", "prob"]
    # conv 1x1: 2*K*H*W*C = 2*8*16*16*8; max pool 2x2: 12*8*8*4; softmax 3*768
    assert [row[2] for row in body] == ["0.033", "0.016", "0.003", "0.002"]
    costs = DEFAULT_MODEL.estimate(concat_graph(), 12)
    assert [row[4] for row in body] == [f"{c.time_ms:.2f}" for c in costs]
    assert lines[6].split()[:3] == ["Total", "inference", "time"]
    assert lines[6].split()[-1] == f"{sum(c.time_ms for c in costs):.2f}"
    assert "predicted by the cost model" in r.stdout


def test_json_of_a_graph_file(cli, concat_file):
    r = cli("profile", concat_file, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mode"] == "model" and out["shaves"] == 12 and out["input_kind"] == "graph"
    names = [entry["name"] for entry in out["layers"]]
    assert names == ["branch_a", "branch_b", "pool", "prob"]
    a = out["layers"][0]
    assert {"name", "type", "mflops", "bandwidth_mb_s", "time_ms"} <= set(a)
    assert a["type"] == "convolution" and a["mflops"] == pytest.approx(2 * 8 * 16 * 16 * 8 / 1e6)
    # bytes: input 16*16*8 + output 16*16*8 + taps 8*8, fp16
    assert a["bytes"] == 2 * (2048 + 2048 + 64)
    # vendor formula: 2*(in*1 + taps + out_channels*1) bytes over the time
    assert a["bandwidth_mb_s"] == pytest.approx(
        2 * (2048 + 64 + 8) / 1048576 / (a["time_ms"] / 1e3), rel=1e-3)
    assert out["total_ms"] == pytest.approx(sum(e["time_ms"] for e in out["layers"]), abs=1e-5)
    assert out["edges"] == [[-1, 0], [-1, 1], [0, 2], [1, 2], [2, 3]]
    assert out["model"]["stage_overhead_ms"] == DEFAULT_MODEL.stage_overhead_ms


def test_shaves_option(cli, concat_file):
    one = json.loads(cli("profile", concat_file, "--json", "--shaves", "1").stdout)
    twelve = json.loads(cli("profile", concat_file, "--json").stdout)
    assert one["shaves"] == 1
    assert one["layers"][0]["compute_ms"] == pytest.approx(12 * twelve["layers"][0]["compute_ms"],
                                                           rel=2e-3)
    assert one["total_ms"] > twelve["total_ms"]
    bad = cli("profile", concat_file, "--shaves", "13")
    assert bad.returncode == 2 and "--shaves must be between 1 and 12" in bad.stderr


def test_missing_and_bad_inputs_are_exit_2(cli, tmp_path):
    r = cli("profile", tmp_path / "nope.graph")
    assert r.returncode == 2 and "no such file" in r.stderr
    junk = tmp_path / "junk.graph"
    junk.write_bytes(b"\x01" * 100)
    r = cli("profile", junk)
    assert r.returncode == 2 and "not an NCSDK graph file" in r.stderr


@pytest.mark.parametrize("sample", sample_dirs() or [None], ids=lambda p: p.name if p else "none")
def test_vendor_graph_files(cli, sample):
    if sample is None:
        pytest.skip("the vendor sample graphs are not here")
    r = cli("profile", sample / "graph.mv", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    from caffe2ncs.lowering.graphfile import load_graph

    graph = load_graph(sample / "graph.mv")
    assert [e["name"] for e in out["layers"]] == [s.name for s in graph.stages]
    assert out["edges"][0] == [-1, 0]
    first = graph.stages[0]  # a convolution in every sample
    w = first.params
    expect = 2 * first.output.dims.x * first.output.dims.y * first.output.dims.z \
        * first.input.dims.z * w.kernel_x * w.kernel_y / 1e6
    assert out["layers"][0]["mflops"] == pytest.approx(expect)
    assert out["total_ms"] > 0


PROTOTXT = """
name: "groups"
input: "data"
input_shape { dim: 1 dim: 4 dim: 12 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param { num_output: 16 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool" type: "Pooling" bottom: "conv2" top: "pool"
        pooling_param { pool: AVE kernel_size: 12 stride: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
        inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_group_convolution_is_one_row():
    net = loads(PROTOTXT)
    graph, stage_layers, which = lowered_with_layers(net)
    p = build_profile(graph, DEFAULT_MODEL.estimate(graph, 12), source="groups.prototxt",
                      kind="prototxt", shaves=12, net=net, stage_layers=stage_layers)
    assert [r.name for r in p.rows] == ["conv1", "conv2", "pool", "fc", "prob"], which
    assert [r.type for r in p.rows] == ["Convolution", "Convolution", "Pooling",
                                        "InnerProduct", "Softmax"]
    conv2 = p.rows[1]
    # group 2: each output channel sees 8 / 2 input channels
    assert conv2.mflops == pytest.approx(2 * 16 * 12 * 12 * (8 // 2) * 9 / 1e6)
    assert conv2.predicted_ms == pytest.approx(sum(s.time_ms for s in conv2.stages))
    assert p.rows[2].mflops == pytest.approx(2 * 16 * 144 / 1e6)  # average pooling
    assert p.rows[3].mflops == pytest.approx(2 * 16 * 10 / 1e6)
    assert (0, 1) in p.edges and (1, 2) in p.edges and (-1, 0) in p.edges


def _stick_env(tmp_path) -> tuple[dict, Path]:
    import sys

    sys.path.insert(0, str(TESTS))
    from usbsim import make_firmware

    fw = tmp_path / "MvNCAPI.mvcmd"
    fw.write_bytes(make_firmware())
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
           "CAFFE2NCS_PYUSB_BACKEND": "usbsim.factories:toy_ncs", "USBSIM_FIRMWARE": str(fw)}
    return env, fw


def test_measures_on_the_simulated_stick(cli, concat_file, tmp_path):
    pytest.importorskip("usb")
    env, fw = _stick_env(tmp_path)
    r = cli("profile", concat_file, "--device", "ncs", "--firmware", fw, "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mode"] == "ncs"
    # The simulated stick's toy executor reports 1.5 + 0.25*i ms for stage i.
    assert [e["measured_ms"] for e in out["layers"]] == pytest.approx([1.5, 1.75, 2.0, 2.25])
    assert [e["time_ms"] for e in out["layers"]] == pytest.approx([1.5, 1.75, 2.0, 2.25])
    costs = DEFAULT_MODEL.estimate(concat_graph(), 12)
    assert [e["predicted_ms"] for e in out["layers"]] == pytest.approx(
        [c.time_ms for c in costs], abs=1e-5)
    assert out["measured_total_ms"] == pytest.approx(7.5)
    text = cli("profile", concat_file, "--device", "ncs", "--firmware", fw, env=env)
    assert text.returncode == 0, text.stderr
    assert "predicted (ms)" in text.stdout and "measured on the stick" in text.stdout
    assert re.search(r"Total inference time\s+\S+\s+7\.50\s", text.stdout)


def test_device_errors_are_exit_3(cli, concat_file, tmp_path):
    pytest.importorskip("usb")
    env, fw = _stick_env(tmp_path)
    env["CAFFE2NCS_PYUSB_BACKEND"] = "usbsim.factories:empty"
    r = cli("profile", concat_file, "--device", "ncs", "--firmware", fw, env=env)
    assert r.returncode == 3, (r.stdout, r.stderr)


def test_html_report_is_self_contained(cli, concat_file, tmp_path):
    report = tmp_path / "report.html"
    r = cli("profile", concat_file, "--html", report)
    assert r.returncode == 0, r.stderr
    assert f"HTML report written to {report}" in r.stdout
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # no external resources of any kind
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", html)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html and "@import" not in html
    assert html.count('<g class="node"') == 4
    assert html.count('<g class="node input"') == 1
    assert html.count('<g class="junction"') == 0  # one reader only: no junction
    for name in ("branch_a", "branch_b", "pool", "prob", "Total inference time",
                 "SHAVE", "Legend", "Summary"):
        assert name in html


def test_rows_follow_the_lowerings_stage_layers():
    """When the lowering says which Caffe layers each stage implements, that
    decides the rows, whatever the stages are called (the lowering names the
    channel-slice copies of a group convolution after their input)."""
    import dataclasses

    net = loads(PROTOTXT)
    graph, stage_layers, _ = lowered_with_layers(net)
    renamed = graph.replace(stages=tuple(dataclasses.replace(s, name=f"conv1_s{i}")
                                         for i, s in enumerate(graph.stages)))
    p = build_profile(renamed, DEFAULT_MODEL.estimate(renamed, 12), source="g", kind="prototxt",
                      shaves=12, net=net, stage_layers=stage_layers)
    assert [r.name for r in p.rows] == ["conv1", "conv2", "pool", "fc", "prob"]
    per_row = {r.name: len(r.stages) for r in p.rows}
    assert per_row["conv2"] > 1  # group 2: more than one stage, one row
    assert sum(per_row.values()) == len(graph.stages)
    # Without the map, names decide: every stage is named after conv1 here.
    q = build_profile(renamed, DEFAULT_MODEL.estimate(renamed, 12), source="g", kind="prototxt",
                      shaves=12, net=net)
    assert [r.name for r in q.rows] == ["conv1"]
