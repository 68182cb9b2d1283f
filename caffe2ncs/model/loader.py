"""``load``: prototxt (and caffemodel) → the canonical :class:`Net`.

The steps, each in its own module:

1. :mod:`.textformat` parses the text into nodes that know their positions;
2. :mod:`.schema` checks them against Caffe's schema and converts every value
   (in the same pass over the text; a block that differs from an earlier one
   only in its strings is converted from that one's template, see
   ``schema._Walk``), collecting fields the schema does not know; the protobuf
   messages are built from what it converted, each layer's when something
   first reads ``layer.param`` (:class:`.frozen.LazyFrozen`);
3. :mod:`.upgrade` turns V0/V1 layers into current ones and drops the layers
   the TEST phase excludes;
4. this module normalises the inputs (``input_dim``, ``input_shape`` and
   ``Input`` layers all become :class:`InputSpec`, remembering the form);
5. :mod:`.shapes` checks the graph and infers every blob's shape;
6. :mod:`.caffemodel` reads the weights, which are matched to layers by name
   and checked against the shapes Caffe would give them (:mod:`.params`).

With ``strict=True`` (the default) the first problem Caffe itself would refuse
the network for is raised as :class:`~caffe2ncs.errors.NetGraphError` naming
the file, line and column; with ``strict=False`` the network is returned with
all problems listed in ``net.problems`` (this is what ``check`` uses).
"""

from __future__ import annotations

import os
import re

from .._proto import caffe_pb2 as pb
from ..errors import CaffemodelError, NetGraphError, PrototxtSyntaxError
from ..limits import MAX_LAYERS, LimitError, check_deadline
from . import upgrade
from .frozen import Frozen, LazyFrozen, set_source
from .net import InputForm, InputSpec, Layer, LayerSpelling, Net, Problem
from .params import blob_names, expected_blob_shapes
from .schema import CONVERTER, Unknown, is_repeated
from .shapes import MAX_BLOB_ELEMENTS, analyse, describe
from .source import SourceText, read_text_file
from .textformat import Document, Node

_BINARY_SUFFIXES = (".caffemodel", ".binaryproto", ".caffemodel.h5")
_NOT_IN_HEAD = frozenset({"layer", "layers", "input", "input_shape", "input_dim"})
# Control characters other than tab, newline, vertical tab, form feed, carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")


def load(
    prototxt: str | os.PathLike[str],
    caffemodel: str | os.PathLike[str] | None = None,
    *,
    strict: bool = True,
) -> Net:
    """Load a network from a prototxt file, optionally with its weights.

    ``prototxt`` may also be a lone ``.caffemodel`` (its embedded definition is
    used; positions are then unavailable)."""
    path = os.fspath(prototxt)
    if caffemodel is None and path.endswith(_BINARY_SUFFIXES):
        return _load_binary(path, strict)
    text = read_text_file(path)
    return loads(text, path=path, caffemodel=caffemodel, strict=strict)


def loads(
    text: str,
    *,
    path: str | None = None,
    caffemodel=None,
    strict: bool = True,
) -> Net:
    """Load a network from prototxt text (``path`` is only used in messages)."""
    source = SourceText(text, path)
    _refuse_binary(source)
    unknown: list[Unknown] = []
    doc, fields = CONVERTER.document(source, pb.NetParameter.DESCRIPTOR, unknown)
    check_deadline("parsing")
    _check_layer_count(doc, source, fields)
    layer_fields = fields.get("layer", [])
    if "layers" in fields:  # V0/V1 layers: the upgrade reads the messages
        net_pb = pb.NetParameter(**fields)
    else:
        # Only the head is built now; each layer's message is built from its
        # fields when something first reads layer.param (see LazyFrozen).
        net_pb = pb.NetParameter(**{k: v for k, v in fields.items() if k != "layer"})
    check_deadline("reading the fields")
    model = None
    if caffemodel is not None:
        from .caffemodel import Caffemodel, read_caffemodel

        model = caffemodel if isinstance(caffemodel, Caffemodel) else read_caffemodel(caffemodel)
    return _assemble(net_pb, doc, unknown, path, strict, model, layer_fields=layer_fields)


