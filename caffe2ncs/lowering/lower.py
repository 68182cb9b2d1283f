"""``lower``: a loaded Caffe network -> the graph IR the Neural Compute Stick runs.

The passes, in order (``docs/build.md`` describes each):

1. :mod:`.netgraph` - the network as values and nodes; pick the output, drop
   what it does not need, resolve Dropout/Split, refuse unsupported layers;
2. :mod:`.fusion` - fold BatchNorm/Scale into convolutions, merge the rest into
   scale stages, turn ReLU/ELU into post-operations;
3. :mod:`.placement` - give every value a buffer: input, output, work buffers,
   implicit concats, slice views;
4. :mod:`.stages` - one stage per device operation, weights to fp16;
5. :mod:`.emit` - number the work buffers, lay out the scratch area, build the
   :class:`~caffe2ncs.lowering.ir.Graph`.

The result is a graph of the target's format, with stages named after the Caffe
layers; write it with :func:`~caffe2ncs.lowering.emit.write_graph_file` (or
``graphfile.write_graph``), which first applies the format's conventions
(:func:`~caffe2ncs.lowering.graphfile.convert`: a 2.x file stores no names,
1.x keeps some parameters in op-params constants).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..errors import UnsupportedNetworkError
from ..limits import MAX_GRAPH_FILE_BYTES, check_deadline
from ..model.net import Net
from . import fusion, netgraph, placement
from .emit import to_graph
from .ir import Graph, GraphFormat
from .stages import StageBuilder
from .tensors import Weights

MIN_SHAVES, MAX_SHAVES = 1, 12


@dataclass(frozen=True, eq=False)
class Lowered:
    """A lowered network and how its stages map back to the Caffe layers."""

    graph: Graph
    #: Per stage (same order as ``graph.stages``, which is the order of the
    #: stages in the file): the Caffe layers it implements, the one it is named
    #: after first (a convolution, then the BatchNorm/Scale/ReLU folded into it).
    stage_layers: tuple[tuple[str, ...], ...]
    #: Every Caffe layer of the network -> the indices of the stages that
    #: implement it; ``()`` for layers that need no stage of their own
    #: (Dropout, Split, Concat, Slice, Silence, layers the output does not need).
    layer_stages: Mapping[str, tuple[int, ...]]
    #: The Caffe blob the graph returns, and the network input it reads.
    output: str
    input: str | None
    #: Things the caller should tell the user (missing weights, fp16 overflow).
    warnings: tuple[str, ...] = ()

    def stages_of(self, layer: str) -> tuple[int, ...]:
        return self.layer_stages.get(layer, ())


def _check_weight_size(net: Net) -> None:
    """Refuse, before allocating anything, a network whose weights cannot fit
    in a graph file (as fp16) - the stick's whole memory."""
    from ..model.weights import layer_blob_shapes

    total = 0
    for layer, shapes in layer_blob_shapes(net):
        for shape in shapes:
            n = 1
            for d in shape:
                n *= d
            total += n
    if 2 * total > MAX_GRAPH_FILE_BYTES:
        raise UnsupportedNetworkError(
            f"the network has {total:.3g} weights, {2 * total / 2**20:.0f} MiB as fp16: more than "
            f"a graph file can hold ({MAX_GRAPH_FILE_BYTES // 2**20} MiB, the stick's memory; "
            "limits.MAX_GRAPH_FILE_BYTES)", net.path)


def lower(net: Net, *, target: GraphFormat | str = "ncsdk2", shaves: int = 12,
          name: str | None = None, weights: Mapping[str, tuple] | None = None) -> Graph:
    """``net`` as a graph for ``target`` (``"ncsdk2"`` or ``"ncsdk1"``) running on
    ``shaves`` SHAVE processors (1-12).  ``name`` defaults to the network's
    name; ``weights`` (layer name -> blobs) replaces ``net.weights``.  Layers
    without weights get zeros.  Raises
    :class:`~caffe2ncs.errors.UnsupportedNetworkError` naming what cannot be
    lowered."""
    return lower_network(net, target=target, shaves=shaves, name=name, weights=weights).graph


def lower_network(net: Net, *, target: GraphFormat | str = "ncsdk2", shaves: int = 12,
                  name: str | None = None, weights: Mapping[str, tuple] | None = None,
                  output: str | None = None, any_batch: bool = False,
                  progress: Callable[[int], None] | None = None) -> Lowered:
    """:func:`lower`, keeping the stage <-> layer mapping and the warnings.

    ``output`` picks the blob to compute (default: the network's first output,
    as mvNCCompile's default ``-on``); ``any_batch`` lowers a network declared
    with a batch size other than 1 for one image instead of refusing it;
    ``progress(n)`` is called with the number of float32 weight bytes converted
    since the last call, layer by layer."""
    try:
        target = GraphFormat(target)
    except ValueError:
        raise ValueError(f"unknown target {target!r} (use 'ncsdk1' or 'ncsdk2')") from None
    if not isinstance(shaves, int) or not MIN_SHAVES <= shaves <= MAX_SHAVES:
        raise ValueError(f"shaves must be {MIN_SHAVES}..{MAX_SHAVES}, got {shaves!r}")
    _check_weight_size(net)
    source = Weights(net, weights, progress)
    graph = netgraph.build(net, output, any_batch)
    check_deadline("lowering (graph)")
    fusion.run(graph, source)
    check_deadline("lowering (fusion)")
    placement.plan(graph)
    check_deadline("lowering (placement)")
    specs = StageBuilder(graph, source, target).build()
    check_deadline("lowering (stages)")
    ir = to_graph(specs, target, graph_name(net.name if name is None else name), shaves)

    stage_layers = tuple(spec.layers for spec in specs)
    by_layer: dict[str, list[int]] = {layer.name: [] for layer in net.layers}
    for i, layers in enumerate(stage_layers):
        for layer in layers:
            if i not in by_layer.setdefault(layer, []):
                by_layer[layer].append(i)
    warnings = []
    batch = [spec.shape[0] for spec in net.inputs if spec.shape and spec.shape[0] != 1]
    if batch and any_batch:
        warnings.append(f"the network is declared for a batch of {batch[0]}; the graph "
                        "computes one image at a time")
    missing = list(dict.fromkeys(source.missing))
    if missing and source.source:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        warnings.append(f"{len(missing)} layer(s) have no weights in the caffemodel and get "
                        f"zeros: {shown}")
    if source.overflow:
        shown = ", ".join(source.overflow[:5]) + (" ..." if len(source.overflow) > 5 else "")
        warnings.append(f"values beyond the fp16 range (+-65504) became infinite in: {shown}")
    return Lowered(ir, stage_layers,
                   MappingProxyType({k: tuple(v) for k, v in by_layer.items()}),
                   graph.output.blob, graph.input.blob if graph.input is not None else None,
                   tuple(warnings))


def graph_name(name: str) -> str:
    """A network name the 1.x header can hold: ASCII, no NUL, at most 100 bytes."""
    text = name.encode("ascii", "replace").decode("ascii").replace("\0", "?")
    return text[:100]
