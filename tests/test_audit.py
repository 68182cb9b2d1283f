"""Model files never make caffe2ncs import, execute or read anything.

One subprocess (``tests/cli_batch.py --audit``) installs an audit hook
(``sys.addaudithook``) before importing caffe2ncs, then runs through the real
CLI entry point ``info``, ``check`` and ``build`` of every corpus network and
every case of the bad-input catalogue (``tests/bad_inputs/expected.toml``:
``info``/``check``/``build``/``inspect``/``run``), recording per case every
``open``, ``import``, ``compile``/``exec``, process start and socket.  Then,
for each case:

* every file opened is one given on the command line (read, or written as the
  ``-o`` output and its temporary file), the caffemodel ``build`` documents it
  looks for beside the prototxt when none is given, or a file of Python itself
  (the standard library, site-packages) or of the caffe2ncs package (lazy
  imports) - so a ``mean_file``, ``source`` or ``include``-like path naming
  ``/etc/passwd`` is never opened;
* no process is started (``os.system``, ``subprocess``, ``exec*``, ``spawn*``,
  ``fork``) and no socket is made;
* no module named in a model file (a ``Python`` layer's ``module:``) is
  imported, and no code from a model file is compiled: the catalogue's Python
  layers name ``os.system`` with ``touch /tmp/caffe2ncs-was-here`` and a
  module ``caffe2ncs_bad_input_probe`` that exists on the path for this test
  and would leave a marker file if it were ever imported.
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, corpus_files

HERE = Path(__file__).resolve().parent
CATALOGUE = HERE / "bad_inputs"
PROBE = "caffe2ncs_bad_input_probe"
MARKER_TEXT = "caffe2ncs-was-here"


def _python_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"],
             sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    roots.add(str(REPO / "caffe2ncs"))
    return sorted(os.path.realpath(r) + os.sep for r in roots if r)


def _cases(tmp: Path) -> list[list[str]]:
    cases: list[list[str]] = []
    for i, net in enumerate(corpus_files()):
        cases.append(["info", str(net)])
        cases.append(["check", "--isolated", str(net)])
        cases.append(["build", "--isolated", "--force", "-o", str(tmp / f"corpus{i}.graph"), str(net)])
    for i, case in enumerate(tomllib.loads((CATALOGUE / "expected.toml").read_text())["case"]):
        out = tmp / f"case{i}"
        out.mkdir()
        cases.append([a.replace("{file}", str(CATALOGUE / case["file"]))
                      .replace("{dir}", str(CATALOGUE)).replace("{tmp}", str(out))
                      for a in case["args"]])
    return cases


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    probe_dir = tmp_path_factory.mktemp("probe")
    marker = probe_dir / "imported"
    # A module a model file names: if anything ever imports it, it says so.
    (probe_dir / f"{PROBE}.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Probe: pass\n")
    cases = _cases(tmp)
    env = dict(os.environ, PYTHONPATH=str(probe_dir))
    proc = subprocess.run([sys.executable, str(HERE / "cli_batch.py"), "--audit"],
                          input=json.dumps(cases), capture_output=True, text=True,
                          errors="replace", cwd=tmp, env=env, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for graph in tmp.glob("corpus*.graph"):  # 2.8 GB of them, and only their opening counts
        graph.unlink()
    return json.loads(proc.stdout), marker


def _allowed_opens(args: list[str]) -> tuple[set[str], list[tuple[str, str]]]:
    """Exact paths, and (folder, name pattern) pairs for temporary files."""
    exact: set[str] = set()
    patterns: list[tuple[str, str]] = []
    for i, a in enumerate(args):
        if a.startswith("-") or i == 0:
            continue
        real = os.path.realpath(a)
        exact.add(real)
        folder, name = os.path.split(real)
        # build's output written atomically: OUT.tmp<pid>; fix: .NAME.<random>.caffe2ncs-tmp
        patterns.append((folder, re.escape(name) + r"\.tmp\d+"))
        patterns.append((folder, r"\." + re.escape(name) + r"\..*\.caffe2ncs-tmp"))
    if args[0] == "build":
        files = [a for a in args[1:] if not a.startswith("-")]
        given = [a for j, a in enumerate(args) if j > 0 and not a.startswith("-")
                 and args[j - 1] not in ("-o", "--output", "--target", "-s", "--shaves", "--name",
                                         "--random-weights", "--config")]
        if len(given) == 1 and files:
            # documented: "default: <prototxt name>.caffemodel next to it, if there is one"
            exact.add(os.path.realpath(os.path.splitext(given[0])[0] + ".caffemodel"))
    return exact, patterns


def test_only_the_given_files_are_opened(audited):
    results, _ = audited
    roots = _python_roots()
    bad = []
    for r in results:
        exact, patterns = _allowed_opens(r["args"])
        for kind, *rest in r["events"]:
            if kind != "open":
                continue
            path = os.path.realpath(rest[0])
            if path in exact or any(path.startswith(root) for root in roots):
                continue
            folder, name = os.path.split(path)
            if any(folder == f and re.fullmatch(p, name) for f, p in patterns):
                continue
            bad.append(f"{' '.join(r['args'])}: opened {rest[0]} ({rest[1]})")
    assert not bad, "\n".join(bad[:30])


def test_no_process_and_no_socket(audited):
    results, _ = audited
    bad = [f"{' '.join(r['args'])}: {e}" for r in results for e in r["events"]
           if e[0] in ("process", "socket")]
    assert not bad, "\n".join(bad[:30])


def _modules_named(args: list[str]) -> set[str]:
    names = {PROBE, "system"}
    for a in args:
        if a.endswith(".prototxt") and os.path.isfile(a):
            text = Path(a).read_text(errors="replace")
            for m in re.finditer(r"\bmodule\s*:\s*[\"']([^\"']+)[\"']", text):
                names.add(m.group(1))
    return names


def test_no_module_named_in_a_model_is_imported(audited):
    results, marker = audited
    assert not marker.exists(), "the probe module named by a Python layer was imported"
    assert not os.path.exists(f"/tmp/{MARKER_TEXT}")
    bad = []
    checked = 0
    for r in results:
        named = _modules_named(r["args"])
        checked += len(named) > 2
        for kind, *rest in r["events"]:
            if kind == "import" and (rest[0] in named - {"os"} or rest[0].split(".")[0] == PROBE):
                bad.append(f"{' '.join(r['args'])}: imported {rest[0]}")
    assert checked >= 4  # the catalogue's Python layers (and those of the corpus) were seen
    assert not bad, "\n".join(bad)


def test_no_code_from_a_model_is_compiled(audited):
    results, _ = audited
    bad = []
    for r in results:
        for kind, *rest in r["events"]:
            if kind in ("compile", "exec") and any(MARKER_TEXT in x or PROBE in x for x in rest):
                bad.append(f"{' '.join(r['args'])}: {kind} {rest}")
    assert not bad, "\n".join(bad)


def test_every_case_ran(audited):
    results, _ = audited
    assert len(results) == 3 * len(corpus_files()) + len(
        tomllib.loads((CATALOGUE / "expected.toml").read_text())["case"])
    assert all("Traceback" not in r["stderr"] for r in results)
    # the hook saw what it should: the files given were opened
    opened = {os.path.realpath(e[1]) for r in results for e in r["events"] if e[0] == "open"}
    assert os.path.realpath(CATALOGUE / "tiny.prototxt") in opened
    assert os.path.realpath(CATALOGUE / "tiny-ncsdk2.graph") in opened
