"""docs/rules.md is generated from the rule registry and must be current."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

from caffe2ncs.commands.rule import rule_markdown
from caffe2ncs.rules.docs import DEFAULT_OUT, render
from caffe2ncs.rules.registry import all_rules

HINT = "docs/rules.md is stale: run `python -m caffe2ncs.rules.docs` and commit it"


def test_rules_md_is_current():
    assert DEFAULT_OUT == REPO / "docs" / "rules.md"
    assert DEFAULT_OUT.read_text(encoding="utf-8") == render(), HINT


def test_every_rule_is_documented_with_an_anchor():
    text = render()
    for cls in all_rules():
        assert f'<a id="{cls.code.lower()}"></a>' in text  # SARIF helpUri target
        assert f"| [{cls.code}](#{cls.code.lower()}) |" in text
        assert rule_markdown(cls, "##").rstrip() in text  # same text as `caffe2ncs rule`
        # the explanation is Markdown, not an indented code block
        assert "\n    ## " not in rule_markdown(cls)


def test_check_mode_detects_a_stale_file(tmp_path):
    stale = tmp_path / "rules.md"
    stale.write_text(render().replace("| error |", "| warning |", 1))
    cmd = [sys.executable, "-m", "caffe2ncs.rules.docs", "--check", "-o"]
    result = subprocess.run([*cmd, str(stale)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "stale" in result.stderr
    fresh = subprocess.run([*cmd, str(DEFAULT_OUT)], cwd=REPO, capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    # regenerating writes exactly the checked-in file
    out = tmp_path / "new.md"
    subprocess.run([sys.executable, "-m", "caffe2ncs.rules.docs", "-o", str(out)], cwd=REPO,
                   check=True)
    assert out.read_bytes() == DEFAULT_OUT.read_bytes()
