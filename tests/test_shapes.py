"""Shape inference (caffe2ncs.model.shapes) against hand-computed Caffe values.

Each expected shape is worked out from the formula in the Caffe layer's
``Reshape`` (quoted in the comments), not from our code.  Layers whose
parameters do not fit their inputs give a non-fatal 'shape' problem located
at the offending field.
"""

from __future__ import annotations

import pytest

from caffe2ncs.errors import NetGraphError
from caffe2ncs.model import loads
from caffe2ncs.model.shapes import known_types, pooled_size


def net_of(layers: str, *inputs: tuple, names=None):
    names = names or ["data", "data2", "data3"][:len(inputs)]
    head = "".join(
        f'input: "{name}"\ninput_shape {{ {" ".join(f"dim: {d}" for d in shape)} }}\n'
        for name, shape in zip(names, inputs))
    return loads(head + layers, path="s.prototxt", strict=False)


def layer(type_: str, params: str = "", bottoms=("data",), tops=("out",), name="L") -> str:
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{type_}" {b} {t} {params} }}\n'


def out(type_: str, params: str, *inputs: tuple, bottoms=None, tops=("out",)):
    """The output shapes of one layer on the given inputs (no problems allowed)."""
    bottoms = bottoms or ["data", "data2", "data3"][:len(inputs)]
    net = net_of(layer(type_, params, bottoms, tops), *inputs)
    assert net.problems == (), [p.message for p in net.problems]
    (shapes,) = net.layer_shapes
    assert shapes.inputs == tuple(inputs)
    return shapes.outputs if len(tops) != 1 else shapes.outputs[0]


def shape_problem(type_: str, params: str, *inputs: tuple, bottoms=None, tops=("out",)):
    """The one shape problem of a layer: (message, located field text)."""
    bottoms = bottoms or ["data", "data2", "data3"][:len(inputs)]
    net = net_of(layer(type_, params, bottoms, tops), *inputs)
    (problem,) = net.problems
    assert problem.code == "shape" and not problem.fatal and problem.layer == "L"
    assert net.layer_shapes[0].outputs == (None,) * len(tops)
    node = problem.node
    return problem.message, net.source.text[node.start:node.end]


# ---------------------------------------------------------------------------
# Convolution: out = (in + 2*pad - (dilation*(kernel-1)+1)) / stride + 1, rounded down
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inp, expected", [
    ("num_output: 8 kernel_size: 3", (1, 3, 10, 10), (1, 8, 8, 8)),
    ("num_output: 8 kernel_size: 3 stride: 2", (1, 3, 10, 10), (1, 8, 4, 4)),  # (10-3)/2+1 = 4.5
    ("num_output: 8 kernel_size: 3 stride: 2 pad: 1", (2, 3, 11, 11), (2, 8, 6, 6)),
    ("num_output: 8 kernel_size: 7 stride: 2 pad: 3", (1, 3, 224, 224), (1, 8, 112, 112)),
    # dilation 2 on a 3x3 kernel is a 5x5 extent: (10-5)/1+1 = 6
    ("num_output: 4 kernel_size: 3 dilation: 2", (1, 3, 10, 10), (1, 4, 6, 6)),
    # SSD fc6: 3x3, pad 6, dilation 6 keeps 19x19
    ("num_output: 1024 kernel_size: 3 pad: 6 dilation: 6", (1, 512, 19, 19), (1, 1024, 19, 19)),
    # asymmetric: kernel 1x7 pad 0x3 (Inception v3), then kernel_h/w 3x1 stride 2x1
    ("num_output: 4 kernel_h: 1 kernel_w: 7 pad_h: 0 pad_w: 3", (1, 3, 17, 17), (1, 4, 17, 17)),
    ("num_output: 4 kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1", (1, 3, 9, 9), (1, 4, 4, 9)),
    ("num_output: 4 kernel_size: 3 kernel_size: 1 pad: 1 pad: 0", (1, 3, 9, 9), (1, 4, 9, 9)),
    ("num_output: 6 kernel_size: 3 group: 3", (1, 3, 5, 5), (1, 6, 3, 3)),
    # 3-D convolution: kernel 3 on each of D, H, W
    ("num_output: 2 kernel_size: 3", (1, 1, 5, 6, 7), (1, 2, 3, 4, 5)),
    # a 1-D convolution over the last axis (axis 1 is channels, one spatial axis)
    ("num_output: 5 kernel_size: 2", (4, 3, 10), (4, 5, 9)),
])
def test_convolution(params, inp, expected):
    assert out("Convolution", f"convolution_param {{ {params} }}", inp) == expected


def test_convolution_with_several_bottoms_gives_one_top_each():
    got = out("Convolution", "convolution_param { num_output: 2 kernel_size: 1 }",
              (1, 3, 4, 4), (1, 3, 4, 4), tops=("a", "b"))
    assert got == ((1, 2, 4, 4), (1, 2, 4, 4))


@pytest.mark.parametrize("type_", ["ConvolutionDepthwise", "DepthwiseConvolution"])
def test_depthwise_custom_types_follow_convolution(type_):
    assert out(type_, "convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 group: 8 }",
               (1, 8, 15, 15)) == (1, 8, 8, 8)