def _check_layer_count(doc: Document, source: SourceText, fields: dict) -> None:
    """Refuse more than MAX_LAYERS layer blocks (``fields``: the schema's values,
    one dict per block, counted first; the blocks are walked only to say where)."""
    if len(fields.get("layer", ())) + len(fields.get("layers", ())) <= MAX_LAYERS:
        return
    count = 0
    for child in doc.root.children:
        if child.name in ("layer", "layers"):
            count += 1
            if count > MAX_LAYERS:
                line, col = source.line_col(child.start)
                raise LimitError(f"more than {MAX_LAYERS} layers; larger networks are refused "
                                 "(limits.MAX_LAYERS)", source.path, line, col)


def _refuse_binary(source: SourceText) -> None:
    head = source.text[:4096]
    if "\x00" in head or len(_CONTROL.findall(head)) > 8:
        raise PrototxtSyntaxError(
            "this is a binary file, not a prototxt (a .caffemodel? give it as the second "
            "argument, or name it *.caffemodel)", source.path, 1, 1)


def _load_binary(path: str, strict: bool) -> Net:
    from .caffemodel import read_caffemodel

    model = read_caffemodel(path)
    net_pb = pb.NetParameter()
    net_pb.CopyFrom(model.net)
    for layer in model.layers:
        net_pb.layer.add().CopyFrom(layer.param)
    return _assemble(net_pb, None, [], path, strict, model, weights_path=path)


class _Entry:
    """A layer on its way to becoming a :class:`Layer`."""

    __slots__ = ("pb", "node", "spelling", "type_spelling", "position", "v0_pad", "padding_node",
                 "fields")

    def __init__(self, layer_pb, node, spelling, type_spelling, position, v0_pad=0, fields=None):
        self.pb = layer_pb
        self.node = node
        self.spelling = spelling
        self.type_spelling = type_spelling
        self.position = position
        self.v0_pad = v0_pad
        self.padding_node = None  # a V0 padding layer folded into this one
        #: the schema's keyword arguments for ``pb`` (a 'layer' block), else None
        self.fields = fields


def _assemble(net_pb: pb.NetParameter, doc: Document | None, unknown: list[Unknown],
              path: str | None, strict: bool, model,
              weights_path: str | None = None, layer_fields: list[dict] | None = None) -> Net:
    """``layer_fields``: the fields of each ``layer`` as the schema converted
    them (the keyword arguments its message was made from), when known: the
    names, types, bottoms and tops are read from them (reading a protobuf
    message's attributes costs several times more)."""
    problems: list[Problem] = []
    root = doc.root if doc is not None else None
    # The top-level nodes by field name, in one pass (root.all() per name
    # would walk the hundreds of layer nodes once per name).
    top_nodes: dict[str, list[Node]] = {}
    if root is not None:
        for child in root.children:
            group = top_nodes.get(child.name)
            if group is None:
                top_nodes[child.name] = [child]
            else:
                group.append(child)
    layer_nodes = top_nodes.get("layer", []) if root is not None else [None] * len(net_pb.layer)
    v1_nodes = top_nodes.get("layers", []) if root is not None else [None] * len(net_pb.layers)

    if layer_fields is not None and not len(net_pb.layers):
        # net_pb has no layers then: they are in layer_fields only
        return _assemble_layers(net_pb, doc, unknown, path, strict, model, weights_path,
                                layer_fields, layer_nodes, top_nodes, problems)
    entries: list[_Entry] = []
    if layer_fields is not None:
        for layer_pb, node, f in zip(net_pb.layer, layer_nodes, layer_fields):
            entries.append(_Entry(layer_pb, node, LayerSpelling.LAYER, f.get("type", ""), 0, 0, f))
    else:
        for layer_pb, node in zip(net_pb.layer, layer_nodes):
            entries.append(_Entry(layer_pb, node, LayerSpelling.LAYER, layer_pb.type, 0))
    if len(net_pb.layers):
        if len(net_pb.layer):
            problems.append(Problem(
                "mixed-layer-spellings",
                "the file mixes 'layer' and the older 'layers' blocks; Caffe refuses to read "
                "such a network (convert the 'layers' blocks)", v1_nodes[0]))
        for v1, node in zip(net_pb.layers, v1_nodes):
            messages: list[str] = []
            if v1.HasField("layer"):
                layer_pb = upgrade.upgrade_v0(v1, messages)
                entry = _Entry(layer_pb, node, LayerSpelling.V0, v1.layer.type, 0, v1.layer.pad)
            else:
                layer_pb = upgrade.upgrade_v1(v1, messages)
                entry = _Entry(layer_pb, node, LayerSpelling.V1, upgrade.v1_type_name(v1), 0)
            entries.append(entry)
            for message in messages:
                problems.append(Problem("v0-upgrade", f"layer {layer_pb.name!r}: {message}",
                                        node, layer_pb.name, fatal=False))
        if root is not None:
            entries.sort(key=lambda e: e.node.start)
    # Positions count every layer block of the file, so they are taken before
    # V0 padding layers are folded away.
    for position, entry in enumerate(entries):
        entry.position = position
    if any(e.spelling is LayerSpelling.V0 for e in entries):
        fold_problems: list[tuple[_Entry, str]] = []
        padding_of: dict[int, _Entry] = {}
        folded = upgrade.fold_v0_padding([(e.pb, e.v0_pad, e) for e in entries], fold_problems,
                                         padding_of)
        entries = [payload for _, _, payload in folded]
        for entry in entries:
            padding = padding_of.get(id(entry))
            if padding is not None:
                entry.padding_node = padding.node
        for entry, message in fold_problems:
            # Caffe's UpgradeV0PaddingLayers CHECK-fails on these.
            problems.append(Problem("v0-upgrade", f"layer {entry.pb.name!r}: {message}",
                                    entry.node, entry.pb.name))

    state = upgrade.test_state(net_pb)
    included: list[_Entry] = []
    excluded_entries: list[_Entry] = []
    for e in entries:
        f = e.fields
        if f is not None and "include" not in f and "exclude" not in f:
            included.append(e)  # no rules: always included
        else:
            (included if upgrade.layer_included(e.pb, state) else excluded_entries).append(e)

    inputs = _top_level_inputs(net_pb, root, top_nodes, problems, model is not None and doc is None)
    body: list[_Entry] = []
    for entry in included:
        if (entry.fields.get("type", "") if entry.fields is not None else entry.pb.type) == "Input":
            inputs.extend(_input_layer(entry, problems))
        else:
            body.append(entry)

    layers = tuple(_make_layer(i, e) for i, e in enumerate(body))
    excluded = tuple(_make_layer(-1, e) for e in excluded_entries)
    return _finish(net_pb, doc, unknown, path, strict, model, weights_path, inputs, layers,
                   excluded, problems, entries[0].spelling if entries else LayerSpelling.LAYER,
                   [e.fields for e in body])


