"""Building blocks for fixes: text edits that touch only what must change.

Every helper returns :class:`~caffe2ncs.rules.base.Edit` objects on offsets of
the original text; nothing here re-serialises protobuf, so comments, blank
lines, indentation, quote style and line endings outside the edited spans
survive byte for byte.  When a fix deletes a block that contains comments,
the comments are kept (moved to where the block was), so no line the user
wrote as a comment is ever lost.
"""

from __future__ import annotations

import re

from ..model.net import Layer, Net
from ..model.textformat import Node, quote
from ..rules.base import Edit

_COMMENT_OR_STRING = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|(#[^\n]*)")


def line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def line_end(text: str, offset: int) -> int:
    """Offset of the line's terminating ``\\n`` (or the end of the text)."""
    i = text.find("\n", offset)
    return len(text) if i < 0 else i


def newline_of(text: str) -> str:
    i = text.find("\n")
    return "\r\n" if i > 0 and text[i - 1] == "\r" else "\n"


def indentation(text: str, offset: int) -> str:
    start = line_start(text, offset)
    i = start
    while i < len(text) and text[i] in " \t":
        i += 1
    return text[start:i]


def indent_unit(text: str) -> str:
    """The file's indentation step: a tab if it indents with tabs, else the
    smallest run of spaces used (2 if none)."""
    widths = []
    for m in re.finditer(r"^([ \t]+)\S", text, re.MULTILINE):
        lead = m.group(1)
        if "\t" in lead:
            return "\t"
        widths.append(len(lead))
    return " " * (min(widths) if widths else 2)


def comments_in(text: str, start: int, end: int) -> list[str]:
    """The ``#`` comments inside ``[start, end)`` (not counting ``#`` in strings)."""
    return [m.group(1) for m in _COMMENT_OR_STRING.finditer(text, start, end) if m.group(1)]


def delete_node(text: str, node: Node, keep_comments: bool = True) -> Edit:
    """Delete a field (or a whole block).  When it occupies its lines alone the
    lines go too; comments inside it are kept at the same indentation."""
    start, end = node.start, node.end
    # a separator right after the field belongs to it
    j = end
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] in ",;":
        end = j + 1
    ls = line_start(text, start)
    le = line_end(text, end)
    before = text[ls:start]
    after = text[end:le]
    kept = comments_in(text, start, end) if keep_comments else []
    after_stripped = after.strip().rstrip("\r")
    indent = before if not before.strip() else indentation(text, start)
    nl = newline_of(text)
    if not before.strip() and (not after_stripped or after_stripped.startswith("#")):
        if after_stripped.startswith("#"):
            kept.append(after_stripped)
        stop = le + 1 if le < len(text) else le
        if stop == len(text) and le == len(text) and ls > 0:
            # last line without a newline: remove the newline before it instead
            prev = ls - 1
            if prev > 0 and text[prev - 1] == "\r":
                prev -= 1
            if not kept:
                return Edit(prev, le)
        replacement = "".join(f"{indent}{c}{nl}" for c in kept)
        if stop == len(text) and le == len(text) and replacement:
            replacement = replacement[: -len(nl)]
        return Edit(ls, stop, replacement)
    # something else shares the line: remove the field and one run of spaces
    s = start
    if after_stripped == "" or after_stripped.startswith("#"):
        while s > ls and text[s - 1] in " \t":
            s -= 1
    else:
        while end < le and text[end] in " \t":
            end += 1
    extra = "".join(f" {c}" for c in kept)
    return Edit(s, end, extra)


def requote(raw: str, value: str) -> str:
    """``value`` as a literal in the quote style of ``raw``."""
    q = quote(value)
    if raw[:1] == "'":
        inner = q[1:-1].replace('\\"', '"').replace("'", "\\'")
        return f"'{inner}'"
    return q


def replace_value(node: Node, raw: str) -> Edit:
    return Edit(node.vstart, node.end, raw)


def set_string(node: Node, value: str) -> Edit:
    """Set a string field to ``value``, in its quote style.  A value written as
    adjacent literals (``"a" "b"``, which protobuf joins), perhaps with comments
    between them, keeps the comments and the spacing: the first literal takes
    the new value and the others go."""
    raw = node.value
    literals = [m for m in _COMMENT_OR_STRING.finditer(raw) if m.group(1) is None]
    if len(literals) <= 1:
        return Edit(node.vstart, node.end, requote(raw, value))
    out, at = [], 0
    for i, m in enumerate(literals):
        out.append(raw[at:m.start()])
        if i == 0:
            out.append(requote(m.group(0), value))
        at = m.end()
    out.append(raw[at:])
    return Edit(node.vstart, node.end, "".join(out))


def insert_line_after(text: str, node: Node, line: str) -> Edit:
    """Insert ``line`` (without indentation) on a new line after ``node``, indented
    like it."""
    le = line_end(text, node.end)
    nl = newline_of(text)
    indent = indentation(text, node.start)
    if text[node.end:le].strip().rstrip("\r").startswith("#") or not text[node.end:le].strip():
        at = le
        if at > 0 and text[at - 1] == "\r":
            at -= 1
        return Edit(at, at, f"{nl}{indent}{line}")
    return Edit(node.end, node.end, f" {line}")


def blob_references(net: Net, blob: str, start_layer: int = 0, stop_layer: int | None = None,
                    bottoms: bool = True, tops: bool = True) -> list[Node]:
    """The ``bottom:``/``top:`` nodes naming ``blob`` in layers
    ``[start_layer, stop_layer)``, in file order."""
    out: list[Node] = []
    layers = net.layers[start_layer:stop_layer]
    for layer in layers:
        for kind, names in (("bottom", layer.bottoms if bottoms else ()),
                            ("top", layer.tops if tops else ())):
            for i, name in enumerate(names):
                if name == blob:
                    node = layer.locate(kind, i)
                    if node is not None:
                        out.append(node)
    return out


def rename_reads(net: Net, layers: list[Layer], blob: str, new: str) -> list[Edit]:
    """Edits making each of ``layers`` read ``new`` where it read ``blob``."""
    edits = []
    for layer in layers:
        for i, name in enumerate(layer.bottoms):
            if name == blob:
                node = layer.locate("bottom", i)
                if node is not None:
                    edits.append(set_string(node, new))
    return edits
