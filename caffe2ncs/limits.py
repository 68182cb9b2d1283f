"""Every resource limit caffe2ncs puts on its input, in one place.

Model files come from strangers and the tool runs unattended in CI, so no
input may make it read without bound, allocate without bound or run without
bound.  Each limit is a named constant here; the modules that enforce one
import it from here, and exceeding one is a :class:`~caffe2ncs.errors.Caffe2NcsError`
naming the file (exit code 2) with a message that says which limit and what
the file asked for.  ``docs/robustness.md`` lists them for users.

Sizes of files are checked before anything is read (``os.fstat``).  The time
limit is a deadline per file: :func:`deadline` starts one (the CLI does, per
file for ``check``/``fix`` and per command otherwise) and :func:`check_deadline`
is called between the steps of loading, checking, fixing, lowering and
emulating and in their loops over layers, rules, rounds and stages.  No single
step between two checks can run long, because every step is linear (or
bounded) in the size of what the other limits allow.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import Iterator

from .errors import Caffe2NcsError

# -- file sizes -------------------------------------------------------------------

#: A prototxt larger than this is refused before reading (the largest real
#: deploy file we know of, Inception-v4's, is 115 KB).
MAX_PROTOTXT_BYTES = 64 * 1024 * 1024

#: Caffe (like OpenCV) refuses binary protos over 2 GiB (protobuf's own limit).
MAX_CAFFEMODEL_BYTES = 2**31 - 1

#: NCS1 has 512 MiB of DDR, and libmvnc 1.x refuses graphs above 512 MiB.
MAX_GRAPH_FILE_BYTES = 512 * 1024 * 1024

#: Input files of ``run``/``verify``/``profile`` (images, ``.npy`` tensors).
MAX_INPUT_FILE_BYTES = 1024 * 1024 * 1024

#: Images given to ``run``/``verify``/``profile`` (width x height).
MAX_IMAGE_PIXELS = 1 << 28

# -- structure --------------------------------------------------------------------

#: Messages nested deeper than this in a prototxt are refused (Caffe's deepest
#: real nesting is about 5; the parser would otherwise recurse without bound).
MAX_NESTING_DEPTH = 100

#: Layers in one network (prototxt or caffemodel).  ResNet-152 has 670, the
#: largest corpus network under 1,000.
MAX_LAYERS = 100_000

#: Caffe's limit on the elements of one blob (``Blob::Reshape``: INT_MAX).
MAX_BLOB_ELEMENTS = 2**31 - 1

#: Caffe's limit on the axes of one blob (``kMaxBlobAxes``).
MAX_BLOB_AXES = 32

# -- memory of the emulated device ------------------------------------------------

#: The stick's memory (NCS1: 512 MiB of LPDDR3): a graph whose buffers reach
#: further than this cannot run on it, and the emulator refuses it.
MAX_DEVICE_MEMORY_BYTES = 512 * 1024 * 1024

#: The largest temporary array the emulator makes for one stage (a padded
#: input, an im2col block, an accumulator).
MAX_EMULATOR_ARRAY_BYTES = 256 * 1024 * 1024

#: Taps of one convolution/pooling window the emulator loops over (a global
#: pooling over 256x256 is 65,536; real kernels are at most 11x11).
MAX_KERNEL_TAPS = 1 << 16

#: Multiply-accumulates of one emulated convolution stage (VGG-16's largest
#: has 1.85e9; this is 18 times that).
MAX_EMULATOR_MACS = 1 << 35

# -- time -------------------------------------------------------------------------

#: Seconds of work on one file (``check``/``fix``: per file; the other commands:
#: the whole command).  Building VGG-16 with its 528 MB caffemodel takes ~10 s.
MAX_SECONDS_PER_FILE = 300.0


class LimitError(Caffe2NcsError):
    """An input over one of the limits of :mod:`caffe2ncs.limits`."""


_DEADLINE: contextvars.ContextVar[tuple[float, str | None, float] | None] = \
    contextvars.ContextVar("caffe2ncs_deadline", default=None)


@contextlib.contextmanager
def deadline(path: str | os.PathLike[str] | None = None,
             seconds: float | None = None) -> Iterator[None]:
    """Limit the work inside the ``with`` block to ``seconds`` (default
    :data:`MAX_SECONDS_PER_FILE`, read when the block starts); ``path`` names
    the file in the error.  An enclosing deadline that ends earlier stays in
    force."""
    limit = MAX_SECONDS_PER_FILE if seconds is None else seconds
    end = time.monotonic() + limit
    outer = _DEADLINE.get()
    if outer is not None and outer[0] <= end:
        yield
        return
    token = _DEADLINE.set((end, os.fspath(path) if path is not None else None, limit))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline(what: str | None = None) -> None:
    """Raise :class:`LimitError` when the current deadline has passed."""
    current = _DEADLINE.get()
    if current is None or time.monotonic() < current[0]:
        return
    end, path, limit = current
    doing = f" while {what}" if what else ""
    raise LimitError(f"gave up after {limit:g} s{doing}: caffe2ncs refuses files that take "
                     f"longer than {limit:g} s to process (limits.MAX_SECONDS_PER_FILE)", path)


def check_elements(shape, itemsize: int, what: str, limit: int = MAX_EMULATOR_ARRAY_BYTES,
                   error=None) -> None:
    """Raise when an array of ``shape`` and ``itemsize`` would exceed ``limit`` bytes."""
    n = itemsize
    for d in shape:
        n *= max(int(d), 0)
    if n > limit:
        cls = error or LimitError
        raise cls(f"{what} would need a {'x'.join(str(int(d)) for d in shape)} array "
                  f"({n / 2**20:.0f} MiB), more than the limit of {limit // 2**20} MiB")
