"""One minimal network per rule that triggers it, with the position of the
flagged field asserted, and a near-identical one that does not.

A ``»`` in a case's text marks where the finding must start (line and column
of the flagged field); it is removed before the text is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from caffe2ncs.rules.base import Applicability, Severity
from caffe2ncs.rules.registry import all_rules, by_code
from caffe2ncs.rules.runner import check_source
from caffe2ncs.rules.settings import Settings

MARK = "»"


def head(c: int = 3, h: int = 8, w: int = 8, n: int = 1, name: str = "data") -> str:
    return f'name: "t"\ninput: "{name}"\ninput_shape {{ dim: {n} dim: {c} dim: {h} dim: {w} }}\n'


def layer(name: str, type_: str, bottoms=("data",), tops=None, body: str = "") -> str:
    """A layer block, one field per line (a marker may be put in any string)."""
    tops = (name,) if tops is None else tops
    lines = ["layer {", f'  name: "{name}"', f'  type: "{type_}"']
    lines += [_field("bottom", b) for b in bottoms]
    lines += [_field("top", t) for t in tops]
    lines += [f"  {line}" for line in body.splitlines() if line.strip()]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _field(kind: str, value: str) -> str:
    """``bottom: "x"``; a value written ``»"x"`` puts the marker before the field."""
    mark = MARK if value.startswith(MARK) else ""
    value = value.removeprefix(MARK).strip('"')
    return f'  {mark}{kind}: "{value}"'


def conv(name, bottom="data", num_output=4, body="kernel_size: 3", top=None, extra=""):
    inner = "\n".join(f"  {b}" for b in f"num_output: {num_output}\n{body}".splitlines())
    return layer(name, "Convolution", (bottom,), (top or name,),
                 f"convolution_param {{\n{inner}\n}}\n{extra}")


def where(text: str) -> tuple[str, tuple[int, int]]:
    """The text without its marker, and the 1-based (line, column) of the marker."""
    assert text.count(MARK) == 1, "a case needs exactly one marker"
    offset = text.index(MARK)
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return text.replace(MARK, ""), (line, column)


@dataclass
class Case:
    code: str
    bad: str  # with a marker
    good: str
    settings: dict = field(default_factory=dict)
    fixable: Applicability | None = None  # the applicability of the finding's fix


def _findings(text: str, code: str, **settings):
    select = settings.pop("select", None)
    s = Settings(select=tuple(select) if select else (), **settings)
    return [d for d in check_source(text, "case.prototxt", s).diagnostics if d.code == code]


CASES = [
    Case("NCS001",
         head() + conv("c", body="kernel_size: 3  »# caffe2ncs: ignore[NCS301]"),
         head() + conv("c", body="kernel_size: 5  # caffe2ncs: ignore[NCS301]\nstride: 2"),
         fixable=Applicability.SAFE),
    Case("NCS101",
         head() + '»input: "im_info"\ninput_shape { dim: 1 dim: 3 }\n'
         + layer("e", "Eltwise", ("data", "data")),
         head() + layer("e", "Eltwise", ("data", "data"))),
    Case("NCS102",
         'input: "data"\ninput_shape { »dim: 10 dim: 3 dim: 8 dim: 8 }\n' + layer("r", "ReLU"),
         'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n' + layer("r", "ReLU"),
         fixable=Applicability.SAFE),
    Case("NCS103",
         '»input: "img"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n' + layer("r", "ReLU", ("img",)),
         head() + layer("r", "ReLU"),
         fixable=Applicability.SAFE),
    Case("NCS104",
         'layer {\n  name: "data"\n  »type: "Input"\n  top: "data"\n'
         '  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } }\n}\n' + layer("r", "ReLU"),
         head() + layer("r", "ReLU"),
         fixable=Applicability.SAFE),
    Case("NCS105",
         'input: "data"\n»input_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n' + layer("r", "ReLU"),
         head() + layer("r", "ReLU"),
         fixable=Applicability.SAFE),
    Case("NCS106",
         'layer { name: "train" type: "Data" top: "data" include { phase: TRAIN } }\n'
         '»layer {\n  name: "data"\n  type: "Input"\n  top: "data"\n'
         '  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } }\n}\n' + layer("r", "ReLU"),
         'layer {\n  name: "data"\n  type: "Input"\n  top: "data"\n'
         '  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } }\n}\n' + layer("r", "ReLU")),
    Case("NCS107",
         'layer {\n  name: "d"\n  »type: "DummyData"\n  top: "data"\n'
         '  dummy_data_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } }\n}\n' + layer("r", "ReLU"),
         head() + layer("r", "ReLU")),
    Case("NCS108",
         '»input: "data"\n' + layer("r", "ReLU"),
         head() + layer("r", "ReLU")),
    Case("NCS201",
         head() + 'layer {\n  name: "u"\n  »type: "Upsample"\n  bottom: "data"\n  top: "u"\n}\n',
         head() + layer("u", "ReLU")),
    Case("NCS202",
         head() + layer("r", "ReLU") + 'layer {\n  name: "loss"\n  »type: "SoftmaxWithLoss"\n'
         '  bottom: "r"\n  bottom: "data"\n  top: "loss"\n}\n',
         head() + layer("r", "ReLU") + layer("prob", "Softmax", ("r",)),
         fixable=Applicability.UNSAFE),
    Case("NCS203",
         head() + layer("drop", "Dropout", ("data",), ('»"dropped"',)) + layer("r", "ReLU", ("dropped",)),
         head() + layer("drop", "Dropout", ("data",), ("data",)) + layer("r", "ReLU", ("data",)),
         fixable=Applicability.SAFE),
    Case("NCS204",
         head() + layer("r", "ReLU") + 'layer {\n  name: "drop"\n  »type: "Dropout"\n'
         '  bottom: "r"\n  top: "r"\n}\n',
         head() + layer("r", "ReLU"),
         settings={"select": ["NCS204"]}, fixable=Applicability.SAFE),
    Case("NCS205",
         head() + 'layer {\n  name: "py"\n  »type: "Python"\n  bottom: "data"\n  top: "py"\n'
         '  python_param { module: "m" layer: "L" }\n}\n',
         head() + layer("r", "ReLU")),
    Case("NCS206",
         head() + 'layer {\n  name: "b"\n  »type: "Bias"\n  bottom: "data"\n  top: "b"\n}\n',
         head() + layer("r", "ReLU") + layer("b", "Bias", ("data", "r"))),
    Case("NCS207",
         'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
         '»layers {\n  name: "r"\n  type: RELU\n  bottom: "data"\n  top: "r"\n}\n',
         head() + layer("r", "ReLU")),
    Case("NCS210",
         head() + layer("p", "Pooling", body="pooling_param {\n  pool: MAX\n  kernel_size: 2\n"
                        "  stride: 2\n  »ceil_mode: true\n}"),
         head() + layer("p", "Pooling", body="pooling_param {\n  pool: MAX\n  kernel_size: 2\n"
                        "  stride: 2\n}")),
    Case("NCS211",
         head() + layer("p", "Pooling", body="pooling_param {\n  »pool: MAXIMUM\n  kernel_size: 2\n"
                        "  stride: 2\n}"),
         head() + layer("p", "Pooling", body="pooling_param {\n  pool: MAX\n  kernel_size: 2\n"
                        "  stride: 2\n}")),
    Case("NCS301",
         head() + conv("c", body="»kernel_size: 5\nstride: 2"),
         head() + conv("c", body="kernel_size: 5\nstride: 1")),
    Case("NCS302",
         head(c=2048, h=1, w=1) + conv("c", num_output=1024, body="kernel_size: 1\n»group: 1024"),
         head(c=2048, h=1, w=1) + conv("c", num_output=1024, body="kernel_size: 1\ngroup: 512")),
    Case("NCS303",
         head() + conv("c", body="kernel_size: 1\n»pad: 1"),
         head() + conv("c", body="kernel_size: 1\npad: 0"),
         fixable=Applicability.UNSAFE),
    Case("NCS304",
         head(c=4) + conv("dw", num_output=8, body="kernel_size: 3\ngroup: 4").replace(
             "num_output: 8", "»num_output: 8"),
         head(c=4) + conv("dw", num_output=4, body="kernel_size: 3\ngroup: 4")),
    Case("NCS305",
         head(c=4) + conv("dw", num_output=4, body="»kernel_size: 5\ngroup: 4"),
         head(c=4) + conv("dw", num_output=4, body="kernel_size: 3\ngroup: 4")),
    Case("NCS306",
         head() + conv("c", body="»kernel_h: 1\nkernel_w: 5"),
         head() + conv("c", body="kernel_h: 1\nkernel_w: 3")),
    Case("NCS307",
         head(h=16, w=16) + conv("c", body="kernel_size: 3\n»dilation: 1\ndilation: 2"),
         head(h=16, w=16) + conv("c", body="kernel_size: 3\ndilation: 2\ndilation: 2")),
    Case("NCS308",
         head(c=1, h=200, w=200) + 'layer {\n  name: "c"\n  »type: "Convolution"\n  bottom: "data"\n'
         '  top: "c"\n  convolution_param { num_output: 1 kernel_size: 129 }\n}\n',
         head(c=1, h=200, w=200) + conv("c", num_output=1, body="kernel_size: 127"),
         settings={"target": "ncsdk1"}),
    Case("NCS309",
         head(c=4) + layer("up", "Deconvolution", body="convolution_param {\n  num_output: 4\n"
                           "  kernel_size: 4\n  stride: 2\n  »group: 2\n}"),
         head(c=4) + layer("up", "Deconvolution", body="convolution_param {\n  num_output: 4\n"
                           "  kernel_size: 4\n  stride: 2\n}")),
    Case("NCS310",
         head(c=8) + layer("s", "Slice", tops=("s1", "s2"), body="slice_param { slice_point: 4 }")
         + layer("c", "Convolution", ('»"s1"',), body="convolution_param { num_output: 4 "
                 "kernel_size: 1 group: 2 }") + layer("e", "Concat", ("c", "s2")),
         head(c=8) + layer("s", "Slice", tops=("s1", "s2"), body="slice_param { slice_point: 4 }")
         + layer("c", "Convolution", ("s1",), body="convolution_param { num_output: 4 "
                 "kernel_size: 1 }") + layer("e", "Concat", ("c", "s2"))),
    Case("NCS320",
         head() + layer("p", "Pooling", body="pooling_param {\n  »pool: STOCHASTIC\n  kernel_size: 2\n"
                        "  stride: 2\n}"),
         head() + layer("p", "Pooling", body="pooling_param {\n  pool: AVE\n  kernel_size: 2\n"
                        "  stride: 2\n}")),
    Case("NCS321",
         head() + layer("p", "Pooling", body="pooling_param {\n  pool: MAX\n  kernel_size: 3\n"
                        "  stride: 2\n  »round_mode: FLOOR\n}"),
         head(h=7, w=7) + layer("p", "Pooling", body="pooling_param {\n  pool: MAX\n  kernel_size: 3\n"
                                "  stride: 2\n  round_mode: FLOOR\n}")),
    Case("NCS322",
         head(h=13, w=13) + layer("p", "Pooling", body="pooling_param {\n  pool: MAX\n"
                                  "  »kernel_size: 2\n  stride: 1\n}"),
         head(h=13, w=13) + layer("p", "Pooling", body="pooling_param {\n  pool: MAX\n"
                                  "  kernel_size: 2\n  stride: 2\n}")),
    Case("NCS401",
         head() + layer("cat", "Concat", ("data", "data"), body="concat_param { »axis: 3 }"),
         head() + layer("cat", "Concat", ("data", "data"), body="concat_param { axis: 1 }")),
    Case("NCS402",
         head() + layer("r", "ReLU") + layer("in", "Concat", ("data", "r"))
         + layer("out", "Concat", ('»"in"', "data")),
         head() + layer("r", "ReLU") + layer("out", "Concat", ("data", "r", "data")),
         fixable=Applicability.UNSAFE),
    Case("NCS403",
         head() + layer("r", "ReLU") + layer("s", "Sigmoid") + layer("t", "TanH", tops=("t",))
         + layer("a", "Concat", ("s", "r")) + layer("b", "Concat", ("t", '»"r"'))
         + layer("e", "Eltwise", ("a", "b")),
         head() + layer("r", "ReLU") + layer("s", "Sigmoid") + layer("t", "TanH", tops=("t",))
         + layer("a", "Concat", ("s", "r")) + layer("r2", "Power", ("r",))
         + layer("b", "Concat", ("t", "r2")) + layer("e", "Eltwise", ("a", "b"))),
    Case("NCS404",
         head(c=8) + layer("s", "Slice", tops=("s1", "s2"), body="»slice_param { axis: 1 }")
         + layer("e", "Eltwise", ("s1", "s2")),
         head(c=8) + layer("s", "Slice", tops=("s1", "s2"),
                           body="slice_param { axis: 1 slice_point: 4 }")
         + layer("e", "Eltwise", ("s1", "s2"))),
    Case("NCS410",
         head() + layer("e", "Eltwise", ("data", "data", "data", '»"data"')),
         head() + layer("e", "Eltwise", ("data", "data", "data"))),
    Case("NCS411",
         head() + layer("e", "Eltwise", ("data", "data"),
                        body="eltwise_param {\n  operation: SUM\n  »coeff: 1\n  coeff: -1\n}"),
         head() + layer("e", "Eltwise", ("data", "data"),
                        body="eltwise_param {\n  operation: SUM\n  coeff: 1\n  coeff: 1\n}")),
    Case("NCS420",
         head(h=16, w=16) + conv("c", body="kernel_size: 1\npad: 2", num_output=3)
         + layer("crop", "Crop", ("c", '»"data"'), body="crop_param { axis: 2 offset: 2 }"),
         head(h=16, w=16) + conv("c", body="kernel_size: 1", num_output=3) + conv(
             "c2", body="kernel_size: 1\npad: 2", num_output=3)
         + layer("crop", "Crop", ("c2", "c"), body="crop_param { axis: 2 offset: 2 }")),
    Case("NCS421",
         head() + layer("r", "ReLU") + layer("crop", "Crop", ("data", "r"),
                                               body="crop_param { »axis: 0 }"),
         head() + layer("r", "ReLU") + layer("crop", "Crop", ("data", "r"),
                                               body="crop_param { axis: 2 }")),
    Case("NCS422",
         head() + layer("sm", "Softmax", body="softmax_param { »axis: 3 }"),
         head() + layer("sm", "Softmax", body="softmax_param { axis: 1 }")),
    Case("NCS423",
         head() + layer("pm", "Permute", body="permute_param {\n  »order: 1\n  order: 0\n"
                        "  order: 2\n  order: 3\n}"),
         head() + layer("pm", "Permute", body="permute_param {\n  order: 0\n  order: 2\n"
                        "  order: 3\n  order: 1\n}")),
    Case("NCS424",
         head() + conv("s", num_output=3, body="kernel_size: 8") + layer(
             "sc", "Scale", ("data", '»"s"'), body="scale_param { axis: 0 }"),
         head() + layer("sc", "Scale", ("data",))),
    Case("NCS425",
         head(c=3, h=1, w=1) + 'layer {\n  name: "fc"\n  »type: "InnerProduct"\n  bottom: "data"\n'
         '  top: "fc"\n  inner_product_param { num_output: 2 }\n}\n',
         head(c=8, h=1, w=1) + layer("fc", "InnerProduct",
                                     body="inner_product_param { num_output: 2 }")),
    Case("NCS426",
         head() + layer("n", "Normalize", body="norm_param { »across_spatial: true }"),
         # channel_shared defaults to true in SSD Caffe: SSD sets it to false
         head() + layer("n", "Normalize", body="norm_param { across_spatial: false "
                        "channel_shared: false }")),
    Case("NCS427",
         head() + layer("rs", "Reshape", body="reshape_param {\n  »shape { dim: 0 dim: -1 }\n}"),
         head() + layer("rs", "Reshape", body="reshape_param {\n  shape { dim: 0 dim: -1 dim: 1 }\n}")),
    Case("NCS430",
         head() + conv("c") + layer("t", "TanH", ("c",), ('»"c"',)) + layer("r", "ReLU", ("c",)),
         head() + conv("c") + layer("t", "TanH", ("c",), ("t",)) + layer("r", "ReLU", ("t",)),
         fixable=Applicability.SAFE),
    Case("NCS431",
         head() + conv("c") + layer("p", "PReLU", ("c",), ('»"c"',)) + layer("r", "ReLU", ("c",)),
         head() + conv("c") + layer("p", "PReLU", ("c",), ("p",)) + layer("r", "ReLU", ("p",)),
         fixable=Applicability.SAFE),
    Case("NCS440",
         head() + 'layer {\n  »name: "act"\n  type: "Sigmoid"\n  bottom: "data"\n  top: "prob"\n}\n',
         head() + layer("prob", "Sigmoid"),
         fixable=Applicability.SAFE),
    Case("NCS441",
         head() + layer("a", "ReLU") + layer("b", "Sigmoid", tops=('»"b"',)),
         head() + layer("a", "ReLU") + layer("b", "Sigmoid", ("a",))),
    Case("NCS501",
         '»input: "data"\ninput_shape { dim: 1 dim: 16384 dim: 1 dim: 1 }\n'
         + layer("fc", "InnerProduct", body="inner_product_param { num_output: 10300 }"),
         head(c=16384, h=1, w=1) + layer("fc", "InnerProduct",
                                         body="inner_product_param { num_output: 1000 }")),
    Case("NCS502",
         '»input: "data"\ninput_shape { dim: 1 dim: 64 dim: 1024 dim: 1024 }\n'
         + layer("r", "Power") + layer("s", "Sigmoid", ("r",)),
         head(c=64, h=256, w=256) + layer("r", "Power") + layer("s", "Sigmoid", ("r",))),
    Case("NCS503",
         head(c=30000, h=1, w=1) + 'layer {\n  name: "fc"\n  »type: "InnerProduct"\n'
         '  bottom: "data"\n  top: "fc"\n  inner_product_param { num_output: 8 }\n}\n',
         head(c=25088, h=1, w=1) + layer("fc", "InnerProduct",
                                         body="inner_product_param { num_output: 8 }")),
    Case("NCS504",
         head(c=1, h=8192, w=8193) + layer("p", "Power", tops=('»"p"',)),
         head(c=1, h=8192, w=8192) + layer("p", "Power")),
    Case("NCS901",
         head() + layer("r", "ReLU", ('»"nope"',)),
         head() + layer("r", "ReLU")),
    Case("NCS902",
         head() + layer("a", "ReLU", ('»"b"',)) + layer("b", "Sigmoid") + layer(
             "c", "Eltwise", ("a", "b")),
         head() + layer("b", "Sigmoid") + layer("a", "ReLU", ("b",)) + layer(
             "c", "Eltwise", ("a", "b"))),
    Case("NCS903",
         head() + layer("a", "Eltwise", ("data", "b")) + layer("b", "ReLU", ('»"a"',)),
         head() + layer("a", "Eltwise", ("data", "data")) + layer("b", "ReLU", ("a",))),
    Case("NCS904",
         head() + layer("a", "ReLU", tops=("x",)) + layer("b", "Sigmoid", tops=('»"x"',))
         + layer("e", "Eltwise", ("x", "x")),
         head() + layer("a", "ReLU", tops=("x",)) + layer("b", "Sigmoid", tops=("y",))
         + layer("e", "Eltwise", ("x", "y"))),
    Case("NCS905",
         head() + 'layer {\n  name: "c"\n  »type: "Convolution"\n  bottom: "data"\n  top: "c"\n'
         '  convolution_param { num_output: 2 kernel_size: 9 }\n}\n',
         head() + conv("c", body="kernel_size: 3")),
    Case("NCS906",
         'input: "data"\n»input_shape { dim: 1 dim: -3 dim: 8 dim: 8 }\n' + layer("r", "ReLU"),
         head() + layer("r", "ReLU")),
    Case("NCS907",
         'input: "data"\n»input_dim: 1\ninput_dim: 3\ninput_dim: 8\n' + layer("r", "ReLU"),
         'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n' + layer("r", "ReLU")),
    Case("NCS908",
         head() + layer("a", "ReLU", tops=("x",)) + 'layer {\n  »name: "a"\n  type: "Sigmoid"\n'
         '  bottom: "x"\n  top: "y"\n}\n',
         head() + layer("a", "ReLU", tops=("x",)) + layer("y", "Sigmoid", ("x",), ("y",))),
    Case("NCS909",
         head() + layer("a", "ReLU", tops=("x",))
         + '»layers {\n  name: "b"\n  type: SIGMOID\n  bottom: "x"\n  top: "b"\n}\n',
         head() + layer("a", "ReLU", tops=("x",)) + layer("b", "Sigmoid", ("x",))),
    Case("NCS910",
         'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
         '»layers {\n  layer {\n    name: "a"\n    type: "relu"\n    kernelsize: 3\n  }\n'
         '  bottom: "data"\n  top: "a"\n}\n',
         'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
         'layers {\n  layer {\n    name: "a"\n    type: "relu"\n  }\n'
         '  bottom: "data"\n  top: "a"\n}\n'),
    Case("NCS911",
         '»name: "empty"\n',
         head() + layer("r", "ReLU")),
    Case("NCS999",
         head() + layer("c", "Convolution", body='convolution_param { num_output: »"x" }'),
         head() + layer("c", "Convolution", body="convolution_param { num_output: 2 kernel_size: 1 }")),
]


def test_every_rule_has_a_case():
    assert sorted(c.code for c in CASES) == sorted(cls.code for cls in all_rules())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.code)
def test_rule_triggers_at_the_flagged_field(case: Case):
    text, (line, column) = where(case.bad)
    found = _findings(text, case.code, **dict(case.settings))
    assert found, f"{case.code} did not fire on:\n{text}"
    d = found[0]
    assert (d.line, d.column) == (line, column), (
        f"{case.code} flagged {d.line}:{d.column}, expected {line}:{column}: {d.message}")
    rule = by_code()[case.code]
    assert d.name == rule.name
    assert d.message and "\n" not in d.message
    # the span covers something from the flagged place onwards
    assert (d.end_line, d.end_column) > (d.line, d.column) or d.code == "NCS911"
    if case.fixable is None:
        assert d.fix is None or d.fix.applicability is not Applicability.SAFE or \
            rule.fix_availability.value != "none"
    else:
        assert d.fix is not None, f"{case.code} offers no fix"
        assert d.fix.applicability is case.fixable
        assert rule.fix_availability.value != "none"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.code)
def test_rule_stays_quiet_on_the_good_variant(case: Case):
    assert MARK not in case.good
    assert _findings(case.good, case.code, **dict(case.settings)) == []
    # the good variant is a sound network: nothing Caffe would refuse
    report = check_source(case.good, "good.prototxt", Settings(**{
        k: v for k, v in case.settings.items() if k == "target"}))
    assert not report.fatal, [d for d in report.diagnostics if d.fatal]


# -- details of particular rules ------------------------------------------------------

def test_ncs204_is_opt_in():
    text = head() + layer("r", "ReLU") + layer("drop", "Dropout", ("r",), ("r",))
    assert _findings(text, "NCS204") == []
    assert len(_findings(text, "NCS204", select=["ALL"])) == 1
    assert not by_code()["NCS204"].default_enabled


def test_ncs301_tested_shapes_are_quiet_and_depthwise_is_not_its_business():
    for body in ("kernel_size: 1", "kernel_size: 3\npad: 1", "kernel_size: 5\npad: 2",
                 "kernel_size: 7\npad: 3", "kernel_size: 7\nstride: 2",
                 "kernel_size: 7\nstride: 4"):
        assert _findings(head(h=32, w=32) + conv("c", body=body), "NCS301") == [], body
    # a depthwise 3x3 stride 2 (MobileNet) is not a regular convolution shape
    dw = head(c=8, h=32, w=32) + conv("dw", num_output=8, body="kernel_size: 3\nstride: 2\ngroup: 8")
    assert _findings(dw, "NCS301") == []
    # ...but a regular 3x3 stride 2 (MobileNet's conv1) is outside the list
    assert len(_findings(head(h=32, w=32) + conv("c", body="kernel_size: 3\nstride: 2"),
                         "NCS301")) == 1
    # 1x3 is tested only from NCSDK 2.08 on
    nonsq = head() + conv("c", body="kernel_h: 1\nkernel_w: 3\npad_w: 1")
    assert _findings(nonsq, "NCS306") == []
    assert len(_findings(nonsq, "NCS306", target="ncsdk1")) == 1


def test_ncs308_only_for_ncsdk1():
    text = head(c=1, h=200, w=200) + conv("c", num_output=1, body="kernel_size: 129")
    assert _findings(text, "NCS308") == []
    assert len(_findings(text, "NCS308", target="ncsdk1")) == 1


def test_ncs102_fix_is_unsafe_when_a_reshape_spells_out_the_batch():
    text = ('input: "data"\ninput_shape { dim: 10 dim: 3 dim: 8 dim: 8 }\n'
            + layer("rs", "Reshape", body="reshape_param { shape { dim: 10 dim: -1 dim: 1 dim: 1 } }"))
    (d,) = _findings(text, "NCS102")
    assert d.fix.applicability is Applicability.UNSAFE
    assert "rs" in d.fix.title


def test_ncs103_no_fix_when_data_is_taken():
    text = ('input: "img"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
            + layer("data", "ReLU", ("img",), ("data",)))
    (d,) = _findings(text, "NCS103")
    assert d.fix is None


def test_ncs203_unsafe_when_the_bottom_is_rewritten_before_a_reader():
    text = (head() + conv("c") + layer("drop", "Dropout", ("c",), ("d",))
            + layer("relu", "ReLU", ("c",), ("c",)) + layer("e", "Eltwise", ("d", "c")))
    (d,) = _findings(text, "NCS203")
    assert d.fix.applicability is Applicability.UNSAFE


def test_ncs402_no_fix_when_the_inner_concat_has_other_readers():
    # DenseNet's pattern: the inner concat also feeds the next dense layer
    text = (head() + layer("r", "ReLU") + layer("in", "Concat", ("data", "r"))
            + layer("bn", "Power", ("in",)) + layer("out", "Concat", ("in", "bn")))
    (d,) = _findings(text, "NCS402")
    assert d.fix is None


def test_ncs430_fix_keeps_later_in_place_layers_on_the_new_blob():
    text = (head() + conv("c") + layer("t", "TanH", ("c",), ("c",))
            + layer("r", "ReLU", ("c",), ("c",)) + layer("p", "Pooling", ("c",),
                                                         body="pooling_param { kernel_size: 2 }"))
    (d,) = _findings(text, "NCS430")
    from caffe2ncs.fixes import apply_edits

    fixed = apply_edits(text, d.fix.edits)
    assert 'top: "t"' in fixed
    assert fixed.count('bottom: "t"') == 2  # the ReLU and the pooling
    assert 'top: "c"' in fixed  # the convolution itself


def test_severity_and_metadata_of_every_rule():
    for cls in all_rules():
        assert isinstance(cls.severity, Severity)
        assert cls.explanation().startswith("## What it does"), cls.code
        assert cls.summary == cls.summary.strip()