def _assemble_layers(net_pb: pb.NetParameter, doc: Document | None, unknown: list[Unknown],
                     path: str | None, strict: bool, model, weights_path: str | None,
                     layer_fields: list[dict], layer_nodes: list, top_nodes: dict,
                     problems: list[Problem]) -> Net:
    """_assemble for the usual file: only current ``layer`` blocks, read from the
    schema's fields (no legacy upgrade, no V0 padding to fold)."""
    root = doc.root if doc is not None else None
    inputs = _top_level_inputs(net_pb, root, top_nodes, problems, model is not None and doc is None)
    state = None
    layers: list[Layer] = []
    excluded: list[Layer] = []
    fields_of: list[dict] = []
    build = Layer.build
    spelling = LayerSpelling.LAYER
    make = pb.LayerParameter
    new_view = object.__new__
    for position, (node, f) in enumerate(zip(layer_nodes, layer_fields)):
        t = f.get("type", "")
        if "include" in f or "exclude" in f:
            if state is None:
                state = upgrade.test_state(net_pb)
            layer_pb = make(**f)
            if not upgrade.layer_included(layer_pb, state):
                excluded.append(build(-1, f.get("name", ""), t, tuple(f.get("bottom", ())),
                                      tuple(f.get("top", ())), Frozen(layer_pb), node, spelling,
                                      t, position))
                continue
        if t == "Input":
            inputs.extend(_input_layer(_Entry(make(**f), node, spelling, t, position, 0, f),
                                       problems))
            continue
        param = new_view(LazyFrozen)  # a view of make(**f), built on first read
        set_source(param, (make, f))
        layers.append(build(len(layers), f.get("name", ""), t, tuple(f.get("bottom", ())),
                            tuple(f.get("top", ())), param, node, spelling, t, position))
        fields_of.append(f)
    return _finish(net_pb, doc, unknown, path, strict, model, weights_path, inputs, tuple(layers),
                   tuple(excluded), problems, spelling, fields_of)


