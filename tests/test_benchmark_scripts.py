"""The lint benchmark script runs (a smoke test on two small files; the
timings themselves are the script's business, never a test's)."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO


def test_check_corpus_benchmark_runs(tmp_path):
    for name in ("deploy.prototxt", "zoo_style.prototxt"):
        shutil.copy(REPO / "examples" / "tinynet" / name, tmp_path / name)
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "check_corpus.py"), "--corpus", str(tmp_path),
         "--repeat", "1", "--warmup", "0", "--cli-runs", "0"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "zoo_style.prototxt" in out and "deploy.prototxt" in out
    assert "corpus   2 files" in out and "5 findings; protobuf parsed 2 of them" in out
    assert "ratio" in out and "target: check < 1000 ms" in out
    missing = subprocess.run([sys.executable, str(REPO / "benchmarks" / "check_corpus.py"),
                              "--corpus", str(tmp_path / "none")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no *.prototxt" in missing.stderr
