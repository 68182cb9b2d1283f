"""Reading and writing ``.caffemodel`` files (binary ``NetParameter``).

A caffemodel is mostly weights: VGG-16's is 528 MB of packed float32.  Parsing
it with protobuf would copy every float into protobuf's arena and then again
into numpy.  Instead :func:`read_caffemodel` memory-maps the file and walks the
protobuf wire format itself, only as far as the ``blobs`` of each layer: the
weight arrays it returns are read-only numpy views straight onto the mapped
file (no copy at all), and only the small non-weight part of each layer is
handed to protobuf.  Every length and offset is checked against the file before
use, so a truncated or corrupt file gives a :class:`CaffemodelError` naming
the layer and byte offset, never a crash or a huge allocation.

:func:`write_caffemodel` writes the same format (packed float32 ``data``, a
``shape`` per blob), streaming each array to disk.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._proto import caffe_pb2 as pb
from ..errors import CaffemodelError, InputFileError, unreadable
from .schema import is_repeated

# Field numbers of Caffe's schema that the fast path needs (see proto/caffe.proto).
NET_LAYER = 100  # NetParameter.layer (LayerParameter)
NET_LAYERS = 2  # NetParameter.layers (V1LayerParameter)
LAYER_BLOBS = 7  # LayerParameter.blobs
V1_BLOBS = 6  # V1LayerParameter.blobs
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA = 5  # repeated float, packed
BLOB_DIFF = 6
BLOB_SHAPE = 7
BLOB_DOUBLE_DATA = 8
BLOB_DOUBLE_DIFF = 9
SHAPE_DIM = 1

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
from ..limits import MAX_CAFFEMODEL_BYTES, MAX_LAYERS, check_deadline  # noqa: E402


@dataclass(frozen=True, eq=False)
class ModelLayer:
    """One layer of a caffemodel: its definition (without blobs) and its blobs."""

    param: pb.LayerParameter  # V1 layers are upgraded
    blobs: tuple[np.ndarray, ...]
    offset: int  # where the layer starts in the file
    v1: bool


@dataclass(frozen=True, eq=False)
class Caffemodel:
    path: str
    net: pb.NetParameter  # everything but the layers
    layers: tuple[ModelLayer, ...]
    size: int

    def by_name(self) -> dict[str, ModelLayer]:
        """Layers by name; for a repeated name the first wins, as in Caffe."""
        out: dict[str, ModelLayer] = {}
        for layer in self.layers:
            out.setdefault(layer.param.name, layer)
        return out


class _Reader:
    """Bounds-checked access to protobuf wire data in a buffer."""

    __slots__ = ("buf", "path")

    def __init__(self, buf, path: str) -> None:
        self.buf = buf
        self.path = path

    def fail(self, message: str, offset: int) -> CaffemodelError:
        return CaffemodelError(f"{message} (at byte {offset})", self.path)

    def varint(self, pos: int, end: int, what: str) -> tuple[int, int]:
        buf = self.buf
        result = 0
        shift = 0
        start = pos
        while True:
            if pos >= end:
                raise self.fail(f"file ends inside a number ({what}); it is truncated or corrupt",
                                start)
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                raise self.fail(f"malformed number ({what})", start)

    def fields(self, start: int, end: int, what: str):
        """Yield (field number, wire type, value, tag start, value start, value end)
        for each field in ``[start, end)``; ``value`` is the integer for varints,
        else None."""
        pos = start
        while pos < end:
            tag_at = pos
            tag, pos = self.varint(pos, end, what)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise self.fail(f"invalid field number 0 in {what}; the file is corrupt", tag_at)
            if wire == _VARINT:
                value, pos = self.varint(pos, end, what)
                yield number, wire, value, tag_at, tag_at, pos
            elif wire == _LEN:
                length, pos = self.varint(pos, end, what)
                if length > end - pos:
                    raise self.fail(
                        f"{what}: field {number} claims {length} bytes but only {end - pos} remain; "
                        "the file is truncated or corrupt", tag_at)
                yield number, wire, None, tag_at, pos, pos + length
                pos += length
            elif wire == _I32:
                if end - pos < 4:
                    raise self.fail(f"file ends inside {what}; it is truncated", tag_at)
                yield number, wire, None, tag_at, pos, pos + 4
                pos += 4
            elif wire == _I64:
                if end - pos < 8:
                    raise self.fail(f"file ends inside {what}; it is truncated", tag_at)
                yield number, wire, None, tag_at, pos, pos + 8
                pos += 8
            else:
                raise self.fail(f"unsupported wire type {wire} in {what}; not a caffemodel?", tag_at)


def read_caffemodel(path: str | os.PathLike[str]) -> Caffemodel:
    """Read a caffemodel; see the module docstring for how."""
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as err:
        raise unreadable(err, path) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise CaffemodelError("the caffemodel is empty", path)
        if size > MAX_CAFFEMODEL_BYTES:
            raise CaffemodelError(f"the file is {size} bytes; caffemodels over 2 GiB are refused "
                                  "(Caffe cannot read them either)", path)
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise InputFileError(f"cannot map the file: {err}", path) from None
    return parse_caffemodel(buf, path)


def parse_caffemodel(buf, path: str = "<caffemodel>") -> Caffemodel:
    """Parse caffemodel bytes (``bytes``, ``mmap`` or any buffer)."""
    r = _Reader(memoryview(buf), path)
    size = len(r.buf)
    head = bytearray()
    layers: list[ModelLayer] = []
    fields = list(r.fields(0, size, "the network"))
    if sum(1 for f in fields if f[1] == _LEN and f[0] in (NET_LAYER, NET_LAYERS)) > MAX_LAYERS:
        raise CaffemodelError(f"the caffemodel has more than {MAX_LAYERS} layers; larger "
                              "networks are refused (limits.MAX_LAYERS)", path)
    for number, wire, _, tag, start, end in fields:
        if wire == _LEN and number in (NET_LAYER, NET_LAYERS):
            check_deadline("reading the caffemodel")
            layers.append(_read_layer(r, buf, start, end, v1=number == NET_LAYERS, index=len(layers)))
        else:
            head += r.buf[tag:end]
    net = pb.NetParameter()
    try:
        net.ParseFromString(bytes(head))
    except Exception as err:  # protobuf's DecodeError, or worse on garbage
        raise CaffemodelError(f"the network header does not decode: {err}; not a caffemodel?",
                              path) from None
    _check_text(net, "the network header", path)
    if not layers and not net.ListFields():
        raise CaffemodelError("no layers and no network fields: this is not a caffemodel", path)
    return Caffemodel(path, net, tuple(layers), size)


def _read_layer(r: _Reader, buf, start: int, end: int, v1: bool, index: int) -> ModelLayer:
    blob_field = V1_BLOBS if v1 else LAYER_BLOBS
    rest = bytearray()
    raw_blobs: list[tuple[int, int]] = []
    what = f"layer #{index}"
    for number, wire, _, tag, s, e in r.fields(start, end, what):
        if number == blob_field and wire == _LEN:
            raw_blobs.append((s, e))
        else:
            rest += r.buf[tag:e]
    cls = pb.V1LayerParameter if v1 else pb.LayerParameter
    param = cls()
    try:
        param.ParseFromString(bytes(rest))
    except Exception as err:
        raise r.fail(f"{what} does not decode ({err}); the caffemodel is corrupt", start) from None
    _check_text(param, what, r.path)
    name = param.layer.name if v1 and param.HasField("layer") else param.name
    what = f"layer {name!r}" if name else what
    blobs = tuple(_read_blob(r, buf, s, e, f"{what} blob {i}") for i, (s, e) in enumerate(raw_blobs))
    if v1:
        from .upgrade import upgrade_v1

        v1_blobs_in_v0 = param.HasField("layer") and len(param.layer.blobs)
        upgraded = upgrade_v1(param, [])
        if v1_blobs_in_v0 and not blobs:
            blobs = tuple(_blob_from_proto(b, f"{what} blob {i}", r.path)
                          for i, b in enumerate(upgraded.blobs))
        del upgraded.blobs[:]
        param = upgraded
    return ModelLayer(param, blobs, start, v1)


def _read_blob(r: _Reader, buf, start: int, end: int, what: str) -> np.ndarray:
    legacy = [None, None, None, None]
    shape: list[int] | None = None
    data: list[tuple[int, int]] = []
    doubles: list[tuple[int, int]] = []
    unpacked = False
    for number, wire, value, _, s, e in r.fields(start, end, what):
        if number == BLOB_DATA:
            if wire == _LEN:
                data.append((s, e))
            else:
                unpacked = True
        elif number == BLOB_DOUBLE_DATA:
            if wire == _LEN:
                doubles.append((s, e))
            else:
                unpacked = True
        elif number == BLOB_SHAPE and wire == _LEN:
            shape = []
            for n2, w2, v2, _, s2, e2 in r.fields(s, e, what + " shape"):
                if n2 != SHAPE_DIM:
                    continue
                if w2 == _VARINT:
                    shape.append(_int64(v2))
                elif w2 == _LEN:
                    pos = s2
                    while pos < e2:
                        dim, pos = r.varint(pos, e2, what + " shape")
                        shape.append(_int64(dim))
        elif number in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH) and wire == _VARINT:
            legacy[number - 1] = _int32(value)
    if unpacked:
        msg = pb.BlobProto()
        try:
            msg.ParseFromString(bytes(r.buf[start:end]))
        except Exception as err:
            raise r.fail(f"{what} does not decode ({err})", start) from None
        return _blob_from_proto(msg, what, r.path)
    if shape is None:
        if any(v is not None for v in legacy):
            shape = [v or 0 for v in legacy]
        else:
            shape = []
    for d in shape:
        if d < 0:
            raise r.fail(f"{what} has a negative dimension {shape}", start)
    n = 1
    for d in shape:
        n *= d
    chunks = data or doubles
    itemsize = 4 if data else 8
    total = sum(e - s for s, e in chunks)
    if total % itemsize:
        raise r.fail(f"{what}: data is {total} bytes, not a whole number of values", start)
    have = total // itemsize
    if not shape and have:
        shape = [have]
        n = have
    if have != n:
        raise r.fail(f"{what}: shape {'x'.join(map(str, shape)) or '(none)'} holds {n} values "
                     f"but the blob stores {have}", start)
    if data and len(data) == 1:
        s, e = data[0]
        arr = np.frombuffer(buf, dtype="<f4", count=n, offset=s)
    elif data:
        arr = np.concatenate([np.frombuffer(buf, dtype="<f4", count=(e - s) // 4, offset=s)
                              for s, e in data])
    elif doubles:
        arr = np.concatenate([np.frombuffer(buf, dtype="<f8", count=(e - s) // 8, offset=s)
                              for s, e in doubles]).astype(np.float32)
    else:
        arr = np.zeros(0, dtype=np.float32)
    arr = arr.reshape(shape)
    arr.flags.writeable = False
    return arr


def _check_text(msg, what: str, path: str) -> None:
    """Refuse string fields that are not UTF-8: protobuf's upb backend hands
    them back as ``bytes`` (proto2 does not validate), which nothing
    downstream expects in a layer name or a blob name."""
    for fd, value in msg.ListFields():
        if fd.type == fd.TYPE_STRING:
            values = value if is_repeated(fd) else (value,)
            if any(isinstance(v, bytes) for v in values):
                raise CaffemodelError(f"{what}: field '{fd.name}' is not valid UTF-8 text; the "
                                      "caffemodel is corrupt", path)
        elif fd.message_type is not None and fd.name != "blobs":
            for v in (value if is_repeated(fd) else (value,)):
                _check_text(v, what, path)


def _blob_from_proto(msg: pb.BlobProto, what: str, path: str) -> np.ndarray:
    if msg.HasField("shape"):
        shape = list(msg.shape.dim)
    elif any(msg.HasField(f) for f in ("num", "channels", "height", "width")):
        shape = [msg.num, msg.channels, msg.height, msg.width]
    else:
        shape = [len(msg.data) or len(msg.double_data)]
    values = msg.data if len(msg.data) else msg.double_data
    n = int(np.prod(shape)) if shape else 1
    if len(values) != n:
        raise CaffemodelError(f"{what}: shape {shape} holds {n} values but the blob stores "
                              f"{len(values)}", path)
    arr = np.asarray(values, dtype=np.float32).reshape(shape)
    arr.flags.writeable = False
    return arr


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _int32(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    v = _int64(v)
    return v


# -- writing ----------------------------------------------------------------------

def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, payload_len: int) -> bytes:
    return _varint((number << 3) | _LEN) + _varint(payload_len)


def encode_blob_header(shape: Sequence[int], n_values: int) -> bytes:
    """The bytes of a BlobProto up to its packed data, which must follow directly."""
    dims = b"".join(_varint(int(d)) for d in shape)
    shape_msg = _len_field(SHAPE_DIM, len(dims)) + dims if shape else b""
    head = _len_field(BLOB_SHAPE, len(shape_msg)) + shape_msg
    return head + _len_field(BLOB_DATA, 4 * n_values)


def write_caffemodel(
    path: str | os.PathLike[str],
    layers: Iterable[tuple[pb.LayerParameter, Sequence[np.ndarray]]],
    name: str = "",
    header: pb.NetParameter | None = None,
) -> None:
    """Write a caffemodel: ``header`` (the network's fields other than its
    layers, e.g. inputs; ``name`` sets its name), then each ``(layer
    definition, blobs)`` as a ``layer`` entry whose ``blobs`` hold the arrays as
    packed float32 with a ``shape``.  The definition's own ``blobs`` field is
    ignored.  Arrays are streamed to the file one at a time, so writing needs
    no second copy of the weights."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    head = pb.NetParameter()
    if header is not None:
        head.CopyFrom(header)
        del head.layer[:]
        del head.layers[:]
    if name:
        head.name = name
    try:
        with open(tmp, "wb") as f:
            f.write(head.SerializeToString())
            for layer, blobs in layers:
                definition = pb.LayerParameter()
                definition.CopyFrom(layer)
                del definition.blobs[:]
                body = definition.SerializeToString()
                parts = []
                for arr in blobs:
                    arr = np.ascontiguousarray(arr, dtype="<f4")
                    head = encode_blob_header(arr.shape, arr.size)
                    blob_len = len(head) + 4 * arr.size
                    parts.append((_len_field(LAYER_BLOBS, blob_len) + head, arr))
                total = len(body) + sum(len(h) + 4 * a.size for h, a in parts)
                f.write(_len_field(NET_LAYER, total))
                f.write(body)
                for head, arr in parts:
                    f.write(head)
                    f.write(memoryview(arr).cast("B"))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def blobs_by_layer(model: Caffemodel) -> Mapping[str, tuple[np.ndarray, ...]]:
    return {name: layer.blobs for name, layer in model.by_name().items()}