def _finish(net_pb, doc, unknown, path, strict, model, weights_path, inputs, layers, excluded,
            problems, spelling, layer_fields) -> Net:
    check_deadline("upgrading the layers")
    analysis = analyse(inputs, layers)
    check_deadline("inferring the shapes")
    problems.extend(analysis.problems)
    _check_learned_sizes(layers, analysis.layer_shapes, problems, layer_fields)

    weights: dict = {}
    if model is not None:
        weights = _merge_weights(model, layers, analysis.layer_shapes, problems)
        weights_path = weights_path or model.path

    head = pb.NetParameter()
    for fd, value in net_pb.ListFields():
        if fd.name in _NOT_IN_HEAD:
            continue
        if is_repeated(fd):
            getattr(head, fd.name).extend(value)
        elif fd.message_type is not None:
            getattr(head, fd.name).CopyFrom(value)
        else:
            setattr(head, fd.name, value)
    net = Net(
        name=net_pb.name,
        layers=layers,
        inputs=tuple(inputs),
        path=path,
        document=doc,
        spelling=spelling,
        unknown=tuple(unknown),
        excluded=excluded,
        problems=tuple(problems),
        blob_shapes=analysis.blob_shapes,
        layer_shapes=tuple(analysis.layer_shapes),
        outputs=tuple(analysis.outputs),
        weights=weights,
        weights_path=weights_path,
        net_param=Frozen(head),
        bottom_producers=tuple(analysis.producers),
    )
    if strict:
        raise_first_fatal(net)
    return net


def raise_first_fatal(net: Net) -> None:
    """Raise the first problem that makes Caffe refuse ``net``, if any."""
    for problem in net.problems:
        if problem.fatal:
            where = net.position(problem.node)
            line, col = where if where else (None, None)
            error_cls = CaffemodelError if problem.code.startswith("weights") else NetGraphError
            path = net.path
            if problem.code.startswith("weights") and net.weights_path:
                path = net.path or net.weights_path
            raise error_cls(problem.message, path, line, col)


def _make_layer(index: int, e: _Entry) -> Layer:
    p = e.pb
    f = e.fields
    if f is not None:
        return Layer.build(index, f.get("name", ""), f.get("type", ""), tuple(f.get("bottom", ())),
                           tuple(f.get("top", ())), Frozen(p), e.node, e.spelling,
                           e.type_spelling, e.position, e.padding_node)
    # tuple(p.bottom[:]): slicing the protobuf container first is 2.5x faster
    return Layer.build(index, p.name, p.type, tuple(p.bottom[:]), tuple(p.top[:]), Frozen(p),
                       e.node, e.spelling, e.type_spelling, e.position, e.padding_node)


# -- inputs ----------------------------------------------------------------------

def _top_level_inputs(net_pb: pb.NetParameter, root: Node | None, top_nodes: dict,
                      problems: list[Problem], binary: bool) -> list[InputSpec]:
    names = net_pb.input[:]
    if not names:
        if len(net_pb.input_shape) or len(net_pb.input_dim):
            node = root.get("input_shape") or root.get("input_dim") if root is not None else None
            problems.append(Problem("input-spec", "input dimensions are given but no 'input' name",
                                    node))
        return []
    input_nodes = top_nodes.get("input", []) if root is not None else [None] * len(names)
    shape_nodes = top_nodes.get("input_shape", [])
    dim_nodes = top_nodes.get("input_dim", [])
    n_shapes, n_dims = len(net_pb.input_shape), len(net_pb.input_dim)
    shapes: list = [None] * len(names)
    shape_at: list = [None] * len(names)
    form = InputForm.BINARY if binary else InputForm.NO_SHAPE
    if n_shapes and n_dims:
        problems.append(Problem(
            "input-spec", "give either input_shape or the deprecated input_dim, not both",
            dim_nodes[0] if dim_nodes else None))
    if n_shapes:
        form = InputForm.BINARY if binary else InputForm.INPUT_SHAPE
        if n_shapes != len(names):
            problems.append(Problem(
                "input-spec",
                f"{len(names)} input(s) but {n_shapes} input_shape block(s); give one per input",
                shape_nodes[0] if shape_nodes else None))
        for i in range(min(n_shapes, len(names))):
            shapes[i] = tuple(net_pb.input_shape[i].dim)
            shape_at[i] = shape_nodes[i] if i < len(shape_nodes) else None
    elif n_dims:
        form = InputForm.BINARY if binary else InputForm.INPUT_DIM
        if n_dims != 4 * len(names):
            problems.append(Problem(
                "input-spec",
                f"{n_dims} input_dim value(s) for {len(names)} input(s); Caffe needs exactly 4 "
                "per input (N, C, H, W)", dim_nodes[0] if dim_nodes else None))
        dims = list(net_pb.input_dim)
        for i in range(len(names)):
            chunk = dims[4 * i:4 * i + 4]
            if len(chunk) == 4:
                shapes[i] = tuple(chunk)
                shape_at[i] = dim_nodes[4 * i] if 4 * i < len(dim_nodes) else None
    return [
        InputSpec(name, shapes[i], form, input_nodes[i] if i < len(input_nodes) else None,
                  shape_at[i])
        for i, name in enumerate(names)
    ]


