"""Every number, size, name and timeout of the NCSDK 1.x USB protocol, in one place.

Each value is traced to the vendor's open-source host library, libmvnc 1.x
(``movidius/ncsdk``, Apache-2.0 from v1.12.01; files under ``api/src`` at commit
``949131b``, tag v1.12.01.01) or to the v2 sources where noted.  Short names used
below:

* ``common.h``         - ``api/src/common.h``
* ``USBLinkDefines.h`` - ``api/src/USBLinkDefines.h``
* ``usb_boot.c``       - ``api/src/usb_boot.c``
* ``usb_link_vsc.c``   - ``api/src/usb_link_vsc.c``
* ``mvnc_api.c``       - ``api/src/mvnc_api.c``
* ``mvnc.h``           - ``api/include/mvnc.h``
* ``97-usbboot.rules`` - ``api/src/97-usbboot.rules`` (udev rules)

Our own summary of these sources is ``shared/spec/ncsdk-reference.md`` section 6
(USB), section 5 (v1 API) and section 1.1 (graph header).  Nothing here was
measured on hardware.  Values that are *our* choices rather than the vendor's are
marked "(caffe2ncs)".
"""

from __future__ import annotations

import enum
import struct

# ---------------------------------------------------------------------------
# USB identities
# ---------------------------------------------------------------------------

#: Movidius (Intel) USB vendor id.  ``common.h`` ``DEFAULT_VID``.
VENDOR_ID = 0x03E7

#: Myriad 2 (NCS, "NCS1") boot ROM, i.e. an unbooted stick.
#: ``common.h`` ``DEFAULT_PID 0x2150 // Myriad2v2 ROM``; v2 ``usb_boot.h``
#: ``DEFAULT_UNBOOTPID_2150``.
PRODUCT_ID_MYRIAD2_ROM = 0x2150

#: Myriad X (NCS2) boot ROM.  v2 ``api/src/common/components/XLink/pc/usb_boot.h``
#: ``DEFAULT_UNBOOTPID_2485``.  Listed only: the NCSDK 1.x firmware is Myriad 2 only.
PRODUCT_ID_MYRIADX_ROM = 0x2485

#: Any stick after its firmware booted ("VSC mode").  ``common.h``
#: ``DEFAULT_OPEN_PID 0xf63b // Once opened in VSC mode, VID/PID change``.  Both
#: models use it, so the model cannot be told from the id once booted.
PRODUCT_ID_BOOTED = 0xF63B

#: Every product id we list, in the order of the udev rules (``97-usbboot.rules``).
PRODUCT_IDS = (PRODUCT_ID_MYRIAD2_ROM, PRODUCT_ID_MYRIADX_ROM, PRODUCT_ID_BOOTED)

#: Human names of the two models, by their unbooted product id (caffe2ncs wording).
MODEL_NAMES = {
    PRODUCT_ID_MYRIAD2_ROM: "NCS (Myriad 2)",
    PRODUCT_ID_MYRIADX_ROM: "NCS2 (Myriad X)",
}

# ---------------------------------------------------------------------------
# Booting (usb_boot.c)
# ---------------------------------------------------------------------------

#: The firmware file libmvnc 1.x loads, relative to the directory of libmvnc.so
#: (``mvnc_api.c`` ``load_fw_file``: ``"mvnc/MvNCAPI.mvcmd"``).
FIRMWARE_FILE_NAME = "MvNCAPI.mvcmd"

#: Where ``make install`` of NCSDK 1.x puts it (``api/src/Makefile`` ``basicinstall``:
#: ``cp mvnc/MvNCAPI.mvcmd $(INSTALLDIR)/lib/mvnc/`` with ``INSTALLDIR = /usr/local``).
FIRMWARE_INSTALL_PATH = "/usr/local/lib/mvnc/MvNCAPI.mvcmd"

#: Environment variable naming the firmware file (caffe2ncs).
FIRMWARE_ENV = "CAFFE2NCS_FIRMWARE"

#: Environment variable naming a pyusb backend factory, ``module:callable`` (caffe2ncs).
BACKEND_ENV = "CAFFE2NCS_PYUSB_BACKEND"