@pytest.mark.parametrize("params, message, field", [
    ("num_output: 8", "kernel_size is required", "convolution_param { num_output: 8 }"),
    ("kernel_size: 3", "num_output is required and must be positive", "convolution_param { kernel_size: 3 }"),
    ("num_output: 4 kernel_size: 3 group: 2", "group 2 must divide both the input channels (3) and "
     "num_output (4)", "group: 2"),
    ("num_output: 4 kernel_size: 11", "output size -5 < 1 (input 5, kernel 11, stride 1, pad 0, "
     "dilation 1)", 'type: "Convolution"'),
    ("num_output: 4 kernel_size: 3 kernel_h: 3 kernel_w: 3",
     "give either kernel_size or kernel_h/kernel_w, not both", "kernel_size: 3"),
    ("num_output: 4 kernel_h: 3", "kernel_h and kernel_w must be given together", "kernel_h: 3"),
    ("num_output: 4 kernel_size: 3 stride_h: 2",
     "stride must be at least 1, got [2, 0]", "convolution_param { num_output: 4 kernel_size: 3 stride_h: 2 }"),
    ("num_output: 4 kernel_size: 3 stride: 1 stride_h: 2 stride_w: 2",
     "give either stride or stride_h/stride_w, not both", "stride: 1"),
    ("num_output: 4 kernel_size: 3 kernel_size: 3 kernel_size: 3",
     "kernel_size has 3 values for 2 spatial axes", "kernel_size: 3"),
    ("num_output: 4 kernel_size: 0", "kernel size must be at least 1, got [0, 0]", "kernel_size: 0"),
])
def test_convolution_errors(params, message, field):
    msg, located = shape_problem("Convolution", f"convolution_param {{ {params} }}", (1, 3, 5, 5))
    assert msg == f"layer 'L' (Convolution): {message}"
    assert located == field


def test_conv_stride_h_on_3d_is_refused():
    msg, located = shape_problem("Convolution", "convolution_param { num_output: 1 kernel_size: 1 "
                                 "stride_h: 1 stride_w: 1 }", (1, 1, 4, 4, 4))
    assert msg.endswith("stride_h/stride_w only work for 2-D convolution")
    assert located == "stride_h: 1"


# ---------------------------------------------------------------------------
# Deconvolution: out = stride*(in-1) + dilation*(kernel-1)+1 - 2*pad
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inp, expected", [
    ("num_output: 21 kernel_size: 4 stride: 2 bias_term: false", (1, 21, 16, 16), (1, 21, 34, 34)),
    ("num_output: 2 kernel_size: 4 stride: 2 pad: 1", (1, 3, 8, 8), (1, 2, 16, 16)),  # 2*7+4-2
    ("num_output: 21 kernel_size: 16 stride: 8", (1, 21, 5, 5), (1, 21, 48, 48)),
    ("num_output: 3 kernel_size: 3 dilation: 2", (1, 3, 4, 4), (1, 3, 8, 8)),  # 3 + 5
    ("num_output: 4 kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1", (1, 2, 5, 5), (1, 4, 11, 5)),
])
def test_deconvolution(params, inp, expected):
    assert out("Deconvolution", f"convolution_param {{ {params} }}", inp) == expected


# ---------------------------------------------------------------------------
# Pooling: out = ceil((in + 2*pad - kernel) / stride) + 1, then with any pad
# one fewer if the last window starts at or past in + pad
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inp, expected", [
    ("kernel_size: 2 stride: 2", (1, 3, 10, 10), (1, 3, 5, 5)),
    ("kernel_size: 3 stride: 2", (1, 64, 112, 112), (1, 64, 56, 56)),  # ceil(109/2)+1 = 56
    ("kernel_size: 3 stride: 2", (1, 96, 55, 55), (1, 96, 27, 27)),  # AlexNet pool1
    ("kernel_size: 3 stride: 2", (1, 8, 6, 6), (1, 8, 3, 3)),  # ceil(3/2)+1 = 3 (floor gives 2)
    ("kernel_size: 2 stride: 2", (1, 8, 7, 7), (1, 8, 4, 4)),  # ceil(5/2)+1
    # pad 1: ceil((6+2-3)/2)+1 = 4; (4-1)*2 = 6 >= 6+1? no -> 4
    ("kernel_size: 3 stride: 2 pad: 1", (1, 8, 6, 6), (1, 8, 4, 4)),
    # pad 1: ceil((5+2-2)/2)+1 = 4; (4-1)*2 = 6 >= 5+1 -> clamp to 3
    ("kernel_size: 2 stride: 2 pad: 1", (1, 8, 5, 5), (1, 8, 3, 3)),
    # round_mode FLOOR: floor((6-3)/2)+1 = 2
    ("kernel_size: 3 stride: 2 round_mode: FLOOR", (1, 8, 6, 6), (1, 8, 2, 2)),
    ("kernel_size: 3 stride: 2 round_mode: CEIL", (1, 8, 6, 6), (1, 8, 3, 3)),
    # non-square
    ("kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1", (1, 2, 7, 7), (1, 2, 3, 7)),
    ("kernel_size: 3 pad_h: 1 pad_w: 0 stride: 1", (1, 2, 5, 5), (1, 2, 5, 3)),
    # Caffe clamps *both* axes once either is padded: h: ceil((5-1)/3)+1 = 3,
    # (3-1)*3 = 6 >= 5+0 -> 2; w: ceil((6+2-2)/3)+1 = 3, (3-1)*3 = 6 >= 6+1? no -> 3
    ("kernel_h: 1 kernel_w: 2 stride: 3 pad_h: 0 pad_w: 1", (1, 3, 5, 6), (1, 3, 2, 3)),
    # ... but without any padding nothing is clamped: ceil(4/3)+1 = 3
    ("kernel_size: 1 stride: 3", (1, 3, 5, 5), (1, 3, 3, 3)),
    ("global_pooling: true pool: AVE", (1, 1024, 7, 7), (1, 1024, 1, 1)),
    ("global_pooling: true", (2, 5, 3, 9), (2, 5, 1, 1)),
])
def test_pooling(params, inp, expected):
    assert out("Pooling", f"pooling_param {{ {params} }}", inp) == expected


