"""Structure-aware input generators and fuzz targets, shared by the short
hypothesis fuzz tests (``tests/test_fuzz.py``) and the long runs
(``benchmarks/fuzz_*.py``).

Every generator is a function of a ``random.Random``-like object: the tests
hand it hypothesis's ``st.randoms()`` (so hypothesis drives, and shrinks, every
choice), the long runs ``random.Random(f"{seed}:{index}")`` (so any input can
be regenerated from its index).  Inputs are built from real material:

* prototxt text: corpus files mutated token by token (numbers swapped for
  boundary values, field names for other real field names of Caffe's schema,
  layer blocks of other corpus files spliced in, braces dropped or added,
  truncation, binary bytes, deep nesting), and whole networks generated from
  the schema's descriptors (every ``*_param`` message filled with values of
  the field's type, boundary values included);
* caffemodel bytes: real caffemodels written for corpus networks, mutated at
  the protobuf wire level (lengths, tags, wire types, shapes, float data
  set to NaN/Inf), truncated, or assembled field by field with protobuf;
* graph files: vendor NCSDK 2.x files from ``shared/ncsdk-samples``, the same
  converted to NCSDK 1.x, and graphs ``caffe2ncs build`` makes of corpus
  networks, mutated as aligned 32/16-bit words (boundary values, the file's
  own size), flipped bytes, truncations and splices;
* the fix engine: mildly mutated corpus files, checked for idempotence and
  for keeping every comment.

A target returns a short outcome label (``"ok"`` or the name of the
:class:`~caffe2ncs.errors.Caffe2NcsError` subclass raised) and raises
anything else: every other exception is a finding.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import struct
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from caffe2ncs._proto import caffe_pb2 as pb
from caffe2ncs.errors import Caffe2NcsError
from caffe2ncs.model.schema import is_repeated

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

FORMATS = ("prototxt", "caffemodel", "ncsdk1", "ncsdk2", "fix")


def _find_shared() -> Path:
    for parent in REPO.parents:
        if (parent / "shared").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"


SHARED = _find_shared()
CORPUS = Path(os.environ.get("CAFFE2NCS_CORPUS", SHARED / "corpus"))
SAMPLES = Path(os.environ.get("CAFFE2NCS_SAMPLES", SHARED / "ncsdk-samples"))

#: Corpus files small enough to mutate quickly (the biggest are ~115 KB).
SEED_MAX_BYTES = 12_000

# ------------------------------------------------------------------ vocabulary

INTERESTING_INTS = (
    "0", "1", "-1", "2", "3", "7", "255", "256", "65535", "65536", "2147483647", "2147483648",
    "-2147483648", "4294967295", "4294967296", "9223372036854775807", "-9223372036854775808",
    "18446744073709551615", "99999999999999999999", "0x10", "010", "1000000", "1000000000000",
)
INTERESTING_FLOATS = (
    "0.0", "-0.0", "1e-45", "1e38", "3.5e38", "1e308", "1e309", "-1e309", "nan", "inf", "-inf",
    "NaN", "Infinity", "0.5", "1.2.3", ".5", "5.", "1e", "-", "1f",
)
INTERESTING_STRINGS = (
    '""', '"data"', '"prob"', '"os.system"', '"/etc/passwd"', '"../../../etc/shadow"',
    '"\\x41\\101\\n"', '"\\q"', "'single'", '"a" "b"', '"\u00e9\u4e2d"', '"' + "x" * 300 + '"',
    '"\\"', '"caffe2ncs: ignore"', '"Python"',
)
PUNCTUATION = ("{", "}", "<", ">", "[", "]", ":", ";", ",", "#", "\"", "'", "\n", "\t", "\\",
               "\x00", "\xff", "\udcff", "\u2028", "\r")


def _field_names() -> tuple[str, ...]:
    names: set[str] = set()
    seen: set[str] = set()

    def walk(desc) -> None:
        if desc.full_name in seen:
            return
        seen.add(desc.full_name)
        for fd in desc.fields:
            names.add(fd.name)
            if fd.message_type is not None:
                walk(fd.message_type)

    walk(pb.NetParameter.DESCRIPTOR)
    return tuple(sorted(names))


FIELD_NAMES = _field_names()

LAYER_TYPES = (
    "Convolution", "Deconvolution", "Pooling", "InnerProduct", "ReLU", "PReLU", "ELU", "Sigmoid",
    "TanH", "Power", "LRN", "Softmax", "Concat", "Eltwise", "Scale", "Bias", "BatchNorm", "Split",
    "Slice", "Flatten", "Reshape", "Permute", "Crop", "Dropout", "Normalize", "PriorBox",
    "DetectionOutput", "Reorg", "Region", "Upsample", "ShuffleChannel", "DepthwiseConvolution",
    "Input", "Python", "Data", "ImageData", "MemoryData", "Accuracy", "SoftmaxWithLoss",
    "ArgMax", "AbsVal", "Exp", "Log", "Threshold", "Tile", "Reduction", "Silence", "Interp",
    "Deconvolution", "ConvolutionDepthwise", "Yolo", "NoSuchLayer",
)


@functools.cache
def corpus_texts() -> tuple[tuple[str, str], ...]:
    """(name, text) of every corpus prototxt (empty without the corpus)."""
    if not CORPUS.is_dir():
        return ()
    return tuple((p.name, p.read_text(encoding="utf-8", errors="surrogateescape"))
                 for p in sorted(CORPUS.glob("*.prototxt")))


@functools.cache
def small_corpus_texts() -> tuple[str, ...]:
    small = tuple(t for _, t in corpus_texts() if len(t) <= SEED_MAX_BYTES)
    return small or (_FALLBACK_NET,)


_FALLBACK_NET = """name: "tiny"  # a comment
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }  # in place
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