#: Environment variable changing the protocol's time limits (caffe2ncs), e.g.
#: ``result_s=60,link_transfer_ms=20000``: fields of ``timing.Timeouts``.
TIMEOUTS_ENV = "CAFFE2NCS_USB_TIMEOUTS"

#: ``usb_boot.c`` ``usb_open_device``: ``libusb_set_configuration(h, 1)``.
BOOT_CONFIGURATION = 1
#: ``usb_boot.c`` ``usb_open_device``: ``libusb_claim_interface(h, 0)``; the first
#: bulk OUT endpoint of ``config->interface->altsetting`` (interface 0, alt 0).
BOOT_INTERFACE = 0

#: ``usb_boot.c`` ``DEFAULT_WRITE_TIMEOUT 2000``: ms per firmware chunk.  The chunk
#: size is the endpoint's ``wMaxPacketSize`` (``bulk_chunk_len`` is overwritten in
#: ``usb_open_device``; the 1 MiB ``DEFAULT_CHUNK_SZ`` is never used).
BOOT_WRITE_TIMEOUT_MS = 2000

#: ``usb_boot.c`` ``DEFAULT_CONNECT_TIMEOUT 20 // in 100ms units``: how long
#: ``wait_findopen`` looks for the unbooted stick, polling every 100 ms after an
#: initial ``usleep(100000)``.
BOOT_FIND_TIMEOUT_S = 20 * 0.1
BOOT_FIND_POLL_S = 0.1
BOOT_FIND_INITIAL_DELAY_S = 0.1

#: ``mvnc_api.c`` ``STATUS_WAIT_TIMEOUT 15`` (seconds): ``mvncOpenDevice`` waits this
#: long for the booted stick (03e7:f63b) to appear and answer ``MYRIAD_WAITING``,
#: retrying every 10 ms (``usleep(10000)``).
REENUMERATION_TIMEOUT_S = 15.0
REENUMERATION_POLL_S = 0.01
#: (caffe2ncs) libmvnc takes *any* free booted stick whenever the one it booted is
#: not back at its port path yet.  With two programs booting two sticks, that can
#: take the other program's stick in the moment between its boot and its claim;
#: so we only look at other ports once our stick has been missing this long
#: (a stick normally re-appears within a couple of seconds).
REENUMERATION_OTHER_PORTS_AFTER_S = 5.0

#: ``usb_link_vsc.c`` ``usblink_resetall``: after sending RESET to stale booted
#: sticks, wait ``ITERATIONS 50`` x ``SLEEP_MS 100`` for them to come back as 2150.
RESET_ALL_POLL_S = 0.1
RESET_ALL_ITERATIONS = 50

#: ``mvnc_api.c`` ``mvncCloseDevice``: ``usleep(500000)`` after the RESET.
CLOSE_SETTLE_S = 0.5

# ---------------------------------------------------------------------------
# The host <-> device link (usb_link_vsc.c, USBLinkDefines.h)
# ---------------------------------------------------------------------------

#: ``usb_link_vsc.c`` ``usblink_open``: ``libusb_claim_interface(h, 0)`` (no
#: set_configuration on the booted stick).
LINK_INTERFACE = 0
#: ``usb_link_vsc.c`` ``USB_ENDPOINT_OUT 0x01`` / ``USB_ENDPOINT_IN 0x81``.
ENDPOINT_OUT = 0x01
ENDPOINT_IN = 0x81
#: ``usb_link_vsc.c`` ``USB_TIMEOUT 10000`` (ms), every bulk transfer of the link.
LINK_TIMEOUT_MS = 10000
#: ``usb_link_vsc.c`` ``USB_MAX_PACKET_SIZE 1024 * 1024 * 10``: ``usb_write`` and
#: ``usb_read`` split every transfer into pieces of at most this many bytes.
MAX_TRANSFER_SIZE = 10 * 1024 * 1024

#: ``USBLinkDefines.h`` ``MAX_NAME_LENGTH 52``.
HEADER_NAME_SIZE = 52
#: ``USBLinkDefines.h`` ``usbHeader_t``: ``uint8 cmd; uint8 hostready;
#: uint16 reserved; uint32 dataLength; uint32 offset; char name[52]`` - 64 bytes,
#: little-endian on every host libmvnc ran on (x86, ARM).
HEADER_STRUCT = struct.Struct("<BBHII52s")
HEADER_SIZE = HEADER_STRUCT.size  # 64

