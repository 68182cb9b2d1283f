"""Command-line options shared by every command that runs on a stick.

Cheap to import (no pyusb, no numpy), for use in a sub-command's
``add_arguments``::

    from ..runtime.usb.options import add_stick_arguments, stick_kwargs

    def add_arguments(parser):
        add_stick_arguments(parser)

    def run(args, console):
        from ..runtime.usb import run_graph
        results = run_graph(graph_bytes, [x], **stick_kwargs(args))
"""

from __future__ import annotations

import argparse

from .constants import FIRMWARE_ENV, FIRMWARE_INSTALL_PATH


def add_stick_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Neural Compute Stick (USB)")
    group.add_argument(
        "--firmware",
        metavar="PATH",
        help=f"the stick's firmware MvNCAPI.mvcmd from your NCSDK 1.x installation "
        f"(usually {FIRMWARE_INSTALL_PATH}); default: ${FIRMWARE_ENV}",
    )
    group.add_argument(
        "--stick",
        metavar="PORT",
        help="USB port path of the stick to use, as 'caffe2ncs devices' lists it "
        "(default: the first free NCS)",
    )


def stick_kwargs(args: argparse.Namespace) -> dict:
    """The keyword arguments of :class:`~caffe2ncs.runtime.usb.Device` /
    :func:`~caffe2ncs.runtime.usb.run_graph` given by the options above."""
    return {"name": getattr(args, "stick", None), "firmware": getattr(args, "firmware", None)}
