"""``fix`` on every corpus network, with safe fixes only and with unsafe ones:
the result parses, a second run changes nothing, every comment survives, the
network computes the same thing except for what the applied fixes declare, and
nothing fixable is left."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from conftest import corpus_params, corpus_path
from test_fix_support import assert_same_network, comment_lines

from caffe2ncs.fixes.engine import fix_text
from caffe2ncs.model.loader import loads
from caffe2ncs.model.source import read_text_file
from caffe2ncs.rules.base import Applicability
from caffe2ncs.rules.runner import check_source
from caffe2ncs.rules.settings import Settings

MODES = [pytest.param(False, id="safe"), pytest.param(True, id="unsafe")]


@pytest.mark.parametrize("unsafe", MODES)
@pytest.mark.parametrize("path", corpus_params())
def test_fix_corpus_invariants(path: Path, unsafe: bool):
    text = read_text_file(path)
    settings = Settings()
    required = Applicability.UNSAFE if unsafe else Applicability.SAFE
    before = check_source(text, str(path), settings).diagnostics
    result = fix_text(text, str(path), settings, unsafe=unsafe)

    # parses (no syntax error; no new structural problem Caffe would refuse)
    loads(result.text, strict=False)
    after = check_source(result.text, str(path), settings).diagnostics
    assert not any(d.code == "NCS999" for d in after)
    fatal_before = sorted({d.code for d in before if d.fatal})
    assert sorted({d.code for d in after if d.fatal}) == fatal_before

    # idempotent
    again = fix_text(result.text, str(path), settings, unsafe=unsafe)
    assert again.text == result.text and not again.applied

    # every comment of the original is still there
    missing = comment_lines(text) - comment_lines(result.text)
    assert not missing, f"comments lost: {list(missing)[:5]}"

    # line endings, final newline
    assert ("\r\n" in text) == ("\r\n" in result.text)
    if "\r\n" in text:
        assert result.text.count("\n") == result.text.count("\r\n")
    assert text.endswith("\n") == result.text.endswith("\n")

    # every finding that had an applicable fix is gone; nothing fixable is left
    assert not [d for d in after if d.fix is not None and d.fix.applicability >= required]
    for code in {d.code for d in before}:
        had = [d for d in before if d.code == code]
        if all(d.fix is not None and d.fix.applicability >= required for d in had):
            assert code not in {d.code for d in after}, code

    # the same network, modulo the declared changes
    assert_same_network(text, result.text, result.applied)


def test_fix_changes_something_on_most_of_the_corpus():
    # a guard against a vacuous invariant test: fixes do apply on the corpus
    from conftest import corpus_files

    files = corpus_files()
    if not files:
        pytest.skip("corpus not found")
    changed = [f for f in files if fix_text(read_text_file(f), str(f), Settings()).applied]
    assert len(changed) >= 35


def test_googlenet_fix_touches_only_the_input_layer():
    path = corpus_path("bvlc_googlenet.prototxt")
    text = read_text_file(path)
    result = fix_text(text, str(path), Settings())
    assert {a.code for a in result.applied} == {"NCS104", "NCS102"}
    old, new = text.splitlines(), result.text.splitlines()
    # the Input layer is lines 2-7 of the original
    assert old[1:7] == ['layer {', '  name: "data"', '  type: "Input"', '  top: "data"',
                        '  input_param { shape: { dim: 10 dim: 3 dim: 224 dim: 224 } }', '}']
    changed_old = set()
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            changed_old.update(range(i1, max(i2, i1 + 1)))
    assert changed_old and changed_old <= set(range(1, 7)), sorted(changed_old)
    assert new[:8] == ['name: "GoogleNet"', 'input: "data"', 'input_shape {', '  dim: 1',
                       '  dim: 3', '  dim: 224', '  dim: 224', '}']
    assert new[8:] == old[7:]
    net = loads(result.text)
    (spec,) = net.inputs
    assert spec.name == "data" and spec.shape == (1, 3, 224, 224)
    assert str(spec.form) == "input_shape"


def test_squeezenet_unsafe_fix_removes_conv10_padding():
    path = corpus_path("squeezenet_v1.0.prototxt")
    text = read_text_file(path)
    result = fix_text(text, str(path), Settings(), unsafe=True)
    assert {a.code for a in result.applied} == {"NCS102", "NCS303"}
    net = loads(result.text)
    conv10 = net.layer("conv10")
    assert list(conv10.param.convolution_param.pad) == []
    # a global average pooling follows, so the output keeps its shape
    assert net.blob_shapes["prob"] == (1, 1000, 1, 1)


def test_depthwise_types_become_grouped_convolutions():
    path = corpus_path("mobilenet_yolov2_deploy.prototxt")
    text = read_text_file(path)
    result = fix_text(text, str(path), Settings(), unsafe=True)
    net = loads(result.text, strict=False)
    assert not [layer for layer in net.layers if layer.type == "DepthwiseConvolution"]
    dw = net.layer("conv1/dw")
    assert dw.type == "Convolution"
    shape = net.layer_shapes[dw.index].inputs[0]
    assert dw.param.convolution_param.group == shape[1] == dw.param.convolution_param.num_output


def test_the_network_comparison_catches_undeclared_changes():
    """The graph comparison above is not vacuous: a fix that changed a parameter,
    rewired a layer or lost a layer without declaring it would fail it."""
    path = corpus_path("lenet.prototxt")
    text = read_text_file(path)
    result = fix_text(text, str(path), Settings())
    assert_same_network(text, result.text, result.applied)
    broken = [
        result.text.replace("kernel_size: 5", "kernel_size: 3", 1),  # a parameter
        result.text.replace('bottom: "pool2"', 'bottom: "pool1"', 1),  # the wiring
        result.text.replace('num_output: 500', 'num_output: 501', 1),  # shapes too
    ]
    for other in broken:
        assert other != result.text
        with pytest.raises(AssertionError):
            assert_same_network(text, other, result.applied)
    # and the declared batch change is needed to explain the new shapes
    with pytest.raises(AssertionError):
        assert_same_network(text, result.text, [a for a in result.applied if a.code != "NCS102"])
