"""The two numbers the host needs from a 1.x graph file, read as libmvnc does.

``mvncAllocateGraph`` (``mvnc_api.c`` 1.x) checks the length (at least one
header and one stage, at most 512 MiB) and byte 36 (graph version 2), takes the
stage count from offset 240 (16 bits) and the output size from the *last*
227-byte stage descriptor: ``outputDimX * outputDimY * outputStrideX / 2`` fp16
values.  Nothing else of the file is interpreted on the host: the firmware
parses the rest.  (The full reader of the format lives elsewhere in caffe2ncs.)
"""

from __future__ import annotations

import dataclasses
import struct

from ...errors import GraphFileError
from . import constants as C

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


@dataclasses.dataclass(frozen=True)
class GraphInfo:
    nstages: int
    #: Number of fp16 output values; the output is ``2 * noutputs`` bytes.
    noutputs: int

    @property
    def output_size(self) -> int:
        return 2 * self.noutputs

    @property
    def aux_size(self) -> int:
        """Bytes of the auxBuffer: 224 + 4 per stage."""
        return C.AUX_BUFFER_HEADER_SIZE + C.STAGE_TIME_SIZE * self.nstages


def graph_info(graph: bytes) -> GraphInfo:
    """Check a graph file as libmvnc 1.x does; raises :class:`GraphFileError`."""
    n = len(graph)
    if n >= C.GRAPH_V2_MAGIC_OFFSET + 4 and graph[C.GRAPH_VERSION_OFFSET] != C.GRAPH_VERSION:
        (magic,) = _U32.unpack_from(graph, C.GRAPH_V2_MAGIC_OFFSET)
        if magic == C.GRAPH_V2_MAGIC:
            raise GraphFileError(
                "this is an NCSDK 2.x graph file (blob 2.x); the stick runs the NCSDK 1.x "
                "firmware here, which needs a graph compiled for NCSDK 1.x"
            )
    if n < C.GRAPH_HEADER_LENGTH + C.GRAPH_STAGE_LENGTH:
        raise GraphFileError(
            f"graph file too short: {n} bytes, a 1.x graph has at least "
            f"{C.GRAPH_HEADER_LENGTH + C.GRAPH_STAGE_LENGTH} (header and one stage)"
        )
    if n > C.GRAPH_MAX_LENGTH:
        raise GraphFileError(f"graph file too large: {n} bytes, the stick takes at most 512 MiB")
    if graph[C.GRAPH_VERSION_OFFSET] != C.GRAPH_VERSION:
        raise GraphFileError(
            f"unsupported graph version {graph[C.GRAPH_VERSION_OFFSET]} at byte "
            f"{C.GRAPH_VERSION_OFFSET} (NCSDK 1.x graphs have {C.GRAPH_VERSION})"
        )
    (nstages,) = _U16.unpack_from(graph, C.GRAPH_N_STAGES_OFFSET)
    if nstages == 0:
        raise GraphFileError("the graph file has no stages")
    last = (nstages - 1) * C.GRAPH_STAGE_LENGTH
    end = C.GRAPH_HEADER_LENGTH + nstages * C.GRAPH_STAGE_LENGTH
    if end > n:
        raise GraphFileError(
            f"the graph file claims {nstages} stages but is only {n} bytes long "
            f"(the stage table alone ends at byte {end})"
        )
    out_x, out_y = struct.unpack_from("<II", graph, C.GRAPH_N_OUTPUTS_OFFSET + last)
    (stride_x,) = _U32.unpack_from(graph, C.GRAPH_X_OUT_STRIDE_OFFSET + last)
    noutputs = out_x * out_y * stride_x // 2
    if noutputs > C.GRAPH_MAX_OUTPUTS:
        raise GraphFileError(
            f"the last stage's output ({out_x} x {out_y}, stride {stride_x}) is "
            f"{noutputs} values, more than the 64 Mi the stick returns"
        )
    if noutputs == 0:
        raise GraphFileError("the last stage of the graph file has an empty output")
    return GraphInfo(nstages=nstages, noutputs=noutputs)