def test_pooling_fork_ceil_mode_field():
    # densenet/resnext files carry OpenCV's/forks' 'ceil_mode: false'
    assert out("Pooling", "pooling_param { kernel_size: 3 stride: 2 ceil_mode: false }",
               (1, 8, 6, 6)) == (1, 8, 2, 2)
    assert out("Pooling", "pooling_param { kernel_size: 3 stride: 2 ceil_mode: true }",
               (1, 8, 6, 6)) == (1, 8, 3, 3)


def test_pooling_with_an_argmax_mask_top():
    assert out("Pooling", "pooling_param { kernel_size: 2 stride: 2 }", (1, 4, 8, 8),
               tops=("p", "mask")) == ((1, 4, 4, 4), (1, 4, 4, 4))


@pytest.mark.parametrize("params, message, field", [
    ("stride: 2", "kernel_size is required (or global_pooling: true)", "pooling_param { stride: 2 }"),
    ("global_pooling: true kernel_size: 2", "global_pooling takes no kernel size", "kernel_size: 2"),
    ("global_pooling: true stride: 2", "global pooling takes no pad and stride 1", "stride: 2"),
    ("kernel_size: 2 pad: 2", "pad (2x2) must be smaller than the kernel (2x2)", "pad: 2"),
    ("kernel_size: 2 kernel_h: 2 kernel_w: 2", "give either kernel_size or kernel_h/kernel_w, not both",
     "kernel_size: 2"),
    ("kernel_h: 2", "kernel_h and kernel_w must be given together", "kernel_h: 2"),
    ("kernel_size: 3 pad_w: 1", "give either pad, or both pad_h and pad_w", "pad_w: 1"),
    ("kernel_size: 3 pad: 1 pad_h: 1 pad_w: 1", "give either pad, or both pad_h and pad_w", "pad_h: 1"),
    ("kernel_size: 3 stride_h: 2", "give either stride, or both stride_h and stride_w", "stride_h: 2"),
    ("kernel_size: 9", "output size -3x-3 < 1 (input 5x5, kernel 9x9, stride 1x1, pad 0x0)",
     'type: "Pooling"'),
])
def test_pooling_errors(params, message, field):
    msg, located = shape_problem("Pooling", f"pooling_param {{ {params} }}", (1, 3, 5, 5))
    assert msg == f"layer 'L' (Pooling): {message}"
    assert located == field


def test_pooling_needs_4_axes():
    msg, _ = shape_problem("Pooling", "pooling_param { kernel_size: 2 }", (1, 3, 5))
    assert msg.endswith("pooling needs a 4-axis input (N, C, H, W), got 1x3x5")


@pytest.mark.parametrize("x, k, s, p, ceil, clamp, expected", [
    (7, 3, 2, 0, True, None, 3), (7, 3, 2, 0, False, None, 3), (8, 3, 2, 0, True, None, 4),
    (8, 3, 2, 0, False, None, 3), (5, 2, 2, 1, True, None, 3), (5, 1, 3, 0, True, True, 2),
    (5, 1, 3, 0, True, False, 3),
])
def test_pooled_size(x, k, s, p, ceil, clamp, expected):
    assert pooled_size(x, k, s, p, ceil, clamp) == expected


# ---------------------------------------------------------------------------
# InnerProduct: shape[:axis] + (num_output,)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inp, expected", [
    ("num_output: 10", (4, 3, 2, 2), (4, 10)),
    ("num_output: 10 axis: 2", (4, 3, 2, 2), (4, 3, 10)),
    ("num_output: 10 axis: -1", (4, 3, 5), (4, 3, 10)),
    ("num_output: 7 transpose: true", (2, 6), (2, 7)),
])
def test_inner_product(params, inp, expected):
    assert out("InnerProduct", f"inner_product_param {{ {params} }}", inp) == expected


def test_inner_product_errors():
    msg, located = shape_problem("InnerProduct", "inner_product_param { num_output: 2 axis: 4 }", (1, 3, 2, 2))
    assert (msg, located) == ("layer 'L' (InnerProduct): axis 4 is out of range for a 4-axis input",
                              "axis: 4")
    msg, _ = shape_problem("InnerProduct", "", (1, 3))
    assert msg.endswith("num_output is required and must be positive")


# ---------------------------------------------------------------------------
# Concat / Slice, with the legacy concat_dim / slice_dim
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inputs, expected", [
    ("", [(1, 2, 4, 4), (1, 3, 4, 4), (1, 5, 4, 4)], (1, 10, 4, 4)),
    ("concat_param { axis: 0 }", [(1, 2, 4), (3, 2, 4)], (4, 2, 4)),
    ("concat_param { axis: -1 }", [(2, 3, 4), (2, 3, 1)], (2, 3, 5)),
    ("concat_param { concat_dim: 2 }", [(1, 2, 3, 4), (1, 2, 5, 4)], (1, 2, 8, 4)),
    ("concat_param { concat_dim: 1 }", [(1, 2), (1, 3)], (1, 5)),
])
def test_concat(params, inputs, expected):
    assert out("Concat", params, *inputs) == expected


