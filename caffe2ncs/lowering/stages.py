"""Nodes -> stage specifications: one device stage per operation, as
``mvNCCompile``'s Caffe parser makes them (``shared/spec/ncsdk-reference.md``
section 2; the per-layer details are in ``docs/build.md``).

A :class:`Spec` is a stage whose buffers are still values (:class:`Act`) or
constants (:class:`Const`); :mod:`.emit` turns specs into IR stages once the
work buffers are numbered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedNetworkError
from ..model.frozen import unwrap
from ..model.shapes import ShapeError, conv_geometry, pooling_geometry
from .graphfile.opparams import (
    detection_output_params,
    lrn_params,
    normalize_params,
    permute_params,
    prior_box_params,
)
from .ir import (
    NO_POST_OP,
    Constant,
    ConvParams,
    GraphFormat,
    LrnParams,
    OffsetParams,
    Op,
    PadStyle,
    PoolParams,
    PostOp,
    PowerParams,
    SoftmaxParams,
    StorageOrder,
    Window,
    hwc_strides,
    hwck_taps_strides,
)
from .netgraph import NetGraph, Node, Value
from .placement import Home, Loc, is_dense
from .tensors import Weights

#: Ops whose bias is announced by a BIAS post-operation when they have no activation.
BIAS_POST_OPS = frozenset({Op.CONVOLUTION, Op.DEPTHWISE_CONVOLUTION, Op.FULLY_CONNECTED,
                           Op.SCALE, Op.DECONVOLUTION})


@dataclass(eq=False)
class Act:
    """An activation operand: channels ``[c_off, c_off + c)`` of ``value``
    (all of it by default); ``flat`` reads it as a ``(1, 1, H*W*C)`` vector (the
    input of a fully-connected stage)."""

    value: Value
    c_off: int = 0
    c: int | None = None
    flat: bool = False


@dataclass(eq=False)
class Const:
    """A constant operand with the dims/strides/order its descriptor states."""

    constant: Constant
    dims: tuple[int, int, int] = (0, 0, 0)
    strides: tuple[int, int, int] = (0, 0, 0)
    order: StorageOrder = StorageOrder.YXZ


@dataclass(eq=False)
class Spec:
    op: Op
    name: str
    #: The Caffe layers the stage implements (the main one first).
    layers: tuple[str, ...]
    input: Act | None = None
    output: Act | None = None
    taps: Act | Const | None = None
    bias: Act | Const | None = None
    op_params: Const | None = None
    params: object = None
    post: PostOp = NO_POST_OP
    #: The 1.x radix/stride/pad bytes the toolkit writes for an op without window params.
    window1: Window | None = None


def _generic_window(style: PadStyle = PadStyle.CAFFE) -> Window:
    """What the legacy parser writes into the window bytes of ops without a
    kernel: radix 1x1, stride 1, no pad, pad style "caffe" (or "none" for the
    ops it builds by hand: softmax, crop, permute, normalize, power, prior box,
    detection output)."""
    return Window(1, 1, 1, 1, 0, 0, style)


class StageBuilder:
    def __init__(self, graph: NetGraph, weights: Weights, target: GraphFormat) -> None:
        self.graph = graph
        self.w = weights
        self.target = target
        self.v1 = target is GraphFormat.NCSDK1
        self.specs: list[Spec] = []
        self._dense: dict[int, Value] = {}
        self._names: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def build(self) -> list[Spec]:
        for node in self.graph.nodes:
            handler = getattr(self, "_" + node.kind.lower(), None)
            if handler is None:  # pragma: no cover - netgraph refuses these first
                raise UnsupportedNetworkError(f"cannot lower {node.kind} {node.name!r}")
            handler(node)
        if self.graph.final_copy:
            out = self.graph.output
            dest = Value(out.blob, out.shape)
            dest.loc = Loc(Home("output", out.w, out.h, out.c))
            owner = out.producer.name if out.producer is not None else out.blob
            self.add(Spec(Op.COPY, f"{owner}_copy", (owner,) if out.producer else (),
                          Act(out), Act(dest), window1=_generic_window()))
        return self.specs

    def add(self, spec: Spec) -> Spec:
        name, n = spec.name, 2
        while name in self._names:
            name = f"{spec.name}#{n}"
            n += 1
        spec.name = name
        self._names.add(name)
        self.specs.append(spec)
        return spec

    def new_value(self, blob: str, shape) -> Value:
        value = Value(blob, tuple(shape))
        value.loc = Loc(Home("work", value.w, value.h, value.c))
        return value

    def dense(self, value: Value, consumer: str, layers: tuple[str, ...]) -> Value:
        """``value`` itself when it fills its buffer, else a dense copy of it
        (one per value, made before its first consumer that needs one)."""
        if is_dense(value):
            return value
        if id(value) in self._dense:
            return self._dense[id(value)]
        loc = value.loc
        if loc.home.h == value.h:
            name = f"{consumer}_Slice{loc.c_off}_{loc.c_off + value.c}"
        else:
            name = f"{consumer}_Rows{loc.y_off}_{loc.y_off + value.h}"
        copy = self.new_value(f"{value.blob}/dense", value.shape)
        self.add(Spec(Op.COPY, name, layers, Act(value), Act(copy), window1=_generic_window()))
        self._dense[id(value)] = copy
        return copy

    def copy_channels(self, value: Value, c_off: int, c: int, name: str,
                      layers: tuple[str, ...]) -> Value:
        copy = self.new_value(f"{value.blob}/{c_off}", (c, value.h, value.w))
        self.add(Spec(Op.COPY, name, layers, Act(value, c_off, c), Act(copy),
                      window1=_generic_window()))
        return copy

    def taps_strides(self, c: int, k: int) -> tuple[int, int, int]:
        """HWCK taps strides as each toolkit writes them: 2.05 ``(2CK, 2K, 2)``,
        1.x ``(2K, 2K, 2)`` (the taps are dense HWCK either way)."""
        return (2 * k, 2 * k, 2) if self.v1 else tuple(hwck_taps_strides(k, c))

    def taps(self, constant: Constant, dims) -> Const:
        _, c, k = dims
        return Const(constant, tuple(dims), self.taps_strides(c, k), StorageOrder.XYZ)

    def vector_taps(self, constant: Constant, n: int) -> Const:
        """Per-channel taps (scale stages, Normalize): ``(1, 1, n)``."""
        return Const(constant, (1, 1, n), tuple(hwc_strides((1, 1, n))), StorageOrder.XYZ)

    @staticmethod
    def bias_const(constant: Constant | None) -> Const | None:
        """The bias slot: no dims, storage order ZYX, as both toolkits write it."""
        return None if constant is None else Const(constant, order=StorageOrder.ZYX)

    @staticmethod
    def post(node: Node, op: Op, has_bias: bool) -> PostOp:
        if node.post is not NO_POST_OP:
            return node.post
        return PostOp.bias() if has_bias and op in BIAS_POST_OPS else NO_POST_OP

    def caffe_rank(self, node: Node, which: str = "inputs", i: int = 0) -> int:
        shapes = getattr(self.graph.net.layer_shapes[node.layer.index], which)
        return len(shapes[i])

    # ------------------------------------------------------------------ convolutions

    def _geometry(self, node: Node):
        cp = unwrap(node.layer.param).convolution_param
        try:
            kernel, stride, pad, dilation = conv_geometry(cp, 2)
        except ShapeError as err:
            raise UnsupportedNetworkError(f"{node.kind} {node.name!r}: {err}") from None
        if len(node.inputs) != 1:
            raise UnsupportedNetworkError(
                f"{node.kind} {node.name!r} has {len(node.inputs)} bottoms; the NCSDK takes one")
        if self.caffe_rank(node) != 4:
            raise UnsupportedNetworkError(f"{node.kind} {node.name!r}: the NCSDK convolves "
                                          "4-axis (N, C, H, W) blobs only")
        if dilation[0] != dilation[1]:
            raise UnsupportedNetworkError(
                f"{node.kind} {node.name!r}: dilation {dilation[0]}x{dilation[1]}; the NCSDK "
                "takes one dilation for both axes")
        return cp, kernel, stride, pad, dilation[0]

    def _convolution(self, node: Node) -> None:
        cp, (kh, kw), (sh, sw), (ph, pw), dil = self._geometry(node)
        src, out = node.inputs[0], node.outputs[0]
        layers = tuple(node.layers)
        g, c, k = max(1, cp.group), src.c, cp.num_output
        blobs = self.w.blobs(node.layer)
        weights = blobs[0] if blobs else None
        bias = blobs[1] if cp.bias_term and len(blobs) > 1 else None
        has_bias = bool(cp.bias_term)
        if node.affine is not None:
            scale = node.affine.scale
            if weights is not None:
                weights = np.asarray(weights, dtype=np.float64) * scale[:, None, None, None]
            if node.affine.shift is not None or has_bias:
                base = np.zeros(k) if bias is None else np.asarray(bias, dtype=np.float64)
                bias = base * scale + (node.affine.shift if node.affine.shift is not None else 0)
                has_bias = True
        if kh == 1 and kw == 1 and ph == 1 and pw == 1:
            raise UnsupportedNetworkError(
                f"Convolution {node.name!r}: padding 1 with a 1x1 kernel; the NCSDK refuses it "
                "(\"Padding 1 not supported for 1x1 convolution\")")
        big = kh > 1 or kw > 1
        params = ConvParams(kw, kh, sw, sh, pw, ph, PadStyle.CAFFE, dil)

        if g > 1 and g == c and k % c == 0:  # depthwise, as its own op
            if dil != 1:
                raise UnsupportedNetworkError(
                    f"Convolution {node.name!r}: a depthwise convolution with dilation {dil}; "
                    "the NCSDK writes dilation 1 for depthwise stages")
            inp = self.dense(src, node.name, layers) if big else src
            taps = self.w.hwck(f"{node.name}/taps", weights, (k, 1, kh, kw))
            bconst = self.w.fp16(f"{node.name}/bias", bias, k) if has_bias else None
            self.add(Spec(Op.DEPTHWISE_CONVOLUTION, node.name, layers, Act(inp), Act(out),
                          self.taps(taps, (kh * kw, 1, k)), self.bias_const(bconst),
                          params=params, post=self.post(node, Op.DEPTHWISE_CONVOLUTION,
                                                        has_bias)))
            return

        cg, kg = c // g, k // g
        as_fc = kh == kw == 1 and src.h == src.w == 1 and out.h == out.w == 1
        in_name = "input" if src is self.graph.input else src.blob
        for gi in range(g):
            name = node.name if g == 1 else f"{node.name}_p{gi}"
            if g > 1 and big:
                inp = Act(self.copy_channels(src, gi * cg, cg, f"{in_name}_s{gi}", layers))
            elif g > 1:
                inp = Act(src, gi * cg, cg)
            else:
                inp = Act(self.dense(src, name, layers) if big else src)
            wg = None if weights is None else weights[gi * kg:(gi + 1) * kg]
            bg = None if bias is None else bias[gi * kg:(gi + 1) * kg]
            o = Act(out, gi * kg, kg) if g > 1 else Act(out)
            bconst = self.w.fp16(f"{name}/bias", bg, kg) if has_bias else None
            if as_fc:
                # mvNCCompile: "mvTensor cannot deal with such convolution, which is
                # equivalent to fc" - a 1x1 kernel on a 1x1 input becomes FC.
                inp.flat = True
                taps = self.w.hwck(f"{name}/taps", wg, (kg, cg, 1, 1), pad_k_to=8)
                self.add(Spec(Op.FULLY_CONNECTED, name, layers, inp, o,
                              self.taps(taps, (1, cg, kg)), self.bias_const(bconst),
                              post=self.post(node, Op.FULLY_CONNECTED, has_bias),
                              window1=Window(1, 1, sw, sh, pw, ph, PadStyle.CAFFE)))
            else:
                taps = self.w.hwck(f"{name}/taps", wg, (kg, cg, kh, kw), pad_k_to=8)
                self.add(Spec(Op.CONVOLUTION, name, layers, inp, o,
                              self.taps(taps, (kh * kw, cg, kg)), self.bias_const(bconst),
                              params=params, post=self.post(node, Op.CONVOLUTION, has_bias)))

    def _deconvolution(self, node: Node) -> None:
        cp, (kh, kw), (sh, sw), (ph, pw), dil = self._geometry(node)
        if dil != 1:
            raise UnsupportedNetworkError(f"Deconvolution {node.name!r}: dilation {dil}; the "
                                          "NCSDK supports undilated deconvolution only")
        src, out = node.inputs[0], node.outputs[0]
        layers = tuple(node.layers)
        g, c, k = max(1, cp.group), src.c, cp.num_output
        blobs = self.w.blobs(node.layer)
        weights = blobs[0] if blobs else None
        bias = blobs[1] if cp.bias_term and len(blobs) > 1 else None
        if weights is not None:
            # Caffe stores (C_in, K/g, kh, kw) and computes deconvolution as a
            # convolution's backward pass: swap to (K/g, C_in) and rotate 180 degrees.
            weights = np.swapaxes(weights, 0, 1)[:, :, ::-1, ::-1]
        big = kh > 1 or kw > 1
        cg, kg = c // g, k // g
        in_name = "input" if src is self.graph.input else src.blob
        params = ConvParams(kw, kh, sw, sh, pw, ph, PadStyle.CAFFE, 1)
        for gi in range(g):
            name = node.name if g == 1 else f"{node.name}_p{gi}"
            if g > 1 and big:
                inp = Act(self.copy_channels(src, gi * cg, cg, f"{in_name}_s{gi}", layers))
            elif g > 1:
                inp = Act(src, gi * cg, cg)
            else:
                inp = Act(self.dense(src, name, layers) if big else src)
            wg = None if weights is None else weights[:, gi * cg:(gi + 1) * cg]
            bg = None if bias is None else bias[gi * kg:(gi + 1) * kg]
            taps = self.w.hwck(f"{name}/taps", wg, (kg, cg, kh, kw))
            bconst = self.w.fp16(f"{name}/bias", bg, kg) if cp.bias_term else None
            self.add(Spec(Op.DECONVOLUTION, name, layers, inp,
                          Act(out, gi * kg, kg) if g > 1 else Act(out),
                          self.taps(taps, (kh * kw, cg, kg)), self.bias_const(bconst),
                          params=params, post=self.post(node, Op.DECONVOLUTION, cp.bias_term)))

    def _innerproduct(self, node: Node) -> None:
        ip = unwrap(node.layer.param).inner_product_param
        rank = self.caffe_rank(node)
        axis = ip.axis + rank if ip.axis < 0 else ip.axis
        if axis != 1:
            raise UnsupportedNetworkError(f"InnerProduct {node.name!r}: axis {ip.axis}; the "
                                          "NCSDK multiplies the whole (C, H, W) input (axis 1)")
        src, out = node.inputs[0], node.outputs[0]
        layers = tuple(node.layers)
        k, n = ip.num_output, src.c * src.h * src.w
        blobs = self.w.blobs(node.layer)
        weights = blobs[0] if blobs else None
        if weights is not None:
            weights = np.asarray(weights).reshape((n, k) if ip.transpose else (k, n))
            if ip.transpose:
                weights = weights.T
            # Caffe's weights multiply the input in (C, H, W) order; the device's input
            # is (H, W, C): reorder them as (K, C, H, W) -> HWCK.
            weights = weights.reshape(k, src.c, src.h, src.w)
        bias = blobs[1] if ip.bias_term and len(blobs) > 1 else None
        inp = self.dense(src, node.name, layers) if src.h * src.w > 1 else src
        taps = self.w.hwck(f"{node.name}/taps", weights, (k, src.c, src.h, src.w), pad_k_to=8)
        bconst = self.w.fp16(f"{node.name}/bias", bias, k) if ip.bias_term else None
        self.add(Spec(Op.FULLY_CONNECTED, node.name, layers, Act(inp, flat=True), Act(out),
                      self.taps(taps, (1, n, k)), self.bias_const(bconst),
                      post=self.post(node, Op.FULLY_CONNECTED, ip.bias_term),
                      window1=_generic_window()))

    # ------------------------------------------------------------------ pooling, LRN

    def _pooling(self, node: Node) -> None:
        param = unwrap(node.layer.param)
        pp = param.pooling_param
        src, out = node.inputs[0], node.outputs[0]
        if pp.pool == pp.STOCHASTIC:
            raise UnsupportedNetworkError(f"Pooling {node.name!r}: stochastic pooling; the "
                                          "NCSDK has max and average pooling only")
        op = Op.MAX_POOLING if pp.pool == pp.MAX else Op.AVERAGE_POOLING
        try:
            (kh, kw), (sh, sw), (ph, pw), _ = pooling_geometry(param, node.layer, src.h, src.w)
        except ShapeError as err:
            raise UnsupportedNetworkError(f"Pooling {node.name!r}: {err}") from None
        # mvNCCompile sizes pooling outputs with Caffe's ceil rule.
        want = (_ceil_pool(src.h, kh, sh, ph), _ceil_pool(src.w, kw, sw, pw))
        if want != (out.h, out.w):
            raise UnsupportedNetworkError(
                f"Pooling {node.name!r}: Caffe gives a {out.h}x{out.w} output, the NCSDK's ceil "
                f"rule {want[0]}x{want[1]} (round_mode FLOOR or ceil_mode false?)")
        self.add(Spec(op, node.name, tuple(node.layers), Act(src), Act(out),
                      params=PoolParams(kw, kh, sw, sh, pw, ph, PadStyle.CAFFE),
                      post=self.post(node, op, False)))

    def _lrn(self, node: Node) -> None:
        lp = unwrap(node.layer.param).lrn_param
        src, out = node.inputs[0], node.outputs[0]
        layers = tuple(node.layers)
        size = lp.local_size
        params = lrn_params(f"{node.name}/lrn", lp.k, lp.alpha, lp.beta)
        if lp.norm_region == lp.ACROSS_CHANNELS:
            # 1.x: the legacy parser passes radix (0, local_size) as (radixY, radixX).
            self.add(Spec(Op.LRN, node.name, layers, Act(src), Act(out),
                          bias=self.bias_const(params), params=LrnParams(size),
                          post=self.post(node, Op.LRN, False),
                          window1=Window(size, 0, 1, 1, 0, 0, PadStyle.CAFFE)))
            return
        # WITHIN_CHANNEL, as the toolkit decomposes it: x^2 -> average over the
        # size x size window -> (k + alpha * avg)^-beta -> times x.
        sq = self.new_value(f"{node.name}_Square", src.shape)
        avg = self.new_value(f"{node.name}_AvgPool", src.shape)
        inner = self.new_value(f"{node.name}_InnerLRN", src.shape)
        pad = (size - 1) // 2
        self.add(Spec(Op.SQUARE, f"{node.name}_Square", layers, Act(src), Act(sq),
                      window1=_generic_window()))
        self.add(Spec(Op.AVERAGE_POOLING, f"{node.name}_AvgPool", layers, Act(sq), Act(avg),
                      params=PoolParams(size, size, 1, 1, pad, pad, PadStyle.CAFFE)))
        self.add(Spec(Op.INNER_LRN, f"{node.name}_InnerLRN", layers, Act(avg), Act(inner),
                      bias=self.bias_const(params), params=LrnParams(1),
                      window1=_generic_window()))
        self.add(Spec(Op.ELTWISE_PROD, node.name, layers, Act(src), Act(out), Act(inner),
                      post=self.post(node, Op.ELTWISE_PROD, False), window1=_generic_window()))

    # ------------------------------------------------------------------ element-wise

    def _eltwise(self, node: Node) -> None:
        layer = node.layer
        op = Op.ELTWISE_SUM
        if layer.type == "Eltwise":
            ep = unwrap(layer.param).eltwise_param
            op = {ep.PROD: Op.ELTWISE_PROD, ep.SUM: Op.ELTWISE_SUM,
                  ep.MAX: Op.ELTWISE_MAX}[ep.operation]
            if any(c != 1.0 for c in ep.coeff):
                raise UnsupportedNetworkError(
                    f"Eltwise {node.name!r}: coeff {list(ep.coeff)}; the NCSDK has no weighted "
                    "sum (its Caffe parser silently ignores coeff)")
        inputs = list(node.inputs)
        if len(inputs) == 2 and inputs[0] is self.graph.input:
            inputs.reverse()  # the toolkit swaps a 'data' first bottom to second
        self._chain(node, op, inputs)

    def _chain(self, node: Node, op: Op, inputs: list[Value]) -> None:
        """Two-input stages; more inputs are summed pairwise (the 2.x record holds
        two), the intermediate results named ``<layer>_<i>``."""
        layers = tuple(node.layers)
        out = node.outputs[0]
        acc = inputs[0]
        for i, other in enumerate(inputs[1:], 1):
            last = i == len(inputs) - 1
            dest = out if last else self.new_value(f"{node.name}_{i}", out.shape)
            self.add(Spec(op, node.name if last else f"{node.name}_{i}", layers, Act(acc),
                          Act(dest), Act(other),
                          post=self.post(node, op, False) if last else NO_POST_OP,
                          window1=_generic_window()))
            acc = dest

    def _scale(self, node: Node) -> None:
        """A two-bottom Scale: an element-wise product when both have one shape."""
        a, b = node.inputs
        if a.shape != b.shape:
            raise UnsupportedNetworkError(
                f"Scale {node.name!r} multiplies {a.blob!r} {a.shape} by {b.blob!r} {b.shape}, "
                "a broadcast; the NCSDK's Scale takes one input (its product needs equal shapes)")
        self._chain(node, Op.ELTWISE_PROD, [a, b])

    def _affine(self, node: Node) -> None:
        src, out = node.inputs[0], node.outputs[0]
        c = src.c
        taps = self.w.fp16(f"{node.name}/taps", node.affine.scale, c)
        bias = None
        if node.affine.shift is not None:
            bias = self.w.fp16(f"{node.name}/bias", node.affine.shift, c)
        self.add(Spec(Op.SCALE, node.name, tuple(node.layers), Act(src), Act(out),
                      self.vector_taps(taps, c), self.bias_const(bias),
                      post=self.post(node, Op.SCALE, bias is not None),
                      window1=_generic_window()))

    def _prelu(self, node: Node) -> None:
        src, out = node.inputs[0], node.outputs[0]
        blobs = self.w.blobs(node.layer)
        slopes = blobs[0] if blobs else None
        if slopes is not None:
            slopes = np.broadcast_to(np.asarray(slopes, np.float64).reshape(-1), (src.c,)) \
                if np.size(slopes) == 1 else slopes
        bias = self.w.fp16(f"{node.name}/slopes", slopes, src.c)
        self.add(Spec(Op.PRELU, node.name, tuple(node.layers), Act(src), Act(out),
                      bias=self.bias_const(bias), post=self.post(node, Op.PRELU, False),
                      window1=_generic_window()))

    def _unary(self, node: Node, op: Op, params=None, style=PadStyle.CAFFE) -> None:
        self.add(Spec(op, node.name, tuple(node.layers), Act(node.inputs[0]),
                      Act(node.outputs[0]), params=params, post=self.post(node, op, False),
                      window1=_generic_window(style)))

    def _sigmoid(self, node: Node) -> None:
        self._unary(node, Op.SIGMOID)

    def _tanh(self, node: Node) -> None:
        self._unary(node, Op.TANH)

    def _power(self, node: Node) -> None:
        pp = unwrap(node.layer.param).power_param
        self._unary(node, Op.POWER, PowerParams(pp.shift, pp.scale, pp.power), PadStyle.NONE)

    def _softmax(self, node: Node) -> None:
        axis = unwrap(node.layer.param).softmax_param.axis
        rank = self.caffe_rank(node)
        if axis < 0:
            axis += rank
        if axis not in (1, 2):
            raise UnsupportedNetworkError(f"Softmax {node.name!r}: axis {axis}; the NCSDK "
                                          "takes axis 1 (channels) or 2")
        self._unary(node, Op.SOFTMAX, SoftmaxParams(axis), PadStyle.NONE)

    # ------------------------------------------------------------------ data movement

    def _concat(self, node: Node) -> None:
        for src, dest in node.copies:
            self.add(Spec(Op.COPY, f"{node.name}_{src.blob}", (node.name,), Act(src),
                          Act(dest), window1=_generic_window()))

    def _slice(self, node: Node) -> None:
        pass  # views (placement)

    def _crop(self, node: Node) -> None:
        cp = unwrap(node.layer.param).crop_param
        if self.caffe_rank(node) != 4:
            raise UnsupportedNetworkError(f"Crop {node.name!r}: the NCSDK crops 4-axis blobs")
        axis = cp.axis + 4 if cp.axis < 0 else cp.axis
        if axis == 0:
            raise UnsupportedNetworkError(f"Crop {node.name!r}: cropping the batch axis")
        offsets = [0, 0, 0]  # C, H, W
        for i in range(3):
            if i + 1 >= axis and len(cp.offset):
                offsets[i] = cp.offset[0] if len(cp.offset) == 1 else cp.offset[i + 1 - axis]
        self.add(Spec(Op.CROP, node.name, tuple(node.layers), Act(node.inputs[0]),
                      Act(node.outputs[0]),
                      params=OffsetParams(offsets[2], offsets[1], offsets[0]),
                      post=self.post(node, Op.CROP, False),
                      window1=_generic_window(PadStyle.NONE)))

    def _dense_unary(self, node: Node, op: Op, params=None, style=PadStyle.CAFFE) -> None:
        layers = tuple(node.layers)
        src = self.dense(node.inputs[0], node.name, layers)
        self.add(Spec(op, node.name, layers, Act(src), Act(node.outputs[0]), params=params,
                      post=self.post(node, op, False), window1=_generic_window(style)))

    def _reshape(self, node: Node) -> None:
        out = node.outputs[0]
        # 2.05 writes the new (x, y, z) into the record's offset fields; a 1.x
        # record has none (the output dims say it).
        params = OffsetParams() if self.v1 else OffsetParams(out.w, out.h, out.c)
        self._dense_unary(node, Op.RESHAPE, params)

    def _flatten(self, node: Node) -> None:
        src, out = node.inputs[0], node.outputs[0]
        if out.shape != (src.c * src.h * src.w, 1, 1):
            raise UnsupportedNetworkError(
                f"Flatten {node.name!r} makes {out.shape}; the NCSDK's Flatten (to plane-major) "
                "flattens all of (C, H, W) (axis 1 to the end)")
        self._dense_unary(node, Op.TO_PLANE_MAJOR)

    def _permute(self, node: Node) -> None:
        src, out = node.inputs[0], node.outputs[0]
        order = list(unwrap(node.layer.param).permute_param.order)
        rank = self.caffe_rank(node)
        if rank != 4:
            raise UnsupportedNetworkError(f"Permute {node.name!r}: the NCSDK permutes 4-axis "
                                          "blobs")
        order += [a for a in range(rank) if a not in order]
        if order[0] != 0:
            raise UnsupportedNetworkError(f"Permute {node.name!r}: permuting the batch axis "
                                          "is not supported")
        perm = [a - 1 for a in order[1:]]  # over (C, H, W)
        if tuple(src.shape[a] for a in perm) != out.shape:  # pragma: no cover - Caffe's rule
            raise UnsupportedNetworkError(f"Permute {node.name!r}: unexpected output shape")
        # The toolkit's encoding of the order for the firmware.
        decoder = (2, 0, 1)
        myriad = [decoder[a] for a in perm[1:] + perm[:1]]
        const = permute_params(f"{node.name}/op_params", myriad)
        layers = tuple(node.layers)
        inp = self.dense(src, node.name, layers)
        self.add(Spec(Op.PERMUTE, node.name, layers, Act(inp), Act(out),
                      op_params=Const(const), post=self.post(node, Op.PERMUTE, False),
                      window1=_generic_window(PadStyle.NONE)))

    # ------------------------------------------------------------------ SSD

    def _normalize(self, node: Node) -> None:
        npm = unwrap(node.layer.param).norm_param
        src, out = node.inputs[0], node.outputs[0]
        blobs = self.w.blobs(node.layer)
        n = 1 if npm.channel_shared else src.c
        scale = self.w.fp16(f"{node.name}/scale", blobs[0] if blobs else None, n)
        # 1.x: int32 (across_spatial, channel_shared); 2.x adds eps, as its
        # Normalize stage definition does.
        const = normalize_params(f"{node.name}/op_params", npm.across_spatial,
                                 npm.channel_shared, None if self.v1 else npm.eps)
        self.add(Spec(Op.NORMALIZE, node.name, tuple(node.layers), Act(src), Act(out),
                      self.vector_taps(scale, n), op_params=Const(const),
                      post=self.post(node, Op.NORMALIZE, False),
                      window1=_generic_window(PadStyle.NONE)))

    def _priorbox(self, node: Node) -> None:
        pp = unwrap(node.layer.param).prior_box_param
        feature, image = node.inputs
        if pp.HasField("step_w") and pp.HasField("step_h"):
            step_w, step_h = pp.step_w, pp.step_h
        elif pp.HasField("step"):
            step_w = step_h = pp.step
        else:
            step_w = step_h = 0.0
        # The image size comes from the second bottom's shape (img_size/img_h/img_w
        # are not read, as in the toolkit).
        const = prior_box_params(
            f"{node.name}/op_params", img_h=image.h, img_w=image.w,
            min_sizes=list(pp.min_size), max_sizes=list(pp.max_size),
            aspect_ratios=list(pp.aspect_ratio), variances=list(pp.variance), flip=pp.flip,
            clip=pp.clip, step_w=step_w, step_h=step_h, offset=pp.offset)
        self.add(Spec(Op.PRIOR_BOX, node.name, tuple(node.layers), Act(feature),
                      Act(node.outputs[0]), Act(image), op_params=Const(const),
                      post=self.post(node, Op.PRIOR_BOX, False),
                      window1=_generic_window(PadStyle.NONE)))

    def _detectionoutput(self, node: Node) -> None:
        dp = unwrap(node.layer.param).detection_output_param
        if len(node.inputs) != 3:
            raise UnsupportedNetworkError(
                f"DetectionOutput {node.name!r} has {len(node.inputs)} bottoms; the NCSDK takes "
                "three (locations, confidences, prior boxes)")
        layers = tuple(node.layers)
        loc, conf, priors = (self.dense(v, node.name, layers) for v in node.inputs)
        const = detection_output_params(
            f"{node.name}/op_params", num_classes=dp.num_classes,
            share_location=dp.share_location, background_label_id=dp.background_label_id,
            nms_threshold=dp.nms_param.nms_threshold, top_k=dp.nms_param.top_k,
            code_type=dp.code_type, keep_top_k=dp.keep_top_k,
            confidence_threshold=dp.confidence_threshold,
            variance_encoded=dp.variance_encoded_in_target, eta=dp.nms_param.eta)
        self.add(Spec(Op.DETECTION_OUTPUT, node.name, layers, Act(loc), Act(node.outputs[0]),
                      Act(conf), Act(priors), op_params=Const(const),
                      post=self.post(node, Op.DETECTION_OUTPUT, False),
                      window1=_generic_window(PadStyle.NONE)))


def _ceil_pool(x: int, k: int, s: int, p: int) -> int:
    """The toolkit's pooling output size: ``min(ceil((x+2p-k)/s)+1, ceil((x+p)/s))``."""
    return min(-(-(x + 2 * p - k) // s) + 1, -(-(x + p) // s))
