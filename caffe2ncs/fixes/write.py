"""Reading and writing the user's files without ever losing them.

A rewrite goes to a temporary file in the same folder, is flushed and synced
to disk, given the original's permissions, and only then renamed over the
original (an atomic replacement on POSIX and Windows), so an interruption at
any point leaves either the old file or the new one, never a mix.  A file the
user made read-only is not replaced behind their back.
"""

from __future__ import annotations

import os
import stat
import tempfile

from ..errors import InputFileError
from ..model.source import decode, encode, read_text_bytes

BOM = b"\xef\xbb\xbf"


def read_for_rewrite(path: str) -> tuple[str, bool]:
    """The file's text (as the loader sees it) and whether it starts with a BOM."""
    data = read_text_bytes(path)
    return decode(data), data.startswith(BOM)


def write_atomically(path: str, text: str, bom: bool = False, *, _before_replace=None) -> None:
    """Replace ``path`` with ``text`` atomically, keeping its permissions.

    A symbolic link is followed: the file it points to is replaced, and the
    link stays a link.  A file without any write permission bit counts as
    read-only even for root (who may write anything), as editors treat it.

    ``_before_replace`` is a test hook called after the temporary file is
    complete and synced, just before the rename."""
    data = (BOM if bom else b"") + encode(text)
    shown = path
    path = os.path.realpath(path)
    folder = os.path.dirname(path) or "."
    try:
        st = os.stat(path)
        mode = stat.S_IMODE(st.st_mode)
        exists = True
    except FileNotFoundError:
        st, mode, exists = None, 0o666 & ~_umask(), False
    except OSError as err:
        raise InputFileError(f"cannot write: {err.strerror or err}", shown) from None
    if exists and (not os.access(path, os.W_OK) or not mode & 0o222):
        raise InputFileError("the file is read-only; not rewriting it", shown)
    if not os.path.isdir(folder):
        raise InputFileError(f"cannot write in {folder}: no such folder", shown)
    if not exists and not os.access(folder, os.W_OK | os.X_OK):
        raise InputFileError(f"cannot write in {folder}: permission denied", shown)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".caffe2ncs-tmp",
                                   dir=folder)
    except OSError as err:
        raise InputFileError(f"cannot write in {folder}: {err.strerror or err}", shown) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if st is not None and hasattr(os, "getuid") and \
                (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
            try:  # keep the owner when root rewrites someone's file
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass
        if _before_replace is not None:
            _before_replace(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise InputFileError(f"cannot write: {err.strerror or err}", shown) from None
        raise
    _sync_folder(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sync_folder(folder: str) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
