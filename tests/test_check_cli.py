"""``caffe2ncs check`` as users run it: real subprocess runs of the CLI.

Output formats (JSON fields, SARIF 2.1.0 validated against the official OASIS
schema, GitHub Actions workflow commands, concise, full with code frames,
statistics), exit codes, rule selection from the command line and from
``[tool.caffe2ncs]``, per-file ignores, inline suppressions, folders, ``-j``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, corpus_files

EXAMPLE = REPO / "examples" / "tinynet"
SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"

# what check finds in examples/tinynet/zoo_style.prototxt (code, line, column)
ZOO_FINDINGS = [("NCS104", 7, 3), ("NCS103", 8, 3), ("NCS102", 9, 26), ("NCS203", 88, 3),
                ("NCS440", 99, 3)]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A model folder: the zoo-style network (5 errors), the clean one, and a
    third in a sub-folder with a warning only (an untested 9x9 stride-1 conv)."""
    (tmp_path / "zoo.prototxt").write_bytes((EXAMPLE / "zoo_style.prototxt").read_bytes())
    clean = (EXAMPLE / "deploy.prototxt").read_text()
    (tmp_path / "clean.prototxt").write_text(clean)
    (tmp_path / "sub").mkdir()
    warn = clean.replace("num_output: 16 kernel_size: 3 pad: 1 bias_term: false",
                         "num_output: 16 kernel_size: 9 pad: 4 bias_term: false", 1)
    assert warn != clean
    (tmp_path / "sub" / "warn.prototxt").write_text(warn)
    (tmp_path / "notes.txt").write_text("not a model")
    return tmp_path


def findings(result) -> list[dict]:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


# ----------------------------------------------------------------------------- JSON


def test_json_fields_and_positions(cli, models):
    result = cli("check", "zoo.prototxt", "--format", "json", cwd=models)
    assert result.returncode == 1
    items = findings(result)
    assert [(f["code"], f["line"], f["column"]) for f in items] == ZOO_FINDINGS
    for f in items:
        assert {"code", "severity", "message", "file", "line", "column", "layer",
                "fixable"} <= set(f)
        assert f["severity"] in ("error", "warning", "info")
        assert f["file"] == "zoo.prototxt"
        assert f["line"] >= 1 and f["column"] >= 1  # 1-based
        assert isinstance(f["fixable"], bool)
    text = (models / "zoo.prototxt").read_text().splitlines()
    by_code = {f["code"]: f for f in items}
    # the column points at the flagged text itself
    assert text[9 - 1][26 - 1:].startswith("dim: 10")
    assert by_code["NCS102"]["layer"] == "input" and "10" in by_code["NCS102"]["message"]
    assert by_code["NCS203"]["layer"] == "drop"
    assert text[88 - 1][3 - 1:].startswith('top: "pool2_drop"')
    assert all(f["fixable"] for f in items)


def test_json_reports_an_unreadable_file_and_exits_2(cli, models):
    (models / "broken.prototxt").write_text('name: "x"\nlayer {\n  name: "a"\n')
    result = cli("check", ".", "--format", "json", cwd=models)
    assert result.returncode == 2
    items = json.loads(result.stdout)
    broken = [f for f in items if f["file"] == "broken.prototxt"]
    assert broken and broken[0]["severity"] == "error" and broken[0]["line"] >= 1
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- SARIF

