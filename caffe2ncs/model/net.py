"""The canonical, immutable network every other part of caffe2ncs works on.

A :class:`Net` is what :func:`caffe2ncs.load` returns, whatever spelling the file
used (V0, V1 ``layers``, current ``layer``; inputs as ``input_dim``,
``input_shape`` or an ``Input`` layer).  It keeps a link to the source text so
that every layer and field can be located (``layer.locate("convolution_param",
"kernel_size")`` → the node, with its line, column and span), remembers which
spelling the file used, holds the inferred shape of every blob, and the weights
when a caffemodel was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING

from .frozen import Frozen
from .source import SourceText, Span
from .textformat import Document, Node

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

Shape = tuple[int, ...]
_new = object.__new__
# The positional constructors below fill a new instance's __dict__ in place: a
# frozen dataclass's __setattr__ refuses, and assigning a whole new __dict__
# costs 2-3x more than updating the one the instance has.


class InputForm(str, Enum):
    """How the file declared an input (the NCSDK accepts only ``INPUT_SHAPE``)."""

    INPUT_SHAPE = "input_shape"  # input: "data" + input_shape { dim: … }
    INPUT_DIM = "input_dim"  # input: "data" + input_dim: × 4
    INPUT_PARAM = "input_param"  # layer { type: "Input" input_param { shape { … } } }
    NO_SHAPE = "no_shape"  # input: "data" with no dimensions at all
    BINARY = "binary"  # declared in a .caffemodel (no text)

    def __str__(self) -> str:
        return self.value


class LayerSpelling(str, Enum):
    """Which generation of Caffe's schema a layer was written in."""

    LAYER = "layer"  # layer { type: "Convolution" }  (2015 onwards)
    V1 = "layers"  # layers { type: CONVOLUTION }   (2014)
    V0 = "v0"  # layers { layer { type: "conv" } } (2013)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, eq=False)
