"""Errors of the emulator's API besides the graph-file ones."""

from __future__ import annotations

from ...errors import UsageError


class InputShapeError(UsageError, ValueError):
    """An input tensor that does not fit the graph's input (wrong shape or type).
    A :class:`ValueError` for API callers, a usage error (exit 2) for the CLI."""