_URI_REFERENCE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?[A-Za-z0-9\-._~%!$&'()*+,;=:@/?#]*$")


def validate_sarif(log: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(log), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    # jsonschema checks the "uri-reference" format only with optional
    # packages installed; check the artifact URIs here
    text = json.dumps(log)
    for uri in re.findall(r'"uri": "([^"]*)"', text):
        assert _URI_REFERENCE.match(uri), uri


def test_sarif_is_valid_and_matches_the_json(cli, models):
    sarif = cli("check", ".", "--format", "sarif", cwd=models)
    js = cli("check", ".", "--format", "json", cwd=models)
    assert sarif.returncode == js.returncode == 1
    log = json.loads(sarif.stdout)
    validate_sarif(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    items = findings(js)
    assert len(results) == len(items) == 6
    for res, item in zip(results, items):
        assert res["ruleId"] == item["code"]
        assert rules[res["ruleIndex"]]["id"] == item["code"]
        region = res["locations"][0]["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) == (item["line"], item["column"])
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == item["file"]
        assert res["level"] == {"error": "error", "warning": "warning", "info": "note"}[
            item["severity"]]
    assert {r["id"] for r in rules} == {i["code"] for i in items}
    assert "NCS301" in {r["id"] for r in rules}  # the warning in sub/warn.prototxt
    assert run["invocations"][0]["executionSuccessful"] is True


def test_sarif_fixes_reproduce_the_fix(cli, models):
    """The SARIF fix of a finding, applied by line/column, gives the same
    text as the fix itself (checked on the one-edit fixes)."""
    log = json.loads(cli("check", "zoo.prototxt", "--format", "sarif", cwd=models).stdout)
    validate_sarif(log)
    original = (models / "zoo.prototxt").read_text()
    lines = original.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    items = findings(cli("check", "zoo.prototxt", "--format", "json", cwd=models))
    checked = 0
    for res, item in zip(log["runs"][0]["results"], items):
        (fix,) = res["fixes"]
        (change,) = fix["artifactChanges"]
        assert change["artifactLocation"]["uri"] == "zoo.prototxt"
        assert len(change["replacements"]) == len(item["fix"]["edits"])
        for rep, edit in zip(change["replacements"], item["fix"]["edits"]):
            r = rep["deletedRegion"]
            start = starts[r["startLine"] - 1] + r["startColumn"] - 1
            end = starts[r["endLine"] - 1] + r["endColumn"] - 1
            assert (start, end) == (edit["start"], edit["end"])
            assert rep["insertedContent"]["text"] == edit["content"]
            checked += 1
    assert checked >= 5


def test_sarif_of_unreadable_files_and_odd_names_is_valid(cli, tmp_path):
    from caffe2ncs.model.source import MAX_PROTOTXT_BYTES

    (tmp_path / "my model, v2%.prototxt").write_text("layer { name: 'a' type: 'Input' "
                                                      "top: 'x' input_param { shape { dim: 4 } } }\n")
    (tmp_path / "broken.prototxt").write_text("layer {\n")  # a syntax error: a finding
    with open(tmp_path / "huge.prototxt", "wb") as f:  # refused unread: a notification
        f.truncate(MAX_PROTOTXT_BYTES + 1)
    result = cli("check", ".", "--format", "sarif", cwd=tmp_path)
    assert result.returncode == 2
    log = json.loads(result.stdout)
    validate_sarif(log)
    run = log["runs"][0]
    located = {(res["ruleId"], loc["physicalLocation"]["artifactLocation"]["uri"])
               for res in run["results"] for loc in res["locations"]}
    assert ("NCS999", "broken.prototxt") in located
    assert any(uri == "my%20model%2C%20v2%25.prototxt" for _, uri in located)
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "bytes" in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "huge.prototxt"


def test_sarif_of_the_whole_corpus_is_valid(cli, tmp_path):
    if not corpus_files():
        pytest.skip(f"corpus not found at {CORPUS}")
    result = cli("check", str(CORPUS), "--format", "sarif", "--select", "ALL", "-j", "2",
                 cwd=tmp_path)
    assert result.returncode in (1, 2), result.stderr
    log = json.loads(result.stdout)
    validate_sarif(log)
    run = log["runs"][0]
    assert len({r["id"] for r in run["tool"]["driver"]["rules"]}) >= 20
    # outside the working folder, files are file: URIs
    uri = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("file:///") and uri.endswith(".prototxt")


# ----------------------------------------------------------------------------- GitHub

_COMMAND = re.compile(r"^::(error|warning|notice) ([^:]*)::(.*)$")


def _unescape(text: str) -> str:
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":")
            .replace("%2C", ",").replace("%25", "%"))


def parse_github(output: str) -> list[tuple[str, dict, str]]:
    out = []
    for line in output.splitlines():
        m = _COMMAND.match(line)
        assert m, f"not a workflow command: {line!r}"
        props = {}
        for part in m.group(2).split(","):
            key, _, value = part.partition("=")
            props[key] = _unescape(value)
        out.append((m.group(1), props, _unescape(m.group(3))))
    return out


def test_github_annotations_match_the_json(cli, models):
    gh = cli("check", ".", "--format", "github", cwd=models)
    items = findings(cli("check", ".", "--format", "json", cwd=models))
    assert gh.returncode == 1
    commands = parse_github(gh.stdout)
    assert len(commands) == len(items) == 6
    level = {"error": "error", "warning": "warning", "info": "notice"}
    for (kind, props, message), item in zip(commands, items):
        assert kind == level[item["severity"]]
        assert props["file"] == item["file"]
        assert int(props["line"]) == item["line"] and int(props["col"]) == item["column"]
        assert int(props["endLine"]) == item["end_line"]
        assert int(props["endColumn"]) == item["end_column"]
        assert props["title"] == f"caffe2ncs ({item['code']})"
        assert message == f"{item['file']}:{item['line']}:{item['column']}: {item['code']} " \
                          f"{item['message']}"


def test_github_escapes_property_and_message_text(cli, tmp_path):
    name = "odd,name: 100%.prototxt"
    text = (EXAMPLE / "zoo_style.prototxt").read_text().replace(
        'name: "drop"', 'name: "drop, 50%: yes"')
    (tmp_path / name).write_text(text)
    result = cli("check", name, "--format", "github", cwd=tmp_path)
    raw = result.stdout
    assert "file=odd%2Cname%3A 100%25.prototxt" in raw
    commands = parse_github(raw)
    assert all(props["file"] == name for _, props, _ in commands)
    dropout = [m for _, _, m in commands if "NCS203" in m]
    assert dropout and "drop, 50%: yes" in dropout[0]
    assert "%25" in raw.split("NCS203", 1)[1].splitlines()[0]  # '%' escaped in the message too


def test_github_says_when_annotations_are_capped(cli, tmp_path):
    for i in range(12):
        shutil.copy(EXAMPLE / "zoo_style.prototxt", tmp_path / f"m{i:02}.prototxt")
    commands = parse_github(cli("check", ".", "--format", "github", cwd=tmp_path).stdout)
    assert sum(kind == "error" for kind, _, _ in commands) == 60
    assert commands[-1][0] == "notice" and "60 errors" in commands[-1][2]


# ----------------------------------------------------------------------------- text


def test_full_output_has_code_frames_and_a_summary(cli, models):
    result = cli("check", "zoo.prototxt", cwd=models)
    assert result.returncode == 1
    out = result.stdout
    assert "zoo.prototxt:9:26: error[NCS102]" in out
    # the frame shows the line with a caret under the flagged text
    frame = out.split("zoo.prototxt:9:26:", 1)[1].split("\n\n", 1)[0]
    line9 = next(line for line in frame.splitlines() if line.lstrip().startswith("9 |"))
    caret = next(line for line in frame.splitlines() if "^" in line)
    assert line9[caret.index("^"):].endswith("dim: 10 dim: 3 dim: 32 dim: 32 } }  # batch of 10")
    assert caret.count("^") == len("dim: 10")
    assert "Found 5 problems (5 errors) in 1 file. [*] 5 fixable with `caffe2ncs fix`." in out
    assert "\x1b[" not in out  # not a terminal: no colour


def test_colour_only_on_a_terminal(models):
    import pty
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(PYTHONPATH=str(REPO), TERM="xterm-256color", COLUMNS="120")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "caffe2ncs", "check", "zoo.prototxt"],
                              cwd=models, env=env, stdout=secondary, stderr=subprocess.PIPE,
                              timeout=60)
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
    assert proc.returncode == 1
    out = b"".join(chunks).decode()
    assert "\x1b[" in out and "NCS102" in out
    piped = subprocess.run([sys.executable, "-m", "caffe2ncs", "check", "zoo.prototxt"],
                           cwd=models, env=env, capture_output=True, text=True, timeout=60)
    assert "NCS102" in piped.stdout and "\x1b[" not in piped.stdout


