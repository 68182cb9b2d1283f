"""caffe2ncs: take Caffe models to the Intel Movidius Neural Compute Stick.

The public Python API (imported lazily, so ``import caffe2ncs`` stays cheap):

* :func:`load` - read a prototxt (and optionally a caffemodel) into a :class:`Net`;
* :func:`check` - lint a prototxt (a path or its text) against the NCSDK's
  limits: ``check(path_or_text) -> list[Diagnostic]``;
* :func:`fix` - rewrite prototxt text so the NCSDK accepts it, with a minimal
  diff: ``fix(text) -> (new_text, applied_fixes)``;
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load": ("caffe2ncs.model", "load"),
    "loads": ("caffe2ncs.model", "loads"),
    "Net": ("caffe2ncs.model", "Net"),
    "Layer": ("caffe2ncs.model", "Layer"),
    "check": ("caffe2ncs.rules.runner", "check"),
    "fix": ("caffe2ncs.fixes.engine", "fix"),
    "Diagnostic": ("caffe2ncs.rules.base", "Diagnostic"),
    "Settings": ("caffe2ncs.rules.settings", "Settings"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'caffe2ncs' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
