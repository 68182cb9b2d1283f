"""``check`` on the real-world corpus: the golden table of rule codes per
network, spot checks of what the sources say about famous networks, and the
invariants every finding must satisfy.

The table is ``tests/golden/corpus_codes.json``: for each corpus file, the
codes found with the default settings (with how often each fired), the codes
whose count differs with ``--target ncsdk1``, and the exit status ``check``
gives.  Regenerate it after a deliberate rule change with
``python tests/test_check_corpus.py --update`` and review the diff: every
change must be explainable from the network's source.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import corpus_files, corpus_params, corpus_path

from caffe2ncs.rules.base import Severity
from caffe2ncs.rules.runner import check_path
from caffe2ncs.rules.settings import Settings

GOLDEN = Path(__file__).parent / "golden" / "corpus_codes.json"


def entry_for(path: Path) -> dict:
    default = check_path(str(path), Settings())
    ncsdk1 = check_path(str(path), Settings(target="ncsdk1"))
    assert default.error is None and ncsdk1.error is None
    counts = Counter(d.code for d in default.diagnostics)
    counts1 = Counter(d.code for d in ncsdk1.diagnostics)
    if default.fatal:
        exit_code = 2
    elif any(d.severity is Severity.ERROR for d in default.diagnostics):
        exit_code = 1
    else:
        exit_code = 0
    return {
        "codes": dict(sorted(counts.items())),
        "ncsdk1": {code: counts1[code] for code in sorted(set(counts) | set(counts1))
                   if counts1[code] != counts[code]},
        "exit": exit_code,
    }


def _golden() -> dict:
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing; create it with `python {__file__} --update`")
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", corpus_params())
def test_golden_table(path: Path):
    golden = _golden()
    assert path.name in golden, f"{path.name} is not in the golden table; regenerate it"
    assert entry_for(path) == golden[path.name]


def test_golden_table_covers_exactly_the_corpus():
    files = corpus_files()
    if not files:
        pytest.skip("corpus not found")
    assert sorted(_golden()) == sorted(f.name for f in files)


# -- facts from the sources (SOURCES.md, the NCSDK documentation) -----------------------

def codes(name: str, **settings) -> Counter:
    report = check_path(str(corpus_path(name)), Settings(**settings))
    assert report.error is None
    return Counter(d.code for d in report.diagnostics)


def findings(name: str, code: str, **settings):
    report = check_path(str(corpus_path(name)), Settings(**settings))
    return [d for d in report.diagnostics if d.code == code]


def errors(name: str) -> set[str]:
    report = check_path(str(corpus_path(name)), Settings())
    return {d.code for d in report.diagnostics if d.severity is Severity.ERROR}


def test_bvlc_googlenet_only_input_form_and_batch():
    # BVLC GoogLeNet is validated on the NCS; ncappzoo only swaps the Input layer
    # for input_shape with batch 1
    assert set(codes("bvlc_googlenet.prototxt")) == {"NCS104", "NCS102"}
    (batch,) = findings("bvlc_googlenet.prototxt", "NCS102")
    assert "batch size 10" in batch.message
    assert (batch.line, batch.column) == (6, 26)  # the "dim: 10" in input_param


def test_ncappzoo_googlenet_is_clean():
    # the NCS-adapted GoogLeNet ncappzoo committed compiles as is
    assert codes("ncappzoo_googlenet_input_shape.prototxt") == Counter()


def test_alexnet_untested_11x11s4_and_batch_10():
    assert set(codes("bvlc_alexnet.prototxt")) == {"NCS104", "NCS102", "NCS301"}
    (shape,) = findings("bvlc_alexnet.prototxt", "NCS301")
    assert shape.layer == "conv1" and "11x11s4" in shape.message
    (batch,) = findings("bvlc_alexnet.prototxt", "NCS102")
    assert "batch size 10" in batch.message


def test_fcn8s_crop_reference_is_data():
    (crop,) = findings("fcn8s_voc.prototxt", "NCS420")
    assert crop.layer == "score" and "'data'" in crop.message
    # the other two crops read intermediate blobs and are fine
    assert len(findings("fcn8s_voc.prototxt", "NCS420")) == 1


def test_ssd_networks_are_supported():
    for name in ("ssd_vgg16_300_voc0712.prototxt", "mobilenet_ssd_voc_deploy.prototxt",
                 "mobilenet_ssd_deploy_bn.prototxt", "ncappzoo_ssd_mobilenet_patched.prototxt",
                 "opencv_face_res10_ssd.prototxt"):
        assert errors(name) == set(), name


def test_shufflenet_shufflechannel_unsupported():
    for name in ("shufflenet_v1_1x_g3.prototxt", "shufflenet_v2_1x.prototxt"):
        unsupported = findings(name, "NCS201")
        assert any("'ShuffleChannel'" in d.message for d in unsupported), name


def test_yolov3_upsample_unsupported():
    for name in ("yolov3_tiny_upsample.prototxt", "mobilenet_v2_yolov3.prototxt"):
        assert any("'Upsample'" in d.message for d in findings(name, "NCS201")), name
    # YOLOv3 has two (tiny) or three detection heads: only the first is returned
    assert len(findings("yolov3_tiny_upsample.prototxt", "NCS441")) == 1
    assert len(findings("mobilenet_v2_yolov3.prototxt", "NCS441")) == 2


def test_mobilenet_only_its_regular_stride_2_conv_is_untested():
    # MobileNet v1/v2: conv1 is a regular 3x3 stride-2 convolution (not in the
    # tested list); the 3x3 stride-2 depthwise convolutions are depthwise stages,
    # whose only tested kernel is 3x3: no NCS301/NCS305 on them
    for name in ("mobilenet_v1.prototxt", "mobilenet_v2.prototxt"):
        (conv1,) = findings(name, "NCS301")
        assert conv1.layer == "conv1" and "3x3s2" in conv1.message
        assert findings(name, "NCS305") == [] and findings(name, "NCS304") == []


def test_densenet_nested_concat_is_real_and_not_auto_fixable():
    nested = findings("densenet121.prototxt", "NCS402")
    # 58 dense layers, of which the first of each of the 4 blocks reads a pooling
    assert len(nested) == 54
    assert all(d.fix is None for d in nested)
    first = nested[0]
    assert first.layer == "concat_2_2" and "'concat_2_1'" in first.message


def test_squeezenet_v10_padded_1x1_conv10():
    (pad,) = findings("squeezenet_v1.0.prototxt", "NCS303")
    assert pad.layer == "conv10"
    assert pad.line == 530  # the line ncappzoo's sed comments out


def test_faster_rcnn_two_inputs_python_layer():
    c = codes("faster_rcnn_zf_test.prototxt")
    assert {"NCS101", "NCS205"} <= set(c)


def test_inception_non_square_kernels_only_for_ncsdk1():
    assert findings("inception_v3.prototxt", "NCS306") == []
    assert findings("inception_v3.prototxt", "NCS306", target="ncsdk1")


def test_v1_layers_files_are_reported():
    for name in ("bvlc_googlenet_v1layers_2014.prototxt", "vgg16_v1layers.prototxt",
                 "agenet_gillevi.prototxt", "ncappzoo_agenet_v1layers.prototxt"):
        assert "NCS207" in codes(name), name


# -- invariants of every finding ----------------------------------------------------

@pytest.mark.parametrize("path", corpus_params())
def test_findings_point_into_the_file(path: Path):
    report = check_path(str(path), Settings())
    text = path.read_bytes().decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    lines = text.split("\n")
    for d in report.diagnostics:
        assert 1 <= d.line <= len(lines), d
        assert 1 <= d.column <= len(lines[d.line - 1]) + 1, d
        assert (d.end_line, d.end_column) >= (d.line, d.column), d
        if d.span is not None:
            assert 0 <= d.span[0] <= d.span[1] <= len(text)
        if d.fix is not None:
            for e in d.fix.edits:
                assert 0 <= e.start <= e.end <= len(text)


def update_golden_table() -> int:
    files = corpus_files()
    if not files:
        print("corpus not found", file=sys.stderr)
        return 2
    table = {f.name: entry_for(f) for f in files}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(table)} networks); review the diff")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        print(f"usage: python {sys.argv[0]} --update   (rewrite {GOLDEN.name})", file=sys.stderr)
        sys.exit(2)
    sys.exit(update_golden_table())
