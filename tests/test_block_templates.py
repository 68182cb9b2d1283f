"""The one pass's block templates (caffe2ncs.model.schema._Walk).

A simple block is converted from a template made for the text between its
strings, and its node reads its fields off the text only when asked.  That
must never show: for any text, the one pass gives exactly what parsing the
whole syntax and then converting it gives - the same values, the same unknown
fields with the same nodes, the same tree with the same offsets, and the same
error where there is one.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caffe2ncs._proto import caffe_pb2 as pb
from caffe2ncs.errors import PrototxtSyntaxError
from caffe2ncs.model import schema
from caffe2ncs.model.schema import CONVERTER, Unknown
from caffe2ncs.model.source import SourceText, read_text_file
from caffe2ncs.model.textformat import _parse_full, raw_fields
from conftest import corpus_params

NET = pb.NetParameter.DESCRIPTOR


def _tree(root) -> list[tuple]:
    return [(n.name, n.start, n.vstart, n.end, n.value, n.children is None) for n in root.walk()]


def _unknowns(unknown: list[Unknown]) -> list[tuple]:
    return [(u.node.name, u.node.start, u.node.end, u.message_type, u.reason) for u in unknown]


def _two_steps(source: SourceText):
    """The full parser's tree, then the schema's values of it (or the error)."""
    try:
        root = _parse_full(source)
        unknown: list[Unknown] = []
        values = CONVERTER.values(NET, root.children, source, unknown, root)
    except PrototxtSyntaxError as err:
        return err
    return root, values, unknown


def _serialized(values: dict) -> bytes:
    return pb.NetParameter(**values).SerializePartialToString(deterministic=True)


def agree(text: str) -> bool:
    """Assert the one pass gives what the two steps give; whether it took the
    text (None: it left it to the two steps)."""
    source = SourceText(text, "t.prototxt")
    expected = _two_steps(source)
    found: list[Unknown] = []
    try:
        done = CONVERTER._one_pass(source, NET, found)
    except PrototxtSyntaxError:
        assert isinstance(expected, PrototxtSyntaxError), f"one pass refused {text!r}"
        return False
    if done is None:
        return False
    assert not isinstance(expected, PrototxtSyntaxError), f"one pass took {text!r}: {expected}"
    root, values, unknown = expected
    doc, ours = done
    assert _tree(doc.root) == _tree(root)
    assert _serialized(ours) == _serialized(values)
    assert _unknowns(found) == _unknowns(unknown)
    tree_nodes = {id(n) for n in doc.root.walk()}
    assert all(id(u.node) in tree_nodes for u in found)  # the tree's own nodes
    return True


def _templates_made(text: str) -> tuple[int, int]:
    """(templates, blocks refused a template) made for ``text``."""
    made: list = []
    original = schema._Walk.template

    def spy(self, *args):
        result = original(self, *args)
        made.append(result)
        return result

    schema._Walk.template = spy
    try:
        CONVERTER._one_pass(SourceText(text), NET, [])
    finally:
        schema._Walk.template = original
    refused = sum(1 for t in made if t is schema._NO_TEMPLATE)
    return len(made) - refused, refused


@pytest.mark.parametrize("path", corpus_params())
def test_corpus(path):
    assert agree(read_text_file(path))


LAYER = 'layer {{\n  name: "{n}"  # the "{n}" layer\n  type: "{t}"\n  bottom: "{b}"\n  top: "{n}"\n' \
        '  convolution_param {{ num_output: {k} kernel_size: 3 weight_filler {{ type: "msra" }} }}\n}}\n'


def test_blocks_that_differ_in_strings_share_a_template():
    text = "".join(LAYER.format(n=f"c{i}", t="Convolution", b=f"c{i - 1}", k=8) for i in range(1, 6))
    assert agree(text)
    # The comment's quotes are cut too: the text between is the same, so one template.
    assert _templates_made(text) == (1, 0)
    other = text + LAYER.format(n="c9", t="Convolution", b="c5", k=16)
    assert _templates_made(other) == (2, 0)  # a number is part of the template's key
    assert agree(other)


def test_a_template_values_are_each_blocks_own():
    text = "".join(LAYER.format(n=f"c{i}", t="Convolution", b="data", k=8) for i in range(3))
    doc, values = CONVERTER._one_pass(SourceText(text), NET, [])
    names = [layer["name"] for layer in values["layer"]]
    assert names == ["c0", "c1", "c2"]
    assert values["layer"][0]["bottom"] is not values["layer"][1]["bottom"]
    fillers = [layer["convolution_param"]["weight_filler"]["type"] for layer in values["layer"]]
    assert fillers == ["msra"] * 3
    # the node reads its fields off the text when asked, at their own offsets
    second = doc.root.children[1]
    name = second.get("name")
    assert text[name.vstart:name.end] == '"c1"'
    third = doc.root.children[2]  # its raw fields, before anything made its children
    assert [x[0] if x.__class__ is tuple else x.name for x in raw_fields(third)] == \
        ["name", "type", "bottom", "top", "convolution_param"]


@pytest.mark.parametrize("text", [
    # a comment whose quotes pair with nothing, or with each other
    'layer { name: "a" # it is 5" wide\n type: "ReLU" }\n' * 2,
    'layer { name: "a" # "x" and "y\n type: "ReLU" }\nlayer { name: "b" # "x" and "y\n type: "ReLU" }',
    # braces, hashes and quotes inside strings
    'layer { name: "a{b}#c" type: "ReLU" }\nlayer { name: "}" type: "{" }',
    # fields and enum values the schema does not know, in repeated blocks
    'layer { name: "a" foo: "x" }\nlayer { name: "b" foo: "y" }',
    'layer { name: "a" pooling_param { pool: MEDIAN } }\n' * 3,
    'layer { name: "a" bar { baz: "q" } }\nlayer { name: "b" bar { baz: "r" } }',
    'foo { layer { name: "a" } }\nfoo { layer { name: "b" } }',
    # blocks given twice where they may not be
    'state { phase: TEST }\nstate { phase: TRAIN }',
    'layer { name: "a" convolution_param { num_output: 1 } convolution_param { num_output: 2 } }',
    # strings where the schema wants something else
    'layer { name: "a" convolution_param { num_output: "3" } }',
    'layer { name: "a" type: 3 }\nlayer { name: "b" type: 3 }',
    'layer { name: "a" pooling_param { pool: "MAX" } }',
    # what the fast path does not take, inside a block
    'layer { name: "a" type: "x" "y" }',
    "layer { name: 'a' }\nlayer { name: 'b' }",
    'layer { name: "a\\"b" }',
    'layer { name: "é" }\nlayer { name: "ü" }',
    'layer { name "a" }',
    'layer { name: "a" bottom: [ "x" ] }',
    'layer { include { phase: TEST } param { lr_mult: 1 name: "w" } param { name: "b" } }\n' * 2,
    # the marker itself in a file
    'layer { name: "a\x7f" }\nlayer { name: "b" } # \x7f\n',
    # repeated strings and messages with strings in a block
    'layer { name: "a" bottom: "x" bottom: "y" top: "z" loss_weight: 1 loss_weight: 2 }\n' * 2,
    'layer { name: "a" param { name: "p" } param { lr_mult: 2 } param { name: "q" } }\n' * 2,
    'input: "data"\ninput_shape { dim: 1 dim: 3 }\nlayer { name: "a" }',
    # nesting at the limit, and past it
    "layer { " * 99 + "}" * 99,
    "layer { convolution_param { " * 50 + "}" * 100,
    "layer { " * 101 + "}" * 101,
])
def test_edge_cases(text):
    agree(text)


def test_a_template_is_refused_where_a_string_is_not_a_string_fields_value():
    # The quotes in the comment pair up: that "string" is nobody's value.
    text = 'layer { name: "a" # say "hi"\n}\n' * 2
    assert _templates_made(text) == (0, 1)
    assert agree(text)


_NAMES = ["layer", "name", "type", "bottom", "top", "convolution_param", "num_output",
          "kernel_size", "param", "lr_mult", "include", "phase", "input", "foo", "pool",
          "pooling_param", "state", "weight_filler", "bias_term"]
_VALUES = ['"a"', '"b c"', '"{"', '"#"', '"}"', "'q'", '"x\\"y"', "1", "-2", "3.5", "true",
           "MAX", "TEST", "MEDIAN", '"\x7f"', "nan", "x"]
_GAPS = [" ", "\n", "  ", "\t", " # c\n", ' # "q" "r"\n', ' # "\n', "\r\n", ""]


@st.composite
def _messages(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        gap = draw(st.sampled_from(_GAPS))
        name = draw(st.sampled_from(_NAMES))
        if depth < 3 and draw(st.booleans()):
            sep = draw(st.sampled_from([" ", "", ": ", ":"]))
            parts.append(f"{gap}{name}{sep}{{{draw(_messages(depth + 1))}}}")
        else:
            colon = draw(st.sampled_from([": ", ":", ": ", " "]))
            parts.append(f"{gap}{name}{colon}{draw(st.sampled_from(_VALUES))}")
    return "".join(parts)


@st.composite
def _files(draw):
    """Texts that repeat blocks with only their strings changed, or not."""
    blocks = draw(st.lists(_messages(), min_size=1, max_size=4))
    out = []
    for _ in range(draw(st.integers(1, 8))):
        block = draw(st.sampled_from(blocks))
        for old in draw(st.lists(st.sampled_from(['"a"', '"b c"']), max_size=2)):
            block = block.replace(old, draw(st.sampled_from(['"z"', '"q9"', '""'])), 1)
        out.append(f"layer {{{block}}}\n")
    return "".join(out)


@settings(max_examples=600, deadline=None)
@given(_files())
def test_one_pass_never_disagrees_with_the_two_steps(text):
    agree(text)


_STRING_VALUES = st.sampled_from(['""', '"a"', '"conv 1"', '"{"', '"}#"', '"x/y"', '"\'"'])


@st.composite
def _valid_layers(draw):
    """Layers the schema takes, drawn from few shapes so that templates recur."""
    fields = [f"{draw(st.sampled_from(_GAPS))}{name}: @"
              for name in draw(st.lists(st.sampled_from(["name", "type", "bottom", "top"]),
                                        min_size=1, max_size=4, unique=True))]
    if draw(st.booleans()):
        inner = draw(st.sampled_from([
            "convolution_param { num_output: 4 weight_filler { type: @ } }",
            "param { name: @ lr_mult: 1 } param { lr_mult: 2 }",
            "include { phase: TEST stage: @ }",
            "python_param { module: @ layer: @ }",
        ]))
        fields.append(" " + inner)
    if draw(st.booleans()):
        fields.append(draw(st.sampled_from([' # a "comment"\n', " # it's\n", ' # "{" }\n'])))
    shape = "layer {" + "".join(fields) + "\n}\n"
    blocks = []
    for _ in range(draw(st.integers(1, 4))):
        pieces = shape.split("@")
        strings = draw(st.lists(_STRING_VALUES, min_size=len(pieces) - 1,
                                max_size=len(pieces) - 1))
        blocks.append("".join(p + s for p, s in zip(pieces, strings + [""])))
    return "".join(blocks)


@settings(max_examples=300, deadline=None)
@given(st.lists(_valid_layers(), min_size=1, max_size=4))
def test_templates_of_valid_layers(parts):
    text = "".join(parts)
    assert agree(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_files(), st.lists(_valid_layers(), min_size=1).map("".join)))
def test_a_block_without_comments_is_cut_at_its_quotes(text):
    # The walk cuts such a block with str.split('"'), the others with _STRINGS:
    # without a comment, every quote in a simple block is a plain string's.
    for match in schema._ONE_PASS_BLOCKS.finditer(text):
        block = match.group(2)
        if block and "#" not in block:
            assert block.split('"') == schema._STRINGS.split(block)


def test_fuzz_inputs():
    # The fuzzers' prototxt inputs (mutated corpus files and schema-made nets):
    # most use templates, some refuse them, many are errors.
    import random

    import fuzz_support

    if not fuzz_support.small_corpus_texts():
        pytest.skip(f"corpus not found at {fuzz_support.CORPUS}")
    rnd = random.Random(20261123)
    took = 0
    for _ in range(2000):
        took += agree(fuzz_support.gen_prototxt(rnd))
    assert took > 500
