"""Check a parsed prototxt against the Caffe schema and build protobuf messages.

The walk is driven by the message descriptors of our ``caffe.proto`` (see
``proto/``), so it knows every field's type, whether it repeats, enum values
and defaults.  Values are converted exactly as protobuf's C++ text parser
(which Caffe, OpenCV and the NCSDK use) converts them; a value that parser
would reject is a :class:`~caffe2ncs.errors.PrototxtSyntaxError` with the line
and column.  Field names (and enum value names) the schema does not know are
*not* errors here: they are collected as :class:`Unknown` records for the
linter to report (the NCSDK's Caffe would refuse them, but the rest of the
network still deserves to be checked), and are otherwise skipped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ..errors import PrototxtSyntaxError
from .source import SourceText
from .textformat import (_IDENT, _WORD, _WS, MAX_DEPTH, Document, Node, _LazyNode, parse,
                         raw_fields, unquote)


@dataclass(frozen=True, slots=True)
class Unknown:
    """A field (or enum value) the schema does not know."""

    node: Node
    message_type: str  # the protobuf message the field appeared in, e.g. "LayerParameter"
    reason: str  # "field" or "enum value"


def is_repeated(fd: FieldDescriptor) -> bool:
    """Whether a field repeats (protobuf 7 removed ``label``; 4.x lacks ``is_repeated``)."""
    try:
        return fd.is_repeated
    except AttributeError:
        return fd.label == FieldDescriptor.LABEL_REPEATED


_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1, "int32"),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1, "int32"),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1, "int32"),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1, "int64"),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1, "int64"),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1, "int64"),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1, "uint32"),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1, "uint32"),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1, "uint64"),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1, "uint64"),
}
_FLOAT_TYPES = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)
_DEC_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_HEX_INT = re.compile(r"-?0[xX][0-9A-Fa-f]+\Z")
_OCT_INT = re.compile(r"-?0[0-7]+\Z")
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?)[fF]?\Z")
_FLOAT_WORDS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}
_BOOLS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False,
          "True": True, "False": False}
_FLOAT32_MAX = 3.4028234663852886e38


def parse_int(raw: str) -> int | None:
    if _DEC_INT.match(raw):
        return int(raw)
    if _HEX_INT.match(raw):
        return int(raw, 16)
    if _OCT_INT.match(raw):
        return int(raw, 8)
    return None


def parse_float(raw: str) -> float | None:
    """A float as protobuf's text parser reads it: decimal/exponent forms with an
    optional ``f`` suffix, and ``inf``/``infinity``/``nan`` in any case."""
    if _FLOAT.match(raw):
        return float(raw.rstrip("fF"))
    neg = raw.startswith("-")
    value = _FLOAT_WORDS.get((raw[1:] if neg else raw).lower())
    if value is None:
        return None
    return -value if neg else value


class _FieldInfo:
    __slots__ = ("name", "fd", "repeated", "message", "convert", "enum_values", "enum_names",
                 "string")

    def __init__(self, fd: FieldDescriptor) -> None:
        self.name = fd.name
        self.fd = fd
        self.repeated = is_repeated(fd)
        self.string = fd.type == FieldDescriptor.TYPE_STRING
        self.message = fd.message_type if fd.type == FieldDescriptor.TYPE_MESSAGE else None
        self.enum_values = None
        self.enum_names = None
        if fd.type == FieldDescriptor.TYPE_ENUM:
            self.enum_values = {v.name: v.number for v in fd.enum_type.values}
            self.enum_names = {v.number: v.name for v in fd.enum_type.values}
        self.convert = None if self.message is not None else _converter(self)


class Converter:
    """Builds protobuf messages from :class:`Node` trees for one schema."""

    def __init__(self) -> None:
        self._fields: dict[Descriptor, dict[str, _FieldInfo]] = {}

    def fields(self, desc: Descriptor) -> dict[str, _FieldInfo]:
        table = self._fields.get(desc)
        if table is None:
            table = {fd.name: _FieldInfo(fd) for fd in desc.fields}
            self._fields[desc] = table
        return table

    def message(self, cls, nodes: list[Node], source: SourceText, unknown: list[Unknown]):
        """A new message of class ``cls`` with the fields of ``nodes`` (the
        children of a message node)."""
        return cls(**self.values(cls.DESCRIPTOR, nodes, source, unknown))

    def fill(self, msg, nodes: list[Node], source: SourceText, unknown: list[Unknown]) -> None:
        """Set the fields of ``msg`` from ``nodes`` (merged into what it has)."""
        msg.MergeFrom(self.message(type(msg), nodes, source, unknown))

    def values(self, desc: Descriptor, nodes: list, source: SourceText,
               unknown: list[Unknown], owner: Node | None = None) -> dict:
        """The fields of ``nodes`` as keyword arguments for the message class of
        ``desc``: scalars converted, sub-messages as dicts, repeated fields as
        lists.  Building dicts in Python and the messages in one constructor
        call (in protobuf's C code) is ~2x faster than setting each field.

        ``nodes`` may be a fast-path node's raw fields (``raw_fields(owner)``,
        scalars as tuples); ``owner`` is then their message node, whose real
        Node is looked up for an unknown field."""
        table = self._fields.get(desc) or self.fields(desc)
        out: dict = {}
        for node in nodes:
            if node.__class__ is tuple:  # a scalar field from the fast path
                name, start, vstart, end, raw = node
                info = table.get(name)
                if info is None:
                    unknown.append(Unknown(_node_of(owner, nodes, node), desc.name, "field"))
                    continue
                if info.string:
                    # the fast path's strings are one literal without escapes
                    if raw[0] in "\"'" and raw.isascii():
                        value = raw[1:-1]
                    else:
                        value = info.convert(raw, name, vstart, source)
                elif info.message is not None:
                    _fail(source, vstart, f"'{name}' is a message ({info.message.name}); "
                          f"expected '{{' but found {raw!r}")
                else:
                    value = info.convert(raw, name, vstart, source)
                    if value is _UNKNOWN_ENUM:
                        unknown.append(Unknown(_node_of(owner, nodes, node), desc.name,
                                               "enum value"))
                        continue
            else:
                name = node.name
                info = table.get(name)
                if info is None:
                    unknown.append(Unknown(node, desc.name, "field"))
                    continue
                sub = node._raw if node.__class__ is _LazyNode else node.children
                if info.message is not None:
                    if sub is None:
                        _fail(source, node.vstart,
                              f"'{name}' is a message ({info.message.name}); expected '{{' "
                              f"but found {node.value!r}")
                    value = self.values(info.message, sub, source, unknown, node)
                    start = node.start
                else:
                    if sub is not None:
                        _fail(source, node.vstart,
                              f"'{name}' is {_a(_type_name(info.fd))}, not a message")
                    start, raw = node.start, node.value
                    if info.string and raw[0] == '"' and raw[-1] == '"' and "\\" not in raw \
                            and raw.count('"') == 2 and raw.isascii():
                        value = raw[1:-1]  # a plain string
                    else:
                        value = info.convert(raw, name, node.vstart, source)
                        if value is _UNKNOWN_ENUM:
                            unknown.append(Unknown(node, desc.name, "enum value"))
                            continue
            _store(out, name, value, info.repeated, start, source, desc)
        return out

    def scalar(self, info: _FieldInfo, node: Node, source: SourceText):
        return info.convert(node.value, node.name, node.vstart, source)


    def document(self, source: SourceText, desc: Descriptor,
                 unknown: list[Unknown]) -> tuple[Document, dict]:
        """Parse ``source`` and convert it for the message ``desc``:
        ``(parse(source), values(desc, ...))``, in one pass over the tokens when
        the text sticks to the fast path's syntax and is valid (see
        :meth:`_one_pass`), else in those two steps, which report the first
        problem exactly as they always do."""
        found: list[Unknown] = []
        try:
            done = self._one_pass(source, desc, found)
        except PrototxtSyntaxError:
            done = None  # the two steps below say what is wrong, and where first
        if done is not None:
            unknown.extend(found)
            return done
        doc = parse(source)
        return doc, self.values(desc, raw_fields(doc.root), source, unknown, doc.root)

    def _one_pass(self, source: SourceText, desc: Descriptor,
                  unknown: list[Unknown]) -> tuple[Document, dict] | None:
        """textformat._parse_simple and :meth:`values` fused: the same tree and
        the same values, walking the tokens of the text once instead of twice
        (and without a call per message), and most blocks without walking
        their tokens at all (see :class:`_Walk`).  None when the text needs
        the full parser; raises PrototxtSyntaxError on a bad value (the caller
        then lets the two steps report it, in their order)."""
        text = source.text
        root = _LazyNode("", 0, 0, len(text), [])
        out: dict = {}
        pending: list[tuple[Node, object, str, str]] = []  # unknowns, resolved at the end
        walk = _Walk(self, source)
        table = self._fields.get(desc) or self.fields(desc)
        if not walk.walk(_ONE_PASS_BLOCKS, text, 0, len(text), root, desc, table, out, pending, 0):
            return None
        for owner, item, message_type, reason in pending:
            found = item if item.__class__ is not tuple else \
                _node_of(owner, owner._raw, item)  # type: ignore[attr-defined]
            unknown.append(Unknown(found, message_type, reason))
        return Document(root, source), out


class _Walk:
    """One document's pass of :meth:`Converter._one_pass`.

    A network repeats a few kinds of layer: once their strings (names, types,
    bottoms and tops) are cut out, ResNet-152's 670 ``layer`` blocks come down
    to 24 different texts.  So a block whose text is simple (at most one
    block nested in it, only plain double-quoted strings: _BLOCK) is not walked
    token by token.  Its text is cut at its strings; the pieces between them,
    which hold every field name, number, brace, comment and space, are the
    key of a *template*, made the first time that key is seen by walking the
    block once with each string replaced by a marker.  The block's values are
    then the template's with this block's strings put where the markers were,
    and its node reads its fields off the text only when something asks.

    This is exact, not a guess: with the same pieces between the strings, the
    tokens are the same whatever the strings hold (a plain string cannot end
    early or escape), and a string field's value is its text.  A template is
    only made when every marker came back as a whole string value, once, and
    nothing in the block was unknown to the schema; other blocks are walked
    token by token every time."""

    __slots__ = ("conv", "source", "memo", "templates")

    def __init__(self, conv: Converter, source: SourceText) -> None:
        self.conv = conv
        self.source = source
        self.memo: dict = {}  # (field, token) -> value, for this document
        self.templates: dict = {}  # (message, pieces between strings) -> template

    def walk(self, pattern: re.Pattern, text: str, start: int, end: int, root: Node,
             desc: Descriptor, table: dict | None, out: dict, pending: list, depth: int) -> bool:
        """Walk the fields of ``text[start:end]`` into the message node ``root``
        (its raw list) and ``out`` (its values), for message ``desc`` whose
        fields are ``table`` (None: a message the schema does not know), at
        nesting ``depth``.  False where the fast path gives up."""
        conv = self.conv
        source = self.source
        raw = root._raw  # type: ignore[attr-defined]
        append = raw.append
        node: Node = root
        fields = conv._fields
        memo = self.memo
        templates = self.templates
        stack: list[tuple] = []
        push = stack.append
        new_node = _LazyNode
        split = _STRINGS.split
        limit = MAX_DEPTH - depth
        pos = start
        for ws, block, name, sep, plain, value, bsep, other in pattern.findall(text, start, end):
            pos += len(ws)
            if block:  # a whole simple block: name { ... }
                template = None
                if table is not None and len(stack) + 2 <= limit:
                    # Without a comment every quote in a simple block is a plain
                    # string's, and str.split cuts as _STRINGS does, 10x cheaper.
                    pieces = split(block) if "#" in block else block.split('"')
                    key = (desc, *pieces[::2])
                    template = templates.get(key)
                    if template is None:
                        template = templates[key] = self.template(block, pieces, table, desc,
                                                                  depth + len(stack))
                if template is None or template is _NO_TEMPLATE:
                    if not self.walk(_ONE_PASS, text, pos, pos + len(block), node, desc, table,
                                     out, pending, depth + len(stack)):
                        return False
                else:
                    fname, repeated, (base, strings, ones, rest), rel_vstart = template
                    slots = pieces[1::2]
                    value = base.copy()  # _instantiate(), inlined
                    for key, slot in strings:
                        value[key] = slots[slot]
                    for key, slot in ones:
                        value[key] = [slots[slot]]
                    if rest:
                        _fill(value, base, rest, slots)
                    _store(out, fname, value, repeated, pos, source, desc)
                    append(new_node(fname, pos, pos + rel_vstart, pos + len(block), None, text))
                pos += len(block)
            elif sep:  # name: value  (plain: a "string" of printable ASCII, no escapes)
                # (This and the next branch inline _store: they run per token.)
                if plain:
                    value = plain
                vstart = pos + len(name) + len(sep)
                stop = vstart + len(value)
                item = (name, pos, vstart, stop, value)
                append(item)
                pos = stop
                if table is None:
                    continue  # inside a message the schema does not know
                info = table.get(name)
                if info is None:
                    pending.append((node, item, desc.name, "field"))
                    continue
                if info.string:
                    converted = plain[1:-1] if plain else \
                        info.convert(value, name, vstart, source)
                else:
                    # "1", "true", "MAX" recur all over a file: convert each once
                    key = (info, value)
                    converted = memo.get(key, _MISSING)
                    if converted is _MISSING:
                        if info.message is not None:
                            _fail(source, vstart, f"'{name}' is a message")
                        converted = memo[key] = info.convert(value, name, vstart, source)
                    if converted is _UNKNOWN_ENUM:
                        pending.append((node, item, desc.name, "enum value"))
                        continue
                if info.repeated:
                    items = out.get(name)
                    if items is None:
                        out[name] = [converted]
                    else:
                        items.append(converted)
                elif name in out:
                    _twice(name, pos, source, desc)
                else:
                    out[name] = converted
            elif name:  # name {
                vstart = pos + len(name) + len(bsep)
                child = new_node(name, pos, vstart, -1, [])
                append(child)
                push((node, raw, table, out, desc))
                if len(stack) > limit:
                    return False
                if table is not None:
                    info = table.get(name)
                    if info is None:
                        pending.append((node, child, desc.name, "field"))
                        table = None
                    elif info.message is None:
                        _fail(source, vstart, f"'{name}' is not a message")
                    else:
                        sub: dict = {}
                        if info.repeated:
                            items = out.get(name)
                            if items is None:
                                out[name] = [sub]
                            else:
                                items.append(sub)
                        elif name in out:
                            _twice(name, pos, source, desc)
                        else:
                            out[name] = sub
                        desc = info.message
                        table = fields.get(desc) or conv.fields(desc)
                        out = sub
                node = child
                raw = child._raw  # type: ignore[attr-defined]
                append = raw.append
                pos = vstart + 1
            elif other == "}":
                if not stack:
                    return False
                pos += 1
                node.end = pos
                node, raw, table, out, desc = stack.pop()
                append = raw.append
            elif other:
                return False  # anything outside the simple syntax (or name value, no colon)
            else:  # the end of the text
                break
        return not stack and pos == end

    def template(self, block: str, pieces: list[str], table: dict, desc: Descriptor,
                 depth: int):
        """The template for blocks cut into ``pieces`` like ``block`` (in a
        message ``desc``), or _NO_TEMPLATE.  Raises PrototxtSyntaxError where
        the block itself is wrong, as walking it would."""
        if _MARK in block:
            return _NO_TEMPLATE
        n = len(pieces) // 2
        marked = pieces[:]
        marked[1::2] = [f'"{_MARK}{i}{_MARK}"' for i in range(n)]  # (the cut took the quotes)
        marked = "".join(marked)
        # (An error in it is an error in the block: the caller lets the full
        # parser report it, so the offsets into ``marked`` are never shown.)
        root = _LazyNode("", 0, 0, len(marked), [])
        out: dict = {}
        pending: list = []
        if not self.walk(_ONE_PASS, marked, 0, len(marked), root, desc, table, out, pending, depth):
            return _NO_TEMPLATE
        if pending or len(out) != 1 or len(root._raw) != 1:  # type: ignore[attr-defined]
            return _NO_TEMPLATE
        (fname, value), = out.items()
        info = table[fname]
        if info.message is None:
            return _NO_TEMPLATE
        if info.repeated:
            value = value[0]
        seen = [0] * n
        skeleton = _compile(value, seen)
        if skeleton is None or any(c != 1 for c in seen):
            return _NO_TEMPLATE
        child = root._raw[0]  # type: ignore[attr-defined]
        return fname, info.repeated, skeleton, child.vstart - child.start


_NO_TEMPLATE = object()
_MARK = "\x7f"  # never in a plain string; a block with one elsewhere gets no template


def _compile(value: dict, seen: list[int]):
    """A template's skeleton for a message's values in which each string field
    written as the i-th string of the block holds the marker for i: the values
    with the markers' places noted (see _instantiate).  None if a marker is
    anywhere but a whole string value.  Parts without markers are shared by
    every block made from the template (the schema's values are read-only)."""
    strings, ones, rest = [], [], []
    for key, v in value.items():
        if v.__class__ in _CONSTANT:
            continue
        spec = _spec(v, seen)
        if spec is _BAD:
            return None
        if spec.__class__ is int:
            strings.append((key, spec))
        elif spec is not None:
            (ones if spec[0] == "one" else rest).append((key, spec[1] if spec[0] == "one" else spec))
    return value, tuple(strings), tuple(ones), tuple(rest)


_BAD = object()
_CONSTANT = frozenset({int, float, bool})  # values with no string in them


def _spec(v, seen: list[int]):
    """How to make a value: None (it is a constant), a slot number (the string
    of that slot), ("list", items), ("one", slot) for a list of one string, or
    ("dict", skeleton); _BAD for a marker out of place."""
    cls = v.__class__
    if cls is str:
        if _MARK not in v:
            return None
        parts = v.split(_MARK)
        if len(parts) != 3 or parts[0] or parts[2] or not parts[1].isdigit() \
                or int(parts[1]) >= len(seen):
            return _BAD
        slot = int(parts[1])
        seen[slot] += 1
        return slot
    if cls is dict:
        skeleton = _compile(v, seen)
        if skeleton is None:
            return _BAD
        return ("dict", skeleton) if any(skeleton[1:]) else None
    if cls is list:
        if not v or v[0].__class__ in _CONSTANT:  # (a repeated field's values are all of one type)
            return None
        items = [_spec(x, seen) for x in v]
        if _BAD in items:
            return _BAD
        if len(items) == 1 and items[0].__class__ is int:
            return ("one", items[0])
        dynamic = tuple((i, x) for i, x in enumerate(items) if x is not None)
        return ("list", dynamic) if dynamic else None
    if cls is bytes and _MARK.encode() in v:
        return _BAD
    return None


def _instantiate(skeleton, slots: list[str]) -> dict:
    """A template's values for one block whose strings are ``slots``.  The
    skeleton (see _compile) is the values with markers, then where strings go:
    (key, slot) for a string field, (key, slot) for a repeated one written
    once, and (key, spec) for the rest (see _spec).  The loader's hot loop
    inlines the first two (see _Walk.walk)."""
    base, strings, ones, rest = skeleton
    out = base.copy()
    for key, slot in strings:
        out[key] = slots[slot]
    for key, slot in ones:
        out[key] = [slots[slot]]
    if rest:
        _fill(out, base, rest, slots)
    return out


def _fill(out: dict, base: dict, rest: tuple, slots: list[str]) -> None:
    for key, spec in rest:
        if spec[0] == "dict":
            out[key] = _instantiate(spec[1], slots)
        else:  # a list with a string or values to make in it
            items = list(base[key])
            for i, x in spec[1]:  # a string's slot, or ("dict", skeleton)
                items[i] = slots[x] if x.__class__ is int else _instantiate(x[1], slots)
            out[key] = items


# _SIMPLE (see textformat) for the one pass: "name: value" needs its colon
# ("name value" lands in the last group: the full parser reports it), and a
# double-quoted string of printable ASCII without escapes - nearly every string
# of a real file - has a group of its own, which is its value between the quotes.
_PLAIN_STRING = r'"[ !#-\[\]-~]*+"'
_TOKENS = (
    rf"({_IDENT})(?:([ \t]*+:[ \t]*+)(?:({_PLAIN_STRING})|(\"[^\"\\\n]*+\"|'[^'\\\n]*+'|{_WORD}))"
    r"|([ \t]*+:?[ \t]*+)\{)"
    r"|(\}|\Z|[\s\S])"
)
# A simple block, whole: name { ... } holding at most one level of blocks, only
# plain double-quoted strings, comments, and no single quote or backslash
# outside them.  Its braces are then exactly the tokens' (a brace in a string
# or comment is skipped by both).  What it does not take is walked token by token.
# (_TEXT is [^{}"#'\\]*, quicker to match: runs of the usual characters first.)
_TEXT = r"[A-Za-z0-9_ \t\r\n:.+-]++|[^{}\"#'\\]"
_FLAT_BODY = rf'(?:{_TEXT}|{_PLAIN_STRING}|#[^\n]*+)*+'
_BLOCK = rf'{_IDENT}[ \t]*+:?[ \t]*+\{{(?:{_TEXT}|{_PLAIN_STRING}|#[^\n]*+|\{{{_FLAT_BODY}\}})*+\}}'
# Both have the groups ws, block, name, sep, plain, value, bsep, other; in
# _ONE_PASS the block group never matches.
_ONE_PASS = re.compile(rf"({_WS})(?:((?!))|{_TOKENS})")
_ONE_PASS_BLOCKS = re.compile(rf"({_WS})(?:({_BLOCK})|{_TOKENS})")
# Cuts a block at its plain strings (the pieces between them, and their contents).
_STRINGS = re.compile(r'"([ !#-\[\]-~]*+)"')


def _node_of(owner: Node | None, raw: list, item) -> Node:
    """The Node of a fast-path scalar tuple ``item`` of ``owner``'s raw fields."""
    for i, x in enumerate(raw):
        if x is item:
            return owner.children[i]  # type: ignore[union-attr]
    raise AssertionError("a field not among its message's")  # pragma: no cover


def _converter(info: _FieldInfo):
    """A function (node, source) -> value for one scalar field, converting as
    protobuf's C++ text parser does."""
    fd = info.fd
    t = fd.type

    def not_a_string(raw: str, name: str, vstart: int, source: SourceText) -> None:
        if raw[:1] in "\"'":
            _fail(source, vstart, f"'{name}' takes {_a(_type_name(fd))}, found the string {raw}")

    if t == FieldDescriptor.TYPE_STRING or t == FieldDescriptor.TYPE_BYTES:
        as_bytes = t == FieldDescriptor.TYPE_BYTES

        def convert_string(raw: str, name: str, vstart: int, source: SourceText):
            q = raw[0]
            if (q == '"' or q == "'") and raw[-1] == q and len(raw) > 1 and "\\" not in raw \
                    and raw.count(q) == 2 and raw.isascii():
                # the common case: one plain ASCII literal (unquote's fast path, inlined)
                return raw[1:-1].encode() if as_bytes else raw[1:-1]
            if raw[:1] not in "\"'":
                _fail(source, vstart,
                      f"'{name}' takes a quoted string, found {raw!r} (write \"{raw}\")")
            try:
                text = unquote(raw)
            except ValueError as err:
                _fail(source, vstart, f"bad string for '{name}': {err}")
            if as_bytes:
                return text.encode("utf-8", errors="surrogateescape")
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    _fail(source, vstart, f"'{name}' is not valid UTF-8")
            return text
        return convert_string

    if t in _INT_RANGES:
        lo, hi, type_name = _INT_RANGES[t]

        def convert_int(raw: str, name: str, vstart: int, source: SourceText):
            value = int(raw) if raw.isdigit() and (raw[0] != "0" or raw == "0") else parse_int(raw)
            if value is None:
                not_a_string(raw, name, vstart, source)
                _fail(source, vstart, f"'{name}' takes an integer ({type_name}), found {raw!r}")
            if not lo <= value <= hi:
                _fail(source, vstart,
                      f"{raw} is out of range for '{name}' ({type_name}: {lo} to {hi})")
            return value
        return convert_int

    if t in _FLOAT_TYPES:
        single = t == FieldDescriptor.TYPE_FLOAT

        def convert_float(raw: str, name: str, vstart: int, source: SourceText):
            value = parse_float(raw)
            if value is None:
                int_value = parse_int(raw)
                if int_value is None:
                    not_a_string(raw, name, vstart, source)
                    _fail(source, vstart, f"'{name}' takes a number, found {raw!r}")
                value = float(int_value)
            if single and math.isfinite(value) and abs(value) > _FLOAT32_MAX:
                value = math.copysign(math.inf, value)  # as protobuf's parser does
            return value
        return convert_float

    if t == FieldDescriptor.TYPE_BOOL:
        def convert_bool(raw: str, name: str, vstart: int, source: SourceText):
            value = _BOOLS.get(raw)
            if value is None:
                not_a_string(raw, name, vstart, source)
                _fail(source, vstart, f"'{name}' takes true or false, found {raw!r}")
            return value
        return convert_bool

    if t == FieldDescriptor.TYPE_ENUM:
        values, names = info.enum_values, info.enum_names

        def convert_enum(raw: str, name: str, vstart: int, source: SourceText):
            number = values.get(raw)
            if number is not None:
                return number
            not_a_string(raw, name, vstart, source)
            as_int = parse_int(raw)
            if as_int is not None:
                return as_int if as_int in names else _UNKNOWN_ENUM
            if not (raw[0].isalpha() or raw[0] == "_"):
                _fail(source, vstart, f"'{name}' takes one of {', '.join(values)}; found {raw!r}")
            return _UNKNOWN_ENUM
        return convert_enum

    raise AssertionError(f"unhandled field type {t}")  # pragma: no cover


_UNKNOWN_ENUM = object()
_MISSING = object()


def _store(out: dict, name: str, value, repeated: bool, start: int, source: SourceText,
           desc: Descriptor) -> None:
    """Put a field's value into its message's values (appended if it repeats;
    given twice when it does not, an error).  The walk's token loop inlines it."""
    if repeated:
        items = out.get(name)
        if items is None:
            out[name] = [value]
        else:
            items.append(value)
    elif name in out:
        _twice(name, start, source, desc)
    else:
        out[name] = value


def _twice(name: str, start: int, source: SourceText, desc: Descriptor):
    _fail(source, start, f"'{name}' is given twice in one {desc.name}, but it is not a repeated field")


def _type_name(fd: FieldDescriptor) -> str:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return f"enum {fd.enum_type.name}"
    for t, (_, _, name) in _INT_RANGES.items():
        if fd.type == t:
            return name
    return {
        FieldDescriptor.TYPE_FLOAT: "float",
        FieldDescriptor.TYPE_DOUBLE: "double",
        FieldDescriptor.TYPE_BOOL: "bool",
        FieldDescriptor.TYPE_STRING: "string",
        FieldDescriptor.TYPE_BYTES: "bytes",
    }.get(fd.type, "scalar")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeio" else f"a {noun}"  # "a uint32"


def _fail(source: SourceText, offset: int, message: str):
    line, col = source.line_col(offset)
    raise PrototxtSyntaxError(message, source.path, line, col)


CONVERTER = Converter()
