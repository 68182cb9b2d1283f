"""Facts about the Intel Movidius NCSDK (1.x and 2.x) that several parts of
caffe2ncs rely on: which Caffe layers its compiler takes, which convolution
shapes the vendor tested, its size limits and its error messages.

Sources are given per fact; the long form is ``shared/spec/ncsdk-reference.md``
(sections in brackets) and the vendor's "Caffe Support" documentation page.
"""

from __future__ import annotations

#: Layer types mvNCCompile's Caffe parser lowers ("Caffe Support" page; [§2]).
#: Permute, Normalize, PriorBox, DetectionOutput, Crop and Power arrived with
#: NCSDK 1.11 (SSD Caffe).  ``Input`` and in-place ``Dropout`` are skipped.
SUPPORTED_LAYERS = frozenset({
    "Bias", "ELU", "PReLU", "ReLU", "Scale", "Sigmoid", "TanH",
    "InnerProduct",
    "BatchNorm", "LRN",
    "Concat", "Eltwise", "Flatten", "Reshape", "Slice", "Softmax",
    "Convolution", "Deconvolution", "Pooling",
    "Permute", "Normalize", "PriorBox", "DetectionOutput", "Crop", "Power",
    "Input", "Dropout",
})

#: Layers that exist only for training: no inference compiler keeps them.
DATA_LAYERS = frozenset({
    "Data", "ImageData", "HDF5Data", "HDF5Output", "WindowData", "MemoryData", "DummyData",
    "AnnotatedData", "VideoData",
})
LOSS_LAYERS = frozenset({
    "SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss",
    "MultinomialLogisticLoss", "ContrastiveLoss", "MultiBoxLoss",
})
TRAINING_ONLY = DATA_LAYERS | LOSS_LAYERS | {"Accuracy", "Silence", "DetectionEvaluate"}

#: Convolution shapes (kernel_h, kernel_w, stride) the release notes of every
#: NCSDK list as "extensively tested" on the SHAVE processors [§2].
TESTED_CONV_SHAPES = frozenset({(1, 1, 1), (3, 3, 1), (5, 5, 1), (7, 7, 1), (7, 7, 2), (7, 7, 4)})
#: NCSDK 2.08 added these non-square ones to the tested list.
TESTED_CONV_SHAPES_2_08 = frozenset({(1, 3, 1), (3, 1, 1), (1, 7, 1), (7, 1, 1)})

#: Group convolution: "< 1024 groups total" ("Caffe Support" page).
MAX_GROUPS = 1024

#: Field widths of the NCSDK 1.x stage descriptor [§1.1]: kernel sizes are
#: signed 8-bit, strides and pads unsigned 8-bit.
MAX_KERNEL = 127
MAX_STRIDE = 255
MAX_PAD = 255

#: Compiled graph file limit (TK1 FileIO.estimate_file_size) [§3].
MAX_GRAPH_BYTES = 320 * 1024 * 1024
#: Sum of intermediate ("work") buffers the compiler accepts (TK 1.12+) [§3].
MAX_WORK_BYTES = 100 * 1024 * 1024
#: Largest kernel the work-buffer over-allocation assumes (RADIX_MAX) [§1.1].
RADIX_MAX = 5
#: Scratch memory the firmware gives matrix multiplications (Error 25) [§3].
MATMUL_SCRATCH_BYTES = 112640
#: libmvnc 1.x: the host reads at most this many output elements [§1.1].
MAX_OUTPUT_ELEMENTS = 64 * 1024 * 1024

#: The toolkit's numbered errors (TK1 EnumDeclarations.ErrorTable) [§3].
ERRORS = {
    3: "Setup Error: Caffe Syntax Error",
    4: "Toolkit Error: Stage Type Not Supported",
    5: "Toolkit Error: Stage Details Not Supported",
    9: "Argument Error: Network weight cannot be found.",
    13: "Toolkit Error: Provided OutputNode/InputNode name does not exist or does not match "
        "with one contained in model file",
    17: "Toolkit Error: Internal Error: Could not build graph. Missing link",
    20: "Toolkit Error: Input Layer must be in an input_shape construct.",
    24: "Toolkit Error: >1 image inference not supported.",
    25: "Myriad Error",
    35: "Setup Error: Not enough resources on Myriad to process this network.",
    37: "Output layer's name must match its top",
}


def sdk_error(number: int, detail: str = "") -> str:
    text = ERRORS[number]
    if number == 37:
        return f"[Warning 37] {text}"
    return f"[Error {number}] {text}" + (f": {detail}" if detail else "")


#: What users usually do about common unsupported layer types.
WORKAROUNDS = {
    "DepthwiseConvolution": "it is a depthwise convolution: use type \"Convolution\" with "
                            "group equal to the number of channels (caffe2ncs fix --unsafe-fixes "
                            "does this)",
    "ConvolutionDepthwise": "it is a depthwise convolution: use type \"Convolution\" with "
                            "group equal to the number of channels (caffe2ncs fix --unsafe-fixes "
                            "does this)",
    "ShuffleChannel": "express the shuffle as Reshape + Permute + Reshape, or run it on the host",
    "Upsample": "use a Deconvolution with a fixed (bilinear or nearest) kernel and stride equal "
                "to the scale",
    "Interp": "use a Deconvolution with a fixed bilinear kernel for integer factors",
    "Axpy": "write it as Scale (with two bottoms) followed by Eltwise SUM",
    "Reorg": "run the reorg and the layers after it on the host (the NCSDK's TensorFlow path "
             "has it, its Caffe parser does not)",
    "Region": "stop the network before the region layer and decode boxes on the host",
    "YoloDetectionOutput": "stop the network before it and decode detections on the host",
    "Yolov3DetectionOutput": "stop the network before it and decode detections on the host",
    "ROIPooling": "two-stage detectors do not fit the NCSDK: run region proposals and ROI "
                  "pooling on the host",
    "Proposal": "two-stage detectors do not fit the NCSDK: run region proposals on the host",
    "BN": "use the standard BatchNorm + Scale layers (the fork's BN folds into them)",
    "Split": "remove it: reading the same blob from several layers needs no Split layer",
    "ReLU6": "use ReLU (and check the accuracy), or a Power/Eltwise construction",
    "AbsVal": "no NCSDK equivalent; run it on the host",
    "ArgMax": "take the argmax on the host from the output",
    "Parameter": "the documentation lists it, but neither of the SDK's Caffe parsers maps it; "
                 "fold the parameter into the layer that uses it",
    "MVN": "fold the normalisation into a Scale/Bias or run it on the host",
}
