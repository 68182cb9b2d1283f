"""The layer graph and shape inference, with Caffe's own rules.

:func:`analyse` walks the layers in file order exactly as Caffe's ``Net::Init``
does: a bottom must already have been produced (by an input or an earlier
layer), a top may only be written again by an in-place layer, and the blobs
left unconsumed at the end are the network's outputs.  Every violation is a
:class:`~caffe2ncs.model.net.Problem` naming the layer, never an exception, and
no tensor is ever allocated: shapes are tuples of Python ints, checked against
Caffe's limit of ``2**31 - 1`` elements per blob.

Shape rules follow the Caffe layer implementations (convolution rounds down;
pooling rounds up and then clamps the last window to start inside the padded
input; deconvolution inverts the convolution formula; Reshape's 0/-1; Crop's
axis/offsets; Concat/Slice axes incl. the legacy ``concat_dim``/``slice_dim``;
SSD's Permute/PriorBox/DetectionOutput), plus the common custom layers found
in the wild (Upsample, Interp, ShuffleChannel, Reorg, ROIPooling, Axpy,
ConvolutionDepthwise, …) where their rule is known.  Where it is not, the
shape is ``None`` ("unknown") and the rest of the network is still inferred
from what is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .net import InputSpec, Layer, LayerShapes, Problem, Shape
from .frozen import unbuilt_fields, unwrap
from .schema import parse_float, parse_int

#: Caffe's Blob::Reshape refuses blobs with more elements than an int can count.
from ..limits import MAX_BLOB_ELEMENTS  # noqa: E402
#: Refuse tensors with more axes than this (Caffe's kMaxBlobAxes is 32).
from ..limits import MAX_BLOB_AXES as MAX_AXES  # noqa: E402


class ShapeError(Exception):
    """A layer whose parameters do not fit its inputs (Caffe would CHECK-fail)."""

    def __init__(self, message: str, field: tuple = ()) -> None:
        super().__init__(message)
        self.field = field  # path of the offending field inside the layer, if known


class Analysis:
    __slots__ = ("problems", "blob_shapes", "layer_shapes", "outputs", "producers")

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.blob_shapes: dict[str, Shape | None] = {}
        self.layer_shapes: list[LayerShapes] = []
        self.outputs: list[str] = []
        #: per layer, per bottom: the index of the producing layer (-1 = an input)
        self.producers: list[tuple[int, ...]] = []


def count(shape: Shape) -> int:
    return math.prod(shape)


def describe(shape: Shape | None) -> str:
    return "?" if shape is None else "x".join(map(str, shape)) if shape else "scalar"


def analyse(inputs: Sequence[InputSpec], layers: Sequence[Layer]) -> Analysis:
    result = Analysis()
    problems = result.problems
    shapes: dict[str, Shape | None] = {}
    producer: dict[str, int] = {}
    available: dict[str, None] = {}

    for spec in inputs:
        if spec.name in shapes:
            problems.append(Problem("duplicate-input", f"input {spec.name!r} is declared twice",
                                    spec.node))
        shape = spec.shape
        if shape is not None:
            bad = _check_shape(shape)
            if bad:
                problems.append(Problem("bad-input-shape", f"input {spec.name!r}: {bad}",
                                        spec.shape_node or spec.node))
                shape = None
        shapes[spec.name] = shape
        producer[spec.name] = -1
        available[spec.name] = None

    written_by: dict[str, list[int]] | None = None  # built when first needed
    names: dict[str, int] = {}
    forward_refs: list[tuple[Layer, str, int]] = []
    layer_shapes = result.layer_shapes
    all_producers = result.producers
    new_shapes = LayerShapes.build
    rules = _RULES
    no_input = _NO_INPUT_NEEDED
    lazy = _PARAM_WHEN_NEEDED
    same_plain = _same_plain
    scale = _scale
    _CONV_MEMO.clear()  # memoised within one network only
    fine: set[int] = set()  # ids of the output shapes found within Caffe's limits
    for layer in layers:
        # (This loop runs for every layer of every network loaded; it is
        # written for speed, checks and all.)
        name = layer.name
        index = layer.index
        bottoms = layer.bottoms
        tops = layer.tops
        if name in names:
            problems.append(Problem(
                "duplicate-layer-name",
                f"layer name {name!r} is used by two layers (also layer #{names[name]}); "
                "weights are matched by name, so one of them will get the other's",
                layer.locate("name"), name, fatal=False))
        names[name] = index

        n_tops = len(tops)
        n_bottoms = len(bottoms)
        in_shapes: list[Shape | None]
        if n_bottoms == 1 and bottoms[0] in shapes:  # the common case, quickly
            bottom = bottoms[0]
            in_shapes = [shapes[bottom]]
            prods: tuple[int, ...] = (producer[bottom],)
            available.pop(bottom, None)
        else:
            in_shapes = []
            prod_list: list[int] = []
            for i, bottom in enumerate(bottoms):
                if bottom in shapes:
                    in_shapes.append(shapes[bottom])
                    prod_list.append(producer[bottom])
                    available.pop(bottom, None)
                    continue
                in_shapes.append(None)
                prod_list.append(-2)
                if written_by is None:
                    written_by = {}
                    for other in layers:
                        for top in other.tops:
                            written_by.setdefault(top, []).append(other.index)
                later = [j for j in written_by.get(bottom, ()) if j > index]
                if later:
                    forward_refs.append((layer, bottom, later[0]))
                else:
                    hint = ""
                    if bottom in tops:
                        hint = " (it is written in place by this layer, but nothing produces it first)"
                    problems.append(Problem(
                        "missing-bottom",
                        f"layer {name!r} reads blob {bottom!r}, which no input or layer produces{hint}",
                        _field(layer, "bottom", i), name))
            prods = tuple(prod_list)

        if n_tops == 1 and (tops[0] not in shapes or (n_bottoms and bottoms[0] == tops[0])):
            pass  # the common case: one new top, or one written in place
        else:
            for i, top in enumerate(tops):
                if n_tops > 1 and top in tops[:i]:
                    problems.append(Problem(
                        "duplicate-top", f"layer {name!r} lists top {top!r} twice",
                        _field(layer, "top", i), name))
                # Caffe's Net::AppendTop: a top is in place only if it is the
                # bottom at the same index; any other existing blob is a conflict.
                if top in shapes and not (i < n_bottoms and bottoms[i] == top):
                    owner = producer[top]
                    by = "an input" if owner == -1 else f"layer {layers[owner].name!r}"
                    problems.append(Problem(
                        "duplicate-top",
                        f"layer {name!r} writes blob {top!r}, which {by} already produced; "
                        "only in-place layers (top == bottom, at the same index) may write a "
                        "blob twice", _field(layer, "top", i), name))

        # infer(), inlined
        out_shapes: tuple[Shape | None, ...]
        fn = rules.get(layer.type)
        if fn is None or ((not in_shapes or None in in_shapes) and fn not in no_input):
            out_shapes = (None,) * n_tops
        elif n_tops == 1 and (fn is same_plain or (fn is scale and n_bottoms == 1)):
            out_shapes = (in_shapes[0],)  # _same_plain() or _scale(), inlined: ReLU, BatchNorm, ...
        else:
            try:
                out = fn(None if fn in lazy else layer.param._msg, in_shapes, layer)
                out_shapes = tuple(out) if len(out) == n_tops else \
                    tuple((list(out) + [None] * n_tops)[:n_tops])
            except ShapeError as err:
                problems.append(Problem("shape", f"layer {name!r} ({layer.type}): {err}",
                                        _error_node(layer, err.field), name, fatal=False))
                out_shapes = (None,) * n_tops
        first_in = in_shapes[0] if in_shapes else None
        if n_tops == 1 and (out_shapes[0] is None or out_shapes[0] is first_in):
            # the usual case, quickly (a shape that is the input's was checked)
            top = tops[0]
            shapes[top] = out_shapes[0]
            producer[top] = index
            available[top] = None
            layer_shapes.append(new_shapes(tuple(in_shapes), out_shapes))
            all_producers.append(prods)
            continue
        for i, shape in enumerate(out_shapes):
            # (a shape that is one of the inputs' was checked when it was made;
            # one a memoised rule returned again, when it was first returned)
            if shape is not None and shape is not first_in and id(shape) not in fine:
                bad = _check_shape(shape)
                if not bad:
                    fine.add(id(shape))  # (every shape checked lives until the end)
                else:
                    problems.append(Problem(
                        "too-large",
                        f"layer {name!r} ({layer.type}) would make top "
                        f"{tops[i]!r} {bad}", layer.locate("top", i) or layer.node, name))
                    out_shapes = out_shapes[:i] + (None,) + out_shapes[i + 1:]
            top = tops[i]
            shapes[top] = out_shapes[i]
            producer[top] = index
            available[top] = None
        layer_shapes.append(new_shapes(tuple(in_shapes), out_shapes))
        all_producers.append(prods)

    if forward_refs:
        cycle = _find_cycle(layers)
        if cycle:
            path = " -> ".join(repr(layers[i].name) for i in cycle + [cycle[0]])
            first = layers[cycle[0]]
            problems.append(Problem(
                "cycle", f"the layers form a cycle: {path}", first.locate("bottom", 0) or first.node,
                first.name))
        for layer, bottom, later_index in forward_refs:
            later = layers[later_index]
            problems.append(Problem(
                "bottom-order",
                f"layer {layer.name!r} reads blob {bottom!r} before layer {later.name!r} "
                "produces it; Caffe builds layers in file order",
                _field(layer, "bottom", list(layer.bottoms).index(bottom)), layer.name))

    result.blob_shapes = shapes
    result.outputs = list(available)
    return result


def _field(layer: Layer, name: str, index: int):
    return layer.locate(name, index) or layer.node


def _error_node(layer: Layer, field: tuple):
    """Where a shape error points: the offending field, else the nearest
    enclosing block that is written (a default is not in the text), else the
    layer's type."""
    path = tuple(field)
    while path:
        node = layer.locate(*path)
        if node is not None:
            return node
        path = path[:-1]
        while path and isinstance(path[-1], int):
            path = path[:-1]
    return layer.locate("type") or layer.node


