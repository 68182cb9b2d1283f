"""The position-keeping protobuf text parser (caffe2ncs.model.textformat).

Positions are checked exactly: every node's name/value span is compared with
the text it must cover, and line:column (1-based, columns counting
characters, CRLF ending a line like LF) with hand-counted values.  Every
syntax error is checked for its message *and* its line:column.
"""

from __future__ import annotations

import pytest

from caffe2ncs.errors import PrototxtSyntaxError
from caffe2ncs.model.source import SourceText, decode, encode
from caffe2ncs.model.textformat import MAX_DEPTH, parse, quote, unquote


def nodes(text: str):
    """Every node below the root, in text order."""
    return list(parse(text).root.walk())[1:]


def spans(text: str):
    """(name, name text, value text) of every scalar node, using the spans."""
    out = []
    for n in nodes(text):
        name = text[n.name_span.start:n.name_span.end]
        if n.is_message:
            value = text[n.vstart:n.end]
        else:
            value = text[n.value_span.start:n.value_span.end]
        out.append((n.name, name, value))
    return out


def where(text: str, node) -> tuple[int, int]:
    return SourceText(text).line_col(node.start)


def error(text: str) -> PrototxtSyntaxError:
    with pytest.raises(PrototxtSyntaxError) as info:
        parse(text, "net.prototxt")
    err = info.value
    assert err.path == "net.prototxt"
    assert str(err) == f"net.prototxt:{err.line}:{err.column}: {err.message}"
    return err


# ---------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------


def test_scalar_and_message_spans_and_positions():
    text = 'name: "net"\nlayer {\n  name: "conv1"\n  top: "c"\n}\n'
    doc = parse(text)
    name, layer = doc.fields
    assert (name.name, name.value, name.start, name.vstart, name.end) == ("name", '"net"', 0, 6, 11)
    assert not name.is_message and layer.is_message
    assert text[layer.vstart] == "{" and text[layer.end - 1] == "}"
    assert layer.end == len(text) - 1
    inner_name, top = layer.children
    assert where(text, inner_name) == (3, 3)
    assert where(text, top) == (4, 3)
    assert text[inner_name.value_span.start:inner_name.value_span.end] == '"conv1"'
    assert len(inner_name.name_span) == 4 and len(top.value_span) == 3


def test_crlf_line_endings_count_as_one_line_break():
    text = 'name: "a"\r\nlayer {\r\n  top: "t"\r\n}'
    doc = parse(text)
    top = doc.fields[1].children[0]
    assert where(text, top) == (3, 3)
    assert text[top.vstart:top.end] == '"t"'  # the \r is not part of the value
    src = SourceText(text)
    assert src.newline == "\r\n"
    assert src.line_text(3) == '  top: "t"'
    assert src.line_count == 4


def test_tabs_count_as_one_column():
    text = 'layer {\n\t\tname:\t"x"\n}'
    node = parse(text).fields[0].children[0]
    assert where(text, node) == (2, 3)
    assert SourceText(text).line_col(node.vstart) == (2, 9)


def test_non_ascii_in_comments_and_strings_columns_count_characters():
    text = '# réseau «test» {\nname: "naïve" # ü }\ntop: "t"'
    doc = parse(text)
    name, top = doc.fields
    assert name.value == '"naïve"'
    assert where(text, top) == (3, 1)
    src = SourceText(text)
    assert src.line_col(name.end) == (2, 14)
    # Offsets index the decoded text; byte offsets differ after the 'é'.
    assert src.byte_offset(name.start) == len("# réseau «test» {\n".encode())


def test_undecodable_bytes_survive_and_do_not_break_positions():
    raw = b'# caf\xe9 (latin-1)\nname: "a"\n'
    text = decode(raw)
    assert encode(text) == raw  # round-trips byte for byte
    (name,) = parse(text).fields
    assert where(text, name) == (2, 1)


def test_bom_is_dropped_by_decode_and_positions_start_after_it():
    text = decode(b'\xef\xbb\xbfname: "a"\nlayer { top: "b" }')
    assert text.startswith("name")
    doc = parse(text)
    assert where(text, doc.fields[0]) == (1, 1)
    assert where(text, doc.fields[1].children[0]) == (2, 9)


