"""``caffe2ncs verify``, through the real CLI in a subprocess.

The results printed are checked against the library function it wraps
(``caffe2ncs.runtime.verify.verify_network``) and, for the metrics, against
the vendor formulas computed here from the two outputs; the failure cases are
networks that really fail on an fp16 device (cancellation, overflow), not a
tampered threshold.
"""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from conftest import corpus_path, run_cli
from test_run import one_line_error, stick_env

from caffe2ncs.model import load
from caffe2ncs.model.weights import save_caffemodel, synthesize
from caffe2ncs.runtime.verify import random_input, synthetic_weights, verify_network

SMALL = """name: "small"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 10 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

#: x + 1000 - 1000: fp16 holds x + 1000 to 0.5, so about a quarter of the
#: largest |x| is lost -- a real fp16 cancellation, every threshold fails.
CANCEL = """name: "cancel"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "up" type: "Power" bottom: "data" top: "up" power_param { shift: 1000 } }
layer { name: "down" type: "Power" bottom: "up" top: "down" power_param { shift: -1000 } }
"""

#: x * 100000 leaves fp16's range (65504) for |x| > 0.655: infinities.
OVERFLOW = """name: "overflow"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "big" type: "Power" bottom: "data" top: "big" power_param { scale: 100000 } }
"""


def write(tmp_path, text: str, name: str = "net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def metric_lines(stdout: str) -> dict[str, tuple[str, str, str]]:
    """``name -> (value, threshold, verdict)`` from the printed table."""
    found = {}
    for name in ("Min Pixel Accuracy", "Average Pixel Accuracy", "Percentage of wrong values",
                 "Pixel-wise L2 error"):
        m = re.search(rf"^{name}\s+(\S+ %|nan|inf)\s+<= (\S+ %)\s+(pass|FAIL)$", stdout,
                      re.MULTILINE)
        assert m, f"no {name} line in:\n{stdout}"
        found[name] = m.groups()
    return found


def vendor_metrics(a: np.ndarray, b: np.ndarray) -> list[float]:
    """mvNCCheck's four numbers (ncsdk-reference.md section 4), written out here."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    ref = np.max(np.abs(b))
    d = np.abs(a - b)
    return [d.max() / ref * 100, d.mean() / ref * 100,
            np.count_nonzero(d > 0.02 * ref) / b.size * 100,
            np.sqrt(np.sum(d * d) / b.size) / ref * 100]


