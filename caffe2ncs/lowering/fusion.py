"""Fusion passes on the node graph: what ``mvNCCompile`` folds away.

1. :func:`fold_affine` - a BatchNorm/Scale/learned Bias ("Affine" node) that
   reads a convolution's output is folded into the convolution's weights and
   bias, as the NCSDK does (``mult = 1/sqrt(var/f + eps)``, ``bias = -mean/f *
   mult`` with ``f`` the BatchNorm's scale-factor blob, 0 meaning mean 0 and
   variance 0), computed in float64 and rounded to fp16 once.  Unlike the
   toolkit, which finds "the layer that produced the bottom" by name, a fold
   only happens when the convolution's raw output is read by nothing else and
   no activation sits in between (the toolkit would also fold a BatchNorm that
   follows ``conv -> ReLU``, which is wrong).
2. :func:`merge_affine` - consecutive Affine nodes that were not folded become
   one (one ``scale`` stage instead of the toolkit's two).
3. :func:`fuse_activations` - ReLU (``relu``, or ``leaky_relu`` with its
   negative slope) and ELU (``elu`` with alpha) become the post-operation of
   the stage that produced their input, the only way the NCSDK runs them.
   After a Concat the activation goes to every stage writing into it (as the
   toolkit does).  When the activation's input is also read by another layer
   (a pre-activation shortcut, as in Xception), the toolkit still makes the
   activation a post-op of the producer, so the other reader silently gets
   activated values; here the producing stage is instead computed twice, once
   plain and once with the activation (the copy is named after the
   activation layer).  An activation of the network input, of a slice, or of
   a concat whose parts cannot all take it has no stage to ride on:
   :class:`~caffe2ncs.errors.UnsupportedNetworkError`.
"""

from __future__ import annotations

from ..errors import UnsupportedNetworkError
from ..model.frozen import unwrap
from .ir import NO_POST_OP, PostOp
from .netgraph import NetGraph, Node, Value
from .tensors import Weights, affine_of

#: Node kinds that become a stage of their own (so can carry a post-operation).
STAGE_KINDS = frozenset({
    "Convolution", "Deconvolution", "InnerProduct", "Pooling", "LRN", "Softmax", "Affine",
    "Eltwise", "Scale", "PReLU", "Sigmoid", "TanH", "Crop", "Reshape", "Flatten", "Permute",
    "Normalize", "PriorBox", "DetectionOutput", "Power",
})


def run(graph: NetGraph, weights: Weights) -> None:
    for node in graph.nodes:
        if node.kind == "Affine":
            node.affine = affine_of(node.layer, weights, node.inputs[0].c)
    fold_affine(graph)
    merge_affine(graph)
    fuse_activations(graph)


def _replace_output(graph: NetGraph, keep: Node, gone: Node, old: Value) -> None:
    """``gone`` (which read ``old``, an output of ``keep``) disappears; ``keep``
    now produces ``gone``'s output instead of ``old``."""
    new = gone.outputs[0]
    keep.outputs[keep.outputs.index(old)] = new
    new.producer = keep
    keep.layers.extend(gone.layers)
    graph.nodes.remove(gone)


def _sole_reader(value: Value, node: Node) -> bool:
    return value.readers == [node]


def fold_affine(graph: NetGraph) -> None:
    """A per-channel affine (BatchNorm, Scale) into the convolution before it."""
    _absorb_affine(graph, "Convolution")


def merge_affine(graph: NetGraph) -> None:
    """Two per-channel affines in a row into one."""
    _absorb_affine(graph, "Affine")


def _absorb_affine(graph: NetGraph, kind: str) -> None:
    """Each Affine node whose input comes from a ``kind`` node with no
    post-operation, read by nothing else, becomes part of that node."""
    for node in list(graph.nodes):
        if node.kind != "Affine":
            continue
        value = node.inputs[0]
        producer = value.producer
        if producer is None or producer.kind != kind or producer.post is not NO_POST_OP or \
                not _sole_reader(value, node):
            continue
        producer.affine = node.affine if producer.affine is None else \
            producer.affine.then(node.affine)
        _replace_output(graph, producer, node, value)


def activation(node: Node) -> PostOp:
    pb = unwrap(node.layer.param)
    if node.kind == "ELU":
        return PostOp.elu(float(pb.elu_param.alpha))
    slope = float(pb.relu_param.negative_slope)
    return PostOp.leaky_relu(slope) if slope != 0.0 else PostOp.relu()


def fuse_activations(graph: NetGraph) -> None:
    for node in list(graph.nodes):
        if node.kind not in ("ReLU", "ELU"):
            continue
        value = node.inputs[0]
        post = activation(node)
        producer = value.producer
        if producer is not None and producer.kind in STAGE_KINDS and \
                producer.post is NO_POST_OP and not _sole_reader(value, node):
            _clone_with(graph, producer, node, post)
            continue
        targets = _carriers(value, node)
        for target in targets:
            target.post = post
        producer = value.producer
        _replace_output(graph, producer, node, value)
        if producer.kind == "Concat":
            for target in targets:
                target.layers.append(node.name)
            producer.layers.remove(node.name)


def _clone_with(graph: NetGraph, producer: Node, act: Node, post: PostOp) -> None:
    """Replace activation ``act`` by a second copy of ``producer`` that applies it."""
    clone = Node(producer.layer, producer.kind, list(producer.inputs), list(act.outputs),
                 [act.name, *producer.layers], producer.affine, post, label=act.name)
    for value in clone.inputs:
        value.readers.append(clone)
    act.outputs[0].producer = clone
    value = act.inputs[0]
    value.readers.remove(act)
    graph.nodes[graph.nodes.index(act)] = clone


def _carriers(value: Value, act: Node) -> list[Node]:
    """The stage nodes that will apply ``act`` to ``value`` as a post-op."""
    producer = value.producer
    why = None
    if producer is None:
        why = f"its input {value.blob!r} is the network input"
    elif not _sole_reader(value, act):
        others = sorted({r.name for r in value.readers if r is not act})
        why = (f"its input {value.blob!r} is also read by "
               f"{', '.join(repr(o) for o in others) or 'another layer'}")
    elif producer.kind == "Concat":
        for part in producer.inputs:
            if part.producer is None or part.producer.kind not in STAGE_KINDS or \
                    part.producer.post is not NO_POST_OP or \
                    part.readers != [producer] or producer.inputs.count(part) > 1:
                why = (f"it follows Concat {producer.name!r}, whose input {part.blob!r} is "
                       "not written by a stage of its own that nothing else reads")
                break
        else:
            return [part.producer for part in producer.inputs]
    elif producer.kind not in STAGE_KINDS:
        why = f"its input {value.blob!r} comes from a {producer.kind} layer, not a stage"
    elif producer.post is not NO_POST_OP:
        why = f"{producer.name!r} already has an activation"
    else:
        return [producer]
    raise UnsupportedNetworkError(
        f"{act.kind} {act.name!r} cannot be lowered: {why}; the NCSDK runs activations only "
        "as a post-operation of the stage that computed their input (give the activation's "
        "input no other reader)")