def _input_layer(entry: _Entry, problems: list[Problem]) -> list[InputSpec]:
    p = entry.pb
    node = entry.node
    tops = list(p.top)
    shapes = [tuple(s.dim) for s in p.input_param.shape]
    shape_nodes = node.find("input_param").all("shape") if node is not None and \
        node.find("input_param") is not None else []
    if not tops:
        problems.append(Problem("input-spec", f"Input layer {p.name!r} has no top", node, p.name))
        return []
    if len(shapes) not in (1, len(tops)):
        problems.append(Problem(
            "input-spec",
            f"Input layer {p.name!r} has {len(tops)} top(s) but {len(shapes)} shape(s); give one "
            "shape, or one per top", (node.find("input_param") if node is not None else None) or node,
            p.name))
    specs = []
    for i, top in enumerate(tops):
        j = i if len(shapes) == len(tops) else 0
        shape = shapes[j] if j < len(shapes) else None
        specs.append(InputSpec(
            name=top,
            shape=shape,
            form=InputForm.INPUT_PARAM,
            node=node.find("top", i) if node is not None else None,
            shape_node=shape_nodes[j] if j < len(shape_nodes) else None,
            layer_node=node,
            layer_position=entry.position,
            layer_name=p.name,
        ))
    return specs


# -- weights ----------------------------------------------------------------------

def _merge_weights(model, layers, layer_shapes, problems: list[Problem]) -> dict:
    """Match caffemodel blobs to layers by name and check them as Caffe's
    ``CopyTrainedLayersFrom`` does; unmatched caffemodel layers are ignored."""
    by_name = model.by_name()
    weights: dict = {}
    missing: list = []
    needing = 0
    for layer in layers:
        source = by_name.get(layer.name)
        expected = expected_blob_shapes(layer, layer_shapes[layer.index].inputs)
        if expected:
            needing += 1
        if source is None or not source.blobs:
            if expected:
                missing.append(layer)
            continue
        blobs = source.blobs
        if expected is not None:
            if len(blobs) != len(expected):
                problems.append(Problem(
                    "weights-count",
                    f"layer {layer.name!r} ({layer.type}): the caffemodel has {len(blobs)} blob(s), "
                    f"the prototxt needs {len(expected)} "
                    f"({', '.join(blob_names(layer)[:len(expected)]) or 'none'}); "
                    "were they made for different networks (e.g. before/after merging BatchNorm)?",
                    layer.node, layer.name))
            else:
                names = blob_names(layer)
                for i, (arr, want) in enumerate(zip(blobs, expected)):
                    if not _shape_compatible(arr.shape, want):
                        problems.append(Problem(
                            "weights-shape",
                            f"layer {layer.name!r} ({layer.type}): caffemodel "
                            f"{names[i] if i < len(names) else f'blob {i}'} is "
                            f"{describe(arr.shape)}, the prototxt needs {describe(want)}",
                            layer.node, layer.name))
                        break
                else:
                    blobs = tuple(_reshaped(arr, want) for arr, want in zip(blobs, expected))
        weights[layer.name] = blobs
    if missing:
        # Caffe would silently keep the fillers' values for these (garbage at
        # inference); OpenCV refuses.  Either way it is never what a deploy
        # wants: a caffemodel cut at a layer boundary, or one for another net.
        where = os.path.basename(model.path)
        if len(missing) == needing:
            first = missing[0]
            problems.append(Problem(
                "weights-missing",
                f"the caffemodel {where} has weights for none of the {needing} layer(s) that "
                f"need them (e.g. {first.name!r}); is it for another network?",
                first.node, first.name))
        else:
            for layer in missing:
                problems.append(Problem(
                    "weights-missing",
                    f"layer {layer.name!r} ({layer.type}) has no weights in the caffemodel "
                    f"{where}, which has weights for only {needing - len(missing)} of the "
                    f"{needing} layers that need them; is the file truncated, or for another "
                    "network?",
                    layer.node, layer.name))
    return weights


