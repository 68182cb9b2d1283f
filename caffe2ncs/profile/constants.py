"""Every constant of the NCS1 (Myriad 2) cost model, with where it comes from.

Two kinds of numbers live here:

* **Hardware facts** (clock, vector width, SHAVE count, DRAM peak): from public
  descriptions of the chip, each with its source.  They set the *units* of the
  model (peak FLOP/s, peak bytes/s) so that the calibrated factors read as
  efficiencies between 0 and 1.
* **Calibrated factors** (per-stage overhead, two convolution efficiencies, a
  DRAM efficiency): fitted on **one** data set only, the vendor profiler's
  per-layer table for BVLC GoogLeNet on an NCS1 with 12 SHAVEs
  (``shared/spec/googlenet-profile-ncs1.tsv``, from the NCSDK 1.x
  ``docs/tools/profile.md``), so that every other network is an honest test of
  the model.  The procedure is :mod:`caffe2ncs.profile.calibrate` (weighted
  linear least squares, see there and ``docs/profile.md``); re-running it
  reproduces the values below (``tests/test_profile_calibration.py`` checks
  that), and ``python -m caffe2ncs.profile.calibrate`` prints them.

Factors for op classes GoogLeNet does not contain (depthwise convolution,
deconvolution, eltwise, ...) cannot be calibrated on it; they are *priors*
stated below with the reasoning, and the out-of-sample comparisons in
``docs/profile.md`` show how far they carry.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- hardware facts

#: SHAVE clock, Hz.  Myriad 2 "has been designed to operate at 0.9V for nominal
#: 600MHz operation" (Barry et al., "Always-on Vision Processing Unit for Mobile
#: Applications", IEEE Micro 35(2), 2015, abstract).
SHAVE_CLOCK_HZ = 600e6

#: fp16 lanes of one SHAVE's 128-bit vector unit (VAU): 128 / 16.  "128-bit
#: vector arithmetic ... 16/32-bit floating point" (the SHAVE descriptions
#: in the same paper and WikiChip's SHAVE pages).
FP16_LANES = 8

#: FLOPs per lane per cycle: one multiply and one add (a multiply-accumulate
#: counts 2 FLOPs, which is also how the vendor profiler counts a convolution:
#: ``2*K*Ho*Wo*Cin*kh*kw``).
FLOPS_PER_LANE_CYCLE = 2

#: Peak fp16 FLOP/s of one SHAVE: 600 MHz x 8 lanes x 2 = 9.6 GFLOP/s.  With 12
#: SHAVEs that is 115.2 GFLOP/s, in line with Intel's "over 100 GFLOPs" for the
#: first Neural Compute Stick.  (The chip-level "1000 GFLOPS" of the paper counts
#: the fixed-function image accelerators, which neural networks do not use:
#: ncsdk-reference section 2, "Myriad 2 (NCS1) has no CNN hardware engine".)
PEAK_FLOPS_PER_SHAVE = SHAVE_CLOCK_HZ * FP16_LANES * FLOPS_PER_LANE_CYCLE

#: SHAVEs on a Myriad 2 and the NCSDK's default ``-s`` (the published GoogLeNet
#: table was measured with 12).
MAX_SHAVES = 12
DEFAULT_SHAVES = 12

#: Nominal DRAM bandwidth, bytes/s: a 32-bit interface at 533 MHz double data
#: rate = 4 x 2 x 533e6 = 4.264 GB/s (the Myriad 2 paper's "32-bit wide ... LP
#: DDR2 DRAM operating at 533MHz"; the NCS1 carries 4 Gbit LPDDR3, whose exact
#: clock on the stick is not published).  Only the product with
#: :data:`DRAM_EFFICIENCY` matters to the predictions; this number just makes
#: that factor readable as a fraction of a plausible peak.
DRAM_PEAK_BYTES_PER_S = 4 * 2 * 533e6

#: Bytes per activation/weight element on the device (fp16 everywhere).
ELEMENT_BYTES = 2

# --------------------------------------------------------------------------- the model's form

#: Fraction of the shorter of (compute, memory) time hidden under the longer one.
#: 1.0 is a pure roofline (``max``), 0.0 adds them (tiles are DMA'd in, computed,
#: DMA'd out, without overlap).  Not a free parameter of the least squares: the
#: calibration script fits the other factors for 0, 0.25, 0.5, 0.75 and 1 and
#: keeps the overlap with the smallest weighted residual.  On GoogLeNet that is
#: 0.0 (sum of squared relative errors 2.66 at 0, rising steadily to 3.05 at 1).
COMPUTE_MEMORY_OVERLAP = 0.0

# ---------------------------------------------------------------- calibrated on GoogLeNet

#: Fixed cost of every stage, ms: the LEON scheduling the stage, the SHAVEs'
#: start-up and synchronisation, DMA descriptor set-up.  Calibrated.
#: (GoogLeNet's smallest stages -- a 1000-element softmax, 0.18 ms; a 7x7x832
#: max-pool, 0.14 ms -- bound it from above.)
STAGE_OVERHEAD_MS = 0.1262

#: Achieved fraction of peak FLOP/s for 1x1 convolutions (a plain matrix
#: multiply over the channels).  Calibrated: 64.3 GFLOP/s with 12 SHAVEs.
CONV1X1_EFFICIENCY = 0.5580

#: Achieved fraction of peak FLOP/s for convolutions with a larger kernel (3x3,
#: 5x5, 7x7; the im2col-style kernels).  Calibrated: 46.8 GFLOP/s with 12 SHAVEs.
CONV_EFFICIENCY = 0.4061

#: Achieved fraction of :data:`DRAM_PEAK_BYTES_PER_S` when a stage streams its
#: input, weights and output through DRAM (strided DMA of HWC tiles into the
#: on-chip CMX memory).  Calibrated: 2.48 GB/s.  Pooling and LRN are almost
#: pure streaming and sit on this line in the GoogLeNet table (1.3-1.9 GB/s
#: including their overhead).
DRAM_EFFICIENCY = 0.5820

# -------------------------------------------------------------- priors (not in GoogLeNet)

#: Depthwise convolution: no calibration data.  Prior: the efficiency of the
#: spatial convolution kernels.  Depthwise stages do ~9 MACs per element, so
#: the DRAM and overhead terms dominate them and this factor matters little.
DEPTHWISE_EFFICIENCY = CONV_EFFICIENCY

#: Deconvolution: prior, the spatial convolution's efficiency (the vendor
#: implements it as a convolution over a zero-stuffed input).
DECONV_EFFICIENCY = CONV_EFFICIENCY

#: Fully connected: a matrix-vector product; prior, the 1x1 convolution's
#: efficiency.  GoogLeNet's only FC (1024 -> 1000) is DRAM-bound on its 2 MB of
#: weights, so the table does not pin this factor down.
FC_EFFICIENCY = CONV1X1_EFFICIENCY

#: Every other op (pooling, LRN, softmax, ReLU, eltwise, scale, permute, ...)
#: is modelled as streaming: DRAM time plus the stage overhead, no compute
#: term.  Their arithmetic is a few operations per element (<= 9 for a 3x3
#: pool, local_size for LRN), under 10 % of the streaming time at peak.
#: Detection output (NMS, sorting on the LEON) and prior-box generation are
#: the exceptions this cannot capture: see "known limits" in docs/profile.md.
