"""The pre-commit hooks, run by the real ``pre-commit`` tool (``try-repo``)
against a temporary model repository.

``pre-commit`` installs a ``language: python`` hook the way it does for users:
it clones this repository, creates a virtualenv and runs ``pip install .`` in
it, then runs the hook's entry point from that virtualenv.  The only thing the
test changes is where pip finds packages, so that it runs offline:

* ``PIP_NO_INDEX=1``: no package index is ever contacted;
* ``PIP_FIND_LINKS`` = virtualenv's own embedded wheels, which hold a
  setuptools new enough for ``[build-system] requires`` (pip's isolated build
  installs it from there);
* ``PIP_NO_DEPS=1`` plus ``PYTHONPATH`` = a folder of links to the runtime
  dependencies (protobuf, numpy, rich, ...) already installed for the tests,
  found through their installed metadata.  caffe2ncs itself is never on that
  path: the hook imports the copy pip installed into pre-commit's virtualenv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tinynet"


def _requirement_name(spec: str) -> str | None:
    """The distribution named by a ``Requires-Dist`` line, unless only an
    extra asks for it.  Other markers (Python version, platform) are not
    evaluated: a dependency that is not installed is skipped below, and one
    that is installed but not needed does no harm on the path."""
    name, _, marker = spec.partition(";")
    if "extra ==" in marker:
        return None
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
    return match.group(1) if match else None


def runtime_dependency_dir(tmp: Path) -> Path:
    """A folder of symlinks to the installed distributions that pyproject.toml
    declares as runtime dependencies (and theirs), without caffe2ncs itself."""
    out = tmp / "deps"
    out.mkdir()
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [r for r in (_requirement_name(s) for s in declared) if r]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        tops = set()
        for file in dist.files or []:
            first = file.parts[0]
            if first in ("..", "__pycache__") or first.endswith(".pth"):
                continue
            tops.add(first)
        for top in tops:
            target = Path(dist.locate_file(top))
            link = out / top
            if target.exists() and not link.exists():
                link.symlink_to(target)
        todo += [r for r in (_requirement_name(s) for s in dist.requires or []) if r]
    assert not (out / "caffe2ncs").exists()
    return out


def virtualenv_wheels() -> Path:
    import virtualenv

    folder = Path(virtualenv.__file__).parent / "seed" / "wheels" / "embed"
    if not any(folder.glob("setuptools-*.whl")):
        pytest.skip(f"virtualenv ships no setuptools wheel in {folder}")
    return folder


def git(*args, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def precommit_env(tmp_path_factory) -> dict:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout, which pre-commit try-repo needs")
    pytest.importorskip("pre_commit")
    tmp = tmp_path_factory.mktemp("precommit")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PRE_COMMIT",
                                                                     "VIRTUALENV_"))}
    env.update({
        "PRE_COMMIT_HOME": str(tmp / "home"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(virtualenv_wheels()),
        "PIP_NO_DEPS": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONPATH": str(runtime_dependency_dir(tmp)),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "NO_COLOR": "1",
    })
    return env


def make_model_repo(path: Path) -> None:
    path.mkdir()
    git("init", "-q", cwd=path)
    (path / "models").mkdir()
    shutil.copy(EXAMPLE / "zoo_style.prototxt", path / "models" / "zoo.prototxt")
    shutil.copy(EXAMPLE / "deploy.prototxt", path / "models" / "clean.prototxt")
    # not a prototxt: the hooks' `files` pattern must leave it alone
    (path / "notes.txt").write_text("input_param { shape: { dim: 10 } }\n")
    git("add", ".", cwd=path)
    git("commit", "-q", "-m", "models", cwd=path)


def try_repo(repo: Path, env: dict, *hook: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), *hook, "--all-files",
         "--color", "never"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300)


def hook_lines(output: str) -> dict[str, str]:
    """hook name -> Passed / Failed / (no files to check)Skipped."""
    found = {}
    for line in output.splitlines():
        m = re.match(r"(caffe2ncs (?:check|fix))\.+(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def test_hooks_manifest_declares_both_hooks():
    import yaml  # pre-commit depends on PyYAML

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"caffe2ncs-check", "caffe2ncs-fix"}
    for hook in hooks.values():
        assert re.search(hook["files"], "a/b/deploy.prototxt")
        assert not re.search(hook["files"], "deploy.prototxt.bak")
        assert hook["language"] == "python"
        assert not hook.get("require_serial", False)  # safe in parallel batches
    assert hooks["caffe2ncs-check"]["entry"] == "caffe2ncs check"
    assert hooks["caffe2ncs-fix"]["entry"] == "caffe2ncs fix"


def test_pre_commit_try_repo_fixes_then_checks(tmp_path: Path, precommit_env: dict):
    """Two runs (each installs the hooks afresh, as try-repo does): the first
    fixes what it can and reports the rest, the second passes."""
    from caffe2ncs import fix

    repo = tmp_path / "models-repo"
    make_model_repo(repo)
    zoo = repo / "models" / "zoo.prototxt"
    original = zoo.read_text()
    clean = (repo / "models" / "clean.prototxt").read_text()
    # an error no fix can remove: the check hook must report it
    upsample = repo / "models" / "upsample.prototxt"
    upsample_text = clean.replace('type: "Pooling"', 'type: "Upsample"', 1)
    assert upsample_text != clean
    upsample.write_text(upsample_text)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "unsupported layer", cwd=repo)

    first = try_repo(repo, precommit_env)
    out = first.stdout + first.stderr
    assert "An unexpected error" not in out and "An error has occurred" not in out, out
    assert first.returncode == 1, out
    assert hook_lines(out) == {"caffe2ncs fix": "Failed", "caffe2ncs check": "Failed"}, out
    assert "files were modified by this hook" in out, out
    assert "Fixed 5 problems in models/zoo.prototxt" in out, out
    # the hook wrote exactly what the library's fix produces; the rest is untouched
    assert zoo.read_text() == fix(original)[0] != original
    assert (repo / "models" / "clean.prototxt").read_text() == clean
    assert upsample.read_text() == upsample_text
    assert (repo / "notes.txt").read_text() == "input_param { shape: { dim: 10 } }\n"
    # try-repo runs the hooks sorted by id, so check ran first, on the
    # original files: it reported the zoo file's and the unsupported layer's
    # errors with their positions, and nothing in the clean file
    assert re.search(r"models/upsample\.prototxt:\d+:\d+: error\[NCS2\d\d\]", out), out
    assert "Upsample" in out
    assert re.search(r"models/zoo\.prototxt:7:3: error\[NCS104\]", out), out
    assert "clean.prototxt:" not in out

    # with the unsupported model gone, both hooks pass
    git("rm", "-q", "models/upsample.prototxt", cwd=repo)
    git("commit", "-q", "-am", "fixed", cwd=repo)
    second = try_repo(repo, precommit_env)
    out2 = second.stdout + second.stderr
    assert second.returncode == 0, out2
    assert hook_lines(out2) == {"caffe2ncs fix": "Passed", "caffe2ncs check": "Passed"}, out2