@pytest.mark.parametrize("params, inputs, message, field", [
    ("", [(1, 2, 4, 4), (1, 3, 5, 4)],
     "bottom 1 ('data2', 1x3x5x4) does not match bottom 0 (1x2x4x4) outside the concat axis 1",
     'bottom: "data2"'),
    ("concat_param { concat_dim: 4 }", [(1, 2, 3, 4), (1, 2, 3, 4)],
     "concat_dim 4 is out of range for 1x2x3x4", "concat_dim: 4"),
    ("concat_param { concat_dim: 1 axis: 1 }", [(1, 2), (1, 2)],
     "give either axis or concat_dim, not both", "axis: 1"),
    ("", [(1, 2, 4, 4), (1, 2, 4)], "bottom 1 ('data2', 1x2x4) does not match bottom 0 (1x2x4x4) "
     "outside the concat axis 1", 'bottom: "data2"'),
])
def test_concat_errors(params, inputs, message, field):
    msg, located = shape_problem("Concat", params, *inputs)
    assert (msg, located) == (f"layer 'L' (Concat): {message}", field)


@pytest.mark.parametrize("params, inp, tops, expected", [
    ("slice_param { slice_point: 2 slice_point: 5 }", (1, 8, 3), ("a", "b", "c"),
     ((1, 2, 3), (1, 3, 3), (1, 3, 3))),
    ("", (1, 6, 2), ("a", "b", "c"), ((1, 2, 2), (1, 2, 2), (1, 2, 2))),
    ("slice_param { axis: -1 slice_point: 1 }", (2, 3, 4), ("a", "b"), ((2, 3, 1), (2, 3, 3))),
    ("slice_param { slice_dim: 0 }", (4, 3), ("a", "b"), ((2, 3), (2, 3))),
    ("slice_param { axis: 2 }", (1, 2, 10, 2), ("a", "b"), ((1, 2, 5, 2), (1, 2, 5, 2))),
])
def test_slice(params, inp, tops, expected):
    assert out("Slice", params, inp, tops=tops) == expected


@pytest.mark.parametrize("params, tops, message, field", [
    ("", ("a", "b", "c"), "cannot split 8 evenly into 3 tops without slice_point", 'type: "Slice"'),
    ("slice_param { slice_point: 2 }", ("a", "b", "c"), "1 slice_point(s) for 3 tops (need 2)",
     "slice_point: 2"),
    ("slice_param { slice_point: 5 slice_point: 3 }", ("a", "b", "c"),
     "slice points [5, 3] must increase within (0, 8)", "slice_point: 3"),
    ("slice_param { slice_dim: 3 }", ("a", "b"), "slice_dim 3 is out of range", "slice_dim: 3"),
])
def test_slice_errors(params, tops, message, field):
    msg, located = shape_problem("Slice", params, (1, 8, 3), tops=tops)
    assert (msg, located) == (f"layer 'L' (Slice): {message}", field)


# ---------------------------------------------------------------------------
# Reshape: 0 copies, -1 infers, axis/num_axes select the part replaced
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inp, expected", [
    ("shape { dim: 0 dim: -1 }", (2, 3, 4, 5), (2, 60)),
    ("shape { dim: 0 dim: 0 dim: -1 dim: 1 }", (2, 3, 4, 5), (2, 3, 20, 1)),
    ("shape { dim: 6 dim: 2 dim: 10 }", (2, 3, 4, 5), (6, 2, 10)),
    ("shape { dim: -1 }", (2, 3, 4, 5), (120,)),
    # axis 1, num_axes 2: replace (3, 4) by (12)
    ("shape { dim: 12 } axis: 1 num_axes: 2", (2, 3, 4, 5), (2, 12, 5)),
    # axis -1 is *after* the last axis: append
    ("shape { dim: 1 dim: 1 } axis: -1 num_axes: 0", (2, 3), (2, 3, 1, 1)),
    ("shape { dim: 2 dim: -1 } axis: 1", (4, 6, 2), (4, 2, 6)),
    ("shape { dim: 1 } axis: 0 num_axes: 0", (2, 3), (1, 2, 3)),
    # SSD's mbox_conf reshape 0 -1 21
    ("shape { dim: 0 dim: -1 dim: 21 }", (1, 40257), (1, 1917, 21)),
])
def test_reshape(params, inp, expected):
    assert out("Reshape", f"reshape_param {{ {params} }}", inp) == expected


@pytest.mark.parametrize("params, message", [
    ("shape { dim: -1 dim: -1 }", "only one dim may be -1"),
    ("shape { dim: 7 dim: -1 }", "cannot infer the -1 dim: 120 elements do not divide by 7"),
    ("shape { dim: 5 dim: 5 }", "reshape from 2x3x4x5 (120 elements) to 5x5 (25) changes the element count"),
    ("shape { dim: 0 dim: 0 dim: 0 dim: 0 dim: 0 }", "dim 4 is 0 (copy) but the input has no axis 4"),
    ("shape { dim: -2 }", "dim -2 is invalid (use 0 to copy, -1 to infer)"),
    # no dims at all replaces every axis by nothing: a scalar, which Caffe refuses too
    ("shape { }", "reshape from 2x3x4x5 (120 elements) to scalar (1) changes the element count"),
    ("shape { dim: 1 } axis: 5", "axis 5 is out of range for 2x3x4x5"),
    ("shape { dim: 1 } num_axes: -2", "num_axes must be >= -1"),
    ("shape { dim: 1 } axis: 3 num_axes: 2", "axis + num_axes exceeds the input's 4 axes"),
])
def test_reshape_errors(params, message):
    msg, _ = shape_problem("Reshape", f"reshape_param {{ {params} }}", (2, 3, 4, 5))
    assert msg == f"layer 'L' (Reshape): {message}"


