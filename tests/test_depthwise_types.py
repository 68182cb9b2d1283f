"""The two custom depthwise layer types, used the same way everywhere:

* ``ConvolutionDepthwise`` (conv_dw_layer.cpp, ShuffleNet/MobileNet forks) is
  always depthwise: C in, C out, weights (C, 1, kh, kw), whatever
  ``num_output`` and ``group`` say;
* ``DepthwiseConvolution`` (yonghenglh6/DepthwiseConvolution) is a
  BaseConvolutionLayer: a Convolution's shapes.

Shapes and learned blobs are tested in test_shapes.py and test_weights.py;
here, the fix of the check rule for unsupported layer types.
"""

from __future__ import annotations

from caffe2ncs.fixes.engine import apply_edits
from caffe2ncs.model import loads
from caffe2ncs.rules.runner import check_source

HEAD = 'input: "data"\ninput_shape { dim: 1 dim: 8 dim: 10 dim: 10 }\n'


def fork(num_output: int, group: str = "") -> str:
    return (HEAD + 'layer {\n  name: "dw"\n  type: "ConvolutionDepthwise"\n  bottom: "data"\n'
            f'  top: "dw"\n  convolution_param {{\n    num_output: {num_output}\n{group}'
            '    kernel_size: 3\n    pad: 1\n  }\n}\n')


def fixed(text: str) -> str:
    (diag,) = [d for d in check_source(text, "n.prototxt").diagnostics if d.code == "NCS201"]
    assert diag.fix is not None
    return apply_edits(text, diag.fix.edits)


def test_fix_of_the_fork_sets_num_output_to_the_channels():
    # The fork makes 8 channels here whatever num_output says; the Convolution
    # the fix writes must say 8 outputs in 8 groups to compute the same thing.
    text = fixed(fork(16))
    assert 'type: "Convolution"' in text and "num_output: 8\n" in text and "group: 8" in text
    net = loads(text, path="n.prototxt")
    assert net.blob_shapes["dw"] == loads(fork(16), path="n.prototxt").blob_shapes["dw"] == \
        (1, 8, 10, 10)


def test_fix_of_the_fork_keeps_a_matching_num_output_and_rewrites_group():
    text = fixed(fork(8, "    group: 2\n"))
    assert "num_output: 8\n" in text and "group: 8\n" in text and "group: 2" not in text
