"""Every limit of ``caffe2ncs.limits``: where it is enforced, and the error
(exit code 2, one line naming the file and the limit, no traceback) when an
input exceeds it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from caffe2ncs import limits
from caffe2ncs.errors import Caffe2NcsError, GraphFileError, UnsupportedNetworkError
from caffe2ncs.limits import LimitError
from conftest import REPO, corpus_path, run_cli

HEAD = 'name: "lim"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'


def _fails(result: subprocess.CompletedProcess, path, message: str) -> None:
    """Exit code 2 and a message naming ``path`` (on stderr; ``check`` reports
    unreadable files among its findings, on stdout)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    out = result.stderr or result.stdout
    lines = [line for line in out.splitlines() if str(path) in line]
    assert len(lines) == 1, out
    assert message in lines[0], out


def _sparse(path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def test_every_enforcing_module_uses_the_limits_module():
    from caffe2ncs.lowering import graphfile
    from caffe2ncs.model import caffemodel, shapes, source, textformat
    from caffe2ncs.runtime import images

    assert source.MAX_PROTOTXT_BYTES == limits.MAX_PROTOTXT_BYTES
    assert caffemodel.MAX_CAFFEMODEL_BYTES == limits.MAX_CAFFEMODEL_BYTES
    assert graphfile.MAX_FILE_SIZE == limits.MAX_GRAPH_FILE_BYTES
    assert shapes.MAX_BLOB_ELEMENTS == limits.MAX_BLOB_ELEMENTS
    assert shapes.MAX_AXES == limits.MAX_BLOB_AXES
    assert textformat.MAX_DEPTH == limits.MAX_NESTING_DEPTH
    assert images.MAX_PIXELS == limits.MAX_IMAGE_PIXELS


# -- file sizes (sparse files: nothing is written, and nothing may be read) ----------

def test_prototxt_size(tmp_path):
    path = tmp_path / "huge.prototxt"
    _sparse(path, limits.MAX_PROTOTXT_BYTES + 1)
    _fails(run_cli("info", path), path, f"prototxt files over {limits.MAX_PROTOTXT_BYTES} bytes "
           "are refused")
    _fails(run_cli("check", "--isolated", path), path, "are refused")


def test_caffemodel_size(tmp_path):
    proto = tmp_path / "net.prototxt"
    proto.write_text(HEAD)
    model = tmp_path / "huge.caffemodel"
    _sparse(model, limits.MAX_CAFFEMODEL_BYTES + 1)
    _fails(run_cli("info", proto, model), model, "caffemodels over 2 GiB are refused")


def test_graph_file_size(tmp_path):
    path = tmp_path / "huge.graph"
    _sparse(path, limits.MAX_GRAPH_FILE_BYTES + 1)
    _fails(run_cli("inspect", path), path, "larger than any NCS graph")


def test_input_file_size(tmp_path):
    from caffe2ncs.runtime.images import load_image, load_npy

    path = tmp_path / "huge.png"
    _sparse(path, limits.MAX_INPUT_FILE_BYTES + 1)
    for load in (load_image, load_npy):
        with pytest.raises(Caffe2NcsError, match="input files over .* bytes are refused"):
            load(path)


def test_image_pixels(tmp_path):
    from caffe2ncs.runtime.images import load_image

    path = tmp_path / "bomb.ppm"
    path.write_bytes(b"P6\n65536 65536\n255\n" + bytes(12))
    with pytest.raises(Caffe2NcsError) as err:
        load_image(path)
    assert str(path) in str(err.value)


# -- structure -------------------------------------------------------------------------

def test_nesting_depth(tmp_path):
    path = tmp_path / "deep.prototxt"
    depth = limits.MAX_NESTING_DEPTH + 1
    path.write_text("layer {" * depth + "}" * depth)
    _fails(run_cli("info", path), path, f"messages nested more than {limits.MAX_NESTING_DEPTH} deep")


def test_layer_count_prototxt(tmp_path):
    path = tmp_path / "many.prototxt"
    path.write_text(HEAD + "layer { }\n" * (limits.MAX_LAYERS + 1))
    _fails(run_cli("info", path), path, f"more than {limits.MAX_LAYERS} layers")
    # the line of the first layer past the limit
    assert f"many.prototxt:{limits.MAX_LAYERS + 4}:1:" in run_cli("info", path).stderr


def test_layer_count_caffemodel(tmp_path):
    proto = tmp_path / "net.prototxt"
    proto.write_text(HEAD)
    model = tmp_path / "many.caffemodel"
    model.write_bytes(b"\xa2\x06\x00" * (limits.MAX_LAYERS + 1))  # empty `layer` entries
    _fails(run_cli("info", proto, model), model, f"more than {limits.MAX_LAYERS} layers")


def test_blob_elements(tmp_path):
    path = tmp_path / "big.prototxt"
    path.write_text('input: "data"\ninput_shape { dim: 1 dim: 1000 dim: 1000 dim: 1000000 }\n')
    _fails(run_cli("info", path), path, f"more than Caffe's limit of {limits.MAX_BLOB_ELEMENTS}")


def test_blob_axes(tmp_path):
    path = tmp_path / "axes.prototxt"
    path.write_text('input: "data"\ninput_shape { ' + "dim: 1 " * (limits.MAX_BLOB_AXES + 1) + "}\n")
    _fails(run_cli("info", path), path, f"Caffe allows at most {limits.MAX_BLOB_AXES}")


def test_weights_larger_than_a_graph_file():
    from caffe2ncs.lowering.lower import lower_network
    from caffe2ncs.model import loads

    # 3 x 100M weights: under Caffe's per-blob limit, 572 MiB as fp16
    net = loads(HEAD + 'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"\n'
                '  inner_product_param { num_output: 1562500 } }\n', path="fc.prototxt")
    with pytest.raises(UnsupportedNetworkError, match="more than a graph file can hold"):
        lower_network(net, target="ncsdk2")


# -- the emulated device's memory --------------------------------------------------------

def _tiny_graph():
    from caffe2ncs.lowering.lower import lower
    from caffe2ncs.model import loads

    net = loads(HEAD + 'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
                '  convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }\n'
                'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"\n'
                '  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n')
    return lower(net, target="ncsdk2")


def test_device_memory():
    import dataclasses

    from caffe2ncs.lowering.ir import Location
    from caffe2ncs.runtime.emulator import Emulator

    graph = _tiny_graph()
    stages = list(graph.stages)
    i = next(k for k, s in enumerate(stages) if s.output.location is Location.WORK)
    far = dataclasses.replace(stages[i].output, offset=limits.MAX_DEVICE_MEMORY_BYTES)
    stages[i] = dataclasses.replace(stages[i], output=far)
    graph = dataclasses.replace(graph, stages=tuple(stages))
    emu = Emulator(graph)
    with pytest.raises(GraphFileError, match="more than the stick's 512 MiB"):
        emu.run(np.zeros(emu.input_shape, np.float16))


def test_emulator_array_size():
    from caffe2ncs.runtime.emulator.op_convolution import zero_padded

    with pytest.raises(LimitError, match="the zero-padded input would need a 100001x100001x1 "
                                         "array"):
        zero_padded(np.zeros((1, 1, 1), np.float32), (50000, 50000), (100001, 100001))


def test_kernel_taps():
    from caffe2ncs.lowering.ir import Window
    from caffe2ncs.runtime.emulator.numerics import check_window

    check_window(Window(256, 256), "window")  # exactly the limit
    with pytest.raises(LimitError, match="kernel 257x256 has 65792 taps"):
        check_window(Window(257, 256), "window")


def test_convolution_work():
    from caffe2ncs.runtime.emulator.op_convolution import conv2d

    x = np.zeros((1, 1, 64), np.float32)
    w = np.zeros((1, 1, 64, 64), np.float32)
    with pytest.raises(LimitError, match="multiply-accumulates"):
        conv2d(x, w, None, stride=(1, 1), pad=(0, 0), dilation=1, out_hw=(4096, 4096))


# -- time --------------------------------------------------------------------------------

def test_deadline_library():
    from caffe2ncs.model import load

    path = corpus_path("lenet.prototxt")
    with limits.deadline(path, seconds=0):
        with pytest.raises(LimitError, match=r"gave up after 0 s while parsing: caffe2ncs refuses "
                                             r"files that take longer than 0 s"):
            load(path)
    load(path)  # no deadline outside the block
    with limits.deadline(path, seconds=60):
        with limits.deadline(path, seconds=3600):  # an inner, later deadline does not extend it
            assert limits._DEADLINE.get()[2] == 60
        load(path)


def _cli_with_limit(*args: str) -> subprocess.CompletedProcess:
    """The real CLI, in a subprocess, with MAX_SECONDS_PER_FILE set to 0."""
    code = ("import sys; import caffe2ncs.limits as L; L.MAX_SECONDS_PER_FILE = 0.0; "
            "from caffe2ncs.cli import main; sys.exit(main(sys.argv[1:]))")
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


@pytest.mark.parametrize("command", ["info", "check", "fix", "build"])
def test_deadline_cli(command, tmp_path):
    path = corpus_path("lenet.prototxt")
    if command == "fix":
        copy = tmp_path / "lenet.prototxt"
        copy.write_bytes(path.read_bytes())
        path = copy
    args = {"info": ["info", path], "check": ["check", "--isolated", path],
            "fix": ["fix", "--isolated", path],
            "build": ["build", "--isolated", "-o", tmp_path / "g.graph", path]}[command]
    result = _cli_with_limit(*map(str, args))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, (result.stdout, result.stderr)
    out = result.stdout + result.stderr
    assert str(path) in out
    assert "gave up after 0 s" in out and "limits.MAX_SECONDS_PER_FILE" in out
