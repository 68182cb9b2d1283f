"""Loading Caffe networks: text and binary, legacy upgrades, source positions,
graph checks and shape inference.  See :func:`load`."""

from .loader import load, loads
from .net import InputForm, InputSpec, Layer, LayerShapes, LayerSpelling, Net, Problem, Shape

__all__ = [
    "InputForm", "InputSpec", "Layer", "LayerShapes", "LayerSpelling", "Net", "Problem", "Shape",
    "load", "loads",
]
