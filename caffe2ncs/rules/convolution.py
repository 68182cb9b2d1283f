"""NCS30x: convolution and deconvolution parameters."""

from __future__ import annotations

from collections.abc import Iterator

from ..fixes.edits import delete_node
from ..model.net import Layer
from ..model.shapes import ShapeError, conv_geometry
from ..sdk import (
    MAX_GROUPS, MAX_KERNEL, MAX_PAD, MAX_STRIDE, TESTED_CONV_SHAPES, TESTED_CONV_SHAPES_2_08,
    sdk_error,
)
from .base import Change, Diagnostic, Fix, FixAvailability, Rule, Severity
from .context import Context
from .registry import register


class ConvInfo:
    """A convolution's geometry, or None when its parameters are broken (the
    structure rules report that)."""

    __slots__ = ("kernel", "stride", "pad", "dilation", "group", "cin", "cout", "depthwise")

    def __init__(self, layer: Layer, cin: int | None) -> None:
        cp = layer.param.convolution_param
        from ..model.frozen import unwrap

        self.kernel, self.stride, self.pad, self.dilation = conv_geometry(unwrap(cp), 2)
        self.group = cp.group or 1
        self.cin = cin
        self.cout = cp.num_output
        self.depthwise = cin is not None and self.group == cin and self.group > 1 and \
            self.cout % cin == 0


def conv_info(ctx: Context, layer: Layer) -> ConvInfo | None:
    shape = ctx.in_shape(layer)
    if shape is not None and len(shape) != 4:
        return None
    try:
        return ConvInfo(layer, shape[1] if shape is not None else None)
    except ShapeError:
        return None


def _convs(ctx: Context, *types: str) -> Iterator[tuple[Layer, ConvInfo]]:
    for layer in ctx.layers_of(*(types or ("Convolution",))):
        info = conv_info(ctx, layer)
        if info is not None:
            yield layer, info


_ORDER = ((1, 1, 1), (3, 3, 1), (5, 5, 1), (7, 7, 1), (7, 7, 2), (7, 7, 4),
          (1, 3, 1), (3, 1, 1), (1, 7, 1), (7, 1, 1))


def _shape_name(kh: int, kw: int, s: int) -> str:
    return f"{kh}x{kw}s{s}"


@register
class UntestedConvShape(Rule):
    """## What it does
    Finds convolutions whose kernel/stride combination is outside the list the
    vendor tested: 1x1s1, 3x3s1, 5x5s1, 7x7s1, 7x7s2 and 7x7s4 (NCSDK 2.08 adds
    1x3, 3x1, 1x7, 7x1 at stride 1).

    ## Why is this bad?
    Myriad 2 has no convolution hardware; each shape runs as a software kernel,
    and the release notes only promise the listed ones. Others are untested
    territory: they often work (AlexNet's 11x11 stride 4 is a validated
    network) but may be slow or, in rare cases, wrong. This is a warning: verify
    such layers on a device (`caffe2ncs verify`).

    Depthwise convolutions and non-square kernels have rules of their own
    (NCS304/NCS305, NCS306); a 1x1 convolution on a 1x1 input becomes a fully
    connected layer and is not checked here.
    """

    code = "NCS301"
    name = "untested-conv-shape"
    severity = Severity.WARNING
    summary = "convolution kernel/stride outside the vendor-tested list"
    source = "NCSDK release notes: 'extensively tested' convolution shapes"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        tested = TESTED_CONV_SHAPES | (TESTED_CONV_SHAPES_2_08 if ctx.target == "ncsdk2" else set())
        listing = ", ".join(_shape_name(*s) for s in _ORDER if s in tested)
        for layer, info in _convs(ctx):
            kh, kw = info.kernel
            sh, sw = info.stride
            if info.depthwise or kh != kw:
                continue
            shape = ctx.in_shape(layer)
            if shape is not None and shape[2:] == (1, 1) and (kh, kw) == (1, 1):
                continue
            if sh == sw and (kh, kw, sh) in tested:
                continue
            stride = f"s{sh}" if sh == sw else f"s{sh}x{sw}"
            yield ctx.report(
                self, f"convolution {layer.name!r} is {kh}x{kw}{stride}, outside the shapes the "
                f"vendor tested ({listing}); it may work (AlexNet's 11x11s4 does) — check it on "
                "a device", ctx.anchor(layer, "convolution_param", "kernel_size", 0)
                or ctx.anchor(layer, "convolution_param"), layer=layer)


