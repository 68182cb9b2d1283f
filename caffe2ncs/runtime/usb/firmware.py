"""Finding and sanity-checking the stick's firmware file.

The NCSDK 1.x firmware ``MvNCAPI.mvcmd`` is a proprietary binary: caffe2ncs never
ships or downloads it.  The user points at the copy from their own NCSDK 1.x
installation with ``--firmware PATH`` or ``CAFFE2NCS_FIRMWARE=PATH`` (an NCSDK
``make install`` puts it at ``/usr/local/lib/mvnc/MvNCAPI.mvcmd``).

We cannot verify the image (its format is not public), so the checks here only
catch files that are certainly not a firmware image, before anything is sent
to a stick: missing, unreadable, empty or absurdly sized files, Git LFS
pointers, HTML pages, compiled graph files, and the NCSDK 2.x images (which
boot, but speak the 2.x XLink protocol that caffe2ncs does not implement).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ...errors import InputFileError, UsageError, unreadable
from . import constants as C


@dataclasses.dataclass(frozen=True)
class Firmware:
    path: Path
    data: bytes = dataclasses.field(repr=False)


def firmware_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The firmware path from the argument, else from ``CAFFE2NCS_FIRMWARE``."""
    if path is not None and str(path) != "":
        return Path(path)
    env = os.environ.get(C.FIRMWARE_ENV, "").strip()
    if env:
        return Path(env)
    raise UsageError(
        "no firmware for the stick: pass --firmware PATH or set "
        f"{C.FIRMWARE_ENV}=PATH, where PATH is the file {C.FIRMWARE_FILE_NAME} from your "
        f"NCSDK 1.x installation (usually {C.FIRMWARE_INSTALL_PATH}); caffe2ncs does not "
        "include or download it"
    )


def load_firmware(path: str | os.PathLike[str] | None = None) -> Firmware:
    """Read and check the firmware; raises :class:`InputFileError` naming the file."""
    p = firmware_path(path)
    if not p.exists():
        raise InputFileError(
            f"firmware file not found (it is {C.FIRMWARE_FILE_NAME} from an NCSDK 1.x "
            f"installation, usually {C.FIRMWARE_INSTALL_PATH})",
            path=p,
        )
    if p.is_dir():
        candidate = p / C.FIRMWARE_FILE_NAME
        hint = f"; did you mean {candidate}?" if candidate.is_file() else ""
        raise InputFileError(f"the firmware path is a directory{hint}", path=p)
    try:
        size = p.stat().st_size
        if size > C.FIRMWARE_MAX_SIZE:
            raise InputFileError(
                f"{size} bytes is too large for a stick firmware image "
                f"(expected {C.FIRMWARE_FILE_NAME}, under 1 MiB for NCSDK 1.x)",
                path=p,
            )
        data = p.read_bytes()
    except OSError as err:
        raise unreadable(err, p, "the firmware file") from None
    check_firmware(data, p)
    return Firmware(path=p, data=data)


def check_firmware(data: bytes, path: Path) -> None:
    """Reject what is certainly not the NCSDK 1.x Myriad 2 firmware."""
    name = path.name.lower()
    if "ma2480" in name:
        raise InputFileError(
            "this is the NCSDK 2.x firmware for the NCS2 (Myriad X); caffe2ncs drives "
            f"NCS (Myriad 2) sticks with the NCSDK 1.x firmware {C.FIRMWARE_FILE_NAME}",
            path=path,
        )
    if "ma2450" in name:
        raise InputFileError(
            "this is the NCSDK 2.x firmware, which speaks the 2.x XLink protocol that "
            f"caffe2ncs does not implement; use {C.FIRMWARE_FILE_NAME} from NCSDK 1.x",
            path=path,
        )
    if not data:
        raise InputFileError("the firmware file is empty", path=path)
    if data.startswith(b"version https://git-lfs"):
        raise InputFileError(
            "this is a Git LFS pointer, not the firmware; fetch the real file "
            "('git lfs pull') or take it from an NCSDK 1.x installation",
            path=path,
        )
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml")):
        raise InputFileError("this is an HTML/XML page, not the firmware image", path=path)
    if (
        len(data) > C.GRAPH_VERSION_OFFSET
        and data[: C.GRAPH_ZERO_PREFIX] == bytes(C.GRAPH_ZERO_PREFIX)
        and data[C.GRAPH_VERSION_OFFSET] == C.GRAPH_VERSION
    ):
        raise InputFileError(
            "this looks like a compiled graph file, not the stick firmware", path=path
        )
    if len(data) < C.FIRMWARE_MIN_SIZE:
        raise InputFileError(
            f"{len(data)} bytes is too small for a stick firmware image "
            f"(the NCSDK 1.x {C.FIRMWARE_FILE_NAME} is about 850 KiB); is the file truncated?",
            path=path,
        )