def test_single_quotes_escapes_and_quotes_of_the_other_kind():
    text = "a: 'it\"s'\nb: \"it's\"\nc: 'x\\'y'\nd: \"tab\\there\""
    a, b, c, d = parse(text).fields
    assert (a.value, b.value, c.value, d.value) == (
        "'it\"s'", '"it\'s"', "'x\\'y'", '"tab\\there"')
    assert [unquote(n.value) for n in (a, b, c, d)] == ['it"s', "it's", "x'y", "tab\there"]


def test_adjacent_string_literals_concatenate_across_lines():
    text = 'top: "con" \'v1\'\n   "_out"\nname: "n"'
    top, name = parse(text).fields
    assert top.value == '"con" \'v1\'\n   "_out"'
    assert unquote(top.value) == "conv1_out"
    assert text[top.vstart:top.end] == top.value
    assert where(text, name) == (3, 1)


@pytest.mark.parametrize("text", [
    'layer: { name: "a" }',
    'layer {name: "a"}',
    'layer < name: "a" >',
    'layer: < name: "a" >',
    'layer\n{\n name: "a"\n}',
    'layer :\n  {  name : "a" }',
])
def test_message_spellings(text):
    (layer,) = parse(text).fields
    assert layer.is_message and layer.name == "layer"
    assert layer.start == 0
    assert text[layer.vstart] in "{<"
    assert text[layer.end - 1] in "}>"
    (name,) = layer.children
    assert (name.name, name.value) == ("name", '"a"')


def test_lists_expand_to_one_node_per_item_sharing_the_name_position():
    text = 'dim: [1, 2 ,3]\nlayer: [{ name: "a" }, < name: "b" >]'
    doc = parse(text)
    dims = doc.root.all("dim")
    assert [d.value for d in dims] == ["1", "2", "3"]
    assert {d.start for d in dims} == {0}
    assert [text[d.vstart:d.end] for d in dims] == ["1", "2", "3"]
    layers = doc.root.all("layer")
    assert [lay.children[0].value for lay in layers] == ['"a"', '"b"']
    assert all(lay.start == 15 for lay in layers)
    assert parse("dim: []").fields == []


@pytest.mark.parametrize("text", [
    'a: 1; b: 2, c: 3',
    'a: 1,\nb: 2;\nc: 3;',
    'a:1 b:2 c:3',
])
def test_separators(text):
    assert [(n.name, n.value) for n in parse(text).fields] == [("a", "1"), ("b", "2"), ("c", "3")]


def test_comments_with_quotes_and_braces_are_ignored():
    text = ('# a "quote and a { brace\n'
            'layer { # closing } here is a comment\n'
            '  name: "x#y" # and \' an apostrophe\n'
            '}  # }}}\n')
    doc = parse(text)
    (layer,) = doc.fields
    assert layer.children[0].value == '"x#y"'
    comments = doc.comments()
    assert [c for _, c in comments] == [
        '# a "quote and a { brace', "# closing } here is a comment",
        "# and ' an apostrophe", "# }}}"]
    assert all(text[offset:offset + len(c)] == c for offset, c in comments)


def test_no_final_newline_and_comment_at_end():
    assert [n.value for n in parse('a: 1\nb: "x"').fields] == ["1", '"x"']
    assert [n.value for n in parse("a: 1 # end").fields] == ["1"]
    last = parse('layer { top: "t" }').fields[0]
    assert last.end == len('layer { top: "t" }')


def test_empty_and_comment_only_documents():
    assert parse("").fields == []
    assert parse("\n\n# nothing\n  \t\r\n").fields == []


def test_number_words():
    text = "a: -1 b: -inf c: 1e-3 d: 1.0f e: 0x1F f: -nan g: .5 h: 5. i: 1E+2"
    assert [n.value for n in parse(text).fields] == [
        "-1", "-inf", "1e-3", "1.0f", "0x1F", "-nan", ".5", "5.", "1E+2"]


