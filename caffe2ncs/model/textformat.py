"""A position-keeping parser for the protobuf text format, as Caffe prototxts use it.

Python's protobuf has no parse-location output (C++'s ``ParseInfoTree`` is not
exposed), and re-serialising a message drops every comment.  So we parse the
text ourselves into a light concrete syntax tree of :class:`Node` objects that
know the exact span of each field name and value; :mod:`caffe2ncs.model.schema`
then checks that tree against the Caffe schema and builds protobuf messages.

What is accepted is what Caffe's (C++) text parser accepts and real files
contain: ``#`` comments, any whitespace including CRLF and tabs, single- or
double-quoted strings with C escapes and adjacent-literal concatenation,
``name: { … }`` and ``name { … }`` and ``name < … >``, ``name: [a, b]`` lists,
optional ``,``/``;`` separators, and a missing final newline.

The parser is one regular expression that swallows whitespace/comments as a
prefix of every token and recognises the common ``name: value`` and
``name {`` pairs in a single match; everything else goes through a small
generic state machine.  Files that use only the plain subset of the syntax
(almost all) take a faster path first (``_parse_simple``) that builds the
same tree.  Malformed input raises
:class:`~caffe2ncs.errors.PrototxtSyntaxError` with the line and column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import PrototxtSyntaxError
from .source import SourceText, Span

from ..limits import MAX_NESTING_DEPTH as MAX_DEPTH  # noqa: E402 - refused deeper

# Possessive quantifiers (*+, Python 3.11) never backtrack into what they
# matched; none of these ever needs to, and they make the scan ~25% faster.
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*+"
_STRING = r"\"(?:[^\"\\\n]|\\.)*+\"|'(?:[^'\\\n]|\\.)*+'"
_WORD = r"-?[A-Za-z0-9_.][A-Za-z0-9_.+-]*+"
_TOKEN = re.compile(
    r"[ \t\r\n\f\v]*+(?:#[^\n]*+[ \t\r\n\f\v]*+)*+"  # whitespace and comments before a token
    r"(?:"
    rf"({_IDENT})[ \t]*+:[ \t]*+({_STRING}|{_WORD})"  # 1, 2: name: value
    rf"|({_IDENT})[ \t]*+:?[ \t]*+([{{<])"  # 3, 4: name {   name: {   name <
    r"|([}>])"  # 5: end of a message
    rf"|({_STRING}|{_WORD})"  # 6: a lone name or value
    r"|([:\[\],;{<])"  # 7: punctuation
    r"|([\"'])"  # 8: a quote that starts no complete string
    r"|(\S)"  # 9: anything else
    r"|(\Z)"  # 10: end of text
    r")"
)
_CLOSER = {"{": "}", "<": ">"}

# The fast path: the subset of the syntax nearly every real file sticks to -
# "name: value" (plain strings without escapes, or words), "name {" /
# "name: {", "}" - each token captured with the whitespace and comments before
# it, so that findall() (no match objects) gives every offset by adding up
# lengths.  See _parse_simple.
_WS = r"[ \t\r\n\f\v]*+(?:#[^\n]*+[ \t\r\n\f\v]*+)*+"
_SIMPLE = re.compile(
    rf"({_WS})(?:"
    # name: value (and, for the caller to refuse, name value), or name { / name: {
    rf"({_IDENT})([ \t]*+:?[ \t]*+)(?:(\"[^\"\\\n]*+\"|'[^'\\\n]*+'|{_WORD})|\{{)"
    r"|(\}|\Z|[\s\S]))"  # }, the end (''), or anything else: findall() never skips a character
)
_COMMENT_OR_STRING = re.compile(rf"{_STRING}|(#[^\n]*)")


class Node:
    """One field occurrence in the text.

    ``name`` is the field name as written.  ``start`` is the offset of the name,
    ``end`` the offset just past the value (past the closing brace for a
    message).  For a scalar, ``value`` is the raw token text (quotes and
    escapes included; adjacent string literals joined with what separates them)
    and ``vstart`` its offset; ``children`` is ``None``.  For a message,
    ``children`` lists its fields in order, ``value`` is ``None`` and
    ``vstart`` is the offset of the opening brace.
    """

    __slots__ = ("name", "start", "vstart", "end", "value", "children")

    def __init__(self, name, start, vstart, end, value, children):
        self.name = name
        self.start = start
        self.vstart = vstart
        self.end = end
        self.value = value
        self.children = children

    @property
    def is_message(self) -> bool:
        return self.children is not None

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)

    @property
    def name_span(self) -> Span:
        return Span(self.start, self.start + len(self.name))

    @property
    def value_span(self) -> Span:
        return Span(self.vstart, self.end)

    def get(self, name: str) -> Node | None:
        """The last child named ``name`` (protobuf's "last one wins"), or None."""
        if self.children is None:
            return None
        for child in reversed(self.children):
            if child.name == name:
                return child
        return None

    def all(self, name: str) -> list[Node]:
        if self.children is None:
            return []
        return [c for c in self.children if c.name == name]

    def find(self, *path: str | int) -> Node | None:
        """Follow a path of names (and indices into repeated fields)."""
        node: Node | None = self
        i = 0
        while node is not None and i < len(path):
            name = path[i]
            if i + 1 < len(path) and isinstance(path[i + 1], int):
                items = node.all(name)  # type: ignore[arg-type]
                idx = path[i + 1]
                node = items[idx] if -len(items) <= idx < len(items) else None  # type: ignore[operator]
                i += 2
            else:
                node = node.get(name)  # type: ignore[arg-type]
                i += 1
        return node

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, in text order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            if node.children:
                stack.extend(reversed(node.children))

    def __repr__(self) -> str:
        if self.children is None:
            return f"Node({self.name}: {self.value} @{self.start})"
        return f"Node({self.name} {{{len(self.children)} fields}} @{self.start})"


class _LazyNode(Node):
    """A message node from the fast path whose children are created when first
    asked for.  Until then they are kept in ``_raw``: each scalar field as a
    ``(name, start, vstart, end, value)`` tuple, each message as its node.  (A
    ResNet-152 has 3,800 scalar fields and 1,100 messages; the schema reads the
    tuples directly, and a Node is only made for the fields something locates.)

    A node made with ``raw=None`` (a block the schema converted from a template:
    see schema._Walk) has not even ``_raw`` yet: it is read off the
    block's text, ``text[vstart + 1:end - 1]``, when first asked for."""

    __slots__ = ("_raw", "_text")

    def __init__(self, name, start, vstart, end, raw, text=None):
        self.name = name
        self.start = start
        self.vstart = vstart
        self.end = end
        self.value = None
        if raw is None:
            self._text = text
        else:
            self._raw = raw

    def __getattr__(self, attr: str):
        # only called when the attribute is not set: the children (or their
        # raw form), the first time
        if attr == "_raw":
            raw = _raw_span(self._text, self.vstart + 1, self.end - 1)
            if raw is None:  # pragma: no cover - the schema checked this text
                raise AssertionError(f"a block at {self.start} no longer parses")
            self._raw = raw
            self._text = None
            return raw
        if attr != "children":
            raise AttributeError(attr)
        children = []
        append = children.append
        for item in self._raw:
            if item.__class__ is tuple:
                name, start, vstart, end, value = item
                append(Node(name, start, vstart, end, value, None))
            else:
                append(item)
        self.children = children
        return children


def raw_fields(node: Node) -> list:
    """The fields of a message node as the schema walks them: Nodes, or for a
    fast-path node its ``_raw`` list (scalars as tuples) - see _LazyNode."""
    return node._raw if node.__class__ is _LazyNode else node.children


class Document:
    """A parsed prototxt: the root node (whose children are the top-level
    fields) and the source it came from."""

    __slots__ = ("root", "source", "_comments")

    def __init__(self, root: Node, source: SourceText) -> None:
        self.root = root
        self.source = source
        self._comments: list[tuple[int, str]] | None = None

    @property
    def fields(self) -> list[Node]:
        return self.root.children  # type: ignore[return-value]

    def comments(self) -> list[tuple[int, str]]:
        """Every ``#`` comment as (offset, text), skipping ``#`` inside strings."""
        if self._comments is None:
            self._comments = [
                (m.start(1), m.group(1))
                for m in _COMMENT_OR_STRING.finditer(self.source.text)
                if m.group(1) is not None
            ]
        return self._comments


def parse(text: str | SourceText, path: str | None = None) -> Document:
    """Parse protobuf text into a :class:`Document`, or raise PrototxtSyntaxError."""
    source = text if isinstance(text, SourceText) else SourceText(text, path)
    root = _parse_simple(source.text)
    if root is None:
        root = _parse_full(source)
    return Document(root, source)


def _parse_simple(text: str) -> Node | None:
    """The tree of ``text`` if it uses only the simple syntax (see _SIMPLE) and
    is well formed, else None (then _parse_full parses it, or reports the
    error).  Where it returns a tree, it is exactly _parse_full's (a test checks
    this on the corpus and on generated text); it is 25% faster because
    findall() makes no match objects.

    _SIMPLE matches at every position (its last alternative takes any
    character), so findall() never skips text and the lengths added up are
    the offsets; anything outside the simple syntax lands in that last group,
    and the fast path gives up."""
    raw = _raw_span(text, 0, len(text))
    return None if raw is None else _LazyNode("", 0, 0, len(text), raw)


def _raw_span(text: str, start: int, end: int) -> list | None:
    """The fields of ``text[start:end]`` in the fast path's raw form (see
    _LazyNode), with offsets into ``text``; None where _parse_simple gives up."""
    children: list = []
    append = children.append
    stack: list[tuple[Node, list]] = []
    pos = start
    for ws, name, sep, value, other in _SIMPLE.findall(text, start, end):
        pos += len(ws)
        if value:
            if ":" not in sep:
                return None  # name value: a missing colon
            vstart = pos + len(name) + len(sep)
            stop = vstart + len(value)
            append((name, pos, vstart, stop, value))  # a Node when first asked for
            pos = stop
        elif name:  # name {
            block = name
            vstart = pos + len(block) + len(sep)
            node = _LazyNode(block, pos, vstart, -1, [])
            append(node)
            stack.append((node, children))
            if len(stack) > MAX_DEPTH:
                return None
            children = node._raw
            append = children.append
            pos = vstart + 1
        elif other == "}":
            if not stack:
                return None
            pos += 1
            node, children = stack.pop()
            node.end = pos
            append = children.append
        elif other:
            return None  # anything outside the simple syntax
        else:  # the end of the text
            break
    if stack or pos != end:
        return None
    return children


def _parse_full(source: SourceText) -> Node:
    """The whole syntax, with an error at the first place it is broken."""
    text = source.text
    root = Node("", 0, 0, len(text), None, [])
    children = root.children
    # Each frame: (node, children of the enclosing message, closer, list context)
    stack: list[tuple[Node, list, str, tuple | None]] = []
    closer = ""
    pending: tuple[str, int] | None = None  # a field name awaiting its value
    colon = False
    in_list: tuple[str, int] | None = None  # inside name: [ ... ]
    list_needs_item = False
    last: Node | None = None  # the previous scalar, for "a" "b" concatenation

    def fail(message: str, offset: int) -> None:
        line, col = source.line_col(offset)
        raise PrototxtSyntaxError(message, source.path, line, col)

    for m in _TOKEN.finditer(text):
        g = m.lastindex
        if g == 2:  # name: value (the hot path: most fields look like this)
            if pending is not None or in_list is not None:
                fail(_expected_after(pending, colon, in_list), m.start(1))
            s1, e1 = m.span(1)
            s2, e2 = m.span(2)
            last = Node(text[s1:e1], s1, s2, e2, text[s2:e2], None)
            children.append(last)
            continue
        if g == 4:  # name {
            if pending is not None or in_list is not None:
                fail(_expected_after(pending, colon, in_list), m.start(3))
            s3, e3 = m.span(3)
            s4 = m.start(4)
            node = Node(text[s3:e3], s3, s4, -1, None, [])
            children.append(node)
            if len(stack) >= MAX_DEPTH:
                fail(f"messages nested more than {MAX_DEPTH} deep", s3)
            stack.append((node, children, closer, None))
            children = node.children
            closer = _CLOSER[text[s4]]
            last = None
            continue
        if g == 5:  # } or >
            tok = m.group(5)
            if pending is not None:
                fail(f"field '{pending[0]}' has no value", m.start(5))
            if in_list is not None:
                fail(f"list for '{in_list[0]}' is not closed with ']'", m.start(5))
            if not stack:
                fail(f"unexpected '{tok}' with no open message", m.start(5))
            if tok != closer:
                fail(f"expected '{closer}' to close '{stack[-1][0].name}', found '{tok}'", m.start(5))
            node, children, closer, in_list = stack.pop()
            node.end = m.end(5)
            list_needs_item = False
            last = None
            continue
        if g == 6:  # a lone word or string
            tok = m.group(6)
            pos = m.start(6)
            if in_list is not None:
                if not list_needs_item:
                    fail(f"expected ',' or ']' in the list for '{in_list[0]}'", pos)
                last = Node(in_list[0], in_list[1], pos, m.end(6), tok, None)
                children.append(last)
                list_needs_item = False
            elif pending is None:
                if tok[0] in "\"'" and last is not None and is_string_token(last.value):
                    # adjacent string literals concatenate
                    last.value = text[last.vstart:m.end(6)]
                    last.end = m.end(6)
                elif tok[0].isalpha() or tok[0] == "_":
                    pending = (tok, pos)
                    colon = False
                else:
                    fail(f"expected a field name, found {tok!r}", pos)
            elif not colon:
                fail(f"expected ':' after field name '{pending[0]}'", pos)
            else:
                last = Node(pending[0], pending[1], pos, m.end(6), tok, None)
                children.append(last)
                pending = None
            continue
        if g == 7:  # punctuation
            tok = m.group(7)
            pos = m.start(7)
            if tok == ":":
                if pending is None or colon:
                    fail("unexpected ':'", pos)
                colon = True
            elif tok in "{<":
                if in_list is not None and list_needs_item:
                    name, start = in_list
                elif pending is not None:
                    name, start = pending
                    pending = None
                else:
                    fail(f"unexpected '{tok}' with no field name before it", pos)
                node = Node(name, start, pos, -1, None, [])
                children.append(node)
                if len(stack) >= MAX_DEPTH:
                    fail(f"messages nested more than {MAX_DEPTH} deep", pos)
                stack.append((node, children, closer, in_list))
                children = node.children
                closer = _CLOSER[tok]
                in_list = None
                last = None
            elif tok == "[":
                if pending is None or not colon or in_list is not None:
                    fail("unexpected '['", pos)
                in_list = pending
                pending = None
                list_needs_item = True
                last = None
            elif tok == "]":
                if in_list is None:
                    fail("unexpected ']'", pos)
                if list_needs_item and children and children[-1].name == in_list[0] \
                        and children[-1].start == in_list[1]:
                    fail(f"expected a value before ']' in the list for '{in_list[0]}'", pos)
                in_list = None
                list_needs_item = False
                last = None
            else:  # , or ;
                if in_list is not None:
                    if list_needs_item:
                        fail(f"expected a value in the list for '{in_list[0]}'", pos)
                    list_needs_item = True
                elif pending is not None:
                    fail(_expected_after(pending, colon, None), pos)
                last = None
            continue
        if g == 8:
            fail("unterminated string (strings cannot span lines)", m.start(8))
        if g == 9:
            fail(f"unexpected character {m.group(9)!r}", m.start(9))
        # g == 10: end of text
        break

    end = len(text)
    if pending is not None:
        fail(f"field '{pending[0]}' has no value", pending[1])
    if in_list is not None:
        fail(f"list for '{in_list[0]}' is not closed with ']'", in_list[1])
    if stack:
        node = stack[-1][0]
        line, _ = source.line_col(node.start)
        fail(f"'{node.name}' opened on line {line} is never closed (missing '{closer}')", end)
    return root


def _expected_after(pending, colon, in_list) -> str:
    if in_list is not None:
        return f"list for '{in_list[0]}' is not closed with ']'"
    if pending is not None and not colon:
        return f"expected ':' or '{{' after field name '{pending[0]}'"
    if pending is not None:
        return f"field '{pending[0]}' has no value"
    return "unexpected token"  # pragma: no cover


# --- values ---------------------------------------------------------------

_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}
_STRING_PIECE = re.compile(_STRING)
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")


