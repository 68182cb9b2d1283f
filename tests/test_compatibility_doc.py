"""``docs/compatibility.md`` (written by ``scripts/compatibility.py``) lists
every corpus network, and its findings columns agree with ``check`` today.

Regenerating the whole table takes minutes (every buildable network runs in
the emulator and the reference), so only the fast columns are compared."""

from __future__ import annotations

import re

import pytest

from conftest import REPO, corpus_files

DOC = REPO / "docs" / "compatibility.md"
ROW = re.compile(r"^\| `([^`]+)` \| (\d+|–) \| (\d+|–) \| ([^|]*) \|", re.MULTILINE)


def rows() -> dict[str, tuple[str, str, str]]:
    return {m.group(1): (m.group(2), m.group(3), m.group(4).strip())
            for m in ROW.finditer(DOC.read_text())}


def test_every_corpus_network_is_listed():
    files = corpus_files()
    if not files:
        pytest.skip("corpus not found")
    assert set(rows()) == {f.name for f in files}


def test_findings_columns_are_current():
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import compatibility

    files = corpus_files()
    if not files:
        pytest.skip("corpus not found")
    table = rows()
    for path in files:
        result, _ = compatibility.findings(path, "ncsdk2")
        errors, warnings, diags = result
        assert table[path.name] == (str(len(errors)), str(len(warnings)),
                                    compatibility.codes(diags) or "–"), path.name
