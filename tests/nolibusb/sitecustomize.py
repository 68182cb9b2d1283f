"""Put this folder on ``PYTHONPATH`` and Python behaves as on a machine without
libusb: the shared-library lookup pyusb uses (``ctypes.util.find_library``)
finds no USB library, and the ``libusb-package`` wheel is not installed.

That is the lowest layer there is to simulate "no libusb" without changing the
machine: pyusb, caffe2ncs's choice of backend and the commands run unchanged
(``tests/test_devices.py`` uses it for ``caffe2ncs devices`` in a subprocess).
"""

import ctypes.util
import importlib.abc
import sys

_find_library = ctypes.util.find_library


def _find_library_without_usb(name):
    # libusb-1.0, usb-1.0, usb-0.1, libusb0, openusb: none is installed here.
    if "usb" in name.lower():
        return None
    return _find_library(name)


class _NotInstalled(importlib.abc.MetaPathFinder):
    """``import libusb_package`` fails as it does when the wheel is absent."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] == "libusb_package":
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


ctypes.util.find_library = _find_library_without_usb
sys.meta_path.insert(0, _NotInstalled())