#: ``usb_link_vsc.c`` ``usblink_setdata``/``usblink_getdata``: after the header the
#: device answers a ``uint32 operation_permit``, which must be ``0xABCD``.
PERMIT_OK = 0xABCD
PERMIT_STRUCT = struct.Struct("<I")
#: ``usblink_getmyriadstatus`` reads ``sizeof(myriadStatus_t)`` = 4 bytes.
STATUS_STRUCT = struct.Struct("<I")


class Command(enum.IntEnum):
    """``USBLinkDefines.h`` ``hostcommands_t``."""

    GET_MYRIAD_STATUS = 0
    RESET_REQUEST = 1
    HOST_SET_DATA = 2
    HOST_GET_DATA = 3


class MyriadStatus(enum.IntEnum):
    """``USBLinkDefines.h`` ``myriadStatus_t``."""

    NOT_INIT = 0
    INITIALIZED = 0x11
    WAITING = 0x22
    RUNNING = 0x33
    FINISHED = 0x44
    PENDING = 0x55


# Named buffers (mvnc_api.c) ------------------------------------------------

#: The graph file, sent by ``mvncAllocateGraph`` with hostready 0.
BUFFER_BLOB = "blobFile"
#: Debug text, thermal data, throttle level and per-stage times; allocated on the
#: device by sending ``AUX_BUFFER_HEADER_SIZE + 4 * nstages`` zero bytes, read back
#: after each result (``mvncGetResult``).
BUFFER_AUX = "auxBuffer"
#: 10 x int32 run configuration, sent before the first ``mvncLoadTensor``
#: (``send_opt_data``) and by ``get_optimisation_list``.
BUFFER_CONFIG = "config"
#: The firmware's list of optimised kernels (``get_optimisation_list``).
BUFFER_OPTIMISATION_LIST = "optimizationList"
#: The two input slots used alternately (``g->input_idx ? "input2" : "input1"``).
BUFFER_INPUTS = ("input1", "input2")
#: The fp16 output, ``2 * noutputs`` bytes.
BUFFER_OUTPUT = "output"

#: ``mvnc_api.c`` ``DEBUG_BUFFER_SIZE 120``: NUL-terminated text at auxBuffer[0:120];
#: non-empty means ``MVNC_MYRIAD_ERROR``.
DEBUG_BUFFER_SIZE = 120
#: ``mvnc_api.c`` ``THERMAL_BUFFER_SIZE 100``: 25 float32 at auxBuffer[120:220].
THERMAL_BUFFER_SIZE = 100
#: ``sizeof(int)`` throttle level at auxBuffer[220:224] (``throttle_happened``).
THROTTLE_SIZE = 4
#: ``mvncAllocateGraph``: ``calloc(1, 224 + nstages * sizeof(float))``; the read in
#: ``mvncGetResult`` is ``120 + 100 + 4 + 4 * nstages`` - the same 224 + 4n bytes.
AUX_BUFFER_HEADER_SIZE = DEBUG_BUFFER_SIZE + THERMAL_BUFFER_SIZE + THROTTLE_SIZE  # 224
#: Per-stage time: one float32 (ms) per stage, after the 224 header bytes.
STAGE_TIME_SIZE = 4

#: ``send_opt_data``: ``int config[10]`` = ``[1 version, 0 query disable,
#: iterations, temp_lim_upper, temp_lim_lower, backoff_time_normal,
#: backoff_time_high, backoff_time_critical, temperature_debug, network_throttle]``.
CONFIG_INTS = 10
CONFIG_STRUCT = struct.Struct(f"<{CONFIG_INTS}i")
CONFIG_VERSION = 1
#: ``get_optimisation_list``: ``config[1] = 1`` asks for the optimisation list.
CONFIG_QUERY_OPTIMISATIONS = 1

#: ``mvnc_api.c`` ``MAX_OPTIMISATIONS 40``, ``OPTIMISATION_NAME_LEN 50``; each name
#: ends at a ``'~'``.
MAX_OPTIMISATIONS = 40
OPTIMISATION_NAME_LEN = 50
OPTIMISATION_LIST_SIZE = MAX_OPTIMISATIONS * OPTIMISATION_NAME_LEN
OPTIMISATION_TERMINATOR = b"~"