def test_find_get_all_walk():
    text = 'layer { bottom: "a" bottom: "b" p { k: 1 k: 2 } }'
    layer = parse(text).fields[0]
    assert layer.get("bottom").value == '"b"'  # last one wins
    assert [n.value for n in layer.all("bottom")] == ['"a"', '"b"']
    assert layer.find("bottom", 0).value == '"a"'
    assert layer.find("bottom", -1).value == '"b"'
    assert layer.find("bottom", 2) is None
    assert layer.find("p", "k", 1).value == "2"
    assert layer.find("p", "k").value == "2"
    assert layer.find("nope", "k") is None
    assert [n.name for n in layer.walk()] == ["layer", "bottom", "bottom", "p", "k", "k"]


def test_deepest_allowed_nesting_parses():
    text = "a {" * MAX_DEPTH + "}" * MAX_DEPTH
    node = parse(text).fields[0]
    depth = 1
    while node.children:
        node = node.children[0]
        depth += 1
    assert depth == MAX_DEPTH


# ---------------------------------------------------------------------------
# Syntax errors: message and line:column
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, line, column, message", [
    # unbalanced braces, both ways
    ('layer {\n  name: "a"\n', 3, 1, "'layer' opened on line 1 is never closed (missing '}')"),
    ('name: "a"\n}\n', 2, 1, "unexpected '}' with no open message"),
    ('layer {\n  p {\n  }\n', 4, 1, "'layer' opened on line 1 is never closed (missing '}')"),
    ("a { b < c: 1 } >", 1, 14, "expected '>' to close 'b', found '}'"),
    ("a < b: 1 }", 1, 10, "expected '>' to close 'a', found '}'"),
    # a missing value
    ("name:\n", 1, 1, "field 'name' has no value"),
    ("layer { name: }", 1, 15, "field 'name' has no value"),
    ("layer { name: \n top: \"t\" }", 2, 2, "field 'name' has no value"),
    ("a: 1,\nb:", 2, 1, "field 'b' has no value"),
    # a missing colon
    ('name "a"', 1, 6, "expected ':' after field name 'name'"),
    ('layer { top "a" }', 1, 13, "expected ':' after field name 'top'"),
    ("a 1", 1, 3, "expected ':' after field name 'a'"),
    # unterminated strings
    ('name: "abc\n', 1, 7, "unterminated string (strings cannot span lines)"),
    ("name: 'abc", 1, 7, "unterminated string (strings cannot span lines)"),
    ('layer {\n  top: "a\\"\n}', 2, 8, "unterminated string (strings cannot span lines)"),
    # stray characters
    ('name: "a" @', 1, 11, "unexpected character '@'"),
    ("layer { ! }", 1, 9, "unexpected character '!'"),
    ("a: -", 1, 4, "unexpected character '-'"),
    ("1: 2", 1, 1, "expected a field name, found '1'"),
    ('"x"', 1, 1, "expected a field name, found '\"x\"'"),
    ("a:: 1", 1, 3, "unexpected ':'"),
    ("{ a: 1 }", 1, 1, "unexpected '{' with no field name before it"),
    ('a: "x" { }', 1, 8, "unexpected '{' with no field name before it"),
    ("a: ]", 1, 4, "unexpected ']'"),
    ("a [1]", 1, 3, "unexpected '['"),
    # lists
    ("a: [1,]", 1, 7, "expected a value before ']' in the list for 'a'"),
    ("a: [1 2]", 1, 7, "expected ',' or ']' in the list for 'a'"),
    ("a: [1,, 2]", 1, 7, "expected a value in the list for 'a'"),
    ("a: [1, 2", 1, 1, "list for 'a' is not closed with ']'"),
    ("x { a: [1 }", 1, 11, "list for 'a' is not closed with ']'"),
    # too deep
    ("a {" * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1), 1, 3 * MAX_DEPTH + 1,
     f"messages nested more than {MAX_DEPTH} deep"),
])
def test_syntax_errors(text, line, column, message):
    err = error(text)
    assert (err.line, err.column, err.message) == (line, column, message)


