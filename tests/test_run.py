"""``caffe2ncs run``, through the real CLI in a subprocess.

The stick path runs against a simulated stick (``tests/usbsim``) that runs the
graph files it receives with the emulator, selected with
``CAFFE2NCS_PYUSB_BACKEND=usbsim.factories:one_ncs``; ``test_usb_cli.py`` has
the fault cases and the corpus networks.
"""

from __future__ import annotations

import os
import re

import cv2
import numpy as np
import pytest
from conftest import REPO, SAMPLES, run_cli
from test_emulator_kernels import Builder

from caffe2ncs.lowering.graphfile import load_graph, write_graph
from caffe2ncs.lowering.ir import GraphFormat, Op, PostOp, SoftmaxParams
from caffe2ncs.runtime.emulator import Emulator

TESTS = REPO / "tests"


def sample(name: str):
    path = SAMPLES / name / "graph.mv"
    if not path.is_file():
        pytest.skip(f"vendor sample {name} not found at {SAMPLES}")
    return path


def readme_input(h=64, w=64):
    return np.random.RandomState(123).random_sample((h, w, 3))


def classifier(tmp_path, fmt=GraphFormat.NCSDK2, classes=10):
    """A 4x5x3 -> FC(10) -> softmax network as a graph file."""
    rng = np.random.default_rng(0)
    n = 4 * 5 * 3
    g = Builder((4, 5, 3))
    logits = g.buffer((1, 1, classes))
    g.add(Op.FULLY_CONNECTED, g.input(), logits.ref(),
          taps=g.const("w", rng.normal(0, 1, (n, classes)), dims=(1, n, classes),
                       strides=(2 * n * classes, 2 * classes, 2)),
          bias=g.const("b", rng.normal(0, 1, classes)), post_op=PostOp.bias())
    g.add(Op.SOFTMAX, logits.ref(), g.output((1, 1, classes)), params=SoftmaxParams(1))
    path = tmp_path / f"classifier.{fmt.value}"
    path.write_bytes(write_graph(g.graph(), fmt))
    return path


def one_line_error(result, pattern: str, code: int = 2):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(pattern, lines[0]), lines[0]


# ----------------------------------------------------------------------------- emulator


def test_npy_input_on_a_vendor_sample(tmp_path):
    graph = sample("conv_with_8_filters")
    x = readme_input()
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npy"
    r = run_cli("run", graph, "--input", tmp_path / "x.npy", "--output", out)
    assert r.returncode == 0, r.stderr
    want = Emulator(load_graph(graph)).run(x)
    saved = np.load(out)
    assert saved.dtype == np.float32 and saved.shape == (1,)
    np.testing.assert_array_equal(saved, want.astype(np.float32))
    assert "device: fp16 emulator" in r.stdout
    assert "input:  64x64x3 (HxWxC) from x.npy (hwc array)" in r.stdout
    assert f"values: {float(want[0]):.6g}" in r.stdout  # 0.950684, the stick said 0.95166


def test_chw_layout(tmp_path):
    graph = sample("conv_with_8_filters")
    x = readme_input()
    np.save(tmp_path / "chw.npy", x.transpose(2, 0, 1)[None])
    out = tmp_path / "out.npy"
    r = run_cli("run", graph, "-i", tmp_path / "chw.npy", "--layout", "chw", "-o", out)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(out), Emulator(load_graph(graph)).run(x))
    r = run_cli("run", graph, "-i", tmp_path / "chw.npy")
    one_line_error(r, r"chw\.npy: error: the array is 1x3x64x64 but the graph takes 64x64x3 "
                      r"\(HxWxC\) \(it looks like C x H x W: pass --layout chw\)")


def test_explicit_preprocessing_applies_to_npy(tmp_path):
    graph = sample("conv_with_8_filters")
    x = readme_input()
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npy"
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", "--scale", "2", "--mean", "0.5,0.25,0",
                "--channel-swap", "2,1,0", "-o", out)
    assert r.returncode == 0, r.stderr
    want = Emulator(load_graph(graph)).run(x[:, :, ::-1] * 2 - [0.5, 0.25, 0])
    np.testing.assert_array_equal(np.load(out), want)
    assert "scale 2, channel swap 2,1,0, mean 0.5,0.25,0" in r.stdout


