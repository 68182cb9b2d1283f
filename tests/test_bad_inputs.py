"""The bad-input catalogue, through the real CLI: ``caffe2ncs info BAD [BAD.caffemodel]``.

Every case must give exit code 2, nothing on stdout, and exactly one line on
stderr of the form ``FILE[:LINE:COLUMN]: error: MESSAGE`` naming the file at
fault (and the place in it, where there is one) - never a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from caffe2ncs.model import load
from caffe2ncs.model.caffemodel import _Reader
from caffe2ncs.model.weights import save_caffemodel
from conftest import REPO, corpus_path, run_cli

HEAD = 'name: "bad"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'


def relu(name: str, bottom: str, top: str) -> str:
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{bottom}" top: "{top}" }}\n'


def conv(params: str, name: str = "conv") -> str:
    return (f'layer {{\n  name: "{name}"\n  type: "Convolution"\n  bottom: "data"\n  top: "{name}"\n'
            f'  convolution_param {{ {params} }}\n}}\n')


@dataclass
class Case:
    id: str
    #: the prototxt text (str) or bytes; None for cases that build files themselves
    text: str | bytes | None
    #: (line, column) expected in the message, or None for a message without one
    where: tuple[int, int] | None
    #: a fragment the message must contain
    message: str
    #: which argument the error must name: "prototxt" or "caffemodel"
    names: str = "prototxt"
    extra: dict = field(default_factory=dict)


TEXT_CASES = [
    # malformed text
    Case("unbalanced-open-brace", HEAD + 'layer {\n  name: "r"\n  type: "ReLU"\n', (7, 1),
         "'layer' opened on line 4 is never closed (missing '}')"),
    Case("unbalanced-close-brace", HEAD + relu("r", "data", "r") + "}\n", (5, 1),
         "unexpected '}' with no open message"),
    Case("mismatched-closer", HEAD + "layer < name: \"r\" }\n", (4, 19),
         "expected '>' to close 'layer', found '}'"),
    Case("missing-value", HEAD + "layer {\n  name:\n}\n", (6, 1), "field 'name' has no value"),
    Case("missing-colon", HEAD + 'layer {\n  name "r"\n}\n', (5, 8),
         "expected ':' after field name 'name'"),
    Case("unterminated-string", HEAD + 'layer {\n  name: "r\n}\n', (5, 9),
         "unterminated string (strings cannot span lines)"),
    Case("stray-character", HEAD + "layer { $ }\n", (4, 9), "unexpected character '$'"),
    Case("too-deep", "a {" * 101 + "}" * 101, (1, 301), "messages nested more than 100 deep"),
    Case("crlf-tabs-error-position", 'name: "x"\r\nlayer {\r\n\tname: "r" ?\r\n}\r\n', (3, 12),
         "unexpected character '?'"),
    # bad numbers
    Case("bad-number", HEAD + conv("num_output: 3x kernel_size: 1"), (9, 35),
         "'num_output' takes an integer (uint32), found '3x'"),
    Case("float-for-integer", HEAD + conv("num_output: 2.5 kernel_size: 1"), (9, 35),
         "'num_output' takes an integer (uint32), found '2.5'"),
    Case("negative-unsigned", HEAD + conv("num_output: -4 kernel_size: 1"), (9, 35),
         "-4 is out of range for 'num_output' (uint32: 0 to 4294967295)"),
    Case("bad-float", HEAD + conv("num_output: 4 kernel_size: 1 weight_filler { std: 1.2.3 }"), (9, 73),
         "'std' takes a number, found '1.2.3'"),
    Case("bad-bool", HEAD + conv("num_output: 4 kernel_size: 1 bias_term: yes"), (9, 63),
         "'bias_term' takes true or false, found 'yes'"),
    # wrong field types
    Case("string-for-number", HEAD + conv('num_output: "4" kernel_size: 1'), (9, 35),
         "'num_output' takes a uint32, found the string \"4\""),
    Case("number-for-string", HEAD.replace('name: "bad"', "name: 42"), (1, 7),
         "'name' takes a quoted string, found '42' (write \"42\")"),
    Case("message-for-scalar", HEAD + conv("num_output: 4 kernel_size { }"), (9, 49),
         "'kernel_size' is a uint32, not a message"),
    Case("scalar-for-message", HEAD + "layer { name: \"c\" convolution_param: 3 }\n", (4, 38),
         "'convolution_param' is a message (ConvolutionParameter); expected '{' but found '3'"),
    Case("string-for-enum", HEAD + conv('num_output: 4 kernel_size: 1 engine: "CAFFE"'), (9, 60),
         "'engine' takes an enum Engine, found the string \"CAFFE\""),
    Case("duplicate-field", HEAD + conv("num_output: 4 num_output: 5 kernel_size: 1"), (9, 37),
         "'num_output' is given twice in one ConvolutionParameter, but it is not a repeated field"),
    Case("bad-escape", HEAD.replace('name: "bad"', r'name: "b\qd"'), (1, 7),
         r"bad string for 'name': invalid escape '\q'"),
    Case("invalid-utf8-string", HEAD.encode().replace(b'name: "bad"', b'name: "b\xe9d"'), (1, 7),
         "'name' is not valid UTF-8"),
    Case("binary-junk", bytes(range(256)) * 4, (1, 1),
         "this is a binary file, not a prototxt"),
    # graph faults
    Case("cycle", HEAD + relu("a", "b", "a") + relu("b", "a", "b"), (5, 32),
         "the layers form a cycle: 'b' -> 'a' -> 'b'"),
    Case("self-loop", HEAD + relu("a", "x", "x"), (4, 32),
         "layer 'a' reads blob 'x', which no input or layer produces (it is written in place"),
    Case("missing-bottom", HEAD + relu("a", "nope", "a"), (4, 32),
         "layer 'a' reads blob 'nope', which no input or layer produces"),
    Case("bottom-before-producer", HEAD + relu("a", "late", "a") + relu("b", "data", "late"), (4, 32),
         "layer 'a' reads blob 'late' before layer 'b' produces it; Caffe builds layers in file order"),
    Case("duplicate-top", HEAD + relu("a", "data", "x") + relu("b", "data", "x"), (5, 47),
         "layer 'b' writes blob 'x', which layer 'a' already produced"),
    Case("int64-overflow-dim", 'input: "data"\ninput_shape { dim: 1 dim: 99999999999999999999 }\n', (2, 27),
         "99999999999999999999 is out of range for 'dim' (int64: -9223372036854775808 to "
         "9223372036854775807)"),
    Case("1e12-element-input", 'input: "data"\ninput_shape { dim: 1 dim: 1000 dim: 1000 dim: 1000000 }\n',
         (2, 1), "input 'data': 1x1000x1000x1000000: 1e+12 elements, more than Caffe's limit"),
    Case("negative-dim", 'input: "data"\ninput_shape { dim: 1 dim: -3 dim: 8 dim: 8 }\n', (2, 1),
         "input 'data': has a negative dimension (1x-3x8x8)"),
    Case("huge-learned-blob", HEAD + 'layer {\n  name: "fc"\n  type: "InnerProduct"\n  bottom: "data"\n'
         '  top: "fc"\n  inner_product_param { num_output: 100000000 }\n}\n', (4, 1),
         "layer 'fc' (InnerProduct) would need weights of 100000000x192: 1.92e+10 elements"),
    Case("huge-top", HEAD + conv("num_output: 100000 kernel_size: 1 pad: 5000"), (8, 3),
         "layer 'conv' (Convolution) would make top 'conv' 1x100000x10008x10008"),
    Case("input-dim-count", 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\n', (2, 1),
         "3 input_dim value(s) for 1 input(s); Caffe needs exactly 4 per input (N, C, H, W)"),
    Case("mixed-layer-spellings", HEAD + relu("a", "data", "a") + 'layers { name: "b" type: RELU '
         'bottom: "a" top: "b" }\n', (5, 1), "the file mixes 'layer' and the older 'layers' blocks"),
    Case("v0-padding-into-relu", 'input: "data"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 4\ninput_dim: 4\n'
         'layers { layer { name: "p" type: "padding" pad: 1 } bottom: "data" top: "p" }\n'
         'layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }\n', (7, 1),
         "layer 'r': V0 padding layer output 'p' feeds this ReLU layer"),
]


def _check(result: subprocess.CompletedProcess, named: Path, where, message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    prefix = f"{named}:{where[0]}:{where[1]}: error: " if where else f"{named}: error: "
    assert line.startswith(prefix), line
    assert message in line[len(prefix):], line


@pytest.mark.parametrize("case", TEXT_CASES, ids=[c.id for c in TEXT_CASES])
def test_bad_prototxt(case, tmp_path):
    path = tmp_path / "bad.prototxt"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_bytes(case.text.encode())
    _check(run_cli("info", path), path, case.where, case.message)


def test_catalogue_is_large_enough():
    assert len(TEXT_CASES) + len(FILE_CASES) + len(CUTS) + len(CAFFEMODEL_CASES) >= 25


# ---------------------------------------------------------------------------
# Files that cannot be read at all
# ---------------------------------------------------------------------------


def _missing(tmp_path):
    return tmp_path / "missing.prototxt", "no such file"


def _directory(tmp_path):
    path = tmp_path / "dir.prototxt"
    path.mkdir()
    return path, "is a directory, not a file"


def _not_a_directory(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    return plain / "net.prototxt", "cannot read: Not a directory"


FILE_CASES = {"missing-file": _missing, "directory": _directory, "not-a-directory": _not_a_directory}


@pytest.mark.parametrize("make", FILE_CASES.values(), ids=FILE_CASES.keys())
def test_unreadable_prototxt(make, tmp_path):
    path, message = make(tmp_path)
    _check(run_cli("info", path), path, None, message)


def _run_without_dac_override(*args) -> subprocess.CompletedProcess:
    """The CLI as run_cli runs it, but (for root) without the capabilities that
    let root read any file, so that permissions apply."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv is not available to drop CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env.pop("FORCE_COLOR", None)
    return subprocess.run([*prefix, sys.executable, "-m", "caffe2ncs", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_permission_denied(tmp_path):
    path = tmp_path / "secret.prototxt"
    path.write_text(HEAD)
    path.chmod(0)
    try:
        result = _run_without_dac_override("info", path)
        if result.returncode == 0 or "Operation not permitted" in result.stderr:
            pytest.skip(f"cannot make the file unreadable here: {result.stderr.strip()}")
        _check(result, path, None, "permission denied")
    finally:
        path.chmod(0o644)


def test_permission_denied_caffemodel(tmp_path):
    proto = tmp_path / "net.prototxt"
    proto.write_text(HEAD + relu("r", "data", "r"))
    model = tmp_path / "net.caffemodel"
    model.write_bytes(b"\x0a\x01x")
    model.chmod(0)
    try:
        result = _run_without_dac_override("info", proto, model)
        if result.returncode == 0 or "Operation not permitted" in result.stderr:
            pytest.skip(f"cannot make the file unreadable here: {result.stderr.strip()}")
        _check(result, model, None, "permission denied")
    finally:
        model.chmod(0o644)


# ---------------------------------------------------------------------------
# Truncated and corrupt caffemodels (of a real network: LeNet)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lenet(tmp_path_factory):
    """(prototxt, caffemodel bytes, top-level fields of the caffemodel)."""
    proto = corpus_path("lenet.prototxt")
    model = tmp_path_factory.mktemp("lenet") / "lenet.caffemodel"
    save_caffemodel(load(proto), model, seed=11)
    data = model.read_bytes()
    fields = list(_Reader(memoryview(data), str(model)).fields(0, len(data), "net"))
    return proto, data, fields


def _cut_points(data: bytes, fields) -> dict:
    # (number, wire, value, tag, start, end) of the layers with weights: conv1, conv2, ip1, ip2
    layers = [f for f in fields if f[0] == 100 and f[5] - f[4] > 1000]
    first, second = layers[0], layers[1]
    return {
        "inside-the-first-tag": 1,
        "inside-the-name": 4,
        "inside-a-layer-header": first[4] + 3,
        "inside-a-blob-shape": first[4] + 40,
        "in-the-middle-of-weights": first[4] + 1000,
        "at-a-layer-boundary": second[3],  # the file is valid but lacks 3 layers
        "inside-the-second-layer-length": second[3] + 3,
        "in-the-big-weights": second[4] + 200_000,
        "one-byte-short": len(data) - 1,
    }


CUTS = ["inside-the-first-tag", "inside-the-name", "inside-a-layer-header", "inside-a-blob-shape",
        "in-the-middle-of-weights", "at-a-layer-boundary", "inside-the-second-layer-length",
        "in-the-big-weights", "one-byte-short"]


@pytest.mark.parametrize("cut", CUTS)
def test_truncated_caffemodel(cut, lenet, tmp_path):
    proto, data, fields = lenet
    at = _cut_points(data, fields)[cut]
    model = tmp_path / "cut.caffemodel"
    model.write_bytes(data[:at])
    result = run_cli("info", proto, model)
    if cut == "at-a-layer-boundary":
        # valid protobuf: only the missing weights give it away, at the prototxt's layer
        _check(result, proto, (42, 1), "layer 'conv2' (Convolution) has no weights in the "
               "caffemodel cut.caffemodel, which has weights for only 1 of the 4 layers")
    else:
        _check(result, model, None, "truncated")


def _second(fields):
    """The second layer with weights (conv2)."""
    return [f for f in fields if f[0] == 100 and f[5] - f[4] > 1000][1]


def _varint_bomb(data, fields):
    return data[:_second(fields)[3]] + b"\xa2\x06" + b"\xff" * 11  # a layer length that never ends


def _bad_wire_type(data, fields):
    at = _second(fields)[3]
    return data[:at] + bytes([(100 << 3 | 7) & 0x7F | 0x80, 100 >> 4]) + data[at + 2:]


def _field_zero(data, fields):
    return b"\x00" + data[1:]


def _huge_length(data, fields):
    second = _second(fields)
    return data[:second[3]] + b"\xa2\x06\xff\xff\xff\xff\x0f" + data[second[4]:]


def _shape_disagrees(data, fields):
    from caffe2ncs._proto import caffe_pb2 as pb

    msg = pb.NetParameter()
    layer = msg.layer.add(name="conv1", type="Convolution")
    blob = layer.blobs.add()
    blob.shape.dim.extend([20, 1, 5, 5])
    blob.data.extend([0.5] * 499)
    return msg.SerializeToString()


CAFFEMODEL_CASES = {
    "corrupt-varint": (_varint_bomb, "malformed number"),
    "bad-wire-type": (_bad_wire_type, "unsupported wire type 7"),
    "field-number-zero": (_field_zero, "invalid field number 0 in the network"),
    "length-past-the-end": (_huge_length, "claims 4294967295 bytes but only"),
    "shape-disagrees-with-data": (_shape_disagrees, "layer 'conv1' blob 0: shape 20x1x5x5 holds 500 "
                                                    "values but the blob stores 499"),
    "empty": (lambda data, fields: b"", "the caffemodel is empty"),
    "text-as-caffemodel": (lambda data, fields: b'name: "lenet"\nlayer { }\n', "in the network; not a caffemodel?"),
}


@pytest.mark.parametrize("make, message", CAFFEMODEL_CASES.values(), ids=CAFFEMODEL_CASES.keys())
def test_corrupt_caffemodel(make, message, lenet, tmp_path):
    proto, data, fields = lenet
    model = tmp_path / "bad.caffemodel"
    model.write_bytes(make(data, fields))
    _check(run_cli("info", proto, model), model, None, message)


def test_truncated_lone_caffemodel(lenet, tmp_path):
    _, data, fields = lenet
    model = tmp_path / "lone.caffemodel"
    model.write_bytes(data[:_second(fields)[4] + 50])
    _check(run_cli("info", model), model, None, "the file is truncated or corrupt")


def test_caffemodel_for_a_different_net(lenet, tmp_path):
    _, data, _ = lenet
    model = tmp_path / "lenet.caffemodel"
    model.write_bytes(data)
    other = tmp_path / "other.prototxt"
    other.write_text(HEAD + conv("num_output: 4 kernel_size: 3", name="conv1"))
    _check(run_cli("info", other, model), other, (4, 1),
           "layer 'conv1' (Convolution): caffemodel weights is 20x1x5x5, the prototxt needs 4x3x3x3")


# ---------------------------------------------------------------------------
# Not errors: an empty prototxt is an empty network
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n# nothing but a comment\n", "\ufeff"])
def test_empty_prototxt_is_an_empty_network(text, tmp_path):
    path = tmp_path / "empty.prototxt"
    path.write_bytes(text.encode())
    result = run_cli("info", path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [str(path), "an empty network: no inputs and no layers"]
    result = run_cli("info", "--json", path)
    assert result.returncode == 0
    import json

    doc = json.loads(result.stdout)
    assert (doc["inputs"], doc["blobs"], doc["layers"], doc["outputs"]) == ({}, {}, [], [])