#: ``mvncAllocateGraph``: waits up to 10 s (``time_in_seconds() + 10``) for
#: ``MYRIAD_WAITING`` before sending the graph, polling every 10 ms.
ALLOCATE_STATUS_TIMEOUT_S = 10.0
STATUS_POLL_S = 0.01

#: ``mvncGetResult``: retries reading "output" for ``STATUS_WAIT_TIMEOUT`` (15 s),
#: every 1 ms (``usleep(1000)``); ``get_optimisation_list`` waits the same 15 s.
RESULT_TIMEOUT_S = 15.0
RESULT_POLL_S = 0.001

#: ``mvnc.h`` ``MVNC_MAX_NAME_SIZE 28``: device names are port paths like "1.2".
MAX_DEVICE_NAME_SIZE = 28

# Device option defaults (mvnc_api.c allocate_device) and graph defaults -----

DEFAULT_TEMP_LIM_UPPER = 95.0
DEFAULT_TEMP_LIM_LOWER = 85.0
DEFAULT_BACKOFF_TIME_NORMAL = 0
DEFAULT_BACKOFF_TIME_HIGH = 100
DEFAULT_BACKOFF_TIME_CRITICAL = 10000
DEFAULT_TEMPERATURE_DEBUG = 0
#: ``mvncAllocateGraph``: ``g->iterations = 1; g->network_throttle = 1``.
DEFAULT_ITERATIONS = 1
DEFAULT_NETWORK_THROTTLE = 1

# libusb error codes, as pyusb's libusb1 backend reports them in
# ``USBError.backend_error_code`` (libusb.h ``enum libusb_error``).
LIBUSB_ERROR_ACCESS = -3
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_BUSY = -6

# ---------------------------------------------------------------------------
# What the host reads from a 1.x graph file (mvnc_api.c mvncAllocateGraph)
# ---------------------------------------------------------------------------

GRAPH_HEADER_LENGTH = 264
GRAPH_STAGE_LENGTH = 227
GRAPH_VERSION_OFFSET = 36
GRAPH_VERSION = 2
#: Read as 16 bits: ``graph[240] + (graph[241] << 8)``.
GRAPH_N_STAGES_OFFSET = 240
#: ``N_OUTPUTS_OFFSET (HEADER_LENGTH + 136)``: outputDimX, outputDimY of a stage.
GRAPH_N_OUTPUTS_OFFSET = GRAPH_HEADER_LENGTH + 136
#: ``X_OUT_STRIDE_OFFSET (HEADER_LENGTH + 172)``: outputStrideX (bytes) of a stage.
GRAPH_X_OUT_STRIDE_OFFSET = GRAPH_HEADER_LENGTH + 172
#: ``graphFileLength > 512 * 1024 * 1024`` -> ``MVNC_UNSUPPORTED_GRAPH_FILE``.
GRAPH_MAX_LENGTH = 512 * 1024 * 1024
#: ``if (noutputs > 64 * 1024 * 1024)`` -> ``MVNC_UNSUPPORTED_GRAPH_FILE``.
GRAPH_MAX_OUTPUTS = 64 * 1024 * 1024
#: NCSDK 2.x graphs ("blob 2.3") carry this magic at offset 34 (reference section 1.2);
#: only used to say "this is a 2.x graph" in the error.
GRAPH_V2_MAGIC = 8708
GRAPH_V2_MAGIC_OFFSET = 34
#: A 1.x graph starts with 4 x uint64 zero (reference section 1.1, "VCS_Fix");
#: only used to say "this is a graph, not firmware".
GRAPH_ZERO_PREFIX = 32

# ---------------------------------------------------------------------------
# Firmware plausibility (caffe2ncs)
# ---------------------------------------------------------------------------

#: The NCSDK 1.x ``MvNCAPI.mvcmd`` is 865,724 bytes and the 2.x Myriad 2 image
#: 1,375,996 bytes (reference section 0).  Files far outside this range are not a
#: firmware image (an empty file, a Git LFS pointer, an HTML error page, a graph).
FIRMWARE_MIN_SIZE = 64 * 1024
FIRMWARE_MAX_SIZE = 32 * 1024 * 1024
