"""Property tests: random networks in every input spelling (``input_dim``,
``input_shape``, an ``Input`` layer written ``input_param {`` or
``input_param: {``, legacy V1 ``layers``), written with random comments and
whitespace (tabs, CRLF, blank lines, trailing comments, single quotes, one-line
blocks, no final newline), go through ``fix`` keeping the same invariants as
the corpus: the result parses, a second run changes nothing, every comment
survives, the line-ending style is kept, nothing fixable is left, and the
network is the same modulo the changes the fixes declare.  The same
invariants hold for corpus networks with random comments, blank lines, tabs,
CRLF and a missing final newline added, which also get the same fixes as the
published file."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fix_support import assert_same_network, comment_lines

from caffe2ncs.fixes.engine import fix_text
from caffe2ncs.model.loader import loads
from caffe2ncs.rules.base import Applicability
from caffe2ncs.rules.runner import check_source
from caffe2ncs.rules.settings import Settings

# A tiny syntax tree: ("f", name, raw value) or ("b", name, children).
V1_TYPES = {"Convolution": "CONVOLUTION", "ReLU": "RELU", "Pooling": "POOLING",
            "Dropout": "DROPOUT", "TanH": "TANH", "Sigmoid": "SIGMOID",
            "InnerProduct": "INNER_PRODUCT", "Softmax": "SOFTMAX", "Concat": "CONCAT",
            "Eltwise": "ELTWISE"}


def s(value: str) -> tuple:
    return ("s", value)  # a string, quoted when rendered


@st.composite
def network(draw):
    """(tree, uses V1 layers) of a random valid network."""
    v1 = draw(st.booleans())
    form = draw(st.sampled_from(["input_dim", "input_shape"] if v1 else
                                ["input_dim", "input_shape", "input_param", "input_param:"]))
    name = draw(st.sampled_from(["data", "data", "img"]))
    batch = draw(st.sampled_from([1, 1, 2, 10]))
    c, h = 3, draw(st.sampled_from([8, 12]))
    dims = [batch, c, h, h]
    tree: list = [("f", "name", s("prop"))]
    if form == "input_dim":
        tree += [("f", "input", s(name))] + [("f", "input_dim", str(d)) for d in dims]
    elif form == "input_shape":
        tree += [("f", "input", s(name)), ("b", "input_shape", [("f", "dim", str(d)) for d in dims])]
    else:
        colon = form.endswith(":")
        shape = ("b", "shape:" if colon else "shape", [("f", "dim", str(d)) for d in dims])
        tree.append(("b", "layer", [("f", "name", s("input")), ("f", "type", s("Input")),
                                    ("f", "top", s(name)), ("b", "input_param:" if colon else
                                                            "input_param", [shape])]))
    blob, counter = name, [0]

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def add(type_: str, bottoms, top, params=()):
        lname = fresh(type_.lower()[:4])
        fields = [("f", "name", s(lname)),
                  ("f", "type", V1_TYPES[type_] if v1 else s(type_))]
        fields += [("f", "bottom", s(b)) for b in bottoms]
        fields.append(("f", "top", s(top)))
        fields += list(params)
        tree.append(("b", "layers" if v1 else "layer", fields))
        return lname

    def conv(bottom, n, k, stride=1, pad=None, group=1):
        top = fresh("b")
        params = [("f", "num_output", str(n)), ("f", "kernel_size", str(k))]
        if stride != 1:
            params.append(("f", "stride", str(stride)))
        pad = k // 2 if pad is None else pad
        if pad:
            params.append(("f", "pad", str(pad)))
        if group != 1:
            params.append(("f", "group", str(group)))
        add("Convolution", [bottom], top, [("b", "convolution_param", params)])
        return top

    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "relu", "act", "drop", "pool", "concat", "eltwise",
                                     "dw"]))
        if kind == "conv":
            k = draw(st.sampled_from([1, 3, 5]))
            stride = draw(st.sampled_from([1, 1, 2])) if h >= 4 else 1
            c = draw(st.sampled_from([2, 4]))
            blob = conv(blob, c, k, stride)
            h = (h + 2 * (k // 2) - k) // stride + 1
        elif kind == "dw" and not v1:
            blob = conv(blob, c, 3, group=c)
        elif kind == "relu":
            add("ReLU", [blob], blob)
        elif kind == "act":
            t = draw(st.sampled_from(["TanH", "Sigmoid"]))
            in_place = draw(st.booleans())
            top = blob if in_place else fresh("b")
            add(t, [blob], top)
            blob = top
        elif kind == "drop":
            in_place = draw(st.booleans())
            top = blob if in_place else fresh("b")
            add("Dropout", [blob], top, [("b", "dropout_param", [("f", "dropout_ratio", "0.5")])])
            blob = top
        elif kind == "pool" and h >= 2:
            top = fresh("b")
            add("Pooling", [blob], top, [("b", "pooling_param", [
                ("f", "pool", "MAX"), ("f", "kernel_size", "2"), ("f", "stride", "2")])])
            blob, h = top, -(-(h - 2) // 2) + 1
        elif kind == "concat":
            a = conv(blob, 2, 1)
            b = conv(blob, 2, 3)
            top = fresh("b")
            add("Concat", [a, b], top)
            blob, c = top, 4
        elif kind == "eltwise":
            a = conv(blob, c, 3)
            top = fresh("b")
            add("Eltwise", [blob, a], top)
            blob = top
    if draw(st.booleans()):
        top = fresh("b")
        add("InnerProduct", [blob], top, [("b", "inner_product_param", [("f", "num_output", "8")])])
        blob = top
        prob = "prob"
        add("Softmax", [blob], prob)
        if draw(st.booleans()):  # the usual deploy file: name == top
            for i, node in enumerate(tree[-1][2]):
                if node[:2] == ("f", "name"):
                    tree[-1][2][i] = ("f", "name", s(prob))
    return tree


@st.composite
def rendered(draw):
    tree = draw(network())
    style = {
        "indent": draw(st.sampled_from(["  ", "    ", "\t", " \t"])),
        "nl": draw(st.sampled_from(["\n", "\r\n"])),
        "quote": draw(st.sampled_from(['"', "'", "mixed"])),
    }
    comments = []

    def comment():
        text = draw(st.sampled_from(["# a comment", "#no space", "# mean: 104 { } 'quote'",
                                     "#\tTAB", "# dim: 10", "#"]))
        comments.append(text)
        return text

    def quote(value: str) -> str:
        q = style["quote"]
        if q == "mixed":
            q = draw(st.sampled_from(['"', "'"]))
        return f"{q}{value}{q}"

    def raw(value) -> str:
        return quote(value[1]) if isinstance(value, tuple) else value

    def one_line(node) -> str:
        if node[0] == "f":
            return f"{node[1]}: {raw(node[2])}"
        return f"{node[1]} {{ " + " ".join(one_line(ch) for ch in node[2]) + " }"

    lines: list[str] = []

    def emit(node, depth: int) -> None:
        pad = style["indent"] * depth
        if draw(st.integers(0, 9)) == 0:
            lines.append("")
        if draw(st.integers(0, 12)) == 0:
            lines.append(pad + comment())
        trailing = f"  {comment()}" if draw(st.integers(0, 7)) == 0 else ""
        if node[0] == "f":
            lines.append(f"{pad}{node[1]}: {raw(node[2])}{trailing}")
        elif draw(st.integers(0, 5)) == 0:
            lines.append(pad + one_line(node) + trailing)
        else:
            lines.append(f"{pad}{node[1]} {{{trailing}")
            for child in node[2]:
                emit(child, depth + 1)
            lines.append(pad + "}")

    if draw(st.booleans()):
        lines.append(comment())
    for node in tree:
        emit(node, 0)
    text = style["nl"].join(lines)
    if draw(st.booleans()):
        text += style["nl"]
    if draw(st.booleans()):
        text += comment() + style["nl"]
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=rendered(), unsafe=st.booleans())
def test_fix_property(text: str, unsafe: bool):
    net = loads(text, strict=False)  # the generator makes valid networks
    assert not [p for p in net.problems if p.fatal], net.problems
    settings_ = Settings()
    required = Applicability.UNSAFE if unsafe else Applicability.SAFE
    result = fix_text(text, "prop.prototxt", settings_, unsafe=unsafe)
    after = check_source(result.text, "prop.prototxt", settings_).diagnostics
    assert not [d for d in after if d.fatal], [d.message for d in after if d.fatal]
    again = fix_text(result.text, "prop.prototxt", settings_, unsafe=unsafe)
    assert again.text == result.text
    assert not comment_lines(text) - comment_lines(result.text)
    if "\r\n" in text:
        assert result.text.count("\n") == result.text.count("\r\n")
    else:
        assert "\r" not in result.text
    assert text.endswith("\n") == result.text.endswith("\n")
    assert not [d for d in after if d.fix is not None and d.fix.applicability >= required]
    assert_same_network(text, result.text, result.applied)
    fixed = loads(result.text, strict=False)
    # what the NCSDK needs of the input, whatever the spelling was
    if fixed.inputs and not any(d.code == "NCS207" for d in after):
        (spec,) = fixed.inputs
        assert spec.name == "data" and spec.shape[0] == 1
        assert str(spec.form) == "input_shape"


# --------------------------------------------------------------------------- corpus


def _corpus_texts() -> dict[str, str]:
    from conftest import corpus_files

    from caffe2ncs.model.source import read_text_file

    return {f.name: read_text_file(f) for f in corpus_files()}


CORPUS_TEXTS = _corpus_texts()


@st.composite
def corpus_variant(draw):
    """A corpus network, rewritten the way people's copies differ: comment
    lines and trailing comments added anywhere, blank lines, tab indentation,
    CRLF line endings, no final newline."""
    name = draw(st.sampled_from(sorted(CORPUS_TEXTS)))
    lines = CORPUS_TEXTS[name].replace("\r\n", "\n").split("\n")
    comments = st.sampled_from(["# a comment", "#no space", "# dim: 10 { } 'q' \"q\"", "#",
                                "# caffe2ncs is fine", "#\tTAB"])
    out: list[str] = []
    tabs = draw(st.booleans())
    for line in lines:
        roll = draw(st.integers(0, 30))
        if roll == 0:
            out.append(draw(comments))
        elif roll == 1:
            out.append("")
        if tabs:
            stripped = line.lstrip(" ")
            line = "\t" * ((len(line) - len(stripped)) // 2) + stripped
        if line.strip() and draw(st.integers(0, 25)) == 0:
            line += "  " + draw(comments)
        out.append(line)
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    text = nl.join(out)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return name, text


@pytest.mark.skipif(not CORPUS_TEXTS, reason="corpus not found")
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(variant=corpus_variant(), unsafe=st.booleans())
def test_fix_property_on_corpus_variants(variant, unsafe: bool):
    name, text = variant
    settings_ = Settings()
    required = Applicability.UNSAFE if unsafe else Applicability.SAFE
    fatal_before = {d.code for d in check_source(text, name, settings_).diagnostics if d.fatal}
    result = fix_text(text, name, settings_, unsafe=unsafe)
    after = check_source(result.text, name, settings_).diagnostics
    assert "NCS999" not in {d.code for d in after}
    assert {d.code for d in after if d.fatal} == fatal_before
    assert fix_text(result.text, name, settings_, unsafe=unsafe).text == result.text
    assert not comment_lines(text) - comment_lines(result.text)
    if "\r\n" in text:
        assert result.text.count("\n") == result.text.count("\r\n")
    assert text.endswith("\n") == result.text.endswith("\n")
    assert not [d for d in after if d.fix is not None and d.fix.applicability >= required]
    assert_same_network(text, result.text, result.applied)
    # the same fixes as on the file as published: comments and layout change nothing
    plain = fix_text(CORPUS_TEXTS[name], name, settings_, unsafe=unsafe)
    assert sorted((a.code, a.layer) for a in result.applied) == \
        sorted((a.code, a.layer) for a in plain.applied)