# ---------------------------------------------------------------------------
# Flatten, Crop, Permute, Tile, Reduction, ArgMax, Softmax, Scale, Eltwise, ...
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inp, expected", [
    ("", (2, 3, 4, 5), (2, 60)),
    ("flatten_param { axis: 2 }", (2, 3, 4, 5), (2, 3, 20)),
    ("flatten_param { axis: 1 end_axis: 2 }", (2, 3, 4, 5), (2, 12, 5)),
    ("flatten_param { axis: 0 end_axis: -2 }", (2, 3, 4, 5), (24, 5)),
])
def test_flatten(params, inp, expected):
    assert out("Flatten", params, inp) == expected


@pytest.mark.parametrize("params, big, ref, expected", [
    ("", (1, 21, 44, 44), (1, 3, 32, 32), (1, 21, 32, 32)),  # default axis 2
    ("crop_param { axis: 2 offset: 19 }", (1, 21, 544, 544), (1, 3, 500, 500), (1, 21, 500, 500)),
    ("crop_param { axis: 1 offset: 0 offset: 2 offset: 3 }", (1, 5, 8, 8), (1, 2, 6, 5), (1, 2, 6, 5)),
    ("crop_param { axis: 0 }", (4, 5), (2, 3), (2, 3)),
])
def test_crop(params, big, ref, expected):
    assert out("Crop", params, big, ref) == expected


@pytest.mark.parametrize("params, message, field", [
    ("crop_param { offset: 5 }", "crop of 6 at offset 5 exceeds axis 2 of size 10", "offset: 5"),
    ("crop_param { offset: 1 offset: 1 offset: 1 }", "3 offsets for 2 cropped axes", "offset: 1"),
])
def test_crop_errors(params, message, field):
    msg, located = shape_problem("Crop", params, (1, 2, 10, 10), (1, 2, 6, 6))
    assert (msg, located) == (f"layer 'L' (Crop): {message}", field)


@pytest.mark.parametrize("params, inp, expected", [
    ("permute_param { order: 0 order: 2 order: 3 order: 1 }", (1, 12, 19, 19), (1, 19, 19, 12)),
    ("permute_param { order: 0 order: 2 }", (1, 2, 3, 4), (1, 3, 2, 4)),  # the rest keep their order
    ("", (1, 2, 3), (1, 2, 3)),
])
def test_permute(params, inp, expected):
    assert out("Permute", params, inp) == expected


def test_permute_errors():
    msg, located = shape_problem("Permute", "permute_param { order: 0 order: 0 }", (1, 2, 3))
    assert msg == "layer 'L' (Permute): order [0, 0] is not a permutation of 3 axes"
    assert located == "order: 0"


@pytest.mark.parametrize("type_, params, inputs, expected", [
    ("Tile", "tile_param { axis: 1 tiles: 3 }", [(2, 4, 5)], (2, 12, 5)),
    ("Reduction", "reduction_param { axis: 1 }", [(2, 3, 4)], (2,)),
    ("Reduction", "", [(2, 3, 4)], ()),
    ("ArgMax", "argmax_param { top_k: 5 }", [(2, 10)], (2, 1, 5)),
    ("ArgMax", "argmax_param { top_k: 2 out_max_val: true }", [(2, 10)], (2, 2, 2)),
    ("ArgMax", "argmax_param { axis: 1 top_k: 3 }", [(2, 10, 4)], (2, 3, 4)),
    ("Softmax", "softmax_param { axis: 2 }", [(1, 3, 4)], (1, 3, 4)),
    ("Scale", "scale_param { axis: 0 }", [(2, 3, 4, 4), (2, 3)], (2, 3, 4, 4)),
    ("Scale", "", [(1, 8, 4, 4), (8,)], (1, 8, 4, 4)),
    ("Scale", "", [(1, 8, 4, 4), (8, 4)], (1, 8, 4, 4)),
    ("Eltwise", "eltwise_param { operation: SUM coeff: 1 coeff: -1 }", [(1, 2, 3), (1, 2, 3)], (1, 2, 3)),
    ("Axpy", "", [(1, 8, 1, 1), (1, 8, 5, 5), (1, 8, 5, 5)], (1, 8, 5, 5)),
    ("SPP", "spp_param { pyramid_height: 3 }", [(2, 5, 13, 13)], (2, 105)),  # 5 * (1+4+16)
    ("Embed", "embed_param { num_output: 7 input_dim: 100 }", [(4, 3)], (4, 3, 7)),
    ("Im2col", "convolution_param { kernel_size: 2 stride: 2 }", [(1, 3, 4, 4)], (1, 12, 2, 2)),
    ("LRN", "lrn_param { local_size: 5 }", [(1, 3, 4, 4)], (1, 3, 4, 4)),
    ("BatchNorm", "", [(1, 3, 4, 4)], (1, 3, 4, 4)),
    ("ShuffleChannel", "", [(1, 12, 4, 4)], (1, 12, 4, 4)),
    ("PReLU", "", [(1, 3, 4, 4)], (1, 3, 4, 4)),
    ("Normalize", "", [(1, 512, 38, 38)], (1, 512, 38, 38)),
    ("SoftmaxWithLoss", "", [(2, 10), (2,)], ()),
    ("Accuracy", "", [(2, 10), (2,)], ()),
])
def test_other_layers(type_, params, inputs, expected):
    assert out(type_, params, *inputs) == expected


