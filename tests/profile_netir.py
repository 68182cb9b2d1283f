"""A stand-in for ``caffe2ncs.lowering.lower`` in the profiler's tests, used only
while the real lowering is not on this branch (see :func:`lower_for_tests`).

It turns a loaded Caffe :class:`~caffe2ncs.model.Net` into graph-IR stages the
way the NCSDK compiler shapes them, as far as the cost model cares: one stage
per convolution (``group`` stages for a grouped one, one depthwise stage when
``group == channels``), pooling, LRN, fully-connected, softmax, eltwise and
the other layers that do work; ReLU, BatchNorm and Scale that follow a
convolution are fused (no stage); Concat is implicit (the branches write into
one work buffer at channel offsets); Dropout, Split, Flatten and Reshape of a
single tensor are aliases.  Weights are zero constants of the right size (the
cost model reads only dims).  It is not a compiler: parameters it does not
need (padding styles, op-param arrays) are approximate.
"""

from __future__ import annotations

from caffe2ncs.lowering.ir import (
    BufferRef,
    Constant,
    ConvParams,
    Graph,
    GraphFormat,
    LrnParams,
    Op,
    PadStyle,
    PoolParams,
    PostOp,
    SoftmaxParams,
    Stage,
    hwc_strides,
    hwck_taps_strides,
    layout_work_buffers,
)

_ALIASES = {"Dropout", "Split", "Flatten", "Reshape", "Silence", "Input", "Data"}
_FUSED_AFTER_CONV = {"ReLU", "BatchNorm", "Scale", "Bias"}
_ELEMENTWISE = {"ReLU": Op.RELU, "PReLU": Op.PRELU, "Sigmoid": Op.SIGMOID, "TanH": Op.TANH,
                "ELU": Op.ELU, "Scale": Op.SCALE, "BatchNorm": Op.SCALE, "Bias": Op.BIAS,
                "Power": Op.POWER, "Permute": Op.PERMUTE, "Normalize": Op.NORMALIZE,
                "PriorBox": Op.PRIOR_BOX, "Crop": Op.CROP, "Reorg": Op.REORG,
                "Region": Op.REGION, "Deconvolution": Op.DECONVOLUTION}


def _chw(shape) -> tuple[int, int, int]:
    """(C, H, W) of an N-d Caffe shape (batch dropped, missing dims 1)."""
    dims = list(shape[1:]) + [1, 1, 1]
    if len(shape) == 2:
        return (shape[1], 1, 1)
    return tuple(dims[:3])  # type: ignore[return-value]