def test_random_weights_and_input_pass_and_say_so(tmp_path):
    net_path = write(tmp_path, SMALL)
    r = run_cli("verify", net_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: no caffemodel: checking with seeded random weights" in r.stderr
    assert "random numbers in [-1, 1), seed 0 (no --input given)" in r.stdout
    assert "result:   fp16 emulator" in r.stdout
    assert "graph:    NCSDK 2.x blob 2.3, 12 SHAVEs" in r.stdout
    lines = metric_lines(r.stdout)
    assert [t for _, t, _ in lines.values()] == ["2 %", "1 %", "0 %", "1 %"]
    assert all(verdict == "pass" for *_, verdict in lines.values())
    assert "PASS: fp16 emulator and the fp32 reference agree within every threshold." in r.stdout
    # The printed numbers are the library's, which are the vendor formulas.
    net = load(net_path)
    x = random_input((12, 10, 3), 0)
    v = verify_network(net, weights=synthetic_weights(net, 0, x), input_hwc=x)
    want = vendor_metrics(v.result, v.expected)
    for (value, _, _), expected in zip(lines.values(), want, strict=True):
        assert float(value.split()[0]) == pytest.approx(expected, rel=1e-3, abs=1e-9)
    top = re.findall(r"^\s+(\d)\s+(\d+)\s+(\S+)\s+(\d+)\s+(\S+)\s*$", r.stdout, re.MULTILINE)
    assert [int(t[3]) for t in top] == [i for i, _ in v.top(5)[1]]
    assert [int(t[1]) for t in top] == [i for i, _ in v.top(5)[0]]


def test_caffemodel_image_input_and_json(tmp_path):
    net_path = write(tmp_path, SMALL)
    net = load(net_path)
    weights = synthesize(net, 3)
    save_caffemodel(net, tmp_path / "net.caffemodel", weights=weights)  # found beside it
    img = (np.random.default_rng(4).random((30, 25, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    r = run_cli("verify", net_path, "-i", tmp_path / "in.png", "-S", "2", "--json",
                "--target", "ncsdk1", "-s", "4", "--top", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no caffemodel" not in r.stderr
    data = json.loads(r.stdout)
    assert data["passed"] is True and data["target"] == "ncsdk1" and data["shaves"] == 4
    assert data["weights"].endswith("net.caffemodel")
    assert data["input"].startswith("in.png (image, resized from 30x25), scale 2")
    assert [m["threshold"] for m in data["metrics"]] == [2.0, 1.0, 0.0, 1.0, None]
    assert len(data["top"]["result"]) == 3
    # The same input through the library: OpenCV reads BGR and resizes like mvNCCheck.
    bgr = cv2.resize(img.astype(np.float32) / 255, (10, 12), interpolation=cv2.INTER_LINEAR)
    v = verify_network(load(net_path, tmp_path / "net.caffemodel"), input_hwc=bgr * 2,
                       target="ncsdk1", shaves=4)
    got = [m["value"] for m in data["metrics"][:4]]
    np.testing.assert_allclose(got, vendor_metrics(v.result, v.expected), rtol=0.05, atol=1e-6)


@pytest.mark.parametrize("text, failing", [
    (CANCEL, {"Min Pixel Accuracy", "Average Pixel Accuracy", "Percentage of wrong values",
              "Pixel-wise L2 error"}),
    (OVERFLOW, {"Min Pixel Accuracy", "Average Pixel Accuracy", "Percentage of wrong values",
                "Pixel-wise L2 error"}),
], ids=["cancellation", "overflow"])
def test_a_network_fp16_cannot_compute_fails_with_exit_1(tmp_path, text, failing):
    net_path = write(tmp_path, text)
    r = run_cli("verify", net_path)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = metric_lines(r.stdout)
    assert {name for name, (*_, verdict) in lines.items() if verdict == "FAIL"} == failing
    assert re.search(r"^FAIL: Min Pixel Accuracy, ", r.stdout, re.MULTILINE)
    assert "Traceback" not in r.stderr
    data = json.loads(run_cli("verify", net_path, "--json").stdout)
    assert data["passed"] is False
    if text is OVERFLOW:  # infinities on the device: JSON gets them as strings
        assert data["metrics"][0]["value"] == "inf"


def test_output_node_and_seed(tmp_path):
    net_path = write(tmp_path, SMALL)
    a = json.loads(run_cli("verify", net_path, "--json", "-on", "fc").stdout)
    b = json.loads(run_cli("verify", net_path, "--json", "-on", "fc", "--seed", "5").stdout)
    assert a["output"] == b["output"] == "fc" and a["output_values"] == 10
    assert a["top"] != b["top"]  # other weights, other input
    assert a["passed"] and b["passed"]


def test_npy_input_and_layout(tmp_path):
    net_path = write(tmp_path, SMALL)
    x = np.random.default_rng(6).uniform(-1, 1, (12, 10, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "chw.npy", x.transpose(2, 0, 1))
    a = json.loads(run_cli("verify", net_path, "-i", tmp_path / "x.npy", "--json").stdout)
    b = json.loads(run_cli("verify", net_path, "-i", tmp_path / "chw.npy", "--layout", "chw",
                           "--json").stdout)
    assert a["metrics"] == b["metrics"] and a["top"] == b["top"]
    one_line_error(run_cli("verify", net_path, "-i", tmp_path / "chw.npy"),
                   r"chw\.npy: error: the array is 3x12x10 but the graph takes 12x10x3")


def test_bad_input_is_one_line_without_traceback(tmp_path):
    net_path = write(tmp_path, SMALL)
    one_line_error(run_cli("verify", tmp_path / "none.prototxt"), r"none\.prototxt: .*error")
    one_line_error(run_cli("verify", net_path, "-i", tmp_path / "none.png"),
                   r"none\.png: error: no such file")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    one_line_error(run_cli("verify", net_path, "-i", tmp_path / "bad.png"),
                   r"bad\.png: error: corrupt PNG image")
    (tmp_path / "bad.caffemodel").write_bytes(b"\x0a\xff\xff\xff\xff garbage")
    r = run_cli("verify", net_path, tmp_path / "bad.caffemodel")
    assert r.returncode == 2 and "bad.caffemodel" in r.stderr and "Traceback" not in r.stderr
    one_line_error(run_cli("verify", net_path, "--shaves", "13"), r"--shaves must be 1 to 12")
    one_line_error(run_cli("verify", net_path, "--mean", "104"),
                   r"--mean only applies to --input; without --input")
    one_line_error(run_cli("verify", net_path, "--device", "ncs", "--target", "ncsdk2"),
                   r"--device ncs runs NCSDK 1\.x graphs only")
    one_line_error(run_cli("verify", net_path, "-on", "nosuchblob"), r"nosuchblob")
    unsupported = write(tmp_path, 'input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n'
                        'layer { name: "r" type: "Reorg" bottom: "data" top: "r" '
                        'reorg_param { stride: 2 } }\n', "reorg.prototxt")
    one_line_error(run_cli("verify", unsupported), r"reorg\.prototxt: error: .*'r' \(Reorg\)")


def test_on_a_simulated_stick(tmp_path):
    """--device ncs: the graph goes over the (simulated) USB link; the stick
    computes with the emulator, so the metrics are the emulator's."""
    net_path = write(tmp_path, SMALL)
    env, fw = stick_env(tmp_path)
    r = run_cli("verify", net_path, "--device", "ncs", "--firmware", fw, "--json", env=env)
    assert r.returncode == 0, r.stderr
    stick = json.loads(r.stdout)
    assert stick["device"] == "Neural Compute Stick" and stick["target"] == "ncsdk1"
    assert stick["stick_ms"] is not None
    emulated = json.loads(run_cli("verify", net_path, "--device", "emulator", "--target",
                                  "ncsdk1", "--json").stdout)
    assert stick["metrics"] == emulated["metrics"] and stick["top"] == emulated["top"]
    # auto with an NCSDK 1.x target and firmware: the stick; with 2.x: the emulator
    auto = json.loads(run_cli("verify", net_path, "--target", "ncsdk1", "--firmware", fw,
                              "--json", env=env).stdout)
    assert auto["device"] == "Neural Compute Stick"
    auto2 = json.loads(run_cli("verify", net_path, "--firmware", fw, "--json", env=env).stdout)
    assert auto2["device"] == "fp16 emulator"


def test_corpus_network(tmp_path):
    r = run_cli("verify", corpus_path("squeezenet_v1.1.prototxt"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "batch of 10; the graph computes one image at a time" in r.stderr
    assert "compared blob 'prob' (1000 values)" in r.stdout


def test_help_lists_verify_after_run():
    r = run_cli("--help")
    assert r.returncode == 0
    commands = re.findall(r"^    ([a-z]+)\s", r.stdout, re.MULTILINE)
    assert commands.index("verify") == commands.index("run") + 1
    r = run_cli("verify", "--help")
    for option in ("--input", "--scale", "--channel-swap", "--mean", "--layout", "--target",
                   "--shaves", "--device", "--output-node", "--seed", "--top", "--json",
                   "--firmware", "--stick"):
        assert option in r.stdout