def test_error_positions_after_crlf_tabs_and_non_ascii():
    err = error('# ééé\r\nlayer {\r\n\tname: "ü" @\r\n}')
    assert (err.line, err.column) == (3, 12)
    assert err.message == "unexpected character '@'"


def test_error_without_a_path_has_no_location_prefix():
    with pytest.raises(PrototxtSyntaxError) as info:
        parse("a {")
    assert info.value.path is None
    assert str(info.value) == "'a' opened on line 1 is never closed (missing '}')"


# ---------------------------------------------------------------------------
# String values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, value", [
    ('"plain"', "plain"),
    ("'single'", "single"),
    (r'"a\nb\tc\\d\"e\'f\?"', "a\nb\tc\\d\"e'f?"),
    (r'"\101\x42\u00e9\U0001F600"', "AB\u00e9\U0001F600"),
    (r'"\303\251"', "\u00e9"),  # octal escapes are bytes, decoded as UTF-8
    ('"a" "b" \'c\'', "abc"),
    ('""', ""),
])
def test_unquote(raw, value):
    assert unquote(raw) == value


@pytest.mark.parametrize("raw, message", [
    (r'"\q"', r"invalid escape '\q'"),
    (r'"\UFFFFFFFF"', r"\UFFFFFFFF is not a Unicode code point"),
    ("bare", "not a quoted string"),
])
def test_unquote_errors(raw, message):
    with pytest.raises(ValueError, match=message.replace("\\", "\\\\")):
        unquote(raw)


@pytest.mark.parametrize("value", ["plain", 'with "quotes"', "back\\slash", "new\nline\ttab",
                                   "ctrl\x01", "naïve"])
def test_quote_round_trips_through_the_parser(value):
    (node,) = parse(f"name: {quote(value)}").fields
    assert unquote(node.value) == value


# ---------------------------------------------------------------------------
# The fast path builds exactly the tree of the full parser
# ---------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from caffe2ncs.model.textformat import _parse_full, _parse_simple  # noqa: E402
from conftest import corpus_params  # noqa: E402


def _shape(root):
    return [(n.name, n.start, n.vstart, n.end, n.value, n.children is None) for n in root.walk()]


def _agree(text: str) -> bool:
    """Whether the fast path took ``text``; asserts it then equals the full parse."""
    simple = _parse_simple(text)
    if simple is None:
        return False
    assert _shape(simple) == _shape(_parse_full(SourceText(text)))
    return True


@pytest.mark.parametrize("path", corpus_params())
def test_fast_path_equals_full_parse_on_the_corpus(path):
    from caffe2ncs.model.source import read_text_file

    text = read_text_file(path)
    assert _agree(text)  # every corpus file uses only the simple syntax


@pytest.mark.parametrize("text, simple", [
    ('layer {\n  name: "a"\n}\n', True),
    ("a:{b:1}c:'x'", True),
    ('a: "x" # c } {\n', True),
    ("", True),
    ('a: "x\\"y"', False),  # an escape
    ('a: "x" "y"', False),  # concatenation
    ("a < b: 1 >", False),
    ("a: [1, 2]", False),
    ("a: 1; b: 2", False),
    ("a {", False),
    ("}", False),
    ("a: 1 @", False),
    ("a {" * 101 + "}" * 101, False),
    ("a {" * 100 + "}" * 100, True),
])
def test_fast_path_takes_only_the_simple_syntax(text, simple):
    assert _agree(text) is simple


_PIECES = st.sampled_from([
    "a", "layer", "name", "_x9", ":", " ", "\t", "\n", "\r\n", "{", "}", "<", ">", "[", "]", ",", ";",
    '"s"', "'t'", '"q\\"q"', '"', "'", "1", "-2.5e3", "-", "#c\n", "# } {\n", "é", "@", "0x1F",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40))
def test_fast_path_never_disagrees_with_the_full_parser(pieces):
    text = "".join(pieces)
    simple = _parse_simple(text)
    try:
        full = _parse_full(SourceText(text))
    except PrototxtSyntaxError:
        assert simple is None, f"fast path accepted {text!r}, which is an error"
        return
    if simple is not None:
        assert _shape(simple) == _shape(full)
