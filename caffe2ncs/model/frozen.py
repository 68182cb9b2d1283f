"""Read-only views of protobuf messages.

A loaded :class:`~caffe2ncs.model.net.Net` is immutable; its layers expose
their Caffe parameters through :class:`Frozen`, which reads like the protobuf
message (``layer.param.convolution_param.kernel_size``) but refuses writes and
returns repeated fields as tuples.  ``.mutable()`` gives an independent copy
for code that wants to build something new from it.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .schema import is_repeated

_METHODS = frozenset(
    {"HasField", "SerializeToString", "ByteSize", "IsInitialized", "WhichOneof"}
)


def _freeze(fd: FieldDescriptor, value):
    """A field's value as the view hands it out: messages wrapped read-only,
    repeated fields as tuples."""
    if is_repeated(fd):
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            return tuple(Frozen(v) for v in value)
        return tuple(value)
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return Frozen(value)
    return value


class Frozen:
    """A read-only view of a protobuf message."""

    __slots__ = ("_msg",)

    def __init__(self, msg: Message) -> None:
        object.__setattr__(self, "_msg", msg)

    def __getattr__(self, name: str):
        msg = object.__getattribute__(self, "_msg")
        fd = msg.DESCRIPTOR.fields_by_name.get(name)
        if fd is None:
            if name in _METHODS or name == "DESCRIPTOR":
                return getattr(msg, name)
            raise AttributeError(f"{msg.DESCRIPTOR.name} has no field {name!r}")
        return _freeze(fd, getattr(msg, name))

    def ListFields(self) -> list:
        """Like the message's ``ListFields``, with read-only values (the
        message's own would hand out its mutable sub-messages)."""
        msg = object.__getattribute__(self, "_msg")
        return [(fd, _freeze(fd, value)) for fd, value in msg.ListFields()]

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("a loaded network is read-only; use .mutable() for a copy")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a loaded network is read-only; use .mutable() for a copy")

    def mutable(self) -> Message:
        """An independent, mutable copy of the message."""
        msg = object.__getattribute__(self, "_msg")
        copy = type(msg)()
        copy.CopyFrom(msg)
        return copy

    def __eq__(self, other) -> bool:
        if isinstance(other, Frozen):
            other = object.__getattribute__(other, "_msg")
        return object.__getattribute__(self, "_msg") == other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        msg = object.__getattribute__(self, "_msg")
        return f"<read-only {msg.DESCRIPTOR.name}: {str(msg).strip()[:200]!r}>"

    def __str__(self) -> str:
        return str(object.__getattribute__(self, "_msg"))


class LazyFrozen(Frozen):
    """A :class:`Frozen` view of a message that is built, on first read, from
    the keyword arguments the schema converted for it (see
    ``schema.Converter.values``).  The loader gives every layer one: building
    670 protobuf messages is a good part of loading a ResNet-152, and most
    callers only read a layer's name, type, bottoms and tops.  The arguments
    were checked by the schema, so building them cannot fail; the view reads
    exactly as a :class:`Frozen` of that message."""

    __slots__ = ("_src",)

    @property
    def _msg(self) -> Message:  # type: ignore[override]
        src = _get_src(self)
        if src.__class__ is tuple:  # (message class, keyword arguments): build it once
            cls, fields = src
            src = cls(**fields)
            _set_src(self, src)
        return src


_get_src = LazyFrozen._src.__get__  # type: ignore[attr-defined]
_set_src = LazyFrozen._src.__set__  # type: ignore[attr-defined]
#: A view of ``cls(**fields)``, built on first read, is ``object.__new__(LazyFrozen)``
#: then ``set_source(view, (cls, fields))`` (two C calls: the loader makes hundreds)
set_source = _set_src


def unbuilt_fields(view) -> dict | None:
    """The keyword arguments of a :class:`LazyFrozen` whose message is not built
    yet (read-only by convention), else None."""
    if view.__class__ is LazyFrozen:
        src = _get_src(view)
        if src.__class__ is tuple:
            return src[1]
    return None


def unwrap(value) -> Message:
    """The underlying message of a :class:`Frozen` view (for internal, read-only use)."""
    if isinstance(value, Frozen):
        return object.__getattribute__(value, "_msg")
    return value
