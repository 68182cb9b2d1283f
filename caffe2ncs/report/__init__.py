"""Renderers for ``caffe2ncs check`` findings, one module per format.

Each renderer takes the list of :class:`~caffe2ncs.rules.runner.FileReport`
objects and writes to a text stream (or a rich console for ``full``).
"""

from __future__ import annotations

FORMATS = ("full", "concise", "json", "sarif", "github")


def relpath(path: str) -> str:
    """A path as shown to the user: relative to the working directory when it is
    below it, with forward slashes (stable across runs and machines)."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path.replace("\\", "/")
    if rel.startswith(".."):
        return path.replace("\\", "/")
    return rel.replace(os.sep, "/")
