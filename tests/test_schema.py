"""Checking parsed text against the Caffe schema (caffe2ncs.model.schema).

Values must convert exactly as protobuf's C++ text parser (Caffe's, OpenCV's,
the NCSDK's) converts them; where Python's ``text_format`` agrees, it is used
as the oracle, and every corpus file it can parse must give a NetParameter
equal to ours once the fields our schema does not know are cut out.
"""

from __future__ import annotations

import math

import pytest
from google.protobuf import text_format

from caffe2ncs._proto import caffe_pb2 as pb
from caffe2ncs.errors import PrototxtSyntaxError
from caffe2ncs.model.schema import CONVERTER, Unknown, parse_float, parse_int
from caffe2ncs.model.source import SourceText, read_text_file
from caffe2ncs.model.textformat import parse
from conftest import corpus_params


def convert(text: str, path: str = "t.prototxt"):
    """Our NetParameter for ``text`` and the Unknown records."""
    source = SourceText(text, path)
    msg = pb.NetParameter()
    unknown: list[Unknown] = []
    CONVERTER.fill(msg, parse(source).fields, source, unknown)
    return msg, unknown


def refuse(text: str) -> PrototxtSyntaxError:
    with pytest.raises(PrototxtSyntaxError) as info:
        convert(text)
    assert info.value.path == "t.prototxt"
    return info.value


def conv(body: str) -> str:
    return f'layer {{ name: "c" type: "Convolution" convolution_param {{ {body} }} }}'


def cp(body: str) -> pb.ConvolutionParameter:
    msg, unknown = convert(conv(body))
    assert unknown == []
    return msg.layer[0].convolution_param


def filler(body: str) -> pb.FillerParameter:
    return cp(f"weight_filler {{ {body} }}").weight_filler


# ---------------------------------------------------------------------------
# Integers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, value", [
    ("0", 0), ("7", 7), ("0x10", 16), ("0X1f", 31), ("010", 8), ("00", 0),
    ("4294967295", 2**32 - 1),
])
def test_uint32(raw, value):
    assert cp(f"num_output: {raw}").num_output == value
    assert text_format.Parse(conv(f"num_output: {raw}"), pb.NetParameter()) \
        .layer[0].convolution_param.num_output == value


@pytest.mark.parametrize("raw, value", [
    ("-1", -1), ("-0x10", -16), ("-010", -8), ("2147483647", 2**31 - 1), ("-2147483648", -2**31),
])
def test_int32(raw, value):
    assert cp(f"axis: {raw}").axis == value


@pytest.mark.parametrize("raw, value", [
    ("9223372036854775807", 2**63 - 1), ("-9223372036854775808", -2**63), ("0x7fffffffffffffff", 2**63 - 1),
])
def test_int64(raw, value):
    msg, _ = convert(f"input_shape {{ dim: {raw} }}")
    assert list(msg.input_shape[0].dim) == [value]


@pytest.mark.parametrize("text, at, message", [
    (conv("num_output: 4294967296"), "4294967296",
     "4294967296 is out of range for 'num_output' (uint32: 0 to 4294967295)"),
    (conv("num_output: -1"), "-1", "-1 is out of range for 'num_output' (uint32: 0 to 4294967295)"),
    (conv("axis: 2147483648"), "2147483648",
     "2147483648 is out of range for 'axis' (int32: -2147483648 to 2147483647)"),
    (conv("axis: -2147483649"), "-2147483649",
     "-2147483649 is out of range for 'axis' (int32: -2147483648 to 2147483647)"),
    ("input_shape { dim: 99999999999999999999 }", "9",
     "99999999999999999999 is out of range for 'dim' "
     "(int64: -9223372036854775808 to 9223372036854775807)"),
    (conv("num_output: 4.0"), "4.0", "'num_output' takes an integer (uint32), found '4.0'"),
    (conv("num_output: 1e3"), "1e3", "'num_output' takes an integer (uint32), found '1e3'"),
    (conv("num_output: 1f"), "1f", "'num_output' takes an integer (uint32), found '1f'"),
    (conv("num_output: 09"), "09", "'num_output' takes an integer (uint32), found '09'"),
    (conv("num_output: ten"), "ten", "'num_output' takes an integer (uint32), found 'ten'"),
    (conv('num_output: "4"'), '"4"', "'num_output' takes a uint32, found the string \"4\""),
    (conv("axis: '1'"), "'1'", "'axis' takes an int32, found the string '1'"),
])
def test_integer_errors(text, at, message):
    err = refuse(text)
    assert (err.line, err.column, err.message) == (1, 1 + text.index(at), message)
    with pytest.raises(text_format.ParseError):  # Python's parser refuses them too
        text_format.Parse(text, pb.NetParameter())