def _check_shape(shape: Shape) -> str | None:
    if len(shape) > MAX_AXES:
        return f"has {len(shape)} axes (Caffe allows at most {MAX_AXES})"
    if shape and min(shape) < 0:
        return f"has a negative dimension ({describe(shape)})"
    n = math.prod(shape)
    if n > MAX_BLOB_ELEMENTS:
        return (f"{describe(shape)}: {n:.3g} elements, more than Caffe's limit of "
                f"{MAX_BLOB_ELEMENTS} elements per blob")
    return None


def _find_cycle(layers: Sequence[Layer]) -> list[int] | None:
    """A cycle in the graph where each bottom links to every producer of that
    blob (ignoring in-place self-links), as a list of layer indices."""
    producers: dict[str, list[int]] = {}
    for layer in layers:
        for top in layer.tops:
            producers.setdefault(top, []).append(layer.index)
    edges = {
        layer.index: sorted({p for b in layer.bottoms for p in producers.get(b, ()) if p != layer.index})
        for layer in layers
    }
    state: dict[int, int] = {}
    for start in edges:
        if start in state:
            continue
        stack = [(start, iter(edges[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):][::-1]
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(edges[nxt])))
                path.append(nxt)
    return None


# -- per-type rules ------------------------------------------------------------

InferFn = Callable[[object, list, Layer], Sequence]
_RULES: dict[str, InferFn] = {}


def rule(*types: str):
    def register(fn: InferFn) -> InferFn:
        for t in types:
            _RULES[t] = fn
        return fn
    return register


def known_types() -> frozenset[str]:
    return frozenset(_RULES)


def infer(layer: Layer, in_shapes: list[Shape | None]) -> tuple[Shape | None, ...]:
    """The shapes of ``layer``'s tops, given its bottoms' shapes."""
    fn = _RULES.get(layer.type)
    n_tops = len(layer.tops)
    if fn is None:
        return (None,) * n_tops
    if (not in_shapes or None in in_shapes) and fn not in _NO_INPUT_NEEDED:
        return (None,) * n_tops
    out = fn(unwrap(layer.param), in_shapes, layer)
    if len(out) != n_tops:
        out = (list(out) + [None] * n_tops)[:n_tops]
    return tuple(out)


_NO_INPUT_NEEDED: set = set()
#: rules that take ``None`` for the parameters and read ``layer.param`` only if
#: they need it (a layer's message is built when first read: see LazyFrozen)
_PARAM_WHEN_NEEDED: set = set()


