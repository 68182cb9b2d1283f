"""``caffe2ncs fix`` as users (and the pre-commit hook) run it: real CLI runs.

In-place atomic rewrites that keep permissions, line endings and BOM;
``--diff`` (writes nothing), ``-o``, ``--unsafe-fixes``; exit 1 when something
changed and 0 when nothing needed fixing; read-only files, missing or
unwritable folders and interrupted writes leave the original intact with a
clear message and exit 2.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from conftest import REPO

from caffe2ncs import fix

EXAMPLE = REPO / "examples" / "tinynet"


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    path = tmp_path / "zoo.prototxt"
    path.write_bytes((EXAMPLE / "zoo_style.prototxt").read_bytes())
    return path


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if "caffe2ncs-tmp" in p.name]


def test_fix_in_place_then_nothing_to_do(cli, zoo):
    original = zoo.read_text()
    os.chmod(zoo, 0o640)
    first = cli("fix", zoo.name, cwd=zoo.parent)
    assert first.returncode == 1, first.stderr
    assert first.stdout.strip() == "Fixed 5 problems in zoo.prototxt"
    fixed = zoo.read_text()
    assert fixed == fix(original)[0] != original
    assert stat.S_IMODE(zoo.stat().st_mode) == 0o640  # permissions kept
    assert not leftovers(zoo.parent)
    second = cli("fix", zoo.name, cwd=zoo.parent)
    assert second.returncode == 0 and second.stdout == ""
    assert zoo.read_text() == fixed
    # what is left is clean at error level
    assert cli("check", zoo.name, cwd=zoo.parent).returncode == 0


def test_show_fixes_lists_each_fix(cli, zoo):
    result = cli("fix", zoo.name, "--show-fixes", cwd=zoo.parent)
    listed = re.findall(r"^  (NCS\d+) ", result.stdout, re.M)
    assert sorted(listed) == ["NCS102", "NCS103", "NCS104", "NCS203", "NCS440"]


def test_diff_writes_nothing_and_exits_1(cli, zoo):
    original = zoo.read_bytes()
    mtime = zoo.stat().st_mtime_ns
    result = cli("fix", "--diff", zoo.name, cwd=zoo.parent)
    assert result.returncode == 1
    assert zoo.read_bytes() == original and zoo.stat().st_mtime_ns == mtime
    assert result.stdout.startswith("--- a/zoo.prototxt\n+++ b/zoo.prototxt\n@@ ")
    assert "Would fix 5 problems." in result.stderr
    # the diff, applied, gives the fixed file
    assert apply_unified_diff(original.decode(), result.stdout) == fix(original.decode())[0]
    # `check --diff` is the same
    assert cli("check", "--diff", zoo.name, cwd=zoo.parent).stdout == result.stdout
    # nothing to fix: no diff, exit 0
    clean = zoo.parent / "clean.prototxt"
    clean.write_bytes((EXAMPLE / "deploy.prototxt").read_bytes())
    none = cli("fix", "--diff", clean.name, cwd=zoo.parent)
    assert none.returncode == 0 and none.stdout == ""


def apply_unified_diff(text: str, diff: str) -> str:
    old = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    lines = diff.splitlines(keepends=True)[2:]
    i = 0
    while i < len(lines):
        m = re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", lines[i])
        assert m, lines[i]
        start = int(m.group(1)) - (0 if m.group(2) == "0" else 1)
        out += old[pos:start]
        pos = start
        i += 1
        while i < len(lines) and not lines[i].startswith("@@"):
            tag, body = lines[i][0], lines[i][1:]
            if tag == " ":
                assert old[pos] == body
                out.append(body)
                pos += 1
            elif tag == "-":
                assert old[pos] == body
                pos += 1
            elif tag == "+":
                out.append(body)
            i += 1
    return "".join(out + old[pos:])


def test_output_elsewhere(cli, zoo, tmp_path):
    original = zoo.read_text()
    out = tmp_path / "out" / "fixed.prototxt"
    out.parent.mkdir()
    result = cli("fix", zoo.name, "-o", str(out), cwd=zoo.parent)
    assert result.returncode == 1
    assert zoo.read_text() == original
    assert out.read_text() == fix(original)[0]
    both = cli("fix", zoo.name, zoo.name.replace("zoo", "zoo"), str(out), "-o", "x.prototxt",
               cwd=zoo.parent)
    assert both.returncode == 2 and "exactly one input file" in both.stderr


def test_unsafe_fixes_only_on_request(cli, tmp_path):
    text = (EXAMPLE / "deploy.prototxt").read_text().replace(
        'layer {\n  name: "conv1"', 'layer {\n  name: "loss"\n  type: "SoftmaxWithLoss"\n'
        '  bottom: "data"\n  top: "loss"\n}\nlayer {\n  name: "conv1"', 1)
    path = tmp_path / "train.prototxt"
    path.write_text(text)
    safe = cli("fix", path.name, cwd=tmp_path)
    assert safe.returncode == 0 and path.read_text() == text  # removing a loss is unsafe
    unsafe = cli("fix", "--unsafe-fixes", path.name, cwd=tmp_path)
    assert unsafe.returncode == 1
    assert "SoftmaxWithLoss" not in path.read_text()
    assert path.read_text() == fix(text, unsafe=True)[0]


def test_line_endings_and_bom_survive(cli, tmp_path):
    text = (EXAMPLE / "zoo_style.prototxt").read_text().replace("\n", "\r\n")
    path = tmp_path / "crlf.prototxt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert cli("fix", path.name, cwd=tmp_path).returncode == 1
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    body = data[3:].decode()
    assert body.count("\n") == body.count("\r\n") > 90
    assert body == fix(text)[0]


def test_symlink_is_followed_and_kept(cli, zoo):
    link = zoo.parent / "link.prototxt"
    link.symlink_to(zoo.name)
    original = zoo.read_text()
    assert cli("fix", link.name, cwd=zoo.parent).returncode == 1
    assert link.is_symlink() and zoo.read_text() == fix(original)[0]


def test_read_only_file_is_refused(cli, zoo):
    original = zoo.read_bytes()
    os.chmod(zoo, 0o444)
    try:
        result = cli("fix", zoo.name, cwd=zoo.parent)
    finally:
        os.chmod(zoo, 0o644)
    assert result.returncode == 2
    assert re.search(r"zoo\.prototxt.*read-only", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert zoo.read_bytes() == original and not leftovers(zoo.parent)


def test_output_into_a_missing_or_unwritable_folder(cli, zoo):
    original = zoo.read_bytes()
    missing = cli("fix", zoo.name, "-o", "no/such/folder/x.prototxt", cwd=zoo.parent)
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    # /proc refuses new files whoever we are (root included)
    proc = cli("fix", zoo.name, "-o", "/proc/caffe2ncs-test.prototxt", cwd=zoo.parent)
    assert proc.returncode == 2 and "cannot write" in proc.stderr, proc.stderr
    for result in (missing, proc):
        assert "Traceback" not in result.stderr
    assert zoo.read_bytes() == original


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_unwritable_folder():
    """A writable file in a folder the user may not write to: the rewrite
    (temporary file + rename) is impossible, which is said clearly and leaves
    the file alone.  Root may write anywhere, so when the tests run as root the
    rewrite runs in a forked child that has switched to the 'nobody' user
    (forked, not executed: the interpreter may live where 'nobody' cannot read)."""
    import shutil
    import tempfile

    from caffe2ncs.errors import InputFileError
    from caffe2ncs.fixes.write import write_atomically

    folder = Path(tempfile.mkdtemp(prefix="caffe2ncs-unwritable-"))
    path = folder / "m.prototxt"
    path.write_text("name: 'x'\n")
    os.chmod(path, 0o666)
    os.chmod(folder, 0o555)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.close(read)
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                try:
                    write_atomically(str(path), "new text\n")
                    message = "written"
                except InputFileError as err:
                    message = f"{type(err).__name__}: {err}"
                os.write(write, message.encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as f:
            message = f.read().decode()
        os.waitpid(pid, 0)
    finally:
        os.chmod(folder, 0o755)
        content = path.read_text()
        rest = sorted(p.name for p in folder.iterdir())
        shutil.rmtree(folder)
    assert message.startswith("InputFileError: "), message
    assert "cannot write in" in message and str(folder) in message
    assert "ermission denied" in message
    assert content == "name: 'x'\n" and rest == ["m.prototxt"]


def test_interrupted_write_leaves_the_original(zoo):
    """A failure after the temporary file is complete (here: raised just before
    the rename) leaves the original file as it was and no temporary file."""
    from caffe2ncs.errors import InputFileError
    from caffe2ncs.fixes.write import write_atomically

    original = zoo.read_bytes()
    seen = []

    def fail(tmp):
        seen.append(Path(tmp).read_bytes())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(zoo), "new text\n", _before_replace=fail)
    assert seen == [b"new text\n"]  # the temporary file was complete
    assert zoo.read_bytes() == original and not leftovers(zoo.parent)

    def disk_full(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(InputFileError, match="No space left"):
        write_atomically(str(zoo), "new text\n", _before_replace=disk_full)
    assert zoo.read_bytes() == original and not leftovers(zoo.parent)


def test_unreadable_input_exits_2_and_other_files_are_still_fixed(cli, zoo):
    bad = zoo.parent / "bad.prototxt"
    bad.write_text('name: "x"\nlayer {\n  name: "a"\n')
    result = cli("fix", ".", cwd=zoo.parent)
    assert result.returncode == 2
    assert re.search(r"bad\.prototxt:\d+:\d+: error:", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert bad.read_text() == 'name: "x"\nlayer {\n  name: "a"\n'
    assert "Fixed 5 problems in zoo.prototxt" in result.stdout


def test_fix_respects_selection(cli, zoo):
    result = cli("fix", zoo.name, "--select", "NCS102", cwd=zoo.parent)
    assert result.stdout.strip() == "Fixed 1 problem in zoo.prototxt"
    assert "dim: 1 dim: 3 dim: 32 dim: 32" in zoo.read_text()
    assert 'type: "Input"' in zoo.read_text()


def test_parallel_jobs_fix_the_same(cli, tmp_path):
    """-j 2 computes the fixes in worker processes; the files written, the
    messages and the exit code are those of -j 1."""
    runs = {}
    for jobs in ("1", "2"):
        folder = tmp_path / f"j{jobs}"
        folder.mkdir()
        for i in range(4):
            (folder / f"zoo{i}.prototxt").write_bytes((EXAMPLE / "zoo_style.prototxt").read_bytes())
        (folder / "clean.prototxt").write_bytes((EXAMPLE / "deploy.prototxt").read_bytes())
        (folder / "bad.prototxt").write_text("layer {\n")
        result = cli("fix", ".", "-j", jobs, cwd=folder)
        runs[jobs] = (result.returncode, result.stdout, result.stderr,
                      {p.name: p.read_bytes() for p in sorted(folder.iterdir())})
    assert runs["1"] == runs["2"]
    code, out, err, files = runs["2"]
    assert code == 2 and out.count("Fixed 5 problems") == 4 and "bad.prototxt" in err
    assert files["zoo3.prototxt"] == fix((EXAMPLE / "zoo_style.prototxt").read_text())[0].encode()