@register
class TooManyGroups(Rule):
    """## What it does
    Finds grouped convolutions with 1024 groups or more (depthwise convolutions
    excepted: they run as their own kind of stage).

    ## Why is this bad?
    The NCSDK splits a grouped convolution into one stage per group; the
    documentation limits this to fewer than 1024 groups in total.
    """

    code = "NCS302"
    name = "too-many-groups"
    severity = Severity.ERROR
    summary = "grouped convolution with 1024 groups or more"
    source = "NCSDK Caffe Support page: 'Group Convolution - <1024 groups total'"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer, info in _convs(ctx, "Convolution", "Deconvolution"):
            if info.group >= MAX_GROUPS and not info.depthwise:
                yield ctx.report(
                    self, f"{layer.type.lower()} {layer.name!r} has {info.group} groups; the NCSDK "
                    f"supports fewer than {MAX_GROUPS}", ctx.anchor(layer, "convolution_param", "group"),
                    layer=layer)


@register
class PaddedOneByOne(Rule):
    """## What it does
    Finds 1x1 convolutions with padding.

    ## Why is this bad?
    mvNCCompile refuses them: `[Error 5] Toolkit Error: Stage Details Not
    Supported: Padding 1 not supported for 1x1 convolution in <name>`. (SqueezeNet
    v1.0's `conv10` is the classic case; the vendor's app zoo patches the pad out.)

    ## Fix
    An unsafe fix deletes the `pad` field: the output becomes smaller by 2·pad in
    each direction, which changes what the following layers see (with a global
    pooling after it, as in SqueezeNet, only slightly).
    """

    code = "NCS303"
    name = "padded-1x1-convolution"
    severity = Severity.ERROR
    summary = "1x1 convolution with padding"
    fix_availability = FixAvailability.SOMETIMES
    sdk_error = sdk_error(5, "Padding 1 not supported for 1x1 convolution")
    source = "TK NetworkStage: 1x1 convolution with pad 1"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer, info in _convs(ctx):
            if info.kernel != [1, 1] or not any(info.pad):
                continue
            pads = [layer.locate("convolution_param", name) for name in ("pad", "pad_h", "pad_w")]
            pads = [n for n in pads if n is not None]
            fix = None
            all_pads = layer.locate("convolution_param").all("pad") if \
                layer.locate("convolution_param") is not None else []
            if pads and len(all_pads) <= 1:
                fix = Fix.unsafe("delete the padding (the output shrinks)",
                                 *(delete_node(ctx.text, n) for n in pads),
                                 changes=tuple(Change("set-param", layer.name,
                                                      (f"convolution_param.{n.name}", None))
                                               for n in pads) + (Change("reshape", layer.name),))
            yield ctx.report(
                self, f"1x1 convolution {layer.name!r} has padding {info.pad[0]}x{info.pad[1]}; "
                "the NCSDK refuses padded 1x1 convolutions",
                pads[0] if pads else ctx.anchor(layer, "convolution_param"), layer=layer, fix=fix)


@register
class DepthwiseMultiplier(Rule):
    """## What it does
    Finds depthwise convolutions (one group per input channel) with a channel
    multiplier above 1, i.e. more outputs than inputs.

    ## Why is this bad?
    The NCSDK errata: depthwise convolution with a channel multiplier > 1 "may
    not be supported". A warning: check the layer on a device.
    """

    code = "NCS304"
    name = "depthwise-channel-multiplier"
    severity = Severity.WARNING
    summary = "depthwise convolution with a channel multiplier above 1"
    source = "NCSDK release notes, errata"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer, info in _convs(ctx):
            if info.depthwise and info.cout > info.cin:
                yield ctx.report(
                    self, f"depthwise convolution {layer.name!r} multiplies each of its {info.cin} "
                    f"channels {info.cout // info.cin}x; the errata say this may not be supported",
                    ctx.anchor(layer, "convolution_param", "num_output"), layer=layer)


