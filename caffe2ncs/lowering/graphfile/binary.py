"""Bounds-checked little-endian access to a graph file, shared by the readers.

Every read names the field it is for; a read past the end of the data raises
:class:`~caffe2ncs.errors.GraphFileError` naming the field and its byte offset
instead of ``IndexError``/``struct.error``.
"""

from __future__ import annotations

import os
import struct

from ...errors import GraphFileError, UnsupportedNetworkError

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


class ByteReader:
    """Reads fields out of ``data``; errors mention ``path`` when given."""

    def __init__(self, data: bytes, path: str | os.PathLike[str] | None = None) -> None:
        self.data = memoryview(bytes(data)) if not isinstance(data, bytes) else memoryview(data)
        self.path = path
        self.size = len(self.data)

    def error(self, message: str, offset: int | None = None,
              field: str | None = None) -> GraphFileError:
        where = ""
        if field is not None and offset is not None:
            where = f"{field} at byte offset {offset}: "
        elif field is not None:
            where = f"{field}: "
        elif offset is not None:
            where = f"at byte offset {offset}: "
        return GraphFileError(where + message, self.path)

    def need(self, offset: int, length: int, field: str) -> None:
        """Raise unless ``length`` bytes at ``offset`` lie inside the file."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self.error(
                f"needs {length} bytes but the file is {self.size} bytes long (truncated?)",
                offset, field)

    def u32(self, offset: int, field: str) -> int:
        self.need(offset, 4, field)
        return _U32.unpack_from(self.data, offset)[0]

    def u16(self, offset: int, field: str) -> int:
        self.need(offset, 2, field)
        return _U16.unpack_from(self.data, offset)[0]

    def u8(self, offset: int, field: str) -> int:
        self.need(offset, 1, field)
        return self.data[offset]

    def i8(self, offset: int, field: str) -> int:
        v = self.u8(offset, field)
        return v - 256 if v >= 128 else v

    def u32s(self, offset: int, count: int, field: str) -> tuple[int, ...]:
        self.need(offset, 4 * count, field)
        return struct.unpack_from(f"<{count}I", self.data, offset)

    def raw(self, offset: int, length: int, field: str) -> bytes:
        self.need(offset, length, field)
        return bytes(self.data[offset:offset + length])

    def text(self, offset: int, length: int, field: str) -> str:
        """A NUL-padded string field; must be ASCII up to the first NUL."""
        raw = self.raw(offset, length, field).split(b"\0", 1)[0]
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error("is not ASCII text", offset, field) from None


class ByteWriter:
    """Appends little-endian fields to a growing buffer."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def __len__(self) -> int:
        return len(self.buf)

    def u32(self, *values: int) -> None:
        for v in values:
            self.buf += _U32.pack(_fits(v, 0xFFFFFFFF, 32))

    def u16(self, *values: int) -> None:
        for v in values:
            self.buf += _U16.pack(_fits(v, 0xFFFF, 16))

    def u8(self, *values: int) -> None:
        self.buf += bytes(values)

    def raw(self, data: bytes) -> None:
        self.buf += data

    def zeros(self, n: int) -> None:
        self.buf += bytes(n)

    def patch_u32(self, offset: int, value: int) -> None:
        _U32.pack_into(self.buf, offset, _fits(value, 0xFFFFFFFF, 32))

    def getvalue(self) -> bytes:
        return bytes(self.buf)


def _fits(value: int, top: int, bits: int) -> int:
    """``value`` if an unsigned ``bits``-bit field holds it (a graph read from a
    tampered file can carry sizes no file format can store)."""
    if not 0 <= value <= top:
        raise GraphTargetError(f"the value {value} does not fit an unsigned {bits}-bit field of "
                               "the graph file")
    return value


def text_field(value: str, length: int, what: str) -> bytes:
    """``value`` as a NUL-padded ASCII field of ``length`` bytes (at most ``length``
    characters: the reader stops at the first NUL, so the name must not need one)."""
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise GraphTargetError(f"{what} {value!r} is not ASCII") from None
    if len(raw) > length or b"\0" in raw:
        raise GraphTargetError(f"{what} {value!r} does not fit the {length}-byte field")
    return raw + bytes(length - len(raw))


class GraphTargetError(UnsupportedNetworkError):
    """A graph the chosen file format cannot express (an op without a code in
    that SDK version, a kernel too big for a 1.x int8 field, ...)."""
