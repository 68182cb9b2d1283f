"""``caffe2ncs build`` in a subprocess: success, refusal with the findings,
--force, weights (zero, random, a caffemodel, the one next to the prototxt),
options, and bad input (one line, exit 2, no traceback)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import corpus_path, run_cli

from caffe2ncs.lowering.graphfile import load_graph
from caffe2ncs.lowering.ir import GraphFormat, Op
from caffe2ncs.model.loader import load
from caffe2ncs.model.weights import save_caffemodel

GOOD = """name: "small"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc"
  inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

# batch 2 (NCS102, an error) and an in-place Sigmoid (NCS430, an error)
BAD = GOOD.replace("dim: 1 dim: 3", "dim: 2 dim: 3").replace(
    'layer { name: "prob"',
    'layer { name: "sig" type: "Sigmoid" bottom: "fc" top: "fc" }\nlayer { name: "prob"')


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.prototxt"
    path.write_text(GOOD)
    return path


def _assert_one_line_error(result, *fragments) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and "error" in lines[-1]
    for fragment in fragments:
        assert fragment in result.stderr


def test_build_writes_a_graph_and_summarises_it(small, tmp_path) -> None:
    out = tmp_path / "small.graph"
    result = run_cli("build", small, "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"Built {out}: 4 stages, {out.stat().st_size} bytes, NCSDK 2.x blob 2.3, 12 SHAVEs.")
    g = load_graph(out)
    assert g.format is GraphFormat.NCSDK2 and g.shave_count == 12
    assert [s.op for s in g.stages] == [Op.CONVOLUTION, Op.MAX_POOLING, Op.FULLY_CONNECTED,
                                        Op.SOFTMAX]
    # zero weights, said once, and no progress bar when not on a terminal
    assert "warning: no caffemodel: using zero weights" in result.stderr
    assert "converting weights" not in result.stderr + result.stdout
    conv = g.stages[0]
    assert not any(g.constant(conv.taps.constant).data)


def test_default_output_name_target_shaves_and_name(small, tmp_path) -> None:
    result = run_cli("build", small, "--target", "ncsdk1", "-s", "4", "--name", "tiny",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "NCSDK 1.x graph version 2, 4 SHAVEs." in result.stdout
    g = load_graph(tmp_path / "small.graph")
    assert (g.format, g.shave_count, g.name) == (GraphFormat.NCSDK1, 4, "tiny")
    assert [s.name for s in g.stages] == ["conv1", "pool1", "fc", "prob"]
    result = run_cli("build", small, "--target", "ncsdk1", "--shaves", "1", cwd=tmp_path)
    assert result.returncode == 0
    assert load_graph(tmp_path / "small.graph").name == "small"  # the prototxt's name


def test_build_refuses_with_the_findings(tmp_path) -> None:
    path = tmp_path / "bad.prototxt"
    path.write_text(BAD)
    out = tmp_path / "bad.graph"
    result = run_cli("build", path, "-o", out)
    assert result.returncode == 1
    assert "error[NCS102]" in result.stdout and "error[NCS430]" in result.stdout
    assert "bad.prototxt:3:" in result.stdout  # located as `check` locates them
    assert "Not built: 2 errors for ncsdk2" in result.stdout
    assert not out.exists()


def test_force_builds_anyway(tmp_path) -> None:
    path = tmp_path / "bad.prototxt"
    path.write_text(BAD)
    out = tmp_path / "bad.graph"
    result = run_cli("build", path, "-o", out, "--force")
    assert result.returncode == 0, result.stderr
    assert "error[NCS430]" in result.stdout
    assert "--force: building despite 2 errors" in result.stderr
    assert "batch of 2" in result.stderr
    g = load_graph(out)
    # the in-place Sigmoid is a stage of its own (the toolkit would bypass it)
    assert [s.op for s in g.stages][-2:] == [Op.SIGMOID, Op.SOFTMAX]


def test_random_weights_are_seeded(small, tmp_path) -> None:
    graphs = []
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        out = tmp_path / f"{name}.graph"
        result = run_cli("build", small, "-o", out, "--random-weights", str(seed))
        assert result.returncode == 0, result.stderr
        assert "zero weights" not in result.stderr
        graphs.append(out.read_bytes())
    assert graphs[0] == graphs[1] != graphs[2]
    g = load_graph(tmp_path / "a.graph")
    assert np.abs(g.constant(g.stages[0].taps.constant).array().astype(float)).max() > 0


def test_weights_from_a_caffemodel_and_from_the_one_next_to_the_prototxt(small, tmp_path):
    net = load(small)
    model = tmp_path / "small.caffemodel"
    save_caffemodel(net, model, seed=5)
    weights = load(small, model).weights
    want = weights["conv1"][0].transpose(2, 3, 1, 0).astype(np.float16).reshape(-1)
    for args in ((small, model), (small,)):  # given, then found next to the prototxt
        out = tmp_path / "w.graph"
        result = run_cli("build", *args, "-o", out)
        assert result.returncode == 0, result.stderr
        assert "zero weights" not in result.stderr
        g = load_graph(out)
        taps = g.constant(g.stages[0].taps.constant).array()[:want.size]
        np.testing.assert_array_equal(taps, want)
    assert f"using weights {model}" in result.stderr


@pytest.mark.parametrize("args, fragments", [
    (("missing.prototxt",), ("missing.prototxt", "no such file")),
    (("{small}", "-s", "13"), ("--shaves must be 1 to 12",)),
    (("{small}", "-s", "0"), ("--shaves must be 1 to 12",)),
    (("{small}", "{small}", "--random-weights", "1"), ("either a caffemodel or",)),
    (("{small}", "-o", "{tmp}"), ("is a folder",)),
    (("{small}", "-o", "{tmp}/no/such/dir/x.graph"), ("cannot write",)),
    (("{small}", "{tmp}/junk.caffemodel"), ("junk.caffemodel",)),
    (("{syntax}",), ("syntax.prototxt",)),
    (("{upsample}", "--force"), ("cannot lower 1 layer: 'up' (Upsample)",)),
])
def test_bad_input_is_one_line_and_exit_2(small, tmp_path, args, fragments) -> None:
    (tmp_path / "junk.caffemodel").write_bytes(b"\xff" * 100)
    (tmp_path / "syntax.prototxt").write_text('name: "x"\nlayer { name: "a" type: ')
    (tmp_path / "up.prototxt").write_text(GOOD.replace(
        'layer { name: "prob"', 'layer { name: "up" type: "Upsample" bottom: "fc" top: "up" }\n'
        'layer { name: "prob"').replace('bottom: "fc" top: "prob"', 'bottom: "up" top: "prob"'))
    subst = {"{small}": str(small), "{tmp}": str(tmp_path),
             "{syntax}": str(tmp_path / "syntax.prototxt"),
             "{upsample}": str(tmp_path / "up.prototxt")}
    argv = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    result = run_cli("build", *argv, cwd=tmp_path)
    if "syntax.prototxt" in fragments:  # a syntax error is a finding printed like `check`
        assert result.returncode == 2 and "error[NCS999]" in result.stdout
        assert "Traceback" not in result.stderr
        return
    _assert_one_line_error(result, *fragments)


def test_corpus_ssd_builds_through_the_cli(tmp_path) -> None:
    path = corpus_path("ncappzoo_ssd_mobilenet_patched.prototxt")
    out = tmp_path / "ssd.graph"
    result = run_cli("build", path, "-o", out, "--target", "ncsdk1")
    assert result.returncode == 0, result.stderr
    g = load_graph(out)
    assert g.stages[-1].op is Op.DETECTION_OUTPUT and g.output.elements == 7 * 201