def lower_for_tests(net) -> Graph:
    """The stand-in lowering described in the module docstring."""
    layers = list(net.layers)
    # Blob versions: key each top by (name, writer index) so that in-place layers
    # (ReLU) and aliases resolve to the tensor that is physically stored.
    alias: dict[str, str] = {}  # blob -> blob it is a view of

    def root(blob: str) -> str:
        while blob in alias:
            blob = alias[blob]
        return blob

    fused: set[int] = set()
    post_ops: dict[int, PostOp] = {}
    for i, layer in enumerate(layers):
        if layer.type in _ALIASES and len(layer.bottoms) == 1:
            for top in layer.tops:
                if top != layer.bottoms[0]:
                    alias[top] = layer.bottoms[0]
            fused.add(i)
        elif layer.type in _FUSED_AFTER_CONV and len(layer.bottoms) == 1:
            j = _producer(layers, i, layer.bottoms[0], root)
            if j is not None and layers[j].type in ("Convolution", "InnerProduct") \
                    and (layer.in_place or len(net.consumers(layer.bottoms[0])) == 1):
                fused.add(i)
                if layer.type == "ReLU":
                    post_ops[j] = PostOp.relu()
                if layer.tops[0] != layer.bottoms[0]:
                    alias[layer.tops[0]] = layer.bottoms[0]

    # Concat: the inputs of a concat live inside its output buffer.
    placement: dict[str, tuple[str, int]] = {}  # blob -> (buffer blob, channel offset)
    for i in reversed(range(len(layers))):
        layer = layers[i]
        if layer.type != "Concat":
            continue
        shapes = net.shapes_of(layer)
        axis = layer.param.concat_param.axis if layer.param.HasField("concat_param") else 1
        top = root(layer.tops[0])
        buf, base = placement.get(top, (top, 0))
        offset = 0
        for bottom, shape in zip(layer.bottoms, shapes.inputs, strict=True):
            placement[root(bottom)] = (buf, base + offset)
            # Channel offset; for another axis, the element offset (approximate).
            offset += _chw(shape)[0] if axis == 1 else _elements(shape)
        fused.add(i)

    work: dict[str, int] = {}
    blob_dims: dict[str, tuple[int, int, int]] = {}
    for name, shape in net.blob_shapes.items():
        if shape is not None:
            c, h, w = _chw(shape)
            blob_dims[name] = (w, h, c)
    input_names = {spec.name for spec in net.inputs}
    outputs = {root(b) for b in net.outputs}

    def ref(blob: str, dims=None) -> BufferRef:
        blob = root(blob)
        buf, channel = placement.get(blob, (blob, 0))
        own = dims or blob_dims[blob]
        whole = blob_dims[buf]
        strides = hwc_strides(whole)
        if buf in input_names:
            return BufferRef.input(own, strides, 2 * channel)
        if buf in outputs:
            return BufferRef.output(own, strides, 2 * channel)
        index = work.setdefault(buf, 4 + len(work))
        return BufferRef.work(index, 2 * channel, own, strides)

    stages: list[Stage] = []
    constants: list[Constant] = []

    def weights(name: str, k: int, c: int, kk: int) -> tuple[BufferRef, BufferRef]:
        taps = Constant(f"{name}/taps", bytes(kk * c * k * 2))
        bias = Constant(f"{name}/bias", bytes(k * 2))
        constants.extend([taps, bias])
        return (BufferRef.blob(taps.name, (kk, c, k), hwck_taps_strides(k, c)),
                BufferRef.blob(bias.name))

    for i, layer in enumerate(layers):
        if i in fused:
            continue
        shapes = net.shapes_of(layer)
        t = layer.type
        if t == "Convolution":
            cp = layer.param.convolution_param
            kh, kw = _kernel(cp)
            sh, sw = _pair(cp.stride, cp.stride_h, cp.stride_w, 1)
            ph, pw = _pair(cp.pad, cp.pad_h, cp.pad_w, 0)
            dil = cp.dilation[0] if cp.dilation else 1
            cin, _, _ = _chw(shapes.inputs[0])
            k, ho, wo = _chw(shapes.outputs[0])
            group = cp.group or 1
            params = ConvParams(kw, kh, sw, sh, pw, ph, PadStyle.CAFFE, dil)
            post = post_ops.get(i, PostOp.bias())
            src, dst = layer.bottoms[0], layer.tops[0]
            if group > 1 and group == cin == k:
                taps, bias = weights(layer.name, k, 1, kh * kw)
                stages.append(Stage(Op.DEPTHWISE_CONVOLUTION, layer.name, params, ref(src),
                                    ref(dst), taps, bias, post_op=post))
                continue
            wi, hi = blob_dims[root(src)][:2]
            for g in range(group):
                name = layer.name if group == 1 else f"{layer.name}/group{g}"
                cg, kg = cin // group, k // group
                inp = ref(src, (wi, hi, cg))
                out = ref(dst, (wo, ho, kg))
                inp = _shift(inp, 2 * g * cg)
                out = _shift(out, 2 * g * kg)
                taps, bias = weights(name, kg, cg, kh * kw)
                stages.append(Stage(Op.CONVOLUTION, name, params, inp, out, taps, bias,
                                    post_op=post))
        elif t == "Pooling":
            pp = layer.param.pooling_param
            c, ho, wo = _chw(shapes.outputs[0])
            _, hi, wi = _chw(shapes.inputs[0])
            if pp.global_pooling:
                kh, kw, sh, sw, ph, pw = hi, wi, 1, 1, 0, 0
            else:
                kh, kw = _kernel(pp)
                sh, sw = _pair((pp.stride,) if pp.HasField("stride") else (), pp.stride_h,
                               pp.stride_w, 1)
                ph, pw = _pair((pp.pad,) if pp.HasField("pad") else (), pp.pad_h, pp.pad_w, 0)
            op = Op.AVERAGE_POOLING if pp.pool == 1 else Op.MAX_POOLING
            stages.append(Stage(op, layer.name, PoolParams(kw, kh, sw, sh, pw, ph, PadStyle.CAFFE),
                                ref(layer.bottoms[0]), ref(layer.tops[0])))
        elif t == "LRN":
            lp = layer.param.lrn_param
            lrn = Constant(f"{layer.name}/params", bytes(8))
            constants.append(lrn)
            op = Op.INNER_LRN if lp.norm_region == 1 else Op.LRN
            stages.append(Stage(op, layer.name, LrnParams(lp.local_size or 5),
                                ref(layer.bottoms[0]), ref(layer.tops[0]),
                                bias=BufferRef.blob(lrn.name)))
        elif t == "InnerProduct":
            cin = 1
            for d in shapes.inputs[0][1:]:
                cin *= d
            k = layer.param.inner_product_param.num_output
            taps, bias = weights(layer.name, k, cin, 1)
            stages.append(Stage(Op.FULLY_CONNECTED, layer.name, None,
                                ref(layer.bottoms[0]), ref(layer.tops[0]), taps, bias,
                                post_op=post_ops.get(i, PostOp.bias())))
        elif t == "Softmax":
            stages.append(Stage(Op.SOFTMAX, layer.name, SoftmaxParams(1),
                                ref(layer.bottoms[0]), ref(layer.tops[0])))
        elif t == "Eltwise":
            op = {0: Op.ELTWISE_PROD, 1: Op.ELTWISE_SUM, 2: Op.ELTWISE_MAX}[
                layer.param.eltwise_param.operation]
            stages.append(Stage(op, layer.name, None, ref(layer.bottoms[0]),
                                ref(layer.tops[0]), ref(layer.bottoms[1])))
        elif t in ("DetectionOutput",):
            stages.append(Stage(Op.DETECTION_OUTPUT, layer.name, None, ref(layer.bottoms[0]),
                                ref(layer.tops[0]), ref(layer.bottoms[1]),
                                ref(layer.bottoms[2])))
        elif t in _ELEMENTWISE:
            op = _ELEMENTWISE[t]
            params = None
            if op is Op.DECONVOLUTION:
                continue  # not needed by the profiler's tests
            if op in (Op.CROP,):
                from caffe2ncs.lowering.ir import OffsetParams
                params = OffsetParams()
            if op is Op.POWER:
                from caffe2ncs.lowering.ir import PowerParams
                params = PowerParams()
            stages.append(Stage(op, layer.name, params, ref(layer.bottoms[0]),
                                ref(layer.tops[0])))
        else:
            raise NotImplementedError(f"profile_netir: layer type {t} ({layer.name})")
    graph = Graph(tuple(stages), tuple(constants), GraphFormat.NCSDK1, name=net.name or "net",
                  shave_count=12)
    return layout_work_buffers(graph)


def _elements(shape) -> int:
    n = 1
    for d in shape[1:]:
        n *= d
    return n


def _shift(ref: BufferRef, extra: int) -> BufferRef:
    import dataclasses

    return dataclasses.replace(ref, offset=ref.offset + extra)


def _producer(layers, i, blob, root):
    for j in range(i - 1, -1, -1):
        if blob in layers[j].tops and layers[j].type not in _FUSED_AFTER_CONV:
            return j
        if blob in layers[j].tops and layers[j].type in _FUSED_AFTER_CONV:
            continue
    return None


def _pair(repeated, h, w, default):
    if h or w:
        return h, w
    if repeated:
        v = repeated[0] if isinstance(repeated, tuple) else repeated
        return v, v
    return default, default


def _kernel(p):
    if p.kernel_h or p.kernel_w:
        return p.kernel_h, p.kernel_w
    ks = p.kernel_size
    if isinstance(ks, tuple):
        return (ks[0], ks[-1]) if ks else (1, 1)
    return ks, ks
