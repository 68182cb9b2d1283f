"""Inline suppression comments in prototxt files.

* ``# caffe2ncs: ignore[NCS301]`` (or ``ignore[NCS301, NCS105]``) at the end of
  a line silences those codes for findings on that line;
* the same comment on a layer's first line (the ``layer {`` line) silences them
  for every finding inside that layer;
* ``# caffe2ncs: ignore`` with no codes silences everything there;
* ``# caffe2ncs: ignore-file[NCS105]`` anywhere silences codes in the whole file.

A suppression that silences nothing is itself reported (NCS001), so stale
ones do not pile up; its fix deletes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..model.textformat import Document

_DIRECTIVE = re.compile(
    r"#\s*caffe2ncs\s*:\s*(?P<kind>ignore-file|ignore)\b\s*(?:\[(?P<codes>[^\]]*)\])?",
    re.IGNORECASE,
)
_CODE = re.compile(r"[A-Za-z]+[0-9]+|[a-z0-9]+(?:-[a-z0-9]+)+")


@dataclass
class Suppression:
    offset: int  # of the '#' of the comment
    end: int  # end of the directive text
    comment_end: int  # end of the whole comment
    line: int
    codes: tuple[str, ...]  # empty = every code
    file_wide: bool
    #: filled while filtering: the codes this directive actually silenced
    used: set[str] = field(default_factory=set)
    #: lines it covers (its own, plus a whole layer's when on a layer's first line)
    first_line: int = 0
    last_line: int = 0


def find_suppressions(doc: Document) -> list[Suppression]:
    """Every directive in the file's comments, with the lines each one covers."""
    out: list[Suppression] = []
    source = doc.source
    layer_lines: dict[int, int] = {}
    for node in doc.fields:
        if node.name in ("layer", "layers") and node.children is not None:
            first, _ = source.line_col(node.start)
            last, _ = source.line_col(max(node.end - 1, node.start))
            layer_lines[first] = last
    for offset, text in doc.comments():
        m = _DIRECTIVE.search(text)
        if m is None:
            continue
        codes = tuple(c.upper() if c[0].isalpha() and c[-1].isdigit() else c
                      for c in _CODE.findall(m.group("codes") or ""))
        line, _ = source.line_col(offset)
        sup = Suppression(offset, offset + m.end(), offset + len(text), line, codes,
                          m.group("kind").lower() == "ignore-file")
        sup.first_line = line
        sup.last_line = layer_lines.get(line, line)
        out.append(sup)
    return out


def silences(sup: Suppression, code: str, name: str, line: int) -> bool:
    if not sup.file_wide and not sup.first_line <= line <= sup.last_line:
        return False
    if sup.codes and code not in sup.codes and name not in sup.codes:
        return False
    sup.used.update((code, name))  # a directive may name the rule either way
    return True
