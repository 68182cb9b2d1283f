"""The learned blobs each layer type owns, and their shapes.

Caffe creates these in each layer's ``LayerSetUp`` (the weights of a
convolution, the mean/variance/scale-factor of a BatchNorm, …); a caffemodel
must supply exactly these, shape for shape.  The same table sizes the weights
``info`` reports, the zero weights ``build`` uses when no caffemodel is given,
and the random weights of ``--random-weights``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .frozen import unwrap
from .net import Layer, Shape
from .shapes import ShapeError, conv_geometry, depthwise_fork_geometry

# DepthwiseConvolution is a BaseConvolutionLayer: a Convolution's blobs.
_CONV_TYPES = ("Convolution", "DepthwiseConvolution")


def blob_names(layer: Layer) -> list[str]:
    """Human names of the learned blobs, for messages (``["weights", "bias"]``)."""
    t = layer.type
    if t == "BatchNorm":
        return ["mean", "variance", "scale factor"]
    if t == "Scale":
        names = [] if len(layer.bottoms) > 1 else ["scale"]
        if unwrap(layer.param).scale_param.bias_term:
            names.append("bias")
        return names
    if t == "Bias":
        return [] if len(layer.bottoms) > 1 else ["bias"]
    if t == "PReLU":
        return ["slopes"]
    if t == "Normalize":
        return ["scale"]
    return ["weights", "bias"]


def expected_blob_shapes(layer: Layer, in_shapes: Sequence[Shape | None]) -> list[Shape] | None:
    """The shapes Caffe gives ``layer``'s learned blobs, or ``None`` when they
    cannot be known (a custom layer type, or an input of unknown shape)."""
    pb = unwrap(layer.param)
    t = layer.type
    if t in _PARAMETERLESS:
        return []
    if not in_shapes or in_shapes[0] is None:
        return None
    x = in_shapes[0]
    try:
        if t == "ConvolutionDepthwise":
            # conv_dw_layer.cpp: one filter per input channel, whatever
            # num_output and group say.
            cp = pb.convolution_param
            kernel, _, _, _ = depthwise_fork_geometry(cp, x)
            c = x[1]
            return [(c, 1, *kernel), (c,)] if cp.bias_term else [(c, 1, *kernel)]
        if t in _CONV_TYPES or t == "Deconvolution":
            cp = pb.convolution_param
            axis = cp.axis + len(x) if cp.axis < 0 else cp.axis
            n_spatial = len(x) - axis - 1
            kernel, _, _, _ = conv_geometry(cp, n_spatial)
            c = x[axis]
            g = cp.group or 1
            k = cp.num_output
            weights = (k, c // g, *kernel) if t != "Deconvolution" else (c, k // g, *kernel)
            return [weights, (k,)] if cp.bias_term else [weights]
        if t == "InnerProduct":
            ip = pb.inner_product_param
            axis = ip.axis + len(x) if ip.axis < 0 else ip.axis
            k_in = 1
            for d in x[axis:]:
                k_in *= d
            n = ip.num_output
            weights = (k_in, n) if ip.transpose else (n, k_in)
            return [weights, (n,)] if ip.bias_term else [weights]
        if t == "BatchNorm":
            c = x[1] if len(x) > 1 else 1
            return [(c,), (c,), (1,)]
        if t in ("Scale", "Bias"):
            p = pb.scale_param if t == "Scale" else pb.bias_param
            axis = p.axis + len(x) if p.axis < 0 else p.axis
            if len(layer.bottoms) > 1:
                if t == "Scale" and p.bias_term and len(in_shapes) > 1 and in_shapes[1] is not None:
                    return [tuple(in_shapes[1])]
                return []
            end = len(x) if p.num_axes == -1 else axis + p.num_axes
            shape = tuple(x[axis:end])
            if t == "Scale" and p.bias_term:
                return [shape, shape]
            return [shape]
        if t == "PReLU":
            return [(1,)] if pb.prelu_param.channel_shared else [(x[1],)]
        if t == "Normalize":
            return [(1,)] if pb.norm_param.channel_shared else [(x[1],)]
        if t == "Embed":
            ep = pb.embed_param
            return [(ep.input_dim, ep.num_output), (ep.num_output,)] if ep.bias_term else \
                [(ep.input_dim, ep.num_output)]
        if t == "Parameter":
            return [tuple(pb.parameter_param.shape.dim)]
    except (ShapeError, IndexError, ZeroDivisionError):
        return None
    return None


# Layer types that learn nothing (anything not listed here or above is unknown).
_PARAMETERLESS = frozenset({
    "ReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log", "Threshold",
    "Dropout", "LRN", "MVN", "Softmax", "Clip", "Swish", "ShuffleChannel", "Split", "Pooling",
    "SPP", "Concat", "Slice", "Eltwise", "Flatten", "Reshape", "Crop", "Permute", "Tile",
    "Reduction", "ArgMax", "Silence", "Im2col", "PriorBox", "DetectionOutput", "Upsample",
    "Interp", "Reorg", "ROIPooling", "PSROIPooling", "Region", "Axpy", "Input", "Data",
    "ImageData", "HDF5Data", "HDF5Output", "WindowData", "DummyData", "MemoryData",
    "AnnotatedData", "VideoData", "Accuracy", "SoftmaxWithLoss", "EuclideanLoss",
    "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss", "MultinomialLogisticLoss",
    "ContrastiveLoss", "ReLU6",
})


def parameter_count(shapes: Sequence[Shape]) -> int:
    total = 0
    for shape in shapes:
        n = 1
        for d in shape:
            n *= d
        total += n
    return total
