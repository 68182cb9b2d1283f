"""The first lowering pass: a loaded Caffe :class:`~caffe2ncs.model.net.Net` as a
graph of *values* and *nodes*.

A :class:`Value` is one version of a Caffe blob (an in-place layer makes a new
version of its blob), with its shape as the device sees it: ``(C, H, W)``
(Caffe's 4-axis ``(1, C, H, W)``; a 3-axis ``(1, C, H)`` is ``(C, H, 1)`` and a
2-axis ``(1, C)`` is ``(C, 1, 1)``, as the NCSDK's Caffe parser reads them).
A :class:`Node` is one Caffe layer that does something on the device; later
passes fold several layers into one node (its :attr:`Node.layers`).

What this pass does (``docs/build.md``, "Passes"):

* picks the network output: the first of ``net.outputs``, as ``mvNCCompile``
  does without ``-on``, and keeps only the layers it depends on;
* resolves layers that compute nothing: ``Dropout`` (in place or not) and
  ``Split`` make their tops aliases of their bottom, a one-input ``Concat``
  too; ``Silence`` is dropped;
* refuses what cannot be lowered, naming every such layer at once
  (:class:`~caffe2ncs.errors.UnsupportedNetworkError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnsupportedNetworkError
from ..model.frozen import unwrap
from ..model.net import Layer, Net
from .ir import NO_POST_OP, PostOp

#: Layer types this compiler lowers (``Input`` layers never reach ``net.layers``).
LOWERED_TYPES = frozenset({
    "Convolution", "Deconvolution", "InnerProduct", "Pooling", "LRN", "Softmax",
    "ReLU", "ELU", "PReLU", "Sigmoid", "TanH", "BatchNorm", "Scale", "Bias", "Eltwise",
    "Concat", "Slice", "Crop", "Reshape", "Flatten", "Permute", "Normalize", "PriorBox",
    "DetectionOutput", "Power", "Dropout", "Split", "Silence",
})
#: Types whose tops are their bottom (no stage, no data movement).
IDENTITY_TYPES = frozenset({"Dropout", "Split"})

Shape3 = tuple[int, int, int]


@dataclass(eq=False)
class Value:
    """One version of a blob."""

    blob: str
    #: ``(C, H, W)``
    shape: Shape3
    #: The node that computes it; None for the network input.
    producer: Node | None = None
    #: Nodes that read it, in network order (a node reading it twice is listed twice).
    readers: list[Node] = field(default_factory=list)
    #: Where it lives (set by :mod:`.placement`).
    loc: object | None = None

    @property
    def c(self) -> int:
        return self.shape[0]

    @property
    def h(self) -> int:
        return self.shape[1]

    @property
    def w(self) -> int:
        return self.shape[2]

    def __repr__(self) -> str:
        return f"Value({self.blob!r}, {self.shape})"


@dataclass(eq=False)
class Node:
    """One device operation in the making (one Caffe layer, plus the layers
    folded into it)."""

    layer: Layer
    kind: str
    inputs: list[Value]
    outputs: list[Value]
    #: Names of the Caffe layers this node implements, its own first.
    layers: list[str] = field(default_factory=list)
    #: Per-output-channel affine ``(scale, shift)`` (float64 arrays) applied
    #: after the node's own operation: folded BatchNorm/Scale, or the whole
    #: operation of an ``Affine`` node.
    affine: tuple | None = None
    #: Fused activation.
    post: PostOp = NO_POST_OP
    #: Copy stages to emit with this node: ``(source, destination)`` values
    #: (set by :mod:`.placement` for the inputs of an implicit concat that
    #: cannot be written in place).
    copies: list = field(default_factory=list)
    #: The name its stages get, when not the layer's (a producer computed twice).
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.layer.name

    def __repr__(self) -> str:
        return f"Node({self.kind} {self.name!r})"


@dataclass(eq=False)
class NetGraph:
    net: Net
    nodes: list[Node]
    #: The network input value (None when the output does not depend on it).
    input: Value | None
    #: The value the device returns.
    output: Value
    #: Caffe layers that needed no node (identities, silenced, pruned), by name.
    skipped: list[str] = field(default_factory=list)
    #: The output cannot be written in place: a final ``copy`` stage writes it.
    final_copy: bool = False


def device_shape(shape, what: str, any_batch: bool = False) -> Shape3:
    """Caffe blob shape -> ``(C, H, W)`` as the device stores it (for one image:
    with ``any_batch`` a batch size other than 1 is dropped, not refused)."""
    if shape is None:
        raise UnsupportedNetworkError(f"{what}: its shape is unknown")
    shape = tuple(int(d) for d in shape)
    if not 2 <= len(shape) <= 4:
        raise UnsupportedNetworkError(
            f"{what}: {len(shape)}-axis blob {shape}; the device holds (1, C[, H[, W]]) tensors")
    if shape[0] != 1 and not any_batch:
        raise UnsupportedNetworkError(
            f"{what}: batch size {shape[0]}; the Neural Compute Stick runs one image at a time "
            "(set the first dimension to 1)")
    c, h, w = (tuple(shape[1:]) + (1, 1))[:3]
    return (c, h, w)


def build(net: Net, output: str | None = None, any_batch: bool = False) -> NetGraph:
    """The value/node graph of what ``net``'s output depends on.  With
    ``any_batch`` a network declared for a batch of N images is lowered for one
    image (the stick's only mode) instead of being refused."""
    if output is None:
        if not net.outputs:
            raise UnsupportedNetworkError("the network has no output (every blob is consumed)")
        output = net.outputs[0]
    writers = net.producers(output)
    if not writers and not net.is_input(output):
        raise UnsupportedNetworkError(f"no layer or input produces blob {output!r}")
    out_index = writers[-1].index if writers else -1

    needed = _ancestors(net, out_index)
    unsupported = [layer for layer in net.layers
                   if layer.index in needed and layer.type not in LOWERED_TYPES]
    if unsupported:
        from ..sdk import WORKAROUNDS

        shown = unsupported[:8]
        listed = ", ".join(f"{layer.name!r} ({layer.type})" for layer in shown)
        if len(unsupported) > len(shown):
            listed += f" and {len(unsupported) - len(shown)} more"
        hints = "".join(f"; {t}: {WORKAROUNDS[t]}"
                        for t in dict.fromkeys(layer.type for layer in unsupported)
                        if t in WORKAROUNDS)
        raise UnsupportedNetworkError(
            f"cannot lower {len(unsupported)} layer{'s' if len(unsupported) > 1 else ''}: "
            f"{listed}; the NCSDK has no operation for "
            f"{'them' if len(unsupported) > 1 else 'it'}{hints}")

    values: dict[tuple[int, str], Value] = {}
    graph_input: Value | None = None
    if -1 in needed or out_index == -1:
        used = {b for layer in net.layers if layer.index in needed
                for b, p in zip(layer.bottoms, net.bottom_producers[layer.index], strict=True)
                if p == -1}
        if out_index == -1:
            used.add(output)
        if len(used) > 1:
            raise UnsupportedNetworkError(
                f"the output depends on {len(used)} network inputs ({', '.join(sorted(used))}); "
                "the Neural Compute Stick takes exactly one")
        (name,) = used
        spec = next(s for s in net.inputs if s.name == name)
        graph_input = Value(name, device_shape(spec.shape, f"input {name!r}", any_batch))
        values[(-1, name)] = graph_input

    nodes: list[Node] = []
    skipped: list[str] = []
    for layer in net.layers:
        if layer.index not in needed:
            skipped.append(layer.name)
            continue
        shapes = net.layer_shapes[layer.index]
        inputs = []
        for b, p in zip(layer.bottoms, net.bottom_producers[layer.index], strict=True):
            if (p, b) not in values:
                raise UnsupportedNetworkError(f"layer {layer.name!r} reads {b!r}, which is not "
                                              "computed on the device (a pooling mask?)")
            inputs.append(values[(p, b)])
        if layer.type in IDENTITY_TYPES or (layer.type == "Concat" and len(inputs) == 1):
            if not inputs:
                raise UnsupportedNetworkError(f"layer {layer.name!r} ({layer.type}) has no bottom "
                                              "to pass on")
            for top in layer.tops:
                values[(layer.index, top)] = inputs[0]
            skipped.append(layer.name)
            continue
        if layer.type == "Silence":
            skipped.append(layer.name)
            continue
        node = Node(layer, _kind(layer), inputs, [], [layer.name])
        for i, top in enumerate(layer.tops):
            shape = shapes.outputs[i] if i < len(shapes.outputs) else None
            if layer.type == "Pooling" and i > 0:
                continue  # the argmax mask of a max pooling; nothing may read it (checked below)
            if layer.type == "DetectionOutput":
                shape = _detection_output_shape(layer)
            if shape is None:
                why = [p.message for p in net.problems if p.layer == layer.name]
                raise UnsupportedNetworkError(
                    f"layer {layer.name!r} ({layer.type}): the shape of its top {top!r} is "
                    f"unknown{': ' + why[0] if why else ''}")
            value = Value(top, device_shape(shape, f"layer {layer.name!r} ({layer.type}) top "
                                                   f"{top!r}", any_batch), node)
            node.outputs.append(value)
            values[(layer.index, top)] = value
        for value in inputs:
            value.readers.append(node)
        nodes.append(node)

    final = values.get((out_index, output))
    if final is None:
        raise UnsupportedNetworkError(f"blob {output!r} is not computed on the device")
    return NetGraph(net, nodes, graph_input, final, skipped)


def _detection_output_shape(layer: Layer) -> tuple[int, ...]:
    """The device's DetectionOutput result: ``keep_top_k + 1`` rows of 7 values,
    the first row holding the number of detections (the toolkit sizes it so)."""
    keep = unwrap(layer.param).detection_output_param.keep_top_k
    if keep <= 0:
        raise UnsupportedNetworkError(
            f"DetectionOutput {layer.name!r}: keep_top_k is {keep}; the NCSDK sizes its output "
            "by keep_top_k, so give it a positive value")
    return (1, 1, keep + 1, 7)


def _kind(layer: Layer) -> str:
    """The node kind: the Caffe type, with BatchNorm/Scale/learned Bias as
    ``Affine`` and a two-input Bias as an ``Eltwise`` sum."""
    if layer.type in ("BatchNorm", "Scale") and len(layer.bottoms) == 1:
        return "Affine"
    if layer.type == "Bias":
        return "Affine" if len(layer.bottoms) == 1 else "Eltwise"
    return layer.type


def _ancestors(net: Net, index: int) -> set[int]:
    """Indices of the layers the output of layer ``index`` depends on (itself
    included); ``-1`` stands for the network inputs."""
    seen: set[int] = set()
    stack = [index]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        if i >= 0:
            stack.extend(p for p in net.bottom_producers[i] if p not in seen and p != -2)
    return seen