def test_split_and_silence():
    net = net_of(layer("Split", "", ("data",), ("a", "b", "c")) + layer("Silence", "", ("a",), (), "S"),
                 (1, 3))
    assert net.problems == ()
    assert net.layer_shapes[0].outputs == ((1, 3),) * 3
    assert net.layer_shapes[1].outputs == ()
    assert net.outputs == ("b", "c")


@pytest.mark.parametrize("type_, params, inputs, message, field", [
    ("Eltwise", "", [(1, 2, 3), (1, 2, 4)],
     "bottom 1 ('data2', 1x2x4) differs from bottom 0 (1x2x3)", 'bottom: "data2"'),
    ("Eltwise", "eltwise_param { coeff: 1 }", [(1, 2), (1, 2)], "1 coeff values for 2 bottoms",
     "coeff: 1"),
    ("Eltwise", "", [(1, 2)], "takes 2 to 65536 bottom(s), has 1", 'type: "Eltwise"'),
    ("Softmax", "softmax_param { axis: 3 }", [(1, 2, 3)], "axis 3 is out of range for a 3-axis input",
     "axis: 3"),
    ("LRN", "lrn_param { local_size: 4 }", [(1, 3, 4, 4)], "local_size must be odd, not 4",
     "local_size: 4"),
    ("Scale", "", [(1, 8, 4, 4), (1, 8)], "second bottom 1x8 does not match axes 1.. of the first 1x8x4x4",
     'type: "Scale"'),
    ("Axpy", "", [(1, 8, 1, 1), (1, 8, 5, 5), (1, 8, 4, 4)], "bottoms 1 and 2 differ (1x8x5x5 vs 1x8x4x4)",
     'type: "Axpy"'),
    ("ArgMax", "argmax_param { axis: 1 top_k: 30 }", [(2, 10)], "top_k exceeds the axis size",
     "top_k: 30"),
])
def test_other_errors(type_, params, inputs, message, field):
    msg, located = shape_problem(type_, params, *inputs)
    assert msg == f"layer 'L' ({type_}): {message}"
    assert located == field


# ---------------------------------------------------------------------------
# SSD: PriorBox, DetectionOutput
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, per_cell", [
    ("min_size: 30", 1),
    ("min_size: 30 max_size: 60", 2),
    ("min_size: 60 max_size: 111 aspect_ratio: 2 flip: true", 4),  # 1, 2, 1/2 + max
    ("min_size: 60 max_size: 111 aspect_ratio: 2 aspect_ratio: 3 flip: true", 6),
    ("min_size: 60 aspect_ratio: 2 aspect_ratio: 3 flip: false", 3),
    ("min_size: 60 aspect_ratio: 1 aspect_ratio: 2 aspect_ratio: 2 flip: true", 3),  # duplicates skipped
    # flip defaults to true: 2 sizes x (1, 2, 1/2) + 2 max sizes
    ("min_size: 30 min_size: 60 max_size: 60 max_size: 90 aspect_ratio: 2", 8),
])
def test_prior_box(params, per_cell):
    got = out("PriorBox", f"prior_box_param {{ {params} }}", (1, 512, 19, 19), (1, 3, 300, 300))
    assert got == (1, 2, 19 * 19 * per_cell * 4)


def test_prior_box_errors():
    msg, located = shape_problem("PriorBox", "prior_box_param { aspect_ratio: 2 }",
                                 (1, 5, 3, 3), (1, 3, 30, 30))
    assert msg.endswith("min_size is required") and located == "prior_box_param { aspect_ratio: 2 }"
    msg, located = shape_problem("PriorBox", "prior_box_param { min_size: 1 max_size: 2 max_size: 3 }",
                                 (1, 5, 3, 3), (1, 3, 30, 30))
    assert msg.endswith("max_size must have as many values as min_size") and located == "max_size: 3"


@pytest.mark.parametrize("params, batch, rows", [
    ("keep_top_k: 200", 1, 200),
    ("keep_top_k: 100", 2, 200),
    ("", 1, 1),  # keep_top_k -1: unknown until run time, sized as Caffe does before a forward
])
def test_detection_output(params, batch, rows):
    got = out("DetectionOutput", f"detection_output_param {{ num_classes: 21 {params} }}",
              (batch, 7668), (batch, 40257), (1, 2, 7668))
    assert got == (1, 1, rows, 7)


# ---------------------------------------------------------------------------
# Custom layers found in the wild
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, inputs, expected", [
    ("upsample_param { scale: 2 }", [(1, 256, 13, 13)], (1, 256, 26, 26)),
    ("upsample_param { scale: 3 }", [(1, 2, 4, 5)], (1, 2, 12, 15)),
    ("", [(1, 2, 4, 5)], (1, 2, 8, 10)),
    ("upsample_param { upsample_h: 30 upsample_w: 40 }", [(1, 2, 15, 20)], (1, 2, 30, 40)),
    ("upsample_param { scale_h: 2 scale_w: 4 }", [(1, 2, 3, 3)], (1, 2, 6, 12)),
    ("upsample_param { scale: 2 pad_out_h: true }", [(1, 2, 4, 5)], (1, 2, 7, 10)),
    # ENet: the second bottom is the pooling mask, of the first one's size
    ("upsample_param { scale: 2 }", [(1, 16, 64, 128), (1, 16, 64, 128)], (1, 16, 128, 256)),
])
def test_upsample(params, inputs, expected):
    assert out("Upsample", params, *inputs) == expected