def param_when_needed(fn):
    _PARAM_WHEN_NEEDED.add(fn)
    return fn


def no_inputs(fn):
    _NO_INPUT_NEEDED.add(fn)
    return fn


def _axis(axis: int, rank: int, field: tuple = ()) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for a {rank}-axis input", field)
    return axis + rank if axis < 0 else axis


def _need_bottoms(layer: Layer, shapes: list, n: int | tuple[int, int]) -> None:
    lo, hi = (n, n) if isinstance(n, int) else n
    if not lo <= len(shapes) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise ShapeError(f"takes {want} bottom(s), has {len(shapes)}")


def raw_value(layer: Layer, *path: str):
    """A field the schema does not know (a fork's parameter), read from the text:
    an int, float, bool or string, or None when absent or not readable."""
    node = layer.node.find(*path) if layer.node is not None else None
    if node is None or node.children is not None:
        return None
    raw = node.value
    if raw[:1] in "\"'":
        return raw[1:-1]
    if raw in ("true", "True"):
        return True
    if raw in ("false", "False"):
        return False
    value = parse_int(raw)
    if value is not None:
        return value
    value = parse_float(raw)
    return value if value is not None else raw


# --- same shape ---

@rule("ReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log",
      "Threshold", "Dropout", "BatchNorm", "Bias", "MVN", "Normalize", "Clip", "Swish",
      "ShuffleChannel", "BN", "ReLU6", "Split", "Region", "GELU", "HardSigmoid", "Mish")
@param_when_needed
def _same_plain(pb, shapes, layer):
    n = len(layer.tops)
    return (shapes[0],) if n == 1 else [shapes[0]] * max(1, n)


@rule("PReLU", "LRN")
def _same(pb, shapes, layer):
    if layer.type == "LRN" and pb.lrn_param.local_size % 2 == 0:
        raise ShapeError(f"local_size must be odd, not {pb.lrn_param.local_size}",
                         ("lrn_param", "local_size"))
    if layer.type == "LRN" and len(shapes[0]) != 4:
        raise ShapeError("LRN needs a 4-axis input (N, C, H, W)")
    if layer.type == "PReLU" and len(shapes[0]) < 2:
        raise ShapeError("PReLU needs an input with a channel axis")
    return [shapes[0]] * max(1, len(layer.tops))


@rule("Softmax")
def _softmax(pb, shapes, layer):
    _axis(pb.softmax_param.axis, len(shapes[0]), ("softmax_param", "axis"))
    return [shapes[0]]


@rule("Scale")
@param_when_needed
def _scale(pb, shapes, layer):
    if len(shapes) == 1:  # the usual case: per-channel parameters, nothing to check
        return (shapes[0],)
    _need_bottoms(layer, shapes, (1, 2))
    if len(shapes) == 2:
        big, small = shapes
        axis = _axis(unwrap(layer.param).scale_param.axis, len(big), ("scale_param", "axis"))
        if tuple(big[axis:axis + len(small)]) != tuple(small):
            raise ShapeError(f"second bottom {describe(small)} does not match axes {axis}.. of "
                             f"the first {describe(big)}")
    return [shapes[0]]


# --- convolution family ---

def conv_geometry(cp, n_spatial: int, owner: str = "convolution_param"):
    """(kernel, stride, pad, dilation) lists for ``n_spatial`` axes, from a
    ConvolutionParameter, with the checks of Caffe's
    ``BaseConvolutionLayer::LayerSetUp``:

    * ``kernel_h``/``kernel_w`` (likewise ``stride_h``/``stride_w``,
      ``pad_h``/``pad_w``) only for 2-D convolution, and never together with
      ``kernel_size`` (``stride``, ``pad``);
    * ``kernel_size``/``stride``/``pad``/``dilation`` once, or once per axis;
    * when only one of ``kernel_h``/``kernel_w`` is written Caffe reads the other
      as 0 and stops ("Filter dimensions must be nonzero"); when only one of
      ``stride_h``/``stride_w`` is written it reads the other as 0 and divides by
      it (a crash).  Both are errors here, pointing at the field written;
    * a lone ``pad_h`` or ``pad_w`` is legal in Caffe: the other is 0.  (OpenCV's
      importer ignores a lone one and pads neither axis.)
    """
    if n_spatial < 1:
        # Caffe: CHECK_GT(num_spatial_axes_, 0) ("the input must have spatial axes")
        raise ShapeError(f"the bottom has {max(n_spatial, 0)} spatial axes after the channel axis; "
                         "a convolution needs at least one", (owner, "axis"))
    has = cp.HasField
    if has("kernel_h") or has("kernel_w"):
        given = "kernel_h" if has("kernel_h") else "kernel_w"
        if n_spatial != 2:
            raise ShapeError("kernel_h/kernel_w only work for 2-D convolution", (owner, given))
        if len(cp.kernel_size):
            raise ShapeError("give either kernel_size or kernel_h/kernel_w, not both",
                             (owner, "kernel_size"))
        if not (has("kernel_h") and has("kernel_w")):
            raise ShapeError(_lone(given), (owner, given))
        kernel = [cp.kernel_h, cp.kernel_w]
    else:
        kernel = _per_axis(cp.kernel_size, n_spatial, None, "kernel_size", owner)
    if has("stride_h") or has("stride_w"):
        given = "stride_h" if has("stride_h") else "stride_w"
        if n_spatial != 2:
            raise ShapeError("stride_h/stride_w only work for 2-D convolution", (owner, given))
        if len(cp.stride):
            raise ShapeError("give either stride or stride_h/stride_w, not both", (owner, "stride"))
        if not (has("stride_h") and has("stride_w")):
            raise ShapeError(_lone(given), (owner, given))
        stride = [cp.stride_h, cp.stride_w]
    else:
        stride = _per_axis(cp.stride, n_spatial, 1, "stride", owner)
    if has("pad_h") or has("pad_w"):
        given = "pad_h" if has("pad_h") else "pad_w"
        if n_spatial != 2:
            raise ShapeError("pad_h/pad_w only work for 2-D convolution", (owner, given))
        if len(cp.pad):
            raise ShapeError("give either pad or pad_h/pad_w, not both", (owner, "pad"))
        pad = [cp.pad_h, cp.pad_w]  # as in Caffe, one left out is 0
    else:
        pad = _per_axis(cp.pad, n_spatial, 0, "pad", owner)
    dilation = _per_axis(cp.dilation, n_spatial, 1, "dilation", owner)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(pad) < 0:
        for name, values, low, fname in (("kernel size", kernel, 1, "kernel_size"),
                                         ("stride", stride, 1, "stride"),
                                         ("dilation", dilation, 1, "dilation"), ("pad", pad, 0, "pad")):
            if any(v < low for v in values):
                base = fname.split("_")[0]
                if base != "dilation" and has(f"{base}_h"):  # point at the bad one of the pair
                    fname = f"{base}_h" if values[0] < low else f"{base}_w"
                raise ShapeError(f"{name} must be at least {low}, got {values}", (owner, fname))
    return kernel, stride, pad, dilation


