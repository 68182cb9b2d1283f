"""The fp32 reference executor: runs the Caffe network itself, on the host,
with Caffe's own semantics (TEST phase), in numpy.

It is the independent "expected" side of ``caffe2ncs verify`` (as Caffe on
the host was for the SDK's ``mvNCCheck``): it reads the :class:`~caffe2ncs.model.Net`
and its weights, never a graph file, and shares no code with the lowering or
the fp16 emulator it judges.  See ``docs/reference.md``.

* :func:`run` - the final values of the network's outputs (or of chosen blobs,
  or of every blob);
* :func:`run_layers` - the same computation, one layer at a time, for debugging;
* :func:`supported_types` / :func:`check_supported` - what it can run.

One module per family of layer types: :mod:`.conv` (Convolution,
Deconvolution, InnerProduct, Embed), :mod:`.pooling`, :mod:`.activations`,
:mod:`.normalization` (BatchNorm, Scale, Bias, LRN, MVN, Softmax, Normalize),
:mod:`.blobs` (Concat, Slice, Eltwise, Reshape, Crop, Permute, … and the
common custom layers: Axpy, ShuffleChannel, Upsample, Interp, Reorg) and
:mod:`.ssd` (PriorBox, DetectionOutput).
"""

from __future__ import annotations

from .executor import check_supported, run, run_layers, supported_types

__all__ = ["check_supported", "run", "run_layers", "supported_types"]
