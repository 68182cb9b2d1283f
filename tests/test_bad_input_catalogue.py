"""The bad-input catalogue (``tests/bad_inputs/``): every case of
``expected.toml`` through the CLI, asserting its exit code, its message, that
the message names a file given on the command line, and that nothing printed
a traceback.

All cases run in one subprocess (``tests/cli_batch.py`` calls
``caffe2ncs.cli.main`` for each, as ``python -m caffe2ncs`` does); a sample
also runs as separate ``python -m caffe2ncs`` processes, which must agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, run_cli

HERE = Path(__file__).resolve().parent
CATALOGUE = HERE / "bad_inputs"
MANIFEST = tomllib.loads((CATALOGUE / "expected.toml").read_text())["case"]
NOT_CASES = {"make.py", "expected.toml"}


def case_id(i: int, case: dict) -> str:
    return f"{case['file']}-{case['args'][0]}-{i}"


def expand(case: dict, tmp: Path) -> tuple[list[str], str]:
    def sub(text: str) -> str:
        return (text.replace("{file}", str(CATALOGUE / case["file"]))
                .replace("{dir}", str(CATALOGUE)).replace("{tmp}", str(tmp)))

    return [sub(a) for a in case["args"]], sub(case["message"])


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """{case index: (args, message, result)} for every case, run in one process."""
    root = tmp_path_factory.mktemp("catalogue")
    expanded = []
    for i, case in enumerate(MANIFEST):
        tmp = root / str(i)
        tmp.mkdir()
        expanded.append(expand(case, tmp))
    proc = subprocess.run([sys.executable, str(HERE / "cli_batch.py")],
                          input=json.dumps([args for args, _ in expanded]), capture_output=True,
                          text=True, errors="replace", cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    return {i: (args, message, results[i]) for i, (args, message) in enumerate(expanded)}


@pytest.mark.parametrize("index", range(len(MANIFEST)),
                         ids=[case_id(i, c) for i, c in enumerate(MANIFEST)])
def test_case(index, batch):
    case = MANIFEST[index]
    args, message, result = batch[index]
    out = result["stdout"] + result["stderr"]
    assert "Traceback" not in out, out
    assert result["exit"] == case["exit"], out
    assert message in out, out
    if case["exit"] == 2:
        # the line with the message names one of the files given
        files = [a for a in args if a.startswith(str(CATALOGUE))]
        lines = [line for line in out.splitlines() if message[:40] in line]
        assert any(f in line for line in lines for f in files), out


#: One case per command, also run as its own ``python -m caffe2ncs`` process.
STANDALONE = sorted({c["args"][0]: i for i, c in enumerate(MANIFEST) if c["exit"] == 2}.values())


@pytest.mark.parametrize("index", STANDALONE, ids=[case_id(i, MANIFEST[i]) for i in STANDALONE])
def test_case_standalone(index, batch, tmp_path):
    case = MANIFEST[index]
    args, message, _ = batch[index]
    args, message = expand(case, tmp_path)
    result = run_cli(*args, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == case["exit"], result.stderr
    assert message in result.stdout + result.stderr


def test_every_file_has_a_case():
    files = {p.name for p in CATALOGUE.iterdir() if p.is_file() and p.name not in NOT_CASES}
    assert len(files) >= 40
    assert files == {c["file"] for c in MANIFEST}
    # every kind of command the catalogue is for
    assert {c["args"][0] for c in MANIFEST} >= {"info", "check", "build", "inspect", "run"}


def test_files_are_what_make_py_writes():
    result = subprocess.run([sys.executable, str(CATALOGUE / "make.py"), "--check"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