@register
class DepthwiseKernel(Rule):
    """## What it does
    Finds depthwise convolutions whose kernel is not 3x3.

    ## Why is this bad?
    Only 3x3 depthwise convolutions are listed as tested in the NCSDK release
    notes. A warning: check the layer on a device.
    """

    code = "NCS305"
    name = "untested-depthwise-kernel"
    severity = Severity.WARNING
    summary = "depthwise convolution whose kernel is not 3x3"
    source = "NCSDK release notes, errata"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer, info in _convs(ctx):
            if info.depthwise and info.kernel != [3, 3]:
                kh, kw = info.kernel
                yield ctx.report(
                    self, f"depthwise convolution {layer.name!r} is {kh}x{kw}; only 3x3 depthwise "
                    "convolutions are tested", ctx.anchor(layer, "convolution_param", "kernel_size", 0)
                    or ctx.anchor(layer, "convolution_param"), layer=layer)


@register
class NonSquareKernel(Rule):
    """## What it does
    Finds convolutions with a non-square kernel (`kernel_h` ≠ `kernel_w`).

    ## Why is this bad?
    The NCSDK 1.x documentation says "We don't support non-square convolutions
    such as 1x20". NCSDK 2.08 added 1x3, 3x1, 1x7 and 7x1 (stride 1) to the tested
    list, so with `target = "ncsdk2"` those are not reported. A warning: the
    compiler accepts the fields; check the result on a device.
    """

    code = "NCS306"
    name = "non-square-kernel"
    severity = Severity.WARNING
    summary = "convolution with a non-square kernel"
    source = "NCSDK 1.x Caffe documentation; 2.08 release notes"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer, info in _convs(ctx, "Convolution", "Deconvolution"):
            kh, kw = info.kernel
            if kh == kw:
                continue
            if ctx.target == "ncsdk2" and info.stride == [1, 1] and \
                    (kh, kw, 1) in TESTED_CONV_SHAPES_2_08 and layer.type == "Convolution":
                continue
            yield ctx.report(
                self, f"{layer.type.lower()} {layer.name!r} has a {kh}x{kw} kernel; non-square "
                "kernels are documented as unsupported (NCSDK 2.08 tested only 1x3, 3x1, 1x7, 7x1)",
                ctx.anchor(layer, "convolution_param", "kernel_h"), layer=layer)


@register
class UnencodableDilation(Rule):
    """## What it does
    Finds dilation settings the NCSDK cannot represent: different dilations for
    height and width, more than two values, or any dilation on a deconvolution.

    ## Why is this bad?
    The graph file holds one dilation per stage. NCSDK 1.x silently uses the
    first value; 2.x stops with `[Error 5] … Diffrent dilation values for H and W
    axis are not supported` (sic), and rejects dilated deconvolutions.
    """

    code = "NCS307"
    name = "unencodable-dilation"
    severity = Severity.ERROR
    summary = "dilation the graph file cannot encode"
    sdk_error = sdk_error(5)
    source = "TK CaffeParser (1.12: dilation[0] only; 2.05: Error 5)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Convolution", "Deconvolution"):
            values = list(layer.param.convolution_param.dilation)
            where = ctx.anchor(layer, "convolution_param", "dilation", 0) or \
                ctx.anchor(layer, "convolution_param")
            if len(values) > 2:
                yield ctx.report(self, f"{layer.type.lower()} {layer.name!r} gives {len(values)} "
                                 "dilation values; the NCSDK takes one", where, layer=layer)
            elif len(values) == 2 and values[0] != values[1]:
                yield ctx.report(self, f"{layer.type.lower()} {layer.name!r} dilates height by "
                                 f"{values[0]} and width by {values[1]}; the NCSDK needs them equal",
                                 where, layer=layer)
            elif layer.type == "Deconvolution" and values and any(v != 1 for v in values):
                yield ctx.report(self, f"deconvolution {layer.name!r} is dilated ({values[0]}); the "
                                 "NCSDK does not support dilated deconvolution", where, layer=layer)


