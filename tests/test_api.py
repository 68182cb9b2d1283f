"""The Python API: ``caffe2ncs.check(path_or_text)`` and ``caffe2ncs.fix(text)``,
loaded lazily so that ``import caffe2ncs`` stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import caffe2ncs

EXAMPLE = REPO / "examples" / "tinynet"
ZOO = EXAMPLE / "zoo_style.prototxt"


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nimport json\n"
         "print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=REPO, timeout=60)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_is_light():
    loaded = _modules_after("import caffe2ncs")
    heavy = {m for m in loaded if m.split(".")[0] in ("google", "numpy", "rich")
             or m.startswith(("caffe2ncs.rules", "caffe2ncs.model", "caffe2ncs.fixes"))}
    assert not heavy, sorted(heavy)
    # the names are there, loaded on first use
    loaded = _modules_after("import caffe2ncs\ncaffe2ncs.check")
    assert "caffe2ncs.rules.runner" in loaded and "caffe2ncs.fixes.engine" not in loaded
    assert "numpy" not in loaded  # linting needs no numpy


def test_public_names():
    for name in ("check", "fix", "load", "loads", "Diagnostic", "Settings", "Net"):
        assert name in dir(caffe2ncs)
        assert getattr(caffe2ncs, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        caffe2ncs.nope  # noqa: B018


def test_check_a_path_a_pathlike_and_text_agree():
    from caffe2ncs import Diagnostic, check

    by_path = check(str(ZOO))
    by_pathlike = check(ZOO)
    by_text = check(ZOO.read_text())
    key = [(d.code, d.line, d.column, d.layer) for d in by_path]
    assert key == [(d.code, d.line, d.column, d.layer) for d in by_pathlike]
    assert key == [(d.code, d.line, d.column, d.layer) for d in by_text]
    assert [k[:3] for k in key] == [("NCS104", 7, 3), ("NCS103", 8, 3), ("NCS102", 9, 26),
                                    ("NCS203", 88, 3), ("NCS440", 99, 3)]
    assert all(isinstance(d, Diagnostic) for d in by_path)
    assert by_path[0].path == str(ZOO) and by_text[0].path == "<text>"
    d = by_path[2]
    assert (str(d.severity), d.fixable, d.layer) == ("error", True, "input")
    assert check(EXAMPLE / "deploy.prototxt") == []


def test_check_with_settings():
    from caffe2ncs import Settings, check

    only = check(ZOO, Settings(select=("NCS102",)))
    assert [d.code for d in only] == ["NCS102"]
    assert "NCS440" not in {d.code for d in check(ZOO, Settings(ignore=("NCS4",)))}


def test_check_bad_input():
    from caffe2ncs import check
    from caffe2ncs.errors import Caffe2NcsError

    (syntax,) = check('name: "x"\nlayer {\n  name: \n')
    assert syntax.code == "NCS999" and syntax.line == 3 and syntax.fatal
    with pytest.raises(Caffe2NcsError, match="no such file"):
        check(Path("/nonexistent/model.prototxt"))
    with pytest.raises(TypeError):
        check(b"name: 'x'")


def test_fix_returns_text_and_applied_fixes():
    from caffe2ncs import fix

    text = ZOO.read_text()
    new_text, applied = fix(text)
    assert sorted(a.code for a in applied) == ["NCS102", "NCS103", "NCS104", "NCS203", "NCS440"]
    assert all(a.title for a in applied)
    assert 'input: "data"' in new_text and "dim: 1\n" in new_text
    assert not [d for d in caffe2ncs.check(new_text) if str(d.severity) == "error"]
    # idempotent, and every comment kept
    assert fix(new_text) == (new_text, [])
    for line in text.splitlines():
        if line.strip().startswith("#"):
            assert line.strip() in new_text
    # the declared changes say what happened to the network
    kinds = {c.kind for a in applied for c in a.changes}
    assert {"set-batch", "remove-layer"} <= kinds


def test_fix_unsafe_and_bad_input():
    from caffe2ncs import fix

    text = (EXAMPLE / "deploy.prototxt").read_text().replace(
        'layer {\n  name: "conv1"', 'layer {\n  name: "acc"\n  type: "Accuracy"\n'
        '  bottom: "data"\n  bottom: "data"\n  top: "acc"\n}\nlayer {\n  name: "conv1"', 1)
    assert fix(text) == (text, [])  # removing a layer of a deploy file is unsafe
    new_text, applied = fix(text, unsafe=True)
    assert [a.code for a in applied] == ["NCS202"] and "Accuracy" not in new_text
    broken = 'layer {\n  name: "a"\n'
    assert fix(broken) == (broken, [])  # unparsable text is returned unchanged
    with pytest.raises(TypeError, match="read the file first"):
        fix(ZOO)