def test_image_input_is_preprocessed_like_mvnccheck(tmp_path):
    """PNG -> RGB 0..1 -> bilinear resize -> x scale -> BGR -> - mean, compared
    with the same pipeline built from OpenCV (which reads BGR and resizes with
    the same pixel-centre mapping)."""
    graph = sample("conv_with_8_filters")
    rng = np.random.default_rng(2)
    img = (rng.random((90, 120, 3)) * 255).astype(np.uint8)  # BGR, as OpenCV stores it
    cv2.imwrite(str(tmp_path / "in.png"), img)
    out = tmp_path / "out.npy"
    r = run_cli("run", graph, "-i", tmp_path / "in.png", "-S", "255", "-M", "104,117,123",
                "-o", out)
    assert r.returncode == 0, r.stderr
    bgr = cv2.resize(img.astype(np.float32) / 255, (64, 64), interpolation=cv2.INTER_LINEAR)
    x = bgr * 255 - np.array([104, 117, 123], np.float32)
    want = Emulator(load_graph(graph)).run(x)
    np.testing.assert_allclose(np.load(out), want, atol=float(np.spacing(want[0])))
    assert "(image, resized from 90x120), scale 255, channel swap 2,1,0, mean 104,117,123" \
        in r.stdout


def test_top_n_with_labels(tmp_path):
    graph = classifier(tmp_path)
    x = np.random.default_rng(3).random((4, 5, 3))
    np.save(tmp_path / "x.npy", x)
    names = [f"class {i}" for i in range(10)]
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n\n")
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", "--labels", tmp_path / "labels.txt",
                "--top", "3")
    assert r.returncode == 0, r.stderr
    probs = Emulator(load_graph(graph)).run(x).astype(np.float64)
    best = np.argsort(-probs, kind="stable")[:3]
    lines = r.stdout.splitlines()
    top = lines[lines.index("top 3:") + 1:]
    assert len(top) == 3
    for rank, (line, i) in enumerate(zip(top, best, strict=True), 1):
        assert line.split() == [f"{rank}.", str(i), f"{probs[i]:.6g}", "class", str(i)]
    r = run_cli("run", graph, "-i", tmp_path / "x.npy")  # top 5 without labels
    assert r.returncode == 0 and "top 5:" in r.stdout
    (tmp_path / "few.txt").write_text("a\nb\n")
    one_line_error(run_cli("run", graph, "-i", tmp_path / "x.npy", "--labels",
                           tmp_path / "few.txt"), r"few\.txt has 2 labels but the graph "
                                                  r"outputs 10 values")


@pytest.mark.parametrize("setup,pattern", [
    (lambda p: None, r"in\.png: error: no such file"),
    (lambda p: (p / "in.png").write_bytes(b"\xff\xd8\xff\xe0" + bytes(50)),
     r"in\.png: error: JPEG images are not supported .*convert it to PNG"),
    (lambda p: (p / "in.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"),
     r"in\.png: error: corrupt PNG image"),
    (lambda p: (p / "in.png").mkdir(), r"in\.png: error: is a directory"),
])
def test_bad_inputs(tmp_path, setup, pattern):
    graph = sample("conv_with_8_filters")
    setup(tmp_path)
    one_line_error(run_cli("run", graph, "-i", tmp_path / "in.png"), pattern)


def test_bad_graphs_and_options(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 5, 3)))
    (tmp_path / "garbage.graph").write_bytes(b"\x01" * 500)
    one_line_error(run_cli("run", tmp_path / "garbage.graph", "-i", tmp_path / "x.npy"),
                   r"garbage\.graph: error: not an NCSDK graph file")
    one_line_error(run_cli("run", tmp_path / "none.graph", "-i", tmp_path / "x.npy"),
                   r"none\.graph: error: no such file$")
    graph = classifier(tmp_path)
    one_line_error(run_cli("run", graph, "-i", tmp_path / "x.npy", "--mean", "1,2"),
                   r"error: the mean has 2 values; the input has 3 channels")
    one_line_error(run_cli("run", graph, "-i", tmp_path / "x.npy", "--channel-swap", "a,b"),
                   r"error: --channel-swap 'a,b'")
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", "--top", "0")
    assert r.returncode == 2 and "must be at least 1" in r.stderr
    one_line_error(run_cli("run", graph, "-i", tmp_path / "x.npy", "-o", tmp_path / "no" / "o.npy"),
                   r"error: cannot write .*o\.npy")