def is_string_token(raw: str) -> bool:
    return raw[:1] in ("'", '"')


def unquote(raw: str) -> str:
    """The value of one or more adjacent quoted literals.  Raises ValueError on a
    bad escape.  Octal/hex escapes give bytes, decoded as UTF-8 at the end."""
    q = raw[:1]
    if len(raw) >= 2 and raw[-1] == q and "\\" not in raw and raw.count(q) == 2:
        return raw[1:-1]  # the common case: one literal without escapes
    pieces = _STRING_PIECE.findall(raw)
    if not pieces:
        raise ValueError("not a quoted string")
    body = "".join(p[1:-1] for p in pieces)
    if "\\" not in body:
        return body
    out = bytearray()

    def add_text(s: str) -> None:
        out.extend(s.encode("utf-8", errors="surrogateescape"))

    pos = 0
    for m in _ESCAPE.finditer(body):
        add_text(body[pos:m.start()])
        octal, hexa, u4, u8, other = m.groups()
        if octal is not None:
            out.append(int(octal, 8) & 0xFF)
        elif hexa is not None:
            out.append(int(hexa, 16))
        elif u4 is not None or u8 is not None:
            code = int(u4 or u8, 16)
            if code > 0x10FFFF:
                raise ValueError(f"\\U{u8} is not a Unicode code point")
            add_text(chr(code))
        elif other in _ESCAPES:
            add_text(_ESCAPES[other])
        else:
            raise ValueError(f"invalid escape '\\{other}'")
        pos = m.end()
    add_text(body[pos:])
    return out.decode("utf-8", errors="surrogateescape")


def quote(value: str) -> str:
    """A double-quoted literal for ``value`` (used by fixes that write names)."""
    out = ['"']
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch < " ":
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
