"""Data-dependent BatchNorm statistics for synthetic weights.

Seeded random weights (:func:`caffe2ncs.model.weights.synthesize`) give every
BatchNorm statistics near the identity.  Real BatchNorm statistics normalise
what actually reaches the layer; with identity statistics, the activations of a
deep residual network grow block after block (to 1e12 in ResNet-152), every
softmax and sigmoid saturates and, on an fp16 device, values overflow to
infinity -- an artefact of the weights, not of the network.

:func:`calibrate_batchnorm` gives each BatchNorm the statistics of its real
input on a sample batch, the way a trained network's would be: the variance
is the mean square of the input (one value for the whole layer) and the random
means are scaled to match, so the activations stay of order 1.  One scale for
the whole layer rather than per channel: per channel, nearly dead channels
would be blown up to the size of the others (and their rounding errors with
them); subtracting the real batch mean would cancel most digits.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...errors import Caffe2NcsError
from ...model.net import Net
from .executor import run_layers, supported_types


def calibrate_batchnorm(net: Net, weights: Mapping[str, tuple],
                        inputs: Mapping[str, np.ndarray]) -> dict[str, tuple]:
    """``weights`` with each BatchNorm's statistics set from its input on ``inputs``.

    Layers run in float64, in order; each BatchNorm is calibrated just before it
    runs, so later layers see the calibrated result.  BatchNorm layers the
    reference cannot reach (after a layer type it cannot run, or in a network
    Caffe itself would refuse) keep their statistics.  Returns a new dict.
    """
    weights = dict(weights)
    if not any(layer.type == "BatchNorm" for layer in net.layers):
        return weights
    supported = supported_types()
    available, plan = set(inputs), []
    for layer in net.layers:  # the layers the reference can run
        if layer.type in supported and all(b in available for b in layer.bottoms):
            plan.append(layer)
            available.update(layer.tops)
    if not plan:
        return weights
    latest = {name: np.asarray(value, np.float64) for name, value in inputs.items()}

    def calibrate(layer) -> None:
        if layer.type != "BatchNorm" or layer.name not in weights:
            return
        x = latest[layer.bottoms[0]]
        square = float(np.mean(x * x)) or 1.0
        mean = np.asarray(weights[layer.name][0], np.float64)
        weights[layer.name] = ((mean * np.sqrt(square)).astype(np.float32),
                               np.full(mean.shape, square, np.float32), np.ones(1, np.float32))

    calibrate(plan[0])
    steps = run_layers(net, inputs, weights, dtype=np.float64,
                       outputs=[top for layer in plan for top in layer.tops])
    try:
        for i, (layer, tops) in enumerate(steps):  # the generator is lazy: weights
            assert layer is plan[i]              # changed here are the ones it uses
            latest.update(tops)
            if i + 1 < len(plan):
                calibrate(plan[i + 1])
    except Caffe2NcsError:
        pass  # a network Caffe itself would refuse: the rest keeps its statistics
    return weights
