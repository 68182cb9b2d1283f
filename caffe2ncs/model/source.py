"""Source text with positions: offsets ↔ line/column, and spans.

Files are decoded as UTF-8 with ``surrogateescape`` so that any byte sequence
round-trips exactly (a stray Latin-1 byte in a comment must neither crash the
loader nor be altered by a fix).  Offsets are indices into that decoded string;
for the (usual) pure-ASCII file they equal byte offsets, and
:meth:`SourceText.byte_offset` converts otherwise.  Lines and columns are
1-based; a column counts characters, and ``\\r\\n`` ends a line like ``\\n``.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

from ..errors import InputFileError, unreadable
from ..limits import MAX_PROTOTXT_BYTES  # noqa: F401 - re-exported


def decode(data: bytes) -> str:
    """Decode file bytes; a UTF-8 byte-order mark is dropped, nothing else changes."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def read_text_file(path: str | os.PathLike[str], limit: int = MAX_PROTOTXT_BYTES) -> str:
    """Read a text file the way the loader needs it, with clear errors."""
    return decode(read_text_bytes(path, limit))


def read_text_bytes(path: str | os.PathLike[str], limit: int = MAX_PROTOTXT_BYTES) -> bytes:
    """A prototxt's bytes, as they are (BOM and all), refused over ``limit``."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise InputFileError(
                    f"file is {size} bytes; prototxt files over {limit} bytes are refused", path
                )
            # Read what is there (one more byte to notice a file that grew);
            # f.read(limit + 1) would allocate the whole limit up front.
            data = f.read(size + 1) if size else _read_at_most(f, limit + 1)
    except OSError as err:
        raise unreadable(err, path) from None
    if len(data) > limit:
        raise InputFileError(f"prototxt files over {limit} bytes are refused", path)
    return data


def _read_at_most(f, n: int) -> bytes:
    """Up to ``n`` bytes from a file whose size is not known (a pipe, /proc)."""
    chunks = []
    while n > 0:
        chunk = f.read(min(n, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range ``[start, end)`` of offsets into a :class:`SourceText`."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


class SourceText:
    """The text of one file plus what is needed to report positions in it."""

    __slots__ = ("text", "path", "__dict__")

    def __init__(self, text: str, path: str | None = None) -> None:
        self.text = text
        self.path = path

    @cached_property
    def _line_starts(self) -> list[int]:
        starts = [0]
        find = self.text.find
        i = find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = find("\n", i + 1)
        return starts

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of an offset."""
        starts = self._line_starts
        i = bisect_right(starts, offset) - 1
        return i + 1, offset - starts[i] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line ending."""
        starts = self._line_starts
        if not 1 <= line <= len(starts):
            return ""
        start = starts[line - 1]
        end = starts[line] if line < len(starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")

    def line_span(self, line: int) -> Span:
        starts = self._line_starts
        start = starts[line - 1]
        end = starts[line] if line < len(starts) else len(self.text)
        return Span(start, end)

    def byte_offset(self, offset: int) -> int:
        prefix = self.text[:offset]
        return len(prefix) if prefix.isascii() else len(encode(prefix))

    @cached_property
    def newline(self) -> str:
        """The file's line ending: ``\\r\\n`` when its first line ends so, else ``\\n``."""
        i = self.text.find("\n")
        return "\r\n" if i > 0 and self.text[i - 1] == "\r" else "\n"