def test_concise_and_quiet(cli, models):
    result = cli("check", "zoo.prototxt", "--format", "concise", cwd=models)
    lines = result.stdout.splitlines()
    assert lines[:5] == [line for line in lines[:5] if re.match(r"zoo\.prototxt:\d+:\d+: ", line)]
    assert [tuple(re.match(r"zoo\.prototxt:(\d+):(\d+): error\[(\w+)\]", line).group(3, 1, 2))
            for line in lines[:5]] == [(c, str(li), str(co)) for c, li, co in ZOO_FINDINGS]
    assert lines[-1].startswith("Found 5 problems")
    quiet = cli("check", "zoo.prototxt", "--format", "concise", "-q", cwd=models)
    assert quiet.stdout.splitlines() == lines[:5]


def test_statistics(cli, models):
    result = cli("check", ".", "--statistics", cwd=models)
    assert result.returncode == 1
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert {(r[0], r[1].split()[-1], r[2]) for r in rows} == {
        ("1", "NCS102", "batch-not-one"), ("1", "NCS103", "input-not-named-data"),
        ("1", "NCS104", "input-layer"), ("1", "NCS203", "dropout-not-in-place"),
        ("1", "NCS440", "output-name-mismatch"), ("1", "NCS301", "untested-conv-shape")}