@register
class FieldTooWide(Rule):
    """## What it does
    Finds kernel sizes above 127 and strides or pads above 255, in convolution,
    deconvolution and pooling layers (including global pooling, whose kernel is
    the input size).

    ## Why is this bad?
    The NCSDK 1.x graph file stores kernel sizes as signed bytes and strides and
    pads as unsigned bytes, so larger values cannot be encoded (they wrap around).
    Only checked with `target = "ncsdk1"`: the 2.x format uses 32-bit fields.
    """

    code = "NCS308"
    name = "field-too-wide"
    severity = Severity.ERROR
    summary = "kernel > 127 or stride/pad > 255 (NCSDK 1.x graph field widths)"
    source = "NCSDK 1.x graph file stage descriptor (int8 radix, uint8 stride/pad)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        if ctx.target != "ncsdk1":
            return
        for layer in ctx.layers_of("Convolution", "Deconvolution", "Pooling"):
            geo = _geometry(ctx, layer)
            if geo is None:
                continue
            kernel, stride, pad = geo
            problems = []
            if max(kernel) > MAX_KERNEL:
                problems.append(f"kernel {kernel[0]}x{kernel[1]} > {MAX_KERNEL}")
            if max(stride) > MAX_STRIDE:
                problems.append(f"stride {max(stride)} > {MAX_STRIDE}")
            if max(pad) > MAX_PAD:
                problems.append(f"pad {max(pad)} > {MAX_PAD}")
            if problems:
                yield ctx.report(self, f"{layer.type.lower()} {layer.name!r}: "
                                 f"{', '.join(problems)} does not fit the NCSDK 1.x graph file",
                                 ctx.anchor(layer, "type"), layer=layer)


def _geometry(ctx: Context, layer: Layer):
    if layer.type == "Pooling":
        pp = layer.param.pooling_param
        shape = ctx.in_shape(layer)
        if pp.global_pooling:
            if shape is None or len(shape) != 4:
                return None
            return [shape[2], shape[3]], [1, 1], [0, 0]
        kh = pp.kernel_h if pp.HasField("kernel_h") else pp.kernel_size
        kw = pp.kernel_w if pp.HasField("kernel_w") else pp.kernel_size
        sh = pp.stride_h if pp.HasField("stride_h") else pp.stride
        sw = pp.stride_w if pp.HasField("stride_w") else pp.stride
        ph = pp.pad_h if pp.HasField("pad_h") else pp.pad
        pw = pp.pad_w if pp.HasField("pad_w") else pp.pad
        return [kh, kw], [sh, sw], [ph, pw]
    info = conv_info(ctx, layer)
    if info is None:
        return None
    return info.kernel, info.stride, info.pad


@register
class GroupedDeconvolution(Rule):
    """## What it does
    Finds deconvolutions with more than one group.

    ## Why is this bad?
    The NCSDK 2.x errata list grouped deconvolution as unsupported (the legacy
    parser splits it per group; the new parser rejects it). A warning: check on a
    device, or split it into separate deconvolutions joined by a Concat.
    """

    code = "NCS309"
    name = "grouped-deconvolution"
    severity = Severity.WARNING
    summary = "deconvolution with more than one group"
    source = "NCSDK 2.08 errata"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Deconvolution"):
            group = layer.param.convolution_param.group
            if group > 1:
                yield ctx.report(self, f"deconvolution {layer.name!r} has {group} groups; grouped "
                                 "deconvolution is listed as unsupported in the errata",
                                 ctx.anchor(layer, "convolution_param", "group"), layer=layer)


@register
class GroupConvAfterSlice(Rule):
    """## What it does
    Finds grouped (not depthwise) convolutions that read the output of a Slice
    layer.

    ## Why is this bad?
    The NCSDK implements both a Slice and a grouped convolution by reading
    channel sub-ranges of a buffer; its parser notes that a group convolution
    cannot follow a slice, and inserts copy stages that are not always right. A
    warning: check the result on a device.
    """

    code = "NCS310"
    name = "group-conv-after-slice"
    severity = Severity.WARNING
    summary = "grouped convolution reading a Slice output"
    source = "TK CaffeParser comment: 'group convolution cannot follow slice'"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer, info in _convs(ctx):
            if info.group <= 1 or info.depthwise or not layer.bottoms:
                continue
            producer = ctx.net.producer(layer, 0)
            if producer is not None and producer.type == "Slice":
                yield ctx.report(self, f"grouped convolution {layer.name!r} reads Slice "
                                 f"{producer.name!r}; the NCSDK handles this combination poorly",
                                 ctx.anchor(layer, "bottom", 0), layer=layer)