def _lone(given: str) -> str:
    """The message for ``kernel_h`` without ``kernel_w`` (or the like)."""
    base, axis = given.rsplit("_", 1)
    other = f"{base}_{'w' if axis == 'h' else 'h'}"
    consequence = ('then stops: "Filter dimensions must be nonzero"' if base == "kernel" else
                   "then divides by it (Caffe crashes)")
    return (f"{given} is given without {other}: give both (or {'kernel_size' if base == 'kernel' else base} "
            f"for both axes); Caffe reads the missing {other} as 0 and {consequence}")


def _per_axis(values, n: int, default: int | None, name: str, owner: str) -> list[int]:
    """One value per spatial axis from a repeated field (``len`` and indexing:
    converting the protobuf container with ``list()`` costs 6x more)."""
    given = len(values)
    if given == 1:
        return [values[0]] * n
    if not given:
        if default is None:
            raise ShapeError(f"{name} is required", (owner, name))
        return [default] * n
    if given != n:
        raise ShapeError(f"{name} has {given} values for {n} spatial axes", (owner, name))
    return list(values)


def _conv_like(pb, shapes, layer, deconv: bool):
    _need_bottoms(layer, shapes, (1, 64))
    cp = pb.convolution_param
    shape = shapes[0]
    axis = _axis(cp.axis, len(shape), ("convolution_param", "axis"))
    n_spatial = len(shape) - axis - 1
    if n_spatial < 1:
        raise ShapeError(f"input {describe(shape)} has no spatial axes after the channel axis")
    kernel, stride, pad, dilation = conv_geometry(cp, n_spatial)
    if not cp.HasField("num_output") or cp.num_output < 1:
        raise ShapeError("num_output is required and must be positive",
                         ("convolution_param", "num_output"))
    channels = shape[axis]
    group = cp.group
    if group < 1 or channels % group or cp.num_output % group:
        raise ShapeError(
            f"group {group} must divide both the input channels ({channels}) and num_output "
            f"({cp.num_output})", ("convolution_param", "group"))
    out = list(shape[:axis]) + [cp.num_output]
    out.extend(_spatial_out(shape[axis + 1:], kernel, stride, pad, dilation, deconv))
    for other in shapes[1:]:
        if other != shape:
            raise ShapeError("all bottoms of a convolution must have the same shape")
    return [tuple(out)] * len(layer.tops)


def _spatial_out(sizes, kernel, stride, pad, dilation, deconv: bool = False) -> list[int]:
    out = []
    for x, k, s, p, d in zip(sizes, kernel, stride, pad, dilation):
        extent = d * (k - 1) + 1
        if deconv:
            y = s * (x - 1) + extent - 2 * p
        else:
            y = (x + 2 * p - extent) // s + 1
        if y < 1:
            raise ShapeError(
                f"output size {y} < 1 (input {x}, kernel {k}, stride {s}, pad {p}, dilation {d})")
        out.append(y)
    return out


# "DepthwiseConvolution" (yonghenglh6/DepthwiseConvolution, MobileNet-YOLO) is a
# BaseConvolutionLayer: Caffe's convolution setup, num_output and group as
# written (its GPU kernel assumes group == channels == num_output).
#: (parameters, input shapes, tops) -> output shapes of the convolutions seen in the
#: network being analysed: a network repeats a few configurations (ResNet-152: 155
#: convolutions, 16 distinct).  The key is the parameters' bytes, or while the
#: layer's message is not built (see LazyFrozen) the repr of the schema's fields
#: for them, which spares building it: equal reprs are equal parameters (two
#: spellings of the same parameters only take two entries).  Layers made from one
#: template share those fields (see schema._Walk): a key with the dict's id finds
#: them without the repr; its entry holds the dict, so the id is not reused.
_CONV_MEMO: dict = {}
_NO_FIELDS: dict = {}


@rule("Convolution", "DepthwiseConvolution")
@param_when_needed
def _conv(pb, shapes, layer):
    if pb is None:
        fields = unbuilt_fields(layer.param)
        if fields is not None:
            cp = fields.get("convolution_param")
            shapes = tuple(shapes)
            same = (id(cp), shapes, len(layer.tops))
            hit = _CONV_MEMO.get(same)
            if hit is not None and hit[1] is cp:
                return hit[0]
            key = (repr(cp), shapes, len(layer.tops))
            out = _CONV_MEMO.get(key)
            if out is None:
                out = _CONV_MEMO[key] = tuple(_conv_like(unwrap(layer.param), list(shapes),
                                                         layer, False))
            _CONV_MEMO[same] = (out, cp)
            return out
        pb = unwrap(layer.param)
    key = (pb.convolution_param.SerializeToString(), tuple(shapes), len(layer.tops))
    out = _CONV_MEMO.get(key)
    if out is None:
        out = _CONV_MEMO[key] = tuple(_conv_like(pb, shapes, layer, deconv=False))
    return out  # (a tuple: callers copy what a rule returns)


def depthwise_fork_geometry(cp, shape):
    """The custom ``ConvolutionDepthwise`` layer (``conv_dw_layer.cpp``, from the
    ShuffleNet/MobileNet Caffe forks): always one filter per input channel, so C
    channels in, C out, weights (C, 1, kh, kw) and C biases, whatever
    ``num_output`` and ``group`` say (it reads neither, nor ``axis``).  It takes
    one 4-axis blob.  Returns (kernel, stride, pad, dilation) with Caffe's checks
    (:func:`conv_geometry`; the fork itself silently ignores a lone
    ``kernel_h``/``stride_h``/``pad_h`` and reads ``stride``/``kernel_size``
    without checking that they are there)."""
    if len(shape) != 4:
        raise ShapeError(f"ConvolutionDepthwise takes a 4-axis (N, C, H, W) input, got "
                         f"{describe(shape)}")
    return conv_geometry(cp, 2)