_LAYER_START = re.compile(r"^(?:layers?)\s*\{", re.MULTILINE)


@functools.cache
def layer_fragments() -> tuple[str, ...]:
    """Layer blocks cut out of every corpus file (brace-matched, comments kept)."""
    out: list[str] = []
    for _, text in corpus_texts():
        for m in _LAYER_START.finditer(text):
            depth = 0
            for j in range(m.end() - 1, min(len(text), m.end() + 4000)):
                c = text[j]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        out.append(text[m.start():j + 1])
                        break
    # Keep the set varied but bounded: every distinct block, at most 3000.
    uniq = list(dict.fromkeys(out))
    return tuple(uniq[:: max(1, len(uniq) // 3000)]) or (_FALLBACK_NET,)


# ------------------------------------------------------------------ text mutations

_TOKENS = re.compile(
    r"\s+|#[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|[A-Za-z_][A-Za-z0-9_]*"
    r"|[-+]?[0-9.][A-Za-z0-9_.+-]*|.", re.DOTALL)
_NUMBER = re.compile(r"[-+]?[0-9.]")
_IDENT = re.compile(r"[A-Za-z_]")


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def _replace_token(rnd, toks: list[str], pred, choices) -> bool:
    idx = [i for i, t in enumerate(toks) if pred(t)]
    if not idx:
        return False
    toks[rnd.choice(idx)] = rnd.choice(choices)
    return True


def mutate_text(rnd, text: str, n: int | None = None) -> str:
    """Apply ``n`` (default 1-4) structure-aware mutations to prototxt text."""
    toks = _tokens(text)
    n = rnd.randint(1, 4) if n is None else n
    for _ in range(n):
        op = rnd.randrange(16)
        if not toks:
            toks = [rnd.choice(PUNCTUATION + FIELD_NAMES)]
        i = rnd.randrange(len(toks))
        if op == 0:  # delete a run of tokens
            del toks[i:i + rnd.randint(1, 6)]
        elif op == 1:  # duplicate a run
            j = i + rnd.randint(1, 12)
            toks[i:i] = toks[i:j]
        elif op == 2:
            if not _replace_token(rnd, toks, lambda t: _NUMBER.match(t) is not None,
                                  INTERESTING_INTS + INTERESTING_FLOATS):
                toks[i] = rnd.choice(INTERESTING_INTS)
        elif op == 3:  # a real field name somewhere else
            _replace_token(rnd, toks, lambda t: _IDENT.match(t) is not None, FIELD_NAMES)
        elif op == 4:
            _replace_token(rnd, toks, lambda t: t[:1] in "\"'", INTERESTING_STRINGS)
        elif op == 5:  # a layer block of another network
            toks[i:i] = ["\n", rnd.choice(layer_fragments()), "\n"]
        elif op == 6:
            toks.insert(i, rnd.choice(PUNCTUATION))
        elif op == 7:
            del toks[i:]
        elif op == 8:  # names from the file itself: cycles, duplicates, self-loops
            names = [t for t in toks if t[:1] == '"']
            if names:
                _replace_token(rnd, toks, lambda t: t[:1] == '"', names)
        elif op == 9:
            depth = rnd.choice((5, 50, 99, 100, 101, 150, 1000, 5000))
            toks.insert(i, "a {" * depth + "}" * rnd.choice((depth, depth - 1, 0)))
        elif op == 10:  # swap two lines
            lines = "".join(toks).split("\n")
            a, b = rnd.randrange(len(lines)), rnd.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            toks = _tokens("\n".join(lines))
        elif op == 11:  # splice with another file
            other = _tokens(rnd.choice(small_corpus_texts()))
            toks = toks[:i] + other[rnd.randrange(len(other) + 1):]
        elif op == 12:  # binary junk
            junk = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
            toks.insert(i, junk.decode("utf-8", errors="surrogateescape"))
        elif op == 13:  # a field with a value of the wrong kind
            toks[i:i] = ["\n", rnd.choice(FIELD_NAMES), rnd.choice((": ", " ", ":")),
                         rnd.choice(INTERESTING_INTS + INTERESTING_FLOATS + INTERESTING_STRINGS
                                    + ("{ }", "[1, 2]", "[", "TRUE", "MAX", "<>"))]
        elif op == 14:  # delete or add a brace
            braces = [k for k, t in enumerate(toks) if t in "{}<>"]
            if braces and rnd.random() < 0.5:
                del toks[rnd.choice(braces)]
            else:
                toks.insert(i, rnd.choice("{}"))
        else:  # change case / separators of a token
            t = toks[i]
            toks[i] = rnd.choice((t.upper(), t.lower(), t + ";", t + ",", t.replace(":", "")))
    return "".join(toks)


# ------------------------------------------------------------------ schema-built networks

_PARAM_FIELDS = {fd.name: fd for fd in pb.LayerParameter.DESCRIPTOR.fields
                 if fd.name.endswith("_param")}


def _param_field_for(layer_type: str):
    key = layer_type.lower()
    for name, fd in _PARAM_FIELDS.items():
        if name[:-len("_param")].replace("_", "") == key:
            return fd
    return None


def _scalar(rnd, fd) -> str:
    t = fd.type
    if t == fd.TYPE_BOOL:
        return rnd.choice(("true", "false", "1", "0", "True"))
    if t in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
        if rnd.random() < 0.95:
            return repr(round(rnd.uniform(-2, 4), 3))
        return rnd.choice(INTERESTING_FLOATS)
    if t == fd.TYPE_STRING or t == fd.TYPE_BYTES:
        if rnd.random() < 0.95:
            return f'"{rnd.choice(("data", "a", "b", "conv", "x", "prob"))}"'
        return rnd.choice(INTERESTING_STRINGS)
    if t == fd.TYPE_ENUM:
        values = [v.name for v in fd.enum_type.values]
        if rnd.random() < 0.97:
            return rnd.choice(values)
        return rnd.choice(("NOPE", "-1", "99", '"MAX"'))
    # integers: mostly small, sometimes a boundary
    if rnd.random() < 0.95:
        return str(rnd.choice((0, 1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 16)))
    return rnd.choice(INTERESTING_INTS)


def _message(rnd, desc, depth: int) -> str:
    parts: list[str] = []
    fields = list(desc.fields)
    for fd in rnd.sample(fields, rnd.randint(0, min(6, len(fields)))):
        count = rnd.choice((1, 1, 1, 2, 3)) if is_repeated(fd) else 1
        for _ in range(count):
            if fd.message_type is not None:
                if depth >= 3:
                    continue
                parts.append(f"{fd.name} {{ {_message(rnd, fd.message_type, depth + 1)} }}")
            else:
                parts.append(f"{fd.name}: {_scalar(rnd, fd)}")
    return " ".join(parts)


def schema_net(rnd) -> str:
    """A whole network written from Caffe's schema: a few layers of random
    types wired over a small pool of blob names, each with a params message
    filled from its descriptor."""
    lines = [f'name: "gen{rnd.randrange(100)}"']
    style = rnd.randrange(4)
    dims = [rnd.choice((1, 1, 2, 3, 4, 8, 16, 28, 32)) for _ in range(rnd.choice((4, 4, 4, 2, 3, 1, 5)))]
    if rnd.random() < 0.1:
        dims[rnd.randrange(len(dims))] = int(rnd.choice(INTERESTING_INTS[:12]))
    if style == 0:
        lines.append('input: "data"')
        lines.append("input_shape { " + " ".join(f"dim: {d}" for d in dims) + " }")
    elif style == 1:
        lines.append('input: "data"')
        lines.extend(f"input_dim: {d}" for d in dims)
    elif style == 2:
        lines.append('layer { name: "data" type: "Input" top: "data" input_param { shape { '
                     + " ".join(f"dim: {d}" for d in dims) + " } } }")
    blobs = ["data"]
    for k in range(rnd.randint(1, 8)):
        t = rnd.choice(LAYER_TYPES)
        nb = rnd.choice((1, 1, 1, 2, 0, 3))
        bottoms = [rnd.choice(blobs + ["nowhere"]) if rnd.random() < 0.97 else "nowhere"
                   for _ in range(nb)]
        r = rnd.random()
        top = bottoms[0] if (r < 0.2 and bottoms) else (rnd.choice(blobs) if r < 0.25 else f"b{k}")
        tops = [top] + ([f"b{k}x"] if rnd.random() < 0.1 else [])
        body = [f'name: "{rnd.choice((f"l{k}", f"l{k}", "l0", ""))}"', f'type: "{t}"']
        body += [f'bottom: "{b}"' for b in bottoms] + [f'top: "{x}"' for x in tops]
        fd = _param_field_for(t)
        if fd is None or rnd.random() < 0.1:
            fd = rnd.choice(list(_PARAM_FIELDS.values()))
        if rnd.random() < 0.9:
            body.append(f"{fd.name} {{ {_message(rnd, fd.message_type, 1)} }}")
        if rnd.random() < 0.15:
            body.append(_message(rnd, pb.LayerParameter.DESCRIPTOR, 2))
        if t == "Python" and rnd.random() < 0.5:
            body.append('python_param { module: "os" layer: "system" param_str: "touch /tmp/x" }')
        lines.append("layer { " + " ".join(body) + " }")
        blobs.extend(x for x in tops if x not in blobs)
    return "\n".join(lines) + "\n"


def gen_prototxt(rnd) -> str:
    """Prototxt text: a schema-built network or a mutated corpus file."""
    r = rnd.random()
    if r < 0.5:
        text = schema_net(rnd)
        return mutate_text(rnd, text, 1) if rnd.random() < 0.2 else text
    return mutate_text(rnd, rnd.choice(small_corpus_texts()), rnd.choice((1, 1, 1, 2, 3)))


# ------------------------------------------------------------------ targets: prototxt

def _label(err: BaseException) -> str:
    return type(err).__name__


def target_prototxt(text: str) -> str:
    """Load strictly and leniently, summarise (``info``), check (every rule),
    and build for both targets when the network loads."""
    from caffe2ncs.commands.info import summarize
    from caffe2ncs.model import loads
    from caffe2ncs.model.loader import raise_first_fatal
    from caffe2ncs.rules.runner import check_source

    check_source(text, "fuzz.prototxt")
    try:
        net = loads(text, path="fuzz.prototxt", strict=False)
        json.dumps(summarize(net))
        raise_first_fatal(net)  # what strict=True does
    except Caffe2NcsError as err:
        return _label(err)
    return _build_both(net)


def _build_both(net) -> str:
    from caffe2ncs.lowering.emit import graph_bytes
    from caffe2ncs.lowering.lower import lower_network

    outcome = "ok"
    for target in ("ncsdk2", "ncsdk1"):
        try:
            lowered = lower_network(net, target=target)
            graph_bytes(lowered.graph, target)
        except Caffe2NcsError as err:
            outcome = _label(err)
    return outcome


# ------------------------------------------------------------------ caffemodel

#: Small corpus networks whose caffemodels seed the caffemodel fuzzer.
#: (Their caffemodels are 1.7 MB, 0.6 MB and 63 KB; bigger ones would make each
#: input cost a copy of megabytes.)  Old-style V1 caffemodels come from
#: ``_legacy_caffemodel``.
CAFFEMODEL_SEED_NETS = ("lenet.prototxt", "cifar10_quick.prototxt", "ncappzoo_topcoder_dummy.prototxt")


@functools.cache
def caffemodel_seeds() -> tuple[tuple[str, bytes], ...]:
    """(prototxt text, caffemodel bytes) for small corpus networks, with
    seeded random weights written by our caffemodel writer."""
    from caffe2ncs.model import load
    from caffe2ncs.model.weights import save_caffemodel

    out = []
    names = [n for n in CAFFEMODEL_SEED_NETS if (CORPUS / n).is_file()]
    with tempfile.TemporaryDirectory() as tmp:
        if names:
            items = [((CORPUS / n).read_text(), CORPUS / n) for n in names]
        else:
            p = Path(tmp) / "tiny.prototxt"
            p.write_text(_FALLBACK_NET)
            items = [(_FALLBACK_NET, p)]
        for i, (text, path) in enumerate(items):
            try:
                net = load(path)
            except Caffe2NcsError:
                continue
            model = Path(tmp) / f"{i}.caffemodel"
            save_caffemodel(net, model, seed=i)
            out.append((text, model.read_bytes()))
    out.append((_FALLBACK_NET, _legacy_caffemodel()))
    return tuple(out)


def _legacy_caffemodel() -> bytes:
    """The tiny fallback network as an old-style caffemodel: V1 ``layers``,
    blobs with num/channels/height/width, unpacked and double data."""
    msg = pb.NetParameter(name="tiny")
    msg.input.append("data")
    msg.input_dim.extend([1, 3, 8, 8])
    conv = msg.layers.add(name="conv", type=pb.V1LayerParameter.CONVOLUTION)
    conv.bottom.append("data")
    conv.top.append("conv")
    conv.convolution_param.num_output = 4
    conv.convolution_param.kernel_size.append(3)
    conv.convolution_param.pad.append(1)
    w = conv.blobs.add(num=4, channels=3, height=3, width=3)
    w.data.extend([0.01 * i for i in range(108)])
    b = conv.blobs.add(num=1, channels=1, height=1, width=4)
    b.double_data.extend([0.5, -0.5, 0.25, 0.0])
    fc = msg.layers.add(name="fc", type=pb.V1LayerParameter.INNER_PRODUCT)
    fc.bottom.append("pool")
    fc.top.append("fc")
    fc.inner_product_param.num_output = 10
    fc.blobs.add(num=1, channels=1, height=10, width=64).data.extend([0.1] * 640)
    fc.blobs.add(num=1, channels=1, height=1, width=10).data.extend([0.0] * 10)
    return msg.SerializeToString()


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _wire_fields(data: bytes, start: int, end: int, depth: int, out: list) -> None:
    """Record (tag start, value start, value end, field number, wire type,
    depth) for every field it can parse, descending into length-delimited
    fields that parse as messages; stops quietly at the first bad byte."""
    pos = start
    while pos < end and len(out) < 4000:
        tag_at = pos
        tag, pos = _read_varint(data, pos, end)
        if tag is None:
            return
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos2 = _read_varint(data, pos, end)
            if pos2 is None:
                return
            out.append((tag_at, pos, pos2, number, wire, depth))
            pos = pos2
        elif wire == 2:
            length, pos = _read_varint(data, pos, end)
            if length is None or length > end - pos:
                return
            out.append((tag_at, pos, pos + length, number, wire, depth))
            if depth < 4 and length > 2 and not (number == 5 and depth >= 2):
                sub: list = []
                _wire_fields(data, pos, pos + length, depth + 1, sub)
                if sub and sub[-1][2] == pos + length:
                    out.extend(sub)
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if end - pos < size:
                return
            out.append((tag_at, pos, pos + size, number, wire, depth))
            pos += size
        else:
            return


def _read_varint(data: bytes, pos: int, end: int):
    result = shift = 0
    while pos < end and shift < 70:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    return None, None


_SPECIAL_F32 = (struct.pack("<f", float("nan")), struct.pack("<f", float("inf")),
                struct.pack("<f", float("-inf")), struct.pack("<f", 3.4e38), b"\x00\x00\x80\x7f",
                b"\x01\x00\x80\x7f", b"\x00\x00\x00\x80")


def mutate_wire(rnd, data: bytes) -> bytes:
    """One protobuf-wire-aware mutation of caffemodel bytes."""
    fields: list = []
    _wire_fields(data, 0, len(data), 0, fields)
    op = rnd.randrange(12)
    if not fields or op == 0:  # truncate
        return data[:rnd.randrange(len(data) + 1)] if data else b""
    tag_at, vstart, vend, number, wire, depth = rnd.choice(fields)
    if op == 1:  # a length (or varint value) set to a boundary
        value = rnd.choice((0, 1, vend - vstart + 1, len(data), 2**31 - 1, 2**31, 2**32 - 1,
                            2**63, 2**64 - 1, rnd.randrange(1 << 20)))
        if wire == 2:
            _, len_at = _read_varint(data, tag_at, vend)  # past the tag
            return data[:len_at] + _varint(value) + data[vstart:]
        if wire == 0:
            return data[:vstart] + _varint(value) + data[vend:]
        return data[:vstart] + value.to_bytes(8, "little")[:vend - vstart] + data[vend:]
    if op == 2:  # another wire type or field number
        new_tag = rnd.choice(((number << 3) | rnd.randrange(8),
                              (rnd.choice((0, 1, 5, 6, 7, 100, 2, 3, 4, 8, 9, 536870911)) << 3) | wire))
        _, after_tag = _read_varint(data, tag_at, len(data))
        return data[:tag_at] + _varint(new_tag) + data[after_tag:]
    if op == 3:  # drop the field
        return data[:tag_at] + data[vend:]
    if op == 4:  # duplicate it
        return data[:vend] + data[tag_at:vend] + data[vend:]
    if op == 5 and wire == 2 and vend - vstart >= 4:  # special floats in packed data
        k = vstart + 4 * rnd.randrange((vend - vstart) // 4)
        return data[:k] + rnd.choice(_SPECIAL_F32) + data[k + 4:]
    if op == 6:  # flip bytes inside the value
        buf = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            if vend > vstart:
                buf[rnd.randrange(vstart, vend)] ^= 1 << rnd.randrange(8)
        return bytes(buf)
    if op == 7 and wire == 2:  # shorten the value and fix up its length
        cut = rnd.randrange(vend - vstart + 1)
        _, len_at = _read_varint(data, tag_at, vend)
        return data[:len_at] + _varint(cut) + data[vstart:vstart + cut] + data[vend:]
    if op == 8:  # insert a field of a random number with odd contents
        payload = rnd.choice((b"", b"\x08\x01", b"\xff" * 10, _varint(2**63), b"\x0a\x00"))
        new = _varint((rnd.choice((1, 2, 5, 6, 7, 8, 100, 3)) << 3) | 2) + _varint(len(payload)) + payload
        return data[:tag_at] + new + data[tag_at:]
    if op == 9:  # splice a field from another seed
        other = rnd.choice(caffemodel_seeds())[1]
        of: list = []
        _wire_fields(other, 0, len(other), 0, of)
        if of:
            t2, _, e2, *_ = rnd.choice(of)
            return data[:tag_at] + other[t2:e2] + data[tag_at:]
    if op == 10:  # random bytes overwrite
        buf = bytearray(data)
        k = rnd.randrange(len(buf))
        for j in range(k, min(len(buf), k + rnd.randint(1, 8))):
            buf[j] = rnd.randrange(256)
        return bytes(buf)
    # shape dims to boundary values
    dims = [f for f in fields if f[3] == 1 and f[4] == 0 and f[5] >= 3]
    if dims:
        t, s, e, *_ = rnd.choice(dims)
        v = rnd.choice((0, 2**31, 2**63 - 1, 2**64 - 1, 3, 1000000, 2**40))
        return data[:s] + _varint(v) + data[e:]
    return data[:vstart] + data[vend:]


def built_caffemodel(rnd) -> bytes:
    """A caffemodel assembled with protobuf: random layers, blob shapes in
    either spelling, float or double data, sometimes disagreeing."""
    msg = pb.NetParameter(name="built")
    v1 = rnd.random() < 0.3
    for k in range(rnd.randint(0, 4)):
        if v1:
            layer = msg.layers.add(name=rnd.choice(("conv1", "conv2", "ip1", "ip2", f"x{k}")))
            layer.type = rnd.choice((pb.V1LayerParameter.CONVOLUTION, pb.V1LayerParameter.INNER_PRODUCT,
                                     pb.V1LayerParameter.RELU, pb.V1LayerParameter.NONE))
        else:
            layer = msg.layer.add(name=rnd.choice(("conv1", "conv2", "ip1", "ip2", f"x{k}")),
                                  type=rnd.choice(("Convolution", "InnerProduct", "ReLU", "Python")))
        for _ in range(rnd.randint(0, 3)):
            blob = layer.blobs.add()
            shape = [rnd.choice((1, 2, 3, 5, 20, 0)) for _ in range(rnd.randint(0, 4))]
            n = int(np.prod(shape)) if shape else 1
            n += rnd.choice((0, 0, 0, 1, -1))
            if rnd.random() < 0.5:
                blob.shape.dim.extend(shape)
            else:
                for name, d in zip(("num", "channels", "height", "width"), shape):
                    setattr(blob, name, d)
            values = [rnd.choice((0.5, -1.0, float("nan"), float("inf"), 1e-40)) for _ in range(max(0, n))]
            (blob.double_data if rnd.random() < 0.2 else blob.data).extend(values)
    return msg.SerializeToString()


def gen_caffemodel(rnd) -> tuple[str, bytes]:
    """(prototxt text, caffemodel bytes)."""
    seeds = caffemodel_seeds()
    text, data = rnd.choice(seeds)
    r = rnd.random()
    if r < 0.15:
        data = built_caffemodel(rnd)
    else:
        for _ in range(rnd.choice((1, 1, 1, 2, 3))):
            data = mutate_wire(rnd, data)
    if rnd.random() < 0.1:
        text = mutate_text(rnd, text, 1)
    return text, data


def target_caffemodel(text: str, data: bytes, tmpdir: str) -> str:
    """Parse the bytes; load them with their prototxt (and alone, as
    ``info x.caffemodel`` does); summarise; build for both targets."""
    from caffe2ncs.commands.info import summarize
    from caffe2ncs.model import load, loads
    from caffe2ncs.model.caffemodel import parse_caffemodel

    path = os.path.join(tmpdir, "fuzz.caffemodel")
    with open(path, "wb") as f:
        f.write(data)
    outcome = "ok"
    try:
        net = load(path, strict=False)
        json.dumps(summarize(net))
    except Caffe2NcsError as err:
        outcome = _label(err)
    try:
        model = parse_caffemodel(data, path)
        net = loads(text, path="fuzz.prototxt", caffemodel=model, strict=False)
        json.dumps(summarize(net))
        net = loads(text, path="fuzz.prototxt", caffemodel=model, strict=True)
    except Caffe2NcsError as err:
        return _label(err)
    build = _build_both(net)
    return outcome if build == "ok" else build


# ------------------------------------------------------------------ graph files

#: Small corpus networks built (both targets) to seed the graph fuzzers.
GRAPH_SEED_NETS = ("lenet.prototxt", "cifar10_quick.prototxt", "ncappzoo_topcoder_dummy.prototxt",
                   "ncappzoo_gendernet.prototxt")
GRAPH_SEED_MAX_BYTES = 300_000


@functools.cache
def graph_seeds(fmt: str) -> tuple[bytes, ...]:
    """Graph files in format ``fmt``: vendor files (converted for NCSDK 1.x)
    and our builds of small corpus networks with seeded random weights."""
    from caffe2ncs.lowering.emit import graph_bytes
    from caffe2ncs.lowering.graphfile import read_graph, write_graph
    from caffe2ncs.lowering.lower import lower_network
    from caffe2ncs.model import load, loads
    from caffe2ncs.model.weights import synthesize

    out: list[bytes] = []
    if SAMPLES.is_dir():
        for p in sorted(SAMPLES.glob("*/graph.mv")):
            data = p.read_bytes()
            if len(data) > GRAPH_SEED_MAX_BYTES:
                continue
            graph = read_graph(data, p)
            if graph.format.value == fmt:
                out.append(data)
            else:
                try:
                    out.append(write_graph(graph, fmt))
                except Caffe2NcsError:
                    pass
    nets = [load(CORPUS / n) for n in GRAPH_SEED_NETS if (CORPUS / n).is_file()]
    if not nets:
        nets = [loads(_FALLBACK_NET)]
    for net in nets:
        try:
            lowered = lower_network(net, target=fmt, shaves=4, weights=synthesize(net, 1))
        except Caffe2NcsError:
            continue
        data = graph_bytes(lowered.graph, fmt)
        if len(data) <= GRAPH_SEED_MAX_BYTES:
            out.append(data)
    return tuple(out)


_INTERESTING_U32 = (0, 1, 2, 3, 4, 16, 63, 64, 255, 256, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                    0xFFFFFFFF, 0xFFFFFFFE, 8708)


def mutate_graph(rnd, data: bytes, fmt: str) -> bytes:
    """One mutation of graph-file bytes, biased towards the header and the
    stage section (the first few KB), where every word is a count, an offset,
    a dimension or a code."""
    n = len(data)
    if n == 0:
        return bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 80)))
    head = min(n, rnd.choice((128, 512, 2048, 8192, n)))
    op = rnd.randrange(10)
    buf = bytearray(data)
    if op <= 3:  # an aligned u32 set to a boundary value or the file's own sizes
        k = 4 * rnd.randrange(max(1, head // 4)) + rnd.choice((0, 0, 0, 2))
        value = rnd.choice(_INTERESTING_U32 + (n, n + 1, n - 1, n // 2, head, rnd.randrange(1 << 32)))
        if k + 4 <= n:
            struct.pack_into("<I", buf, k, value & 0xFFFFFFFF)
        return bytes(buf)
    if op == 4:  # a u16
        k = 2 * rnd.randrange(max(1, head // 2))
        if k + 2 <= n:
            struct.pack_into("<H", buf, k, rnd.choice((0, 1, 0xFFFF, 0x8000, 3, rnd.randrange(65536))))
        return bytes(buf)
    if op == 5:  # flip bits
        for _ in range(rnd.randint(1, 6)):
            buf[rnd.randrange(head)] ^= 1 << rnd.randrange(8)
        return bytes(buf)
    if op == 6:  # truncate
        return data[:rnd.choice((rnd.randrange(head + 1), rnd.randrange(n + 1), n - 1, 40, 74))]
    if op == 7:  # grow: junk or zeros appended / inserted
        extra = rnd.choice((b"\x00" * 64, b"\xff" * 16, bytes(rnd.randrange(256) for _ in range(8))))
        k = rnd.choice((n, rnd.randrange(head + 1)))
        return data[:k] + extra + data[k:]
    if op == 8:  # splice the head of another seed of the same format
        other = rnd.choice(graph_seeds(fmt))
        k = rnd.randrange(min(len(other), head) + 1)
        return other[:k] + data[k:]
    # copy a 40-byte window (a buffer descriptor's size) elsewhere in the head
    a, b = rnd.randrange(head), rnd.randrange(head)
    chunk = data[a:a + 40]
    buf[b:b + len(chunk)] = chunk
    return bytes(buf[:n])


def gen_graph(rnd, fmt: str) -> bytes:
    data = rnd.choice(graph_seeds(fmt))
    for _ in range(rnd.choice((1, 1, 1, 2, 3, 5))):
        data = mutate_graph(rnd, data, fmt)
    return data


#: The emulator runs a parsed graph only when its input is at most this big
#: (the fuzzer's inputs are zeros; a bigger input would only cost time).
EMULATE_MAX_INPUT = 1 << 16


def target_graph(data: bytes) -> str:
    """Parse, describe (``inspect --json``), re-encode in both formats, and
    run in the emulator on a zero input."""
    from caffe2ncs.commands.inspect import graph_to_dict
    from caffe2ncs.lowering.graphfile import read_graph, write_graph
    from caffe2ncs.runtime.emulator import Emulator

    try:
        graph = read_graph(data, "fuzz.graph")
    except Caffe2NcsError as err:
        return _label(err)
    json.dumps(graph_to_dict(graph, path="fuzz.graph", file_size=len(data)))
    outcome = "ok"
    for fmt in ("ncsdk2", "ncsdk1"):
        try:
            write_graph(graph, fmt)
        except Caffe2NcsError as err:
            outcome = _label(err)
    try:
        emu = Emulator(graph, path="fuzz.graph")
        h, w, c = emu.input_shape
        if h * w * c <= EMULATE_MAX_INPUT:
            emu.run(np.zeros((h, w, c), np.float16))
    except Caffe2NcsError as err:
        return _label(err)
    return outcome


# ------------------------------------------------------------------ fix engine

_COMMENT_OR_STRING = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|(#[^\n]*)")


def comments(text: str) -> Counter:
    """The comments of ``text`` (not counting suppression directives, which
    NCS001's fix removes on purpose), stripped, with multiplicity."""
    out: Counter = Counter()
    for m in _COMMENT_OR_STRING.finditer(text):
        c = m.group(1)
        if c and "caffe2ncs" not in c.lower():
            out[c.strip()] += 1
    return out


def gen_fix_input(rnd) -> str:
    """A corpus file (or a schema-built network) with one or two mutations,
    and sometimes a comment added after a random token, so that fixes meet
    comments everywhere."""
    if rnd.random() < 0.25:
        text = schema_net(rnd)
    else:
        text = rnd.choice(small_corpus_texts())
    text = mutate_text(rnd, text, rnd.choice((0, 1, 1, 2)))
    if rnd.random() < 0.5:
        toks = _tokens(text)
        for _ in range(rnd.randint(1, 3)):
            k = rnd.randrange(len(toks) + 1)
            toks.insert(k, f"  # note {rnd.randrange(1000)}\n")
        text = "".join(toks)
    return text


class FixPropertyError(AssertionError):
    """A fix broke a promise (not idempotent, or lost a comment)."""


def target_fix(text: str, unsafe: bool) -> str:
    """``fix_text`` never fails on text, is idempotent, keeps every comment."""
    from caffe2ncs.fixes.engine import FixError, fix_text

    try:
        first = fix_text(text, "fuzz.prototxt", unsafe=unsafe)
    except FixError as err:  # a Caffe2NcsError, but one that reports our bug
        raise FixPropertyError(f"fix_text refused its own fix: {err}") from None
    if not first.changed:
        return "unchanged"
    second = fix_text(first.text, "fuzz.prototxt", unsafe=unsafe)
    if second.changed:
        raise FixPropertyError("not idempotent: a second run applied "
                               + ", ".join(f"{a.code} {a.title}" for a in second.applied))
    lost = comments(text) - comments(first.text)
    if lost:
        raise FixPropertyError(f"fixes dropped comment(s): {sorted(lost)[:3]}")
    return "fixed"


# ------------------------------------------------------------------ dispatch

class Fuzzer:
    """One format's generator + target, with a scratch folder for files."""

    def __init__(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt = fmt
        self._tmp = tempfile.TemporaryDirectory(prefix=f"fuzz-{fmt}-",
                                                dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.tmpdir = self._tmp.name

    def generate(self, rnd):
        """The input as a value ``run`` takes."""
        if self.fmt == "prototxt":
            return gen_prototxt(rnd)
        if self.fmt == "caffemodel":
            return gen_caffemodel(rnd)
        if self.fmt in ("ncsdk1", "ncsdk2"):
            return gen_graph(rnd, self.fmt)
        return (gen_fix_input(rnd), rnd.random() < 0.3)

    def run(self, value) -> str:
        if self.fmt == "prototxt":
            return target_prototxt(value)
        if self.fmt == "caffemodel":
            return target_caffemodel(value[0], value[1], self.tmpdir)
        if self.fmt in ("ncsdk1", "ncsdk2"):
            return target_graph(value)
        return target_fix(*value)

    @staticmethod
    def to_bytes(value) -> bytes:
        """The input as one file (to save a finding): prototxt text, graph
        bytes; a caffemodel case as its caffemodel (the prototxt is saved
        beside it by the runner); a fix case as the text."""
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8", errors="surrogateescape")
        first = value[0]
        if isinstance(first, str) and isinstance(value[1], bytes):
            return value[1]
        return first.encode("utf-8", errors="surrogateescape")

    def close(self) -> None:
        self._tmp.cleanup()


def describe_outcomes(counts: Counter) -> str:
    buf = io.StringIO()
    for label, n in counts.most_common():
        buf.write(f"{label}={n} ")
    return buf.getvalue().strip()
