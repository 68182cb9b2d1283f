"""Running graph files: the fp16 emulator and real Neural Compute Sticks.

* :mod:`caffe2ncs.runtime.usb` talks to real sticks over USB (pyusb): discovery,
  booting the NCSDK 1.x firmware and the 1.x host-device link.
"""
