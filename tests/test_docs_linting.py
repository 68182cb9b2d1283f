"""docs/linting.md: its examples are real (the configuration example loads,
the hook ids exist, every option it names exists)."""

from __future__ import annotations

import re

import yaml
from conftest import REPO

DOC = (REPO / "docs" / "linting.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def test_configuration_example_is_valid(tmp_path, cli):
    (toml,) = blocks("toml")
    (tmp_path / "pyproject.toml").write_text(toml)
    (tmp_path / "m.prototxt").write_bytes((REPO / "examples/tinynet/zoo_style.prototxt").read_bytes())
    result = cli("check", "m.prototxt", "--format", "json", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr  # not 2: the configuration is valid
    from caffe2ncs.rules.settings import load_settings_file

    settings = load_settings_file(str(tmp_path / "pyproject.toml"))
    assert settings.ignore == ("NCS301",) and dict(settings.severity_overrides)


def test_pre_commit_example_uses_the_real_hook_ids():
    (config,) = blocks("yaml")
    ids = [h["id"] for repo in yaml.safe_load(config)["repos"] for h in repo["hooks"]]
    manifest = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert ids == ["caffe2ncs-fix", "caffe2ncs-check"]
    assert set(ids) == {h["id"] for h in manifest}


def test_every_option_named_exists(cli):
    helps = cli("check", "--help").stdout + cli("fix", "--help").stdout + cli("--help").stdout
    named = set(re.findall(r"`(--[a-z][a-z-]+)", DOC))
    assert named and {o for o in named if o not in helps} == set()