def test_upsample_mask_must_match_its_input():
    msg, located = shape_problem("Upsample", "upsample_param { scale: 2 }", (1, 16, 32, 64), (1, 16, 64, 128))
    assert msg == ("layer 'L' (Upsample): the mask (bottom 1, 1x16x64x128) must have the shape of "
                   "bottom 0 (1x16x32x64)")
    assert located == 'bottom: "data2"'


@pytest.mark.parametrize("params, inputs, expected", [
    ("interp_param { zoom_factor: 8 }", [(1, 21, 65, 65)], (1, 21, 513, 513)),  # 65 + 64*7
    ("interp_param { shrink_factor: 2 }", [(1, 3, 9, 10)], (1, 3, 5, 5)),  # (9-1)/2+1, (10-1)/2+1
    ("interp_param { shrink_factor: 2 zoom_factor: 3 }", [(1, 3, 9, 9)], (1, 3, 13, 13)),  # 5 -> 13
    ("interp_param { height: 20 width: 30 }", [(1, 3, 9, 9)], (1, 3, 20, 30)),
    ("interp_param { pad_beg: -1 pad_end: -1 zoom_factor: 2 }", [(1, 3, 11, 11)], (1, 3, 17, 17)),
    ("", [(1, 3, 9, 9), (1, 5, 17, 19)], (1, 3, 17, 19)),
    # zoom_factor wins over height/width and over a second bottom (DeepLab's order)
    ("interp_param { zoom_factor: 2 height: 20 width: 30 }", [(1, 3, 9, 9)], (1, 3, 17, 17)),
    ("interp_param { zoom_factor: 2 }", [(1, 3, 9, 9), (1, 3, 40, 40)], (1, 3, 17, 17)),
])
def test_interp(params, inputs, expected):
    assert out("Interp", params, *inputs) == expected


def test_interp_without_a_size_is_a_problem():
    msg, _ = shape_problem("Interp", "", (1, 3, 9, 9))
    assert msg.endswith("give zoom_factor, shrink_factor, height and width, or a second bottom")


@pytest.mark.parametrize("params, inp, expected", [
    ("reorg_param { stride: 2 }", (1, 64, 26, 26), (1, 256, 13, 13)),
    ("", (1, 64, 26, 26), (1, 256, 13, 13)),
    ("reorg_param { stride: 2 reverse: true }", (1, 256, 13, 13), (1, 64, 26, 26)),
    ("reorg_param { stride: 4 }", (1, 2, 8, 8), (1, 32, 2, 2)),
])
def test_reorg(params, inp, expected):
    assert out("Reorg", params, inp) == expected


def test_reorg_stride_must_divide():
    msg, located = shape_problem("Reorg", "reorg_param { stride: 2 }", (1, 64, 25, 26))
    assert msg.endswith("reorg stride 2 does not divide 25x26") and located == "stride: 2"


def test_roi_pooling_and_psroi_pooling():
    assert out("ROIPooling", "roi_pooling_param { pooled_w: 6 pooled_h: 7 spatial_scale: 0.0625 }",
               (1, 256, 14, 14), (300, 5)) == (300, 256, 7, 6)
    assert out("PSROIPooling", "psroi_pooling_param { output_dim: 21 group_size: 7 }",
               (1, 1029, 14, 14), (300, 5)) == (300, 21, 7, 7)
    # without the pooled size the output is unknown, not an error
    net = net_of(layer("ROIPooling", "", ("data", "data2")), (1, 256, 14, 14), (300, 5))
    assert net.problems == () and net.layer_shapes[0].outputs == (None,)


def test_unknown_layer_types_have_unknown_outputs_and_the_rest_still_infers():
    net = net_of(layer("MyCustom", "", ("data",), ("c",), "custom")
                 + layer("ReLU", "", ("c",), ("r",), "relu")
                 + layer("Pooling", "pooling_param { kernel_size: 2 stride: 2 }", ("data",), ("p",), "pool"),
                 (1, 3, 8, 8))
    assert net.problems == ()
    assert [s.outputs for s in net.layer_shapes] == [(None,), (None,), ((1, 3, 4, 4),)]
    assert "MyCustom" not in known_types() and "Convolution" in known_types()


def test_data_layers_make_blobs_of_unknown_or_given_shape():
    net = loads('layer { name: "d" type: "DummyData" top: "a" top: "b" '
                'dummy_data_param { shape { dim: 2 dim: 3 } } }\n'
                'layer { name: "m" type: "MemoryData" top: "x" top: "y" '
                'memory_data_param { batch_size: 4 channels: 3 height: 5 width: 6 } }\n'
                'layer { name: "i" type: "ImageData" top: "img" top: "label" }\n')
    assert [s.outputs for s in net.layer_shapes] == [
        ((2, 3), (2, 3)), ((4, 3, 5, 6), (4,)), (None, None)]


# ---------------------------------------------------------------------------
# Graph checks and absurd sizes (fatal)
# ---------------------------------------------------------------------------