def test_output_file(cli, models):
    result = cli("check", ".", "--format", "json", "-o", "report.json", cwd=models)
    assert result.returncode == 1 and result.stdout == ""
    assert len(json.loads((models / "report.json").read_text())) == 6


# ----------------------------------------------------------------------------- exit codes


def test_exit_codes(cli, models):
    assert cli("check", "clean.prototxt", cwd=models).returncode == 0
    ok = cli("check", "clean.prototxt", cwd=models)
    assert "All checks passed (1 file)." in ok.stdout
    assert cli("check", "sub/warn.prototxt", cwd=models).returncode == 0  # warnings only
    assert cli("check", "zoo.prototxt", cwd=models).returncode == 1
    assert cli("check", "zoo.prototxt", "--exit-zero", cwd=models).returncode == 0
    missing = cli("check", "nope.prototxt", cwd=models)
    assert missing.returncode == 2 and "nope.prototxt" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_option = cli("check", "--select", "NCS12345", "zoo.prototxt", cwd=models)
    assert bad_option.returncode == 2 and "NCS12345" in bad_option.stderr
    empty = models / "empty"
    empty.mkdir()
    assert cli("check", "empty", cwd=models).returncode == 2
    (models / "syntax.prototxt").write_text('name: "x"\nlayer {\n  name: "a" type: \n}\n')
    syntax = cli("check", "syntax.prototxt", cwd=models)
    assert syntax.returncode == 2
    assert re.search(r"syntax\.prototxt:\d+:\d+", syntax.stdout + syntax.stderr)
    assert "Traceback" not in syntax.stderr


# ----------------------------------------------------------------------------- selection


def codes(cli, *args, cwd) -> list[str]:
    return [f["code"] for f in findings(cli("check", *args, "--format", "json", cwd=cwd))]


def test_select_ignore_severity_on_the_command_line(cli, models):
    assert codes(cli, ".", "--select", "NCS1", cwd=models) == ["NCS104", "NCS103", "NCS102"]
    assert codes(cli, ".", "--select", "batch-not-one,NCS440", cwd=models) == ["NCS102", "NCS440"]
    assert codes(cli, ".", "--ignore", "NCS1,NCS440", cwd=models) == ["NCS203", "NCS301"]
    assert "NCS301" not in codes(cli, ".", "--severity", "error", cwd=models)
    assert codes(cli, ".", "--select", "NCS203", "--extend-select", "NCS301", cwd=models) == [
        "NCS203", "NCS301"]
    # opt-in rules run only when selected
    (models / "inplace.prototxt").write_text((EXAMPLE / "deploy.prototxt").read_text().replace(
        'top: "pool2_drop"', 'top: "pool2"'))
    assert "NCS204" not in codes(cli, "inplace.prototxt", cwd=models)


