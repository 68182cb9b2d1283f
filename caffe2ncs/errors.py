"""The exceptions caffe2ncs raises for bad input, and the exit codes they map to.

Every problem with something the user gave us (a prototxt, a caffemodel, a graph
file, an argument) is raised as a subclass of :class:`Caffe2NcsError`.  The CLI
catches exactly these and prints ``file:line:column: error: message`` with no
traceback; anything else escaping is a bug in caffe2ncs, reported as such.

Exit codes (shared by every command, in the convention of ruff, ESLint and
pre-commit):

* ``0`` success, nothing to report;
* ``1`` the command worked and found something: error-level findings (``check``),
  files changed (``fix``), a failed comparison (``verify``);
* ``2`` usage errors and unreadable or malformed input (this module);
* ``3`` a device or runtime failure (a stick that stopped answering, a
  firmware error);
* ``130`` interrupted by the user.
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_DEVICE = 3
EXIT_INTERRUPTED = 130


class Caffe2NcsError(Exception):
    """A problem with the user's input, reported without a traceback.

    ``path`` names the file, ``line`` and ``column`` (1-based) the place in it
    where there is one.  ``str(err)`` is the complete one-line message.
    """

    exit_code = EXIT_INPUT
    kind = "error"

    def __init__(
        self,
        message: str,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.column = column
        super().__init__(self.format())

    def __reduce__(self):
        # Rebuild from the parts (the default would pass the formatted message
        # back in as ``message``), so errors survive process pools.
        return (_rebuild, (type(self), self.message, self.path, self.line, self.column))

    def location(self) -> str:
        if self.path is None:
            return ""
        loc = self.path
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def format(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message

    def with_path(self, path: str | os.PathLike[str]) -> Caffe2NcsError:
        """Return the same error, naming ``path`` if it did not name a file yet."""
        if self.path is None:
            self.path = os.fspath(path)
            self.args = (self.format(),)
        return self


def _rebuild(cls, message, path, line, column):
    return cls(message, path, line, column)


class UsageError(Caffe2NcsError):
    """Bad command-line arguments or option values."""


class InputFileError(Caffe2NcsError):
    """A file that cannot be read at all (missing, a directory, unreadable, too big)."""


def unreadable(err: OSError, path: str | os.PathLike[str], what: str = "") -> InputFileError:
    """The :class:`InputFileError` for ``err``, raised opening or reading the
    user's file ``path`` (``what`` names the kind of file in the message)."""
    if isinstance(err, FileNotFoundError):
        return InputFileError("no such file", path)
    if isinstance(err, IsADirectoryError):
        return InputFileError("is a directory, not a file", path)
    reason = "permission denied" if isinstance(err, PermissionError) else err.strerror or err
    return InputFileError(f"cannot read{' ' + what if what else ''}: {reason}", path)


class PrototxtSyntaxError(Caffe2NcsError):
    """Malformed protobuf text: unbalanced braces, bad numbers, wrong field types."""


class CaffemodelError(Caffe2NcsError):
    """A .caffemodel that is truncated, corrupt or does not match its prototxt."""


class NetGraphError(Caffe2NcsError):
    """A network whose layer graph is broken: missing bottoms, cycles, duplicate
    tops, impossible or absurd shapes."""


class GraphFileError(Caffe2NcsError):
    """An NCSDK graph file ("blob") that is truncated, tampered with or of an
    unknown version."""


class UnsupportedNetworkError(Caffe2NcsError):
    """A network that ``build`` cannot lower (it names the layers and rules)."""


class ConfigError(Caffe2NcsError):
    """A bad ``[tool.caffe2ncs]`` table or suppression comment."""


class DeviceError(Caffe2NcsError):
    """A Neural Compute Stick that is missing, busy, stopped answering, or
    reported an error of its own."""

    exit_code = EXIT_DEVICE