def graph(text: str):
    return loads(text, path="g.prototxt", strict=False)


HEAD = 'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'


def test_cycle_of_two_layers():
    net = graph(HEAD + layer("ReLU", "", ("b",), ("a",), "A") + layer("ReLU", "", ("a",), ("b",), "B"))
    codes = [p.code for p in net.problems]
    assert codes == ["cycle", "bottom-order"]
    cycle = net.problems[0]
    assert cycle.message == "the layers form a cycle: 'B' -> 'A' -> 'B'"
    assert net.position(cycle.node) == (4, 32)  # B's bottom: "a"
    order = net.problems[1]
    assert order.message == ("layer 'A' reads blob 'b' before layer 'B' produces it; "
                             "Caffe builds layers in file order")
    assert net.position(order.node) == (3, 32)
    with pytest.raises(NetGraphError, match="form a cycle"):
        loads(net.source.text)


def test_self_loop():
    net = graph(HEAD + layer("ReLU", "", ("x",), ("x",), "A"))
    (problem,) = net.problems
    assert problem.code == "missing-bottom"
    assert problem.message == ("layer 'A' reads blob 'x', which no input or layer produces (it is "
                               "written in place by this layer, but nothing produces it first)")


def test_bottom_used_before_it_is_produced():
    net = graph(HEAD + layer("ReLU", "", ("late",), ("a",), "A") + layer("ReLU", "", ("data",), ("late",), "B"))
    (problem,) = net.problems
    assert problem.code == "bottom-order" and problem.layer == "A"
    assert net.layer_shapes[0].inputs == (None,)


def test_duplicate_tops():
    net = graph(HEAD + layer("ReLU", "", ("data",), ("x",), "A") + layer("ReLU", "", ("data",), ("x",), "B")
                + layer("Split", "", ("data",), ("s", "s"), "C") + layer("ReLU", "", ("data",), ("data",), "D"))
    assert [(p.code, p.layer) for p in net.problems] == [
        ("duplicate-top", "B"), ("duplicate-top", "C")]
    assert net.problems[0].message == ("layer 'B' writes blob 'x', which layer 'A' already produced; "
                                       "only in-place layers (top == bottom, at the same index) may write a blob twice")
    assert net.problems[1].message == "layer 'C' lists top 's' twice"
    net = graph(HEAD + layer("ReLU", "", ("x",), ("data",), "E"))
    assert [p.code for p in net.problems] == ["missing-bottom", "duplicate-top"]
    assert "which an input already produced" in net.problems[1].message


def test_in_place_means_the_bottom_at_the_same_index():
    # Caffe's Net::AppendTop: top i is in place only if it is bottom i
    text = (HEAD + layer("ReLU", "", ("data",), ("a",), "A")
            + layer("Eltwise", "", ("data", "a"), ("a",), "B")
            + layer("Eltwise", "", ("a", "data"), ("a",), "C"))
    net = graph(text)
    assert [(p.code, p.layer) for p in net.problems] == [("duplicate-top", "B")]
    assert [layer.in_place for layer in net.layers] == [False, False, True]


@pytest.mark.parametrize("dims, message", [
    ("dim: 1 dim: 1000 dim: 1000 dim: 1000000",
     "input 'data': 1x1000x1000x1000000: 1e+12 elements, more than Caffe's limit of 2147483647 "
     "elements per blob"),
    ("dim: 1 dim: -3 dim: 8 dim: 8", "input 'data': has a negative dimension (1x-3x8x8)"),
    ("dim: 9223372036854775807", "input 'data': 9223372036854775807: 9.22e+18 elements, more than "
     "Caffe's limit of 2147483647 elements per blob"),
    (" ".join(["dim: 1"] * 33), "input 'data': has 33 axes (Caffe allows at most 32)"),
])
def test_absurd_input_shapes(dims, message):
    net = graph(f'input: "data"\ninput_shape {{ {dims} }}\n' + layer("ReLU", "", ("data",), ("r",)))
    (problem,) = net.problems
    assert (problem.code, problem.message, problem.fatal) == ("bad-input-shape", message, True)
    assert net.position(problem.node) == (2, 1)
    assert net.inputs[0].shape is not None  # what the file says ...
    assert net.blob_shapes["data"] is None  # ... but nothing is inferred from it
    assert net.blob_shapes["r"] is None


def test_a_layer_making_a_too_large_top():
    net = graph(HEAD + layer("Deconvolution", "convolution_param { num_output: 100000 kernel_size: 1 "
                             "stride: 1000 }", ("data",), ("big",)))
    (problem,) = net.problems
    assert problem.code == "too-large" and problem.fatal
    assert problem.message == ("layer 'L' (Deconvolution) would make top 'big' 1x100000x7001x7001: "
                               "4.9e+12 elements, more than Caffe's limit of 2147483647 elements per blob")
    assert net.source.text[problem.node.start:problem.node.end] == 'top: "big"'


def test_too_large_learned_blobs():
    net = graph(HEAD + layer("InnerProduct", "inner_product_param { num_output: 20000000 }",
                             ("data",), ("ip",)))
    (problem,) = net.problems
    assert problem.code == "too-large" and problem.fatal
    assert problem.message == ("layer 'L' (InnerProduct) would need weights of 20000000x192: 3.84e+09 "
                               "elements, more than Caffe's limit of 2147483647 elements per blob")
    assert net.blob_shapes["ip"] == (1, 20000000)  # the top itself is fine