# ---------------------------------------------------------------------------
# Floats
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, value", [
    ("1", 1.0), ("-2", -2.0), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 1e-3),
    ("1E+2", 100.0), ("1.0f", 1.0), (".5f", 0.5), ("-0", -0.0),
    ("inf", math.inf), ("-inf", -math.inf), ("Inf", math.inf), ("infinity", math.inf),
    ("-Infinity", -math.inf), ("1e40", math.inf), ("-1e40", -math.inf),
])
def test_float(raw, value):
    got = filler(f"std: {raw}").std
    python = text_format.Parse(conv(f"weight_filler {{ std: {raw} }}"),
                               pb.NetParameter()).layer[0].convolution_param.weight_filler.std
    assert got == pytest.approx(value, rel=1e-7)
    assert math.copysign(1, got) == math.copysign(1, value)
    assert got == python


@pytest.mark.parametrize("raw, value", [("2F", 2.0), ("0x10", 16.0)])
def test_float_forms_only_the_cpp_parser_takes(raw, value):
    # C++'s tokenizer reads "2F" as a float (allow_f_after_float) and Caffe-era
    # protobuf converted an integer token, hex included, for a float field;
    # Python's text_format refuses both.
    assert filler(f"std: {raw}").std == value


@pytest.mark.parametrize("raw", ["nan", "-nan", "NaN"])
def test_float_nan(raw):
    assert math.isnan(filler(f"mean: {raw}").mean)


def test_float_exact_bits_match_python_text_format():
    raws = ["0.1", "1e-45", "3.4028234e38", "1.17549435e-38", "0.333333333333", "123456789"]
    for raw in raws:
        ours = filler(f"value: {raw}").value
        theirs = text_format.Parse(conv(f"weight_filler {{ value: {raw} }}"), pb.NetParameter()) \
            .layer[0].convolution_param.weight_filler.value
        assert ours == theirs, raw


@pytest.mark.parametrize("raw, message", [
    ("1.5e", "'std' takes a number, found '1.5e'"),
    ("0x1p3", "'std' takes a number, found '0x1p3'"),
    ("abc", "'std' takes a number, found 'abc'"),
    ("1.2.3", "'std' takes a number, found '1.2.3'"),
    ('"1.0"', "'std' takes a float, found the string \"1.0\""),
])
def test_float_errors(raw, message):
    text = conv(f"weight_filler {{ std: {raw} }}")
    err = refuse(text)
    assert (err.line, err.column, err.message) == (1, 1 + text.index(raw), message)
    with pytest.raises(text_format.ParseError):
        text_format.Parse(text, pb.NetParameter())


# ---------------------------------------------------------------------------
# Bools, enums, strings
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, value", [
    ("true", True), ("True", True), ("t", True), ("1", True),
    ("false", False), ("False", False), ("f", False), ("0", False),
])
def test_bool(raw, value):
    got = cp(f"bias_term: {raw}")
    assert got.HasField("bias_term") and got.bias_term is value


@pytest.mark.parametrize("raw, message", [
    ("2", "'bias_term' takes true or false, found '2'"),
    ("yes", "'bias_term' takes true or false, found 'yes'"),
    ("TRUE", "'bias_term' takes true or false, found 'TRUE'"),
    ('"true"', "'bias_term' takes a bool, found the string \"true\""),
])
def test_bool_errors(raw, message):
    text = conv(f"bias_term: {raw}")
    err = refuse(text)
    assert (err.column, err.message) == (1 + text.index(raw), message)


def test_enum_by_name_and_number():
    assert cp("engine: CAFFE").engine == pb.ConvolutionParameter.CAFFE
    assert cp("engine: 2").engine == pb.ConvolutionParameter.CUDNN
    assert cp("engine: 0x1").engine == pb.ConvolutionParameter.CAFFE


@pytest.mark.parametrize("raw", ["FOO", "caffe", "7", "-1"])
def test_unknown_enum_value_is_an_unknown_record_not_an_error(raw):
    text = conv(f"num_output: 1 engine: {raw}")
    msg, unknown = convert(text)
    assert not msg.layer[0].convolution_param.HasField("engine")
    assert msg.layer[0].convolution_param.num_output == 1
    (u,) = unknown
    assert (u.reason, u.message_type, u.node.name, u.node.value) == (
        "enum value", "ConvolutionParameter", "engine", raw)
    assert text[u.node.vstart:u.node.end] == raw


@pytest.mark.parametrize("raw, message", [
    ('"CAFFE"', "'engine' takes an enum Engine, found the string \"CAFFE\""),
    ("1.5", "'engine' takes one of DEFAULT, CAFFE, CUDNN; found '1.5'"),
])
def test_enum_errors(raw, message):
    text = conv(f"engine: {raw}")
    err = refuse(text)
    assert (err.column, err.message) == (1 + text.index(raw), message)


@pytest.mark.parametrize("raw, value", [
    ('"conv1"', "conv1"), ("'conv1'", "conv1"), ('"a" "b"', "ab"), (r'"\x41\101"', "AA"),
    ('"naïve"', "naïve"), ('""', ""),
])
def test_string(raw, value):
    msg, _ = convert(f"name: {raw}")
    assert msg.name == value


