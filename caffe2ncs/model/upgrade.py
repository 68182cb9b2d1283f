"""Caffe's format upgrades, applied in memory so the rest of caffe2ncs sees one form.

This mirrors what Caffe's ``UpgradeNetAsNeeded`` (and OpenCV's copy of it) do:

* V0 (``layers { layer { type: "conv" kernelsize: 3 … } }``, 2013) → current
  layers, routing the flat V0 fields into the typed parameter messages and
  folding V0 ``padding`` layers into the convolution/pooling that follows;
* V1 (``layers { type: CONVOLUTION blobs_lr: 1 … }``, 2014) → current layers,
  with the enum type mapped to its string and ``blobs_lr``/``weight_decay``/
  ``blob_share_mode`` turned into ``param { lr_mult decay_mult share_mode }``;
* the TEST-phase filter of ``include``/``exclude`` rules (Caffe's FilterNet).

Unlike Caffe we do *not* turn top-level inputs into an ``Input`` layer: the
NCSDK wants the opposite, so inputs are normalised separately (see load.py).
"""

from __future__ import annotations

from .._proto import caffe_pb2 as pb
from .schema import is_repeated

# V1LayerParameter.LayerType name -> current type string (Caffe's UpgradeV1LayerType).
V1_TYPES: dict[str, str] = {
    "NONE": "",
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "DATA": "Data",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# V0 type string -> current type string (Caffe's UpgradeV0LayerType, composed with the above).
V0_TYPES: dict[str, str] = {
    "accuracy": "Accuracy",
    "bnll": "BNLL",
    "concat": "Concat",
    "conv": "Convolution",
    "data": "Data",
    "dropout": "Dropout",
    "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten",
    "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output",
    "im2col": "Im2col",
    "images": "ImageData",
    "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss",
    "split": "Split",
    "tanh": "TanH",
    "window_data": "WindowData",
}

# The V1 fields that are *not* copied as a parameter message of the same name.
_V1_SPECIAL = {"layer", "blobs", "include", "exclude", "bottom", "top", "name", "type", "param",
               "blob_share_mode", "blobs_lr", "weight_decay", "loss_weight"}


def _copyable_params() -> list[str]:
    v1 = pb.V1LayerParameter.DESCRIPTOR
    v2 = pb.LayerParameter.DESCRIPTOR.fields_by_name
    names = []
    for fd in v1.fields:
        if fd.name in _V1_SPECIAL or fd.message_type is None:
            continue
        target = v2.get(fd.name)
        if target is not None and target.message_type is fd.message_type:
            names.append(fd.name)
    return names


_V1_PARAM_FIELDS = _copyable_params()


def v1_type_name(v1: pb.V1LayerParameter) -> str:
    """The V1 enum name as written (e.g. ``CONVOLUTION``)."""
    return pb.V1LayerParameter.LayerType.Name(v1.type) if v1.HasField("type") else "NONE"


def upgrade_v1(v1: pb.V1LayerParameter, problems: list[str]) -> pb.LayerParameter:
    """A V1 layer as a current LayerParameter (V0 layers nested in it too)."""
    if v1.HasField("layer"):
        return upgrade_v0(v1, problems)
    layer = pb.LayerParameter()
    if v1.HasField("name"):
        layer.name = v1.name
    layer.type = V1_TYPES.get(v1_type_name(v1), v1_type_name(v1))
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.loss_weight.extend(v1.loss_weight)
    layer.blobs.extend(v1.blobs)
    _v1_param_specs(v1, layer)
    for name in _V1_PARAM_FIELDS:
        if v1.HasField(name):
            getattr(layer, name).CopyFrom(getattr(v1, name))
    return layer


def _v1_param_specs(v1, layer: pb.LayerParameter) -> None:
    def spec(i: int) -> pb.ParamSpec:
        while len(layer.param) <= i:
            layer.param.add()
        return layer.param[i]

    for i, name in enumerate(v1.param):
        spec(i).name = name
    for i, mode in enumerate(v1.blob_share_mode):
        spec(i).share_mode = mode
    for i, lr in enumerate(v1.blobs_lr):
        spec(i).lr_mult = lr
    for i, decay in enumerate(v1.weight_decay):
        spec(i).decay_mult = decay


def upgrade_v0(v1: pb.V1LayerParameter, problems: list[str]) -> pb.LayerParameter:
    """A V0 layer (``layers { layer { … } bottom top }``) as a current LayerParameter."""
    v0 = v1.layer
    layer = pb.LayerParameter()
    layer.name = v0.name
    v0_type = v0.type
    kind = V0_TYPES.get(v0_type)
    layer.type = kind if kind is not None else v0_type
    if kind is None and v0_type != "padding":
        problems.append(f"unknown V0 layer type {v0_type!r}")
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.blobs.extend(v0.blobs)
    for i, lr in enumerate(v0.blobs_lr):
        while len(layer.param) <= i:
            layer.param.add()
        layer.param[i].lr_mult = lr
    for i, decay in enumerate(v0.weight_decay):
        while len(layer.param) <= i:
            layer.param.add()
        layer.param[i].decay_mult = decay

    def route(field: str, targets: dict[str, tuple[str, str]]) -> None:
        if not v0.HasField(field):
            return
        if v0_type == "padding" and field == "pad":
            return  # fold_v0_padding moves it into the consuming layer
        target = targets.get(v0_type)
        if target is None:
            problems.append(f"V0 field {field!r} does not apply to a {v0_type!r} layer")
            return
        param_name, param_field = target
        value = getattr(v0, field)
        dest = getattr(layer, param_name)
        fd = dest.DESCRIPTOR.fields_by_name[param_field]
        if is_repeated(fd):
            getattr(dest, param_field).append(value)
        elif fd.message_type is not None:
            getattr(dest, param_field).CopyFrom(value)
        else:
            setattr(dest, param_field, value)

    conv_ip = {"conv": ("convolution_param", ""), "innerproduct": ("inner_product_param", "")}

    def with_field(table: dict[str, tuple[str, str]], name: str) -> dict[str, tuple[str, str]]:
        return {k: (v[0], name) for k, v in table.items()}

    route("num_output", with_field(conv_ip, "num_output"))
    route("biasterm", with_field(conv_ip, "bias_term"))
    route("weight_filler", with_field(conv_ip, "weight_filler"))
    route("bias_filler", with_field(conv_ip, "bias_filler"))
    conv_pool = {"conv": ("convolution_param", ""), "pool": ("pooling_param", "")}
    route("pad", with_field(conv_pool, "pad"))
    route("kernelsize", with_field(conv_pool, "kernel_size"))
    route("stride", with_field(conv_pool, "stride"))
    route("group", {"conv": ("convolution_param", "group")})
    route("pool", {"pool": ("pooling_param", "pool")})
    route("dropout_ratio", {"dropout": ("dropout_param", "dropout_ratio")})
    for name in ("local_size", "alpha", "beta", "k"):
        route(name, {"lrn": ("lrn_param", name)})
    data_like = {
        "data": "data_param",
        "images": "image_data_param",
        "window_data": "window_data_param",
        "hdf5_data": "hdf5_data_param",
        "infogain_loss": "infogain_loss_param",
    }
    route("source", {k: (v, "source") for k, v in data_like.items()})
    route("batchsize", {k: (v, "batch_size") for k, v in data_like.items()
                        if k != "infogain_loss"})
    route("rand_skip", {k: ("data_param" if k == "data" else v, "rand_skip")
                        for k, v in data_like.items() if k in ("data", "images")})
    route("shuffle_images", {"images": ("image_data_param", "shuffle")})
    route("new_height", {"images": ("image_data_param", "new_height")})
    route("new_width", {"images": ("image_data_param", "new_width")})
    transform = {t: ("transform_param", "") for t in ("data", "images", "window_data")}
    route("scale", with_field(transform, "scale"))
    route("meanfile", with_field(transform, "mean_file"))
    route("cropsize", with_field(transform, "crop_size"))
    route("mirror", with_field(transform, "mirror"))
    route("concat_dim", {"concat": ("concat_param", "concat_dim")})
    for v0_field, param_field in (
        ("det_fg_threshold", "fg_threshold"),
        ("det_bg_threshold", "bg_threshold"),
        ("det_fg_fraction", "fg_fraction"),
        ("det_context_pad", "context_pad"),
        ("det_crop_mode", "crop_mode"),
    ):
        route(v0_field, {"window_data": ("window_data_param", param_field)})
    if v0.HasField("hdf5_output_param"):
        layer.hdf5_output_param.CopyFrom(v0.hdf5_output_param)
    return layer


def fold_v0_padding(layers: list, problems: list, folded: dict | None = None) -> list:
    """Remove V0 ``padding`` layers, moving their ``pad`` into the convolution or
    pooling layer that consumes them (Caffe's UpgradeV0PaddingLayers).

    ``layers`` holds ``(LayerParameter, v0_pad, payload)`` tuples; the result drops
    the padding entries and rewires their consumers.  What Caffe refuses (a
    padding layer with several bottoms or tops, or feeding anything but one
    convolution or pooling input) is appended to ``problems`` as
    ``(payload, message)``.  ``folded``, if given, maps ``id(consumer payload)``
    to the payload of the padding layer folded into it."""
    out = []
    pads: dict[str, tuple] = {}  # padding top -> (its bottom, pad, payload)
    for layer, v0_pad, payload in layers:
        if layer.type == "padding":
            if len(layer.bottom) != 1 or len(layer.top) != 1:
                problems.append((payload, "a V0 padding layer must have exactly one bottom "
                                          "and one top"))
                continue
            pads[layer.top[0]] = (layer.bottom[0], v0_pad, payload)
            continue
        for i, bottom in enumerate(layer.bottom):
            if bottom in pads:
                source, pad, pad_payload = pads[bottom]
                if layer.type not in ("Convolution", "Pooling"):
                    problems.append((payload, f"V0 padding layer output {bottom!r} feeds this "
                                              f"{layer.type or 'untyped'} layer; Caffe only folds "
                                              "padding into a convolution or pooling layer"))
                elif len(layer.bottom) != 1:
                    problems.append((payload, f"V0 padding layer output {bottom!r} feeds a layer "
                                              "with several bottoms; Caffe needs exactly one"))
                elif layer.type == "Convolution":
                    layer.convolution_param.pad[:] = [pad]
                else:
                    layer.pooling_param.pad = pad
                if folded is not None:
                    folded[id(payload)] = pad_payload
                layer.bottom[i] = source
        out.append((layer, v0_pad, payload))
    return out


# -- phase filtering (Caffe's Net::FilterNet / StateMeetsRule) -------------------

def state_meets_rule(state: pb.NetState, rule: pb.NetStateRule) -> bool:
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def layer_included(layer: pb.LayerParameter, state: pb.NetState) -> bool:
    """Whether Caffe keeps ``layer`` for ``state`` (include rules OR'ed, excludes veto)."""
    include = layer.include
    if include:
        return any(state_meets_rule(state, r) for r in include)
    exclude = layer.exclude
    return not exclude or not any(state_meets_rule(state, r) for r in exclude)


def test_state(net: pb.NetParameter) -> pb.NetState:
    """The state Caffe (and the NCSDK) builds a deploy network with: the file's
    level and stages, with the phase forced to TEST."""
    state = pb.NetState()
    state.CopyFrom(net.state)
    state.phase = pb.TEST
    return state