def test_pyproject_configuration(cli, models):
    (models / "pyproject.toml").write_text(
        '[tool.caffe2ncs]\n'
        'ignore = ["NCS440"]\n'
        'extend-select = ["NCS204"]\n'
        '[tool.caffe2ncs.per-file-ignores]\n'
        '"sub/*.prototxt" = ["NCS301"]\n'
        '[tool.caffe2ncs.severity-overrides]\n'
        'NCS203 = "warning"\n')
    items = findings(cli("check", ".", "--format", "json", cwd=models))
    assert [(f["file"], f["code"]) for f in items] == [
        ("zoo.prototxt", "NCS104"), ("zoo.prototxt", "NCS103"), ("zoo.prototxt", "NCS102"),
        ("zoo.prototxt", "NCS203")]
    assert items[-1]["severity"] == "warning"
    # the nearest pyproject.toml is used even when checking from elsewhere
    assert codes(cli, str(models / "zoo.prototxt"), cwd=models.parent) == [
        "NCS104", "NCS103", "NCS102", "NCS203"]
    # the command line wins: --select replaces, --isolated ignores the file
    assert codes(cli, "zoo.prototxt", "--select", "NCS440", cwd=models) == ["NCS440"]
    assert "NCS440" in codes(cli, "zoo.prototxt", "--isolated", cwd=models)
    # a nested project's own pyproject.toml applies below it
    (models / "sub" / "pyproject.toml").write_text('[tool.caffe2ncs]\nselect = ["NCS3"]\n')
    assert codes(cli, "sub/warn.prototxt", cwd=models) == ["NCS301"]
    # an error in the configuration is a usage error naming the file
    (models / "pyproject.toml").write_text('[tool.caffe2ncs]\nignore = ["NCS9999"]\n')
    bad = cli("check", "zoo.prototxt", cwd=models)
    assert bad.returncode == 2 and "NCS9999" in bad.stderr and "pyproject.toml" in bad.stderr


def test_exclude_when_walking_folders(cli, models):
    (models / "pyproject.toml").write_text('[tool.caffe2ncs]\nexclude = ["sub/**"]\n')
    files = {f["file"] for f in findings(cli("check", ".", "--format", "json", cwd=models))}
    assert files == {"zoo.prototxt"}


def test_inline_suppressions(cli, tmp_path):
    text = (EXAMPLE / "zoo_style.prototxt").read_text()
    lines = text.splitlines()
    assert lines[8].endswith("# batch of 10") and lines[84 - 1].strip() == "layer {"
    lines[8] = lines[8].replace("# batch of 10", "# caffe2ncs: ignore[NCS102] batch of 10")
    lines[83] = "layer {  # caffe2ncs: ignore[dropout-not-in-place]"  # the Dropout layer
    lines.insert(0, "# caffe2ncs: ignore-file[NCS440]")
    lines.insert(1, "# caffe2ncs: ignore[NCS301]")  # silences nothing: reported
    (tmp_path / "m.prototxt").write_text("\n".join(lines) + "\n")
    items = findings(cli("check", "m.prototxt", "--format", "json", cwd=tmp_path))
    assert [(f["code"], f["line"]) for f in items] == [("NCS001", 2), ("NCS104", 9),
                                                         ("NCS103", 10)]
    assert items[0]["severity"] == "warning" and items[0]["fixable"]


def test_folders_recursive_and_parallel_jobs_agree(cli, models):
    serial = cli("check", ".", "--format", "json", cwd=models)
    parallel = cli("check", ".", "--format", "json", "-j", "2", cwd=models)
    assert serial.stdout == parallel.stdout
    files = [f["file"] for f in json.loads(serial.stdout)]
    assert files == ["sub/warn.prototxt"] + ["zoo.prototxt"] * 5 or \
        sorted(set(files)) == ["sub/warn.prototxt", "zoo.prototxt"]


def test_parallel_jobs_on_the_corpus_agree_with_serial(cli, tmp_path):
    if not corpus_files():
        pytest.skip(f"corpus not found at {CORPUS}")
    serial = cli("check", str(CORPUS), "--format", "json", "--select", "ALL", cwd=tmp_path)
    parallel = cli("check", str(CORPUS), "--format", "json", "--select", "ALL", "-j", "2",
                   cwd=tmp_path)
    assert serial.returncode == parallel.returncode
    assert serial.stdout == parallel.stdout
    assert len({f["file"] for f in json.loads(serial.stdout)}) >= 50


def test_check_fix_alias(cli, models):
    result = cli("check", "--fix", "zoo.prototxt", cwd=models)
    assert "Fixed 5 problems in zoo.prototxt" in result.stdout
    assert result.returncode == 0  # nothing at error level is left
    assert cli("check", "zoo.prototxt", cwd=models).returncode == 0