@pytest.mark.parametrize("text, column, message", [
    ("name: conv1", 7, "'name' takes a quoted string, found 'conv1' (write \"conv1\")"),
    ("name: 12", 7, "'name' takes a quoted string, found '12' (write \"12\")"),
    (r'name: "\q"', 7, r"bad string for 'name': invalid escape '\q'"),
    ('layer { bottom { } }', 16, "'bottom' is a string, not a message"),
])
def test_string_errors(text, column, message):
    err = refuse(text)
    assert (err.line, err.column, err.message) == (1, column, message)


def test_invalid_utf8_in_a_string_field():
    text = 'name: "caf\udce9"'  # a stray Latin-1 byte, as decode() keeps it
    err = refuse(text)
    assert (err.column, err.message) == (7, "'name' is not valid UTF-8")


# ---------------------------------------------------------------------------
# Structure: unknown fields, messages vs scalars, duplicates
# ---------------------------------------------------------------------------


def test_unknown_fields_are_recorded_with_their_node_and_skipped():
    text = ('name: "n"\nfoo: 1\nlayer {\n  name: "p"\n  type: "Pooling"\n'
            '  pooling_param { ceil_mode: false pool: MAX }\n  upsample_param { scale: 2 }\n}\n')
    msg, unknown = convert(text)
    assert msg.name == "n" and msg.layer[0].pooling_param.pool == pb.PoolingParameter.MAX
    got = [(u.reason, u.message_type, u.node.name, SourceText(text).line_col(u.node.start))
           for u in unknown]
    assert got == [
        ("field", "NetParameter", "foo", (2, 1)),
        ("field", "PoolingParameter", "ceil_mode", (6, 19)),
        ("field", "LayerParameter", "upsample_param", (7, 3)),
    ]
    assert unknown[2].node.is_message and unknown[2].node.children[0].value == "2"


@pytest.mark.parametrize("text, at, message", [
    (conv("num_output: 4 num_output: 5"), "num_output: 5",
     "'num_output' is given twice in one ConvolutionParameter, but it is not a repeated field"),
    (conv("weight_filler { } weight_filler { }"), "weight_filler { } }",
     "'weight_filler' is given twice in one ConvolutionParameter, but it is not a repeated field"),
    ('name: "a"\nname: "b"', 'name: "b"',
     "'name' is given twice in one NetParameter, but it is not a repeated field"),
    (conv("weight_filler: 3"), "3",
     "'weight_filler' is a message (FillerParameter); expected '{' but found '3'"),
    (conv("kernel_size { }"), "{ }", "'kernel_size' is a uint32, not a message"),
])
def test_structure_errors(text, at, message):
    err = refuse(text)
    assert SourceText(text).line_col(text.index(at)) == (err.line, err.column)
    assert err.message == message
    with pytest.raises(text_format.ParseError):
        text_format.Parse(text, pb.NetParameter())


def test_repeated_fields_accumulate_in_order():
    c = cp("kernel_size: 3 pad: 1 kernel_size: [5, 7] pad: 2")
    assert list(c.kernel_size) == [3, 5, 7]
    assert list(c.pad) == [1, 2]


def test_an_empty_message_is_present():
    c = cp("weight_filler { }")
    assert c.HasField("weight_filler") and c.weight_filler.type == "constant"


# ---------------------------------------------------------------------------
# parse_int / parse_float (also used for fork fields read from the text)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, value", [
    ("0", 0), ("-5", -5), ("0x1A", 26), ("017", 15), ("09", None), ("1.0", None), ("", None),
    ("x", None), ("--1", None),
])
def test_parse_int(raw, value):
    assert parse_int(raw) == value


@pytest.mark.parametrize("raw, value", [
    ("1", 1.0), ("1.5f", 1.5), ("-inf", -math.inf), ("INF", math.inf), ("x", None), ("1e", None),
])
def test_parse_float(raw, value):
    assert parse_float(raw) == value


# ---------------------------------------------------------------------------
# The corpus against Python's protobuf text parser
# ---------------------------------------------------------------------------


def _without(text: str, unknown: list[Unknown]) -> str:
    """``text`` with every unknown field (outermost occurrence) cut out."""
    out, pos = [], 0
    for start, end in sorted({(u.node.start, u.node.end) for u in unknown}):
        if start < pos:
            continue  # inside something already cut
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out)


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_matches_python_text_format(path):
    text = read_text_file(path)
    ours, unknown = convert(text, str(path))
    stripped = _without(text, unknown)
    try:
        theirs = text_format.Parse(stripped, pb.NetParameter())
    except text_format.ParseError as err:  # pragma: no cover - none in today's corpus
        pytest.skip(f"Python's text_format cannot parse it: {err}")
    assert ours == theirs
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    if unknown:
        # What was cut is exactly what our schema does not know.
        assert all(u.reason in ("field", "enum value") for u in unknown)
        with pytest.raises(text_format.ParseError):
            text_format.Parse(text, pb.NetParameter())