def test_unsupported_stage_is_one_line(tmp_path):
    g = Builder((2, 2, 1))
    g.add(Op.REORG, g.input(), g.output((2, 2, 1)))
    path = tmp_path / "reorg.graph"
    path.write_bytes(write_graph(g.graph(), GraphFormat.NCSDK1))
    np.save(tmp_path / "x.npy", np.zeros((2, 2, 1)))
    one_line_error(run_cli("run", path, "-i", tmp_path / "x.npy", "--device", "emulator"),
                   r"reorg\.graph: error: stage 0 'reorg_0' \(reorg\): the emulator does not "
                   r"execute reorg stages")


# ----------------------------------------------------------------------------- stick


def stick_env(tmp_path, factory="usbsim.factories:one_ncs"):
    from usbsim import make_firmware

    fw = tmp_path / "MvNCAPI.mvcmd"
    fw.write_bytes(make_firmware())
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "CAFFE2NCS_PYUSB_BACKEND": factory, "USBSIM_FIRMWARE": str(fw)}
    return env, fw


def test_ncsdk1_graph_on_a_simulated_stick(tmp_path):
    """The 1.x graph goes over the (simulated) USB link; the stick computes with
    the emulator, so the result is the emulator's, bit for bit."""
    graph = classifier(tmp_path, GraphFormat.NCSDK1)
    x = np.random.default_rng(4).random((4, 5, 3))
    np.save(tmp_path / "x.npy", x)
    env, fw = stick_env(tmp_path)
    out = tmp_path / "out.npy"
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", "--device", "ncs", "--firmware", fw,
                "-o", out, env=env)
    assert r.returncode == 0, r.stderr
    assert "device: Neural Compute Stick" in r.stdout and "stick's stage times" in r.stdout
    np.testing.assert_array_equal(np.load(out), Emulator(load_graph(graph)).run(x))
    # auto: a stick is attached and there is firmware -> the stick.
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", "--firmware", fw, env=env)
    assert r.returncode == 0 and "device: Neural Compute Stick" in r.stdout
    # auto without firmware -> the emulator.
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", env={**env, "CAFFE2NCS_FIRMWARE": ""})
    assert r.returncode == 0 and "device: fp16 emulator" in r.stdout
    # auto with a 2.x graph -> the emulator, even with a stick attached.
    graph2 = classifier(tmp_path, GraphFormat.NCSDK2)
    r = run_cli("run", graph2, "-i", tmp_path / "x.npy", "--firmware", fw, env=env)
    assert r.returncode == 0 and "device: fp16 emulator" in r.stdout


def test_ncsdk2_graph_cannot_go_to_a_stick(tmp_path):
    graph = classifier(tmp_path, GraphFormat.NCSDK2)
    np.save(tmp_path / "x.npy", np.zeros((4, 5, 3)))
    one_line_error(run_cli("run", graph, "-i", tmp_path / "x.npy", "--device", "ncs"),
                   r"classifier\.ncsdk2: error: is an NCSDK 2\.x graph \(blob 2\.3\); caffe2ncs "
                   r"drives sticks over the NCSDK 1\.x USB link")


def test_no_stick_is_a_device_error(tmp_path):
    graph = classifier(tmp_path, GraphFormat.NCSDK1)
    np.save(tmp_path / "x.npy", np.zeros((4, 5, 3)))
    env, fw = stick_env(tmp_path, "usbsim.factories:empty")
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", "--device", "ncs", "--firmware", fw,
                env=env)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    r = run_cli("run", graph, "-i", tmp_path / "x.npy", "--firmware", fw, env=env)  # auto
    assert r.returncode == 0 and "device: fp16 emulator" in r.stdout


def test_help_lists_run():
    r = run_cli("--help")
    assert r.returncode == 0 and re.search(r"^\s+run\s+run a graph file", r.stdout, re.MULTILINE)
    r = run_cli("run", "--help")
    for option in ("--input", "--mean", "--scale", "--channel-swap", "--layout", "--labels",
                   "--top", "--output", "--device", "--firmware", "--stick"):
        assert option in r.stdout