@rule("ConvolutionDepthwise")
def _conv_depthwise_fork(pb, shapes, layer):
    _need_bottoms(layer, shapes, 1)
    if len(layer.tops) != 1:
        raise ShapeError(f"takes 1 top, has {len(layer.tops)}")
    shape = shapes[0]
    kernel, stride, pad, dilation = depthwise_fork_geometry(pb.convolution_param, shape)
    return [(shape[0], shape[1], *_spatial_out(shape[2:], kernel, stride, pad, dilation))]


@rule("Deconvolution")
def _deconv(pb, shapes, layer):
    return _conv_like(pb, shapes, layer, deconv=True)


@rule("Im2col")
def _im2col(pb, shapes, layer):
    cp = pb.convolution_param
    shape = shapes[0]
    axis = _axis(cp.axis, len(shape))
    n_spatial = len(shape) - axis - 1
    kernel, stride, pad, dilation = conv_geometry(cp, n_spatial)
    out = list(shape[:axis]) + [shape[axis] * math.prod(kernel)]
    for x, k, s, p, d in zip(shape[axis + 1:], kernel, stride, pad, dilation):
        out.append((x + 2 * p - (d * (k - 1) + 1)) // s + 1)
    return [tuple(out)]


@rule("Pooling")
def _pooling(pb, shapes, layer):
    shape = shapes[0]
    if len(shape) != 4:
        raise ShapeError(f"pooling needs a 4-axis input (N, C, H, W), got {describe(shape)}")
    n, c, h, w = shape
    *_, (oh, ow) = pooling_geometry(pb, layer, h, w)
    return [(n, c, oh, ow)] * len(layer.tops)  # a second top holds the argmax mask


def pooling_geometry(pb, layer: Layer, h: int, w: int):
    """``((kh, kw), (sh, sw), (ph, pw), (oh, ow))`` of a Pooling layer on an HxW
    input, with the checks of Caffe's PoolingLayer::LayerSetUp and Reshape
    (:class:`ShapeError` naming the field).  Shape inference, the reference
    executor and the lowering all take the geometry from here."""
    pp = pb.pooling_param
    has = pp.HasField
    if pp.global_pooling:
        if has("kernel_size") or has("kernel_h") or has("kernel_w"):
            raise ShapeError("global_pooling takes no kernel size", ("pooling_param", "kernel_size"))
        kh, kw = h, w
    else:
        if has("kernel_size") and (has("kernel_h") or has("kernel_w")):
            raise ShapeError("give either kernel_size or kernel_h/kernel_w, not both",
                             ("pooling_param", "kernel_size"))
        if has("kernel_size"):
            kh = kw = pp.kernel_size
        elif has("kernel_h") and has("kernel_w"):
            kh, kw = pp.kernel_h, pp.kernel_w
        elif has("kernel_h") or has("kernel_w"):
            raise ShapeError("kernel_h and kernel_w must be given together",
                             ("pooling_param", "kernel_h" if has("kernel_h") else "kernel_w"))
        else:
            raise ShapeError("kernel_size is required (or global_pooling: true)",
                             ("pooling_param",))
    for name in ("pad", "stride"):
        hw = has(f"{name}_h"), has(f"{name}_w")
        if any(hw) and (has(name) or not all(hw)):
            raise ShapeError(f"give either {name}, or both {name}_h and {name}_w",
                             ("pooling_param", f"{name}_h" if hw[0] else f"{name}_w"))
    if has("pad_h"):
        ph, pw = pp.pad_h, pp.pad_w
    else:
        ph = pw = pp.pad
    if has("stride_h"):
        sh, sw = pp.stride_h, pp.stride_w
    else:
        sh = sw = pp.stride
    if kh < 1 or kw < 1:
        raise ShapeError(f"kernel size must be positive, got {kh}x{kw}", ("pooling_param", "kernel_size"))
    if sh < 1 or sw < 1:
        raise ShapeError(f"stride must be positive, got {sh}x{sw}", ("pooling_param", "stride"))
    if pp.global_pooling and (ph or pw or sh != 1 or sw != 1):
        raise ShapeError("global pooling takes no pad and stride 1",
                         ("pooling_param", "pad" if ph or pw else "stride"))
    padded = bool(ph or pw)
    if padded:
        if ph >= kh or pw >= kw:
            raise ShapeError(f"pad ({ph}x{pw}) must be smaller than the kernel ({kh}x{kw})",
                             ("pooling_param", "pad"))
    ceil = pooling_rounds_up(pb, layer)
    # Caffe clamps both axes as soon as either has padding.
    oh = pooled_size(h, kh, sh, ph, ceil, padded)
    ow = pooled_size(w, kw, sw, pw, ceil, padded)
    if oh < 1 or ow < 1:
        raise ShapeError(f"output size {oh}x{ow} < 1 (input {h}x{w}, kernel {kh}x{kw}, "
                         f"stride {sh}x{sw}, pad {ph}x{pw})")
    return (kh, kw), (sh, sw), (ph, pw), (oh, ow)


def pooling_rounds_up(pb, layer: Layer) -> bool:
    """Caffe rounds pooling output sizes up, unless ``round_mode: FLOOR`` (newer
    BVLC) or a fork's ``ceil_mode: false`` says otherwise."""
    pp = pb.pooling_param
    if pp.DESCRIPTOR.fields_by_name.get("round_mode") is not None and pp.HasField("round_mode"):
        return pp.round_mode == 0  # CEIL = 0, FLOOR = 1
    ceil_mode = raw_value(layer, "pooling_param", "ceil_mode")
    if ceil_mode is False:
        return False
    return True


def pooled_size(x: int, k: int, s: int, p: int, ceil: bool, clamp: bool | None = None) -> int:
    """One pooled axis as Caffe sizes it: rounded up (or down), then, when the
    layer has any padding (``clamp``, by default ``p != 0``), one window fewer
    if the last would start in the right padding."""
    span = x + 2 * p - k
    out = (-(-span // s) if ceil else span // s) + 1
    if (p if clamp is None else clamp) and (out - 1) * s >= x + p:
        out -= 1  # the last window must start inside the image (or its left padding)
    return out


@rule("SPP")
def _spp(pb, shapes, layer):
    n, c = shapes[0][:2]
    levels = pb.spp_param.pyramid_height
    return [(n, c * sum(4 ** i for i in range(levels)))]


@rule("InnerProduct")
def _inner_product(pb, shapes, layer):
    ip = pb.inner_product_param
    shape = shapes[0]
    if not ip.HasField("num_output") or ip.num_output < 1:
        raise ShapeError("num_output is required and must be positive",
                         ("inner_product_param", "num_output"))
    axis = _axis(ip.axis, len(shape), ("inner_product_param", "axis"))
    return [tuple(shape[:axis]) + (ip.num_output,)]


@rule("Embed")
def _embed(pb, shapes, layer):
    return [tuple(shapes[0]) + (pb.embed_param.num_output,)]


# --- blob surgery ---

@rule("Concat")
def _concat(pb, shapes, layer):
    cp = pb.concat_param
    first = shapes[0]
    rank = len(first)
    if cp.HasField("concat_dim"):
        if cp.HasField("axis"):
            raise ShapeError("give either axis or concat_dim, not both", ("concat_param", "axis"))
        axis = cp.concat_dim
        if axis >= rank:
            raise ShapeError(f"concat_dim {axis} is out of range for {describe(first)}",
                             ("concat_param", "concat_dim"))
    else:
        axis = _axis(cp.axis, rank, ("concat_param", "axis"))
    total = 0
    for i, shape in enumerate(shapes):
        if len(shape) != rank or any(a != b for j, (a, b) in enumerate(zip(shape, first)) if j != axis):
            raise ShapeError(
                f"bottom {i} ({layer.bottoms[i]!r}, {describe(shape)}) does not match bottom 0 "
                f"({describe(first)}) outside the concat axis {axis}", ("bottom", i))
        total += shape[axis]
    out = list(first)
    out[axis] = total
    return [tuple(out)]


@rule("Slice")
def _slice(pb, shapes, layer):
    sp = pb.slice_param
    shape = shapes[0]
    if sp.HasField("slice_dim"):
        axis = sp.slice_dim
        if axis >= len(shape):
            raise ShapeError(f"slice_dim {axis} is out of range", ("slice_param", "slice_dim"))
    else:
        axis = _axis(sp.axis, len(shape), ("slice_param", "axis"))
    dim = shape[axis]
    n = len(layer.tops)
    points = list(sp.slice_point)
    if points:
        if len(points) != n - 1:
            raise ShapeError(f"{len(points)} slice_point(s) for {n} tops (need {n - 1})",
                             ("slice_param", "slice_point"))
        bounds = [0, *points, dim]
        if any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise ShapeError(f"slice points {points} must increase within (0, {dim})",
                             ("slice_param", "slice_point"))
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    else:
        if n == 0 or dim % n:
            raise ShapeError(f"cannot split {dim} evenly into {n} tops without slice_point",
                             ("slice_param",))
        sizes = [dim // n] * n
    out = []
    for size in sizes:
        s = list(shape)
        s[axis] = size
        out.append(tuple(s))
    return out


@rule("Eltwise")
@param_when_needed
def _eltwise(pb, shapes, layer):
    fields = unbuilt_fields(layer.param) if pb is None else None
    if fields is not None:  # (spares building the message: see LazyFrozen)
        n_coeff = len(fields.get("eltwise_param", _NO_FIELDS).get("coeff", ()))
    else:
        n_coeff = len((pb if pb is not None else unwrap(layer.param)).eltwise_param.coeff)
    _need_bottoms(layer, shapes, (2, 1 << 16))
    if n_coeff and n_coeff != len(shapes):
        raise ShapeError(f"{n_coeff} coeff values for {len(shapes)} bottoms",
                         ("eltwise_param", "coeff"))
    for i, shape in enumerate(shapes[1:], 1):
        if shape != shapes[0]:
            raise ShapeError(f"bottom {i} ({layer.bottoms[i]!r}, {describe(shape)}) differs from "
                             f"bottom 0 ({describe(shapes[0])})", ("bottom", i))
    return [shapes[0]]


@rule("Axpy")
def _axpy(pb, shapes, layer):
    _need_bottoms(layer, shapes, 3)
    if shapes[1] != shapes[2]:
        raise ShapeError(f"bottoms 1 and 2 differ ({describe(shapes[1])} vs {describe(shapes[2])})")
    return [shapes[1]]


@rule("Flatten")
def _flatten(pb, shapes, layer):
    fp = pb.flatten_param
    shape = shapes[0]
    start = _axis(fp.axis, len(shape), ("flatten_param", "axis"))
    end = _axis(fp.end_axis, len(shape), ("flatten_param", "end_axis"))
    if end < start:
        raise ShapeError(f"end_axis {fp.end_axis} comes before axis {fp.axis}", ("flatten_param",))
    return [tuple(shape[:start]) + (count(shape[start:end + 1]),) + tuple(shape[end + 1:])]


@rule("Reshape")
def _reshape(pb, shapes, layer):
    rp = pb.reshape_param
    shape = shapes[0]
    rank = len(shape)
    dims = list(rp.shape.dim)
    start = rp.axis + rank + 1 if rp.axis < 0 else rp.axis
    if not 0 <= start <= rank:
        raise ShapeError(f"axis {rp.axis} is out of range for {describe(shape)}", ("reshape_param", "axis"))
    if rp.num_axes < -1:
        raise ShapeError("num_axes must be >= -1", ("reshape_param", "num_axes"))
    end = rank if rp.num_axes == -1 else start + rp.num_axes
    if end > rank:
        raise ShapeError(f"axis + num_axes exceeds the input's {rank} axes", ("reshape_param", "num_axes"))
    new = list(shape[:start])
    infer_at = None
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= rank:
                raise ShapeError(f"dim {i} is 0 (copy) but the input has no axis {start + i}",
                                 ("reshape_param", "shape", "dim", i))
            new.append(shape[start + i])
        elif d == -1:
            if infer_at is not None:
                raise ShapeError("only one dim may be -1", ("reshape_param", "shape", "dim", i))
            infer_at = len(new)
            new.append(1)
        elif d < -1:
            raise ShapeError(f"dim {d} is invalid (use 0 to copy, -1 to infer)",
                             ("reshape_param", "shape", "dim", i))
        else:
            new.append(d)
    new.extend(shape[end:])
    total = count(shape)
    if infer_at is not None:
        known = count(tuple(new))
        if known == 0 or total % known:
            raise ShapeError(f"cannot infer the -1 dim: {total} elements do not divide by {known}",
                             ("reshape_param", "shape"))
        new[infer_at] = total // known
    if count(tuple(new)) != total:
        raise ShapeError(f"reshape from {describe(shape)} ({total} elements) to "
                         f"{describe(tuple(new))} ({count(tuple(new))}) changes the element count",
                         ("reshape_param", "shape"))
    return [tuple(new)]


@rule("Crop")
def _crop(pb, shapes, layer):
    _need_bottoms(layer, shapes, 2)
    cp = pb.crop_param
    big, ref = shapes
    if len(big) != len(ref):
        raise ShapeError(f"bottoms have different ranks ({describe(big)} vs {describe(ref)})")
    axis = _axis(cp.axis, len(big), ("crop_param", "axis"))
    offsets = list(cp.offset)
    n = len(big) - axis
    if offsets and len(offsets) not in (1, n):
        raise ShapeError(f"{len(offsets)} offsets for {n} cropped axes", ("crop_param", "offset"))
    out = list(big)
    for i in range(axis, len(big)):
        off = 0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - axis]
        if off + ref[i] > big[i]:
            raise ShapeError(f"crop of {ref[i]} at offset {off} exceeds axis {i} of size {big[i]}",
                             ("crop_param", "offset"))
        out[i] = ref[i]
    return [tuple(out)]


@rule("Permute")
def _permute(pb, shapes, layer):
    shape = shapes[0]
    rank = len(shape)
    order = []
    for o in pb.permute_param.order:
        if not 0 <= o < rank or o in order:
            raise ShapeError(f"order {list(pb.permute_param.order)} is not a permutation of "
                             f"{rank} axes", ("permute_param", "order"))
        order.append(o)
    order += [i for i in range(rank) if i not in order]
    return [tuple(shape[i] for i in order)]


@rule("Tile")
def _tile(pb, shapes, layer):
    shape = list(shapes[0])
    axis = _axis(pb.tile_param.axis, len(shape), ("tile_param", "axis"))
    if pb.tile_param.tiles < 1:
        raise ShapeError("tiles must be positive", ("tile_param", "tiles"))
    shape[axis] *= pb.tile_param.tiles
    return [tuple(shape)]


@rule("Reduction")
def _reduction(pb, shapes, layer):
    axis = _axis(pb.reduction_param.axis, len(shapes[0]), ("reduction_param", "axis"))
    return [tuple(shapes[0][:axis])]


@rule("ArgMax")
def _argmax(pb, shapes, layer):
    ap = pb.argmax_param
    shape = shapes[0]
    if ap.HasField("axis"):
        axis = _axis(ap.axis, len(shape), ("argmax_param", "axis"))
        if ap.top_k > shape[axis]:
            raise ShapeError("top_k exceeds the axis size", ("argmax_param", "top_k"))
        out = list(shape)
        out[axis] = ap.top_k
        return [tuple(out)]
    if not shape:
        # Caffe reads bottom[0]->num(), which needs an axis
        raise ShapeError("ArgMax without an axis needs a bottom with at least one axis")
    out = [1] * max(3, len(shape))
    out[0] = shape[0]
    out[2] = ap.top_k
    if ap.out_max_val:
        out[1] = 2
    return [tuple(out)]


# --- losses and metrics (scalar tops) ---

@rule("SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss",
      "MultinomialLogisticLoss", "ContrastiveLoss", "MultiBoxLoss")
def _loss(pb, shapes, layer):
    out: list = [()]
    if len(layer.tops) > 1:
        out.append(shapes[0])
    return out


@rule("Accuracy")
def _accuracy(pb, shapes, layer):
    out: list = [()]
    if len(layer.tops) > 1:
        axis = _axis(pb.accuracy_param.axis, len(shapes[0]))
        out.append((shapes[0][axis],))
    return out


@rule("Silence")
def _silence(pb, shapes, layer):
    return []


# --- layers that make data ---

@no_inputs
@rule("DummyData")
def _dummy(pb, shapes, layer):
    dp = pb.dummy_data_param
    n = len(layer.tops)
    if len(dp.shape):
        given = [tuple(s.dim) for s in dp.shape]
    elif len(dp.num):
        given = [(a, b, c, d) for a, b, c, d in zip(dp.num, dp.channels, dp.height, dp.width)]
    else:
        return [None] * n
    if len(given) == 1:
        given = given * n
    if len(given) != n:
        raise ShapeError(f"{len(given)} shapes for {n} tops", ("dummy_data_param",))
    return given


@no_inputs
@rule("MemoryData")
def _memory(pb, shapes, layer):
    mp = pb.memory_data_param
    return [(mp.batch_size, mp.channels, mp.height, mp.width), (mp.batch_size,)]


@no_inputs
@rule("Parameter")
def _parameter(pb, shapes, layer):
    return [tuple(pb.parameter_param.shape.dim)]


@no_inputs
@rule("Data", "ImageData", "HDF5Data", "WindowData", "AnnotatedData", "VideoData", "Python",
      "HDF5Output")
def _unknown_data(pb, shapes, layer):
    return [None] * len(layer.tops)


# --- SSD ---

def prior_count(pp) -> int:
    """Priors per feature-map cell of an SSD PriorBox layer."""
    ratios = [1.0]
    for ar in pp.aspect_ratio:
        if any(abs(ar - r) < 1e-6 for r in ratios):
            continue
        ratios.append(ar)
        if pp.flip:
            ratios.append(1.0 / ar)
    return len(ratios) * len(pp.min_size) + len(pp.max_size)


@rule("PriorBox")
def _prior_box(pb, shapes, layer):
    _need_bottoms(layer, shapes, 2)
    pp = pb.prior_box_param
    if not len(pp.min_size):
        raise ShapeError("min_size is required", ("prior_box_param", "min_size"))
    if len(pp.max_size) and len(pp.max_size) != len(pp.min_size):
        raise ShapeError("max_size must have as many values as min_size",
                         ("prior_box_param", "max_size"))
    feature = shapes[0]
    if len(feature) != 4:
        raise ShapeError(f"the first bottom must be a 4-axis feature map, got {describe(feature)}")
    return [(1, 2, feature[2] * feature[3] * prior_count(pp) * 4)]


@rule("DetectionOutput")
def _detection_output(pb, shapes, layer):
    _need_bottoms(layer, shapes, (3, 4))
    # One row of 7 values (image, label, score, xmin, ymin, xmax, ymax) per kept
    # detection.  How many are kept is only known at run time; the shape is the
    # most there can be (keep_top_k), as OpenCV sizes it.  Caffe itself sizes the
    # top at one row until the first forward pass.
    # With a batch of N images, up to N * keep_top_k rows (OpenCV's size too).
    keep = pb.detection_output_param.keep_top_k
    batch = shapes[0][0] if shapes[0] else 1
    return [(1, 1, batch * keep if keep > 0 else 1, 7)]


# --- common custom layers ---

@rule("Upsample")
def _upsample(pb, shapes, layer):
    # SegNet/ENet's UpsampleLayer (the second bottom is the pooling mask, of
    # the first's size), also used by YOLOv3 conversions with one bottom:
    # upsample_h/upsample_w if given, else size * scale (default 2) less one
    # for pad_out_h/pad_out_w.
    shape = shapes[0]
    if len(shape) != 4:
        raise ShapeError(f"needs a 4-axis input, got {describe(shape)}")
    n, c, h, w = shape
    if len(shapes) > 1 and shapes[1] is not None and tuple(shapes[1]) != tuple(shape):
        raise ShapeError(f"the mask (bottom 1, {describe(shapes[1])}) must have the shape of "
                         f"bottom 0 ({describe(shape)})", ("bottom", 1))
    uh = raw_value(layer, "upsample_param", "upsample_h")
    uw = raw_value(layer, "upsample_param", "upsample_w")
    if _is_int(uh) and _is_int(uw) and uh > 0 and uw > 0:
        return [(n, c, uh, uw)]
    scale = raw_value(layer, "upsample_param", "scale")
    sh = raw_value(layer, "upsample_param", "scale_h")
    sw = raw_value(layer, "upsample_param", "scale_w")
    sh = sh if _is_int(sh) else scale if _is_int(scale) else 2
    sw = sw if _is_int(sw) else scale if _is_int(scale) else 2
    if sh < 1 or sw < 1:
        raise ShapeError(f"scale must be positive, got {sh}x{sw}", ("upsample_param",))
    pad_h = 1 if raw_value(layer, "upsample_param", "pad_out_h") is True else 0
    pad_w = 1 if raw_value(layer, "upsample_param", "pad_out_w") is True else 0
    return [(n, c, h * sh - pad_h, w * sw - pad_w)]


def _four_axes(shape: Shape, what: str) -> Shape:
    if len(shape) != 4:
        raise ShapeError(f"{what} needs a 4-axis bottom (N, C, H, W), got {describe(shape)}")
    return shape


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@rule("Interp")
def _interp(pb, shapes, layer):
    # DeepLab/PSPNet's InterpLayer::Reshape, in its order of precedence.
    n, c, h, w = _four_axes(shapes[0], "Interp")
    pad_beg = raw_value(layer, "interp_param", "pad_beg") or 0
    pad_end = raw_value(layer, "interp_param", "pad_end") or 0
    h_in = h + pad_beg + pad_end
    w_in = w + pad_beg + pad_end
    zoom = raw_value(layer, "interp_param", "zoom_factor")
    shrink = raw_value(layer, "interp_param", "shrink_factor")
    height = raw_value(layer, "interp_param", "height")
    width = raw_value(layer, "interp_param", "width")
    zoom = zoom if isinstance(zoom, int) and not isinstance(zoom, bool) else None
    shrink = shrink if isinstance(shrink, int) and not isinstance(shrink, bool) else None
    if zoom is not None and zoom < 1:
        raise ShapeError("zoom_factor must be at least 1", ("interp_param", "zoom_factor"))
    if shrink is not None and shrink < 1:
        raise ShapeError("shrink_factor must be at least 1", ("interp_param", "shrink_factor"))
    ho, wo = h_in, w_in
    if shrink is not None:
        ho, wo = (ho - 1) // shrink + 1, (wo - 1) // shrink + 1
    if zoom is not None:
        ho, wo = ho + (ho - 1) * (zoom - 1), wo + (wo - 1) * (zoom - 1)
    if shrink is not None or zoom is not None:
        return [(n, c, ho, wo)]
    if isinstance(height, int) and isinstance(width, int):
        return [(n, c, height, width)]
    if len(shapes) > 1 and shapes[1] is not None:
        ref = _four_axes(shapes[1], "Interp's second bottom")
        return [(n, c, ref[2], ref[3])]
    raise ShapeError("give zoom_factor, shrink_factor, height and width, or a second bottom",
                     ("interp_param",))


@rule("Reorg")
def _reorg(pb, shapes, layer):
    n, c, h, w = _four_axes(shapes[0], "Reorg")
    stride = raw_value(layer, "reorg_param", "stride")
    s = stride if isinstance(stride, int) and stride > 0 else 2
    if raw_value(layer, "reorg_param", "reverse") is True:
        if c % (s * s):
            raise ShapeError(f"reverse reorg stride {s} needs channels divisible by {s * s}, "
                             f"not {c}", ("reorg_param", "stride"))
        return [(n, c // (s * s), h * s, w * s)]
    if h % s or w % s:
        raise ShapeError(f"reorg stride {s} does not divide {h}x{w}", ("reorg_param", "stride"))
    return [(n, c * s * s, h // s, w // s)]


@rule("ROIPooling")
def _roi_pooling(pb, shapes, layer):
    _need_bottoms(layer, shapes, 2)
    ph = raw_value(layer, "roi_pooling_param", "pooled_h")
    pw = raw_value(layer, "roi_pooling_param", "pooled_w")
    if not (isinstance(ph, int) and isinstance(pw, int)):
        return [None]
    return [(shapes[1][0], shapes[0][1], ph, pw)]


@rule("PSROIPooling")
def _psroi_pooling(pb, shapes, layer):
    dim = raw_value(layer, "psroi_pooling_param", "output_dim")
    group = raw_value(layer, "psroi_pooling_param", "group_size")
    if not (isinstance(dim, int) and isinstance(group, int)):
        return [None]
    return [(shapes[1][0], dim, group, group)]


@rule("Recurrent", "RNN", "LSTM")
def _recurrent(pb, shapes, layer):
    t, n = shapes[0][:2]
    return [(t, n, pb.recurrent_param.num_output)]