def _check_learned_sizes(layers, layer_shapes, problems: list[Problem],
                         layer_fields: list | None = None) -> None:
    """Caffe refuses learned blobs over INT_MAX elements (Blob::Reshape), e.g. a
    fully-connected layer on a huge input; so does writing or allocating them.
    ``layer_fields``: each layer's schema fields (or None), for a quick upper
    bound that spares computing the exact shapes of ordinary layers."""
    small: set = set()  # (type, parameters, input shape) found small, by identity (see below)
    for layer in layers:
        t = layer.type
        if t in _SMALL_PARAMS:
            continue
        ins = layer_shapes[layer.index].inputs
        fields = layer_fields[layer.index] if layer_fields is not None else None
        if fields is not None and ins and ins[0] is not None:
            # Layers made from one template share their parameters' dict (see
            # schema._Walk), and layers fed by one blob share its shape tuple.
            # (``layer_fields`` and ``layer_shapes`` hold both, so no id is reused here.)
            params = fields.get(_BOUND_PARAMS.get(t, ""))
            key = (t, id(params), id(ins[0]))
            if params is not None and key in small:
                continue
            bound = _learned_bound(t, fields, ins[0])
            if bound is not None and bound <= MAX_BLOB_ELEMENTS:
                if params is not None:
                    small.add(key)
                continue
        expected = expected_blob_shapes(layer, ins)
        if not expected:
            continue
        for i, shape in enumerate(expected):
            n = 1
            for d in shape:
                n *= d
            if n > MAX_BLOB_ELEMENTS:
                names = blob_names(layer)
                problems.append(Problem(
                    "too-large",
                    f"layer {layer.name!r} ({layer.type}) would need "
                    f"{names[i] if i < len(names) else f'blob {i}'} of {describe(shape)}: "
                    f"{n:.3g} elements, more than Caffe's limit of {MAX_BLOB_ELEMENTS} "
                    "elements per blob", layer.node, layer.name))
                break


def _learned_bound(t: str, fields: dict, x: tuple) -> int | None:
    """An upper bound on the elements of any learned blob of a convolution or
    fully-connected layer with input shape ``x``, from its schema fields
    (None when there is no cheap one)."""
    if t in _CONV_BOUND:
        cp = fields.get("convolution_param", _EMPTY)
        kernel = cp.get("kernel_size")
        if kernel:
            k = 1
            for v in kernel:
                k *= v
            if len(kernel) == 1:
                k **= max(len(x) - 1, 1)  # at least the spatial axes
        else:
            k = cp.get("kernel_h", 1) * cp.get("kernel_w", 1)
        channels = max(x, default=1)  # at least the input channels, whatever the axis
        return max(cp.get("num_output", 0), channels, 1) * channels * k
    if t == "InnerProduct":
        n = 1
        for d in x:
            n *= d
        return max(fields.get("inner_product_param", _EMPTY).get("num_output", 0), 1) * max(n, 1)
    return None


_CONV_BOUND = frozenset({"Convolution", "Deconvolution", "ConvolutionDepthwise",
                         "DepthwiseConvolution"})
#: the parameters _learned_bound reads, by layer type
_BOUND_PARAMS = {t: "convolution_param" for t in _CONV_BOUND} | {
    "InnerProduct": "inner_product_param"}
_EMPTY: dict = {}


# Layers whose learned blobs are per-channel at most: never larger than a top.
_SMALL_PARAMS = frozenset({"BatchNorm", "Scale", "Bias", "PReLU", "Normalize", "ReLU", "Pooling",
                           "Concat", "Eltwise", "Softmax", "Split", "Dropout", "Input"})


def _shape_compatible(have: tuple, want: tuple) -> bool:
    if tuple(have) == tuple(want):
        return True
    # Old caffemodels store every blob as 4-D (num, channels, height, width):
    # Caffe accepts them when they match the shape padded with leading 1s.
    if len(have) == 4 and len(want) <= 4:
        return tuple(have) == (1,) * (4 - len(want)) + tuple(want)
    return False


def _reshaped(arr, want):
    if tuple(arr.shape) == tuple(want):
        return arr
    out = arr.reshape(want)
    out.flags.writeable = False
    return out
