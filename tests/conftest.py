"""Shared fixtures: where the real-world corpus and the vendor samples live.

The corpus (``../shared/corpus``) and the vendor graph files
(``../shared/ncsdk-samples``) are read in place and never copied into this
repository; tests that need them skip with a reason when they are absent.
Override the locations with ``CAFFE2NCS_CORPUS`` / ``CAFFE2NCS_SAMPLES``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# One BLAS thread per test process (and the CLI subprocesses, which inherit the
# environment), unless the caller chose: the suite runs on several xdist workers,
# and OpenBLAS's threads of parallel workers waiting for each other at every
# small matrix product made the emulator ten times slower on a busy two-core
# machine (GoogLeNet: 828 ms with two threads, 80 ms with one).  Set before
# numpy is first imported, which is when OpenBLAS reads it.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# test this checkout's package, even under a bare `pytest` or when a test file
# is run as a script, whichever checkout is installed in editable mode
if sys.path[:1] != [str(REPO)]:
    sys.path.insert(0, str(REPO))


def _find_shared() -> Path:
    """``shared/`` beside the checkout (or beside one of its parents, for git
    worktrees kept in a sub-folder)."""
    for parent in REPO.parents:
        if (parent / "shared").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"


SHARED = _find_shared()
CORPUS = Path(os.environ.get("CAFFE2NCS_CORPUS", SHARED / "corpus"))
SAMPLES = Path(os.environ.get("CAFFE2NCS_SAMPLES", SHARED / "ncsdk-samples"))


def corpus_files() -> list[Path]:
    """Every corpus prototxt, or an empty list when the corpus is not here."""
    if not CORPUS.is_dir():
        return []
    return sorted(CORPUS.glob("*.prototxt"))


def corpus_params():
    """pytest parameters over the corpus, or one skipped parameter saying why."""
    files = corpus_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"corpus not found at {CORPUS}"))]
    return [pytest.param(f, id=f.stem) for f in files]


def corpus_path(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not found in {CORPUS}")
    return path


def sample_dirs() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.iterdir() if (p / "graph.mv").is_file())


def run_cli(*args: str, input: str | None = None, cwd: str | os.PathLike | None = None,
            env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (``python -m caffe2ncs``)."""
    full_env = dict(os.environ)
    full_env.pop("FORCE_COLOR", None)
    full_env["NO_COLOR"] = "1"
    full_env["COLUMNS"] = "200"
    # this checkout's package, whatever the working folder (an editable install
    # elsewhere, e.g. of another worktree, must not win)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "caffe2ncs", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def scratch_path(tmp_path):
    """``tmp_path``, emptied when the test ends: for the caffemodels and graph
    files of whole corpus networks, which pytest would otherwise keep for its
    last three runs (a run wrote 12 GB of them)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