class InputSpec:
    """One network input, normalised from whichever form the file used."""

    name: str
    shape: Shape | None
    form: InputForm
    #: the ``input:`` field, or the Input layer's ``top:`` field
    node: Node | None = None
    #: the ``input_shape { }`` block, the first ``input_dim:``, or the ``shape { }`` block
    shape_node: Node | None = None
    #: the ``layer { }`` node of an Input layer
    layer_node: Node | None = None
    #: for an Input layer: its position among all layers in the file (0 = first)
    layer_position: int | None = None
    layer_name: str | None = None


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of the canonical network.

    ``type`` is the current Caffe type string (V1/V0 enums upgraded:
    ``CONVOLUTION`` → ``"Convolution"``); ``type_spelling`` is what the file said.
    ``param`` is a read-only view of the upgraded ``LayerParameter``.
    """

    index: int
    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    param: Frozen
    node: Node | None = None
    spelling: LayerSpelling = LayerSpelling.LAYER
    type_spelling: str = ""
    #: position among all layer blocks in the file, including Input and filtered ones
    position: int = 0
    #: for a V0 convolution/pooling: the ``layers { }`` block of the V0 ``padding``
    #: layer that Caffe folds into it (where its ``pad`` is written), else None
    v0_padding_node: Node | None = None

    @classmethod
    def build(cls, index, name, type, bottoms, tops, param, node, spelling, type_spelling,
              position, v0_padding_node=None) -> Layer:
        """Positional constructor for the loader's hot loop (a frozen dataclass's
        generated ``__init__`` sets each field through ``object.__setattr__``)."""
        layer = _new(cls)
        layer.__dict__.update({
            "index": index, "name": name, "type": type, "bottoms": bottoms, "tops": tops,
            "param": param, "node": node, "spelling": spelling, "type_spelling": type_spelling,
            "position": position, "v0_padding_node": v0_padding_node})
        return layer

    @property
    def in_place(self) -> bool:
        """Whether a top is written in place: the same blob as the bottom at
        its index (Caffe's rule; any other reuse of a blob is a conflict)."""
        return any(i < len(self.bottoms) and self.bottoms[i] == t for i, t in enumerate(self.tops))

    def locate(self, *path: str | int) -> Node | None:
        """The source node of a field of this layer, by its canonical path, e.g.
        ``locate("convolution_param", "kernel_size", 0)``; ``None`` when the field
        is not written in the file (a default) or there is no source text."""
        if self.node is None:
            return None
        if not path:
            return self.node
        if self.spelling is LayerSpelling.V0:
            return _locate_v0(self.node, path, self.v0_padding_node)
        if self.spelling is LayerSpelling.V1 and path[0] == "param":
            return None  # V1 spreads ParamSpec over blobs_lr/weight_decay
        return self.node.find(*path)

    def __repr__(self) -> str:
        return f"Layer({self.name!r}, {self.type}, {list(self.bottoms)} -> {list(self.tops)})"


# Where V0 kept the fields that V1/V2 moved into typed parameter messages.
_V0_PATHS = {
    ("convolution_param", "num_output"): "num_output",
    ("inner_product_param", "num_output"): "num_output",
    ("convolution_param", "bias_term"): "biasterm",
    ("inner_product_param", "bias_term"): "biasterm",
    ("convolution_param", "pad"): "pad",
    ("pooling_param", "pad"): "pad",
    ("convolution_param", "kernel_size"): "kernelsize",
    ("pooling_param", "kernel_size"): "kernelsize",
    ("convolution_param", "stride"): "stride",
    ("pooling_param", "stride"): "stride",
    ("convolution_param", "group"): "group",
    ("pooling_param", "pool"): "pool",
    ("dropout_param", "dropout_ratio"): "dropout_ratio",
    ("lrn_param", "local_size"): "local_size",
    ("lrn_param", "alpha"): "alpha",
    ("lrn_param", "beta"): "beta",
    ("lrn_param", "k"): "k",
    ("concat_param", "concat_dim"): "concat_dim",
}


def _locate_v0(node: Node, path: tuple, padding: Node | None = None) -> Node | None:
    inner = node.get("layer")
    if path[0] in ("bottom", "top"):
        return node.find(*path)
    if inner is None:
        return None
    if path[0] in ("name", "type"):
        return inner.find(*path)
    key = tuple(p for p in path[:2] if isinstance(p, str))
    flat = _V0_PATHS.get(key)
    if flat is None:
        return None
    rest = [p for p in path[2:]]
    found = inner.find(flat, *rest) if rest else inner.get(flat)
    if found is None and flat == "pad" and padding is not None:
        # the pad of a folded V0 padding layer is written in that layer's block
        pad_layer = padding.get("layer")
        if pad_layer is not None:
            found = pad_layer.find(flat, *rest) if rest else pad_layer.get(flat)
    return found


@dataclass(frozen=True, slots=True)
class Problem:
    """Something structurally wrong with the network, found while loading.

    ``fatal`` problems make Caffe itself refuse the network (``load`` raises
    them unless asked to be lenient); the others are reported by ``check``.
    """

    code: str
    message: str
    node: Node | None = None
    layer: str | None = None
    fatal: bool = True


@dataclass(frozen=True, eq=False, slots=True)
class LayerShapes:
    """Inferred shapes of one layer's bottoms and tops (``None`` = unknown)."""

    inputs: tuple[Shape | None, ...]
    outputs: tuple[Shape | None, ...]

    @staticmethod
    def build(inputs, outputs) -> LayerShapes:
        """Positional constructor for the analysis loop (see Layer.build)."""
        shapes = _new(LayerShapes)
        _set_inputs(shapes, inputs)
        _set_outputs(shapes, outputs)
        return shapes


_set_inputs = LayerShapes.inputs.__set__  # type: ignore[attr-defined]
_set_outputs = LayerShapes.outputs.__set__  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)
class Net:
    """A loaded network.  Build one with :func:`caffe2ncs.load`."""

    name: str
    layers: tuple[Layer, ...]
    inputs: tuple[InputSpec, ...]
    path: str | None = None
    document: Document | None = None
    #: the layer spelling of the file (the first layer's, if it mixes them)
    spelling: LayerSpelling = LayerSpelling.LAYER
    #: fields and enum values the Caffe schema does not know (see schema.Unknown)
    unknown: tuple = ()
    #: layers dropped for the TEST phase by include/exclude rules
    excluded: tuple[Layer, ...] = ()
    problems: tuple[Problem, ...] = ()
    #: blob name -> shape after the last layer that writes it
    blob_shapes: Mapping[str, Shape | None] = field(default_factory=dict)
    #: per layer (same order as ``layers``)
    layer_shapes: tuple[LayerShapes, ...] = ()
    #: blobs the network produces and nothing consumes, in order
    outputs: tuple[str, ...] = ()
    #: layer name -> its learned blobs (read-only float32 arrays), from a caffemodel
    weights: Mapping[str, tuple[np.ndarray, ...]] = field(default_factory=dict)
    weights_path: str | None = None
    #: fields of the NetParameter other than inputs and layers (name, state, …)
    net_param: Frozen | None = None
    #: per layer, per bottom: index of the layer that produced what it reads
    #: (-1: a network input, -2: nothing produced it)
    bottom_producers: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        for attr in ("blob_shapes", "weights"):
            value = getattr(self, attr)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, attr, MappingProxyType(dict(value)))
        object.__setattr__(self, "_by_name", {layer.name: layer for layer in self.layers})

    # -- navigation ----------------------------------------------------------

    @property
    def source(self) -> SourceText | None:
        return self.document.source if self.document is not None else None

    @property
    def input_form(self) -> InputForm | None:
        """The form of the first input (what ``fix`` rewrites), or None."""
        return self.inputs[0].form if self.inputs else None

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (the last one, if the name is repeated)."""
        try:
            return self._by_name[name]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"no layer named {name!r}") from None

    def shapes_of(self, layer: Layer) -> LayerShapes:
        return self.layer_shapes[layer.index]

    def producers(self, blob: str) -> list[Layer]:
        """Every layer that writes ``blob`` (the first, then any in-place ones)."""
        return [layer for layer in self.layers if blob in layer.tops]

    def consumers(self, blob: str) -> list[Layer]:
        """Every layer that reads ``blob`` (whichever version of it)."""
        return [layer for layer in self.layers if blob in layer.bottoms]

    def producer(self, layer: Layer, bottom_index: int) -> Layer | None:
        """The layer whose output ``layer`` reads as its ``bottom_index``-th bottom;
        None when that is a network input (or nothing)."""
        i = self.bottom_producers[layer.index][bottom_index]
        return self.layers[i] if i >= 0 else None

    def readers(self, layer: Layer, top: str) -> list[Layer]:
        """The layers that read what ``layer`` wrote to ``top``: those after it
        that read ``top``, up to and including the next layer that writes it
        again (an in-place layer reads it too)."""
        out = []
        for other in self.layers[layer.index + 1:]:
            if top in other.bottoms:
                out.append(other)
            if top in other.tops:
                break
        return out

    def is_input(self, blob: str) -> bool:
        return any(spec.name == blob for spec in self.inputs)

    def position(self, where: Node | Span | int | None) -> tuple[int, int] | None:
        """1-based (line, column) of a node, span or offset in the source text."""
        if where is None or self.document is None:
            return None
        if isinstance(where, Node):
            offset = where.start
        elif isinstance(where, Span):
            offset = where.start
        else:
            offset = where
        return self.document.source.line_col(offset)

    def __repr__(self) -> str:
        src = f" from {self.path}" if self.path else ""
        return f"<Net {self.name!r}: {len(self.inputs)} input(s), {len(self.layers)} layers{src}>"
