"""Network inputs from files: image decoding and the vendor tools' preprocessing.

Decoders, in pure Python + numpy + zlib (no imaging library):

* **PNG**: every standard colour type and bit depth (grey 1/2/4/8/16, RGB 8/16,
  palette 1/2/4/8, grey+alpha and RGBA 8/16), Adam7 interlacing; chunk CRCs
  are checked.  Row filters are undone along anti-diagonals, so the
  sequential Average/Paeth filters cost ``H + W`` numpy steps, not a Python
  loop per byte.
* **PNM**: ``P5``/``P6`` (binary grey/RGB, 8 or 16 bit) and ``P2``/``P3`` (ASCII).
* **BMP**: uncompressed 24/32-bit, 32-bit with bit fields, and 1/4/8-bit palettes.
* **JPEG**, GIF, TIFF, WebP and compressed BMPs are refused with a message
  suggesting PNG or ``.npy``: a JPEG decoder is out of scope without a new
  dependency.

:func:`load_image` gives float32 ``(H, W, C)`` in ``[0, 1]`` (C = 1 or 3; alpha
is dropped), what ``skimage.img_as_float(skimage.io.imread(path))`` gave
mvNCCheck.  :func:`preprocess` then does what mvNCCheck did with its ``-S``,
``-cs`` and ``-M`` options, in its order: resize to the network input
(bilinear, :func:`resize_bilinear`), multiply by the scale, swap channels
(default ``2,1,0``: RGB to Caffe's BGR), subtract the mean.  The result is
float32 ``(H, W, C)`` in the device's HWC order, ready for fp16 conversion.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError, UsageError, unreadable

#: Luma weights of skimage's ``rgb2gray`` (ITU-R BT.709), which mvNCCheck used
#: (``as_grey=True``) for one-channel networks.
GREY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], np.float32)

#: Largest image accepted (pixels), against decompression bombs.
from ..limits import MAX_IMAGE_PIXELS as MAX_PIXELS  # noqa: E402
from ..limits import MAX_INPUT_FILE_BYTES  # noqa: E402


class ImageError(InputFileError):
    """An image file that cannot be decoded."""


# ---------------------------------------------------------------------------- loading


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to float32 ``(H, W, C)`` in ``[0, 1]``, C = 1 (grey)
    or 3 (RGB); alpha channels are dropped."""
    try:
        _check_size(path)
        data = Path(path).read_bytes()
    except OSError as err:
        raise unreadable(err, path, "image") from None
    kind = sniff(data)
    decoder = {"png": decode_png, "pnm": decode_pnm, "bmp": decode_bmp}.get(kind)
    if decoder is None:
        raise ImageError(_unsupported_message(kind), path)
    try:
        values, maxval = decoder(data)
    except ImageError as err:
        raise err.with_path(path) from None
    except (ValueError, IndexError, struct.error, zlib.error) as err:
        raise ImageError(f"corrupt {kind.upper()} image: {err}", path) from None
    img = values.astype(np.float32) / np.float32(maxval)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] in (2, 4):  # grey+alpha, RGBA: drop alpha
        img = img[:, :, :-1]
    return img


def _check_size(path) -> None:
    size = os.stat(path).st_size
    if size > MAX_INPUT_FILE_BYTES:
        raise InputFileError(f"the file is {size} bytes; input files over {MAX_INPUT_FILE_BYTES} "
                             "bytes are refused (limits.MAX_INPUT_FILE_BYTES)", path)


def sniff(data: bytes) -> str:
    """The file type from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 2 and data[0:1] == b"P" and data[1:2] in b"123456" and data[1:2] != b"":
        return "pnm"
    if data.startswith(b"BM"):
        return "bmp"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith((b"II*\0", b"MM\0*")):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    return "unknown"


def _unsupported_message(kind: str) -> str:
    convert = ("convert it to PNG (e.g. `convert in.jpg out.png` with ImageMagick, or "
               "`python -c \"from PIL import Image; Image.open('in.jpg').save('out.png')\"`) "
               "or pass the preprocessed tensor as a .npy file")
    if kind == "jpeg":
        return f"JPEG images are not supported (caffe2ncs decodes PNG, PPM/PGM and BMP): {convert}"
    if kind in ("gif", "tiff", "webp"):
        return f"{kind.upper()} images are not supported (PNG, PPM/PGM and BMP are): {convert}"
    return ("not an image caffe2ncs can read (PNG, PPM/PGM, BMP) nor a .npy array; "
            + convert)


# ---------------------------------------------------------------------------- PNG

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
#: Adam7 passes: (first row, first column, row step, column step).
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
          (1, 0, 2, 1))


def decode_png(data: bytes) -> tuple[np.ndarray, int]:
    """PNG bytes -> (uint8/uint16 ``(H, W)`` or ``(H, W, C)``, maximum value)."""
    pos, header, palette, idat = 8, None, None, []
    while True:
        if pos + 8 > len(data):
            raise ImageError("corrupt PNG image: truncated (no IEND chunk)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ImageError(f"corrupt PNG image: chunk {ctype!r} is truncated")
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise ImageError(f"corrupt PNG image: bad CRC in chunk {ctype.decode('latin-1')!r}")
        pos += 12 + length
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if header is None:
        raise ImageError("corrupt PNG image: no IHDR chunk")
    width, height, depth, color, compression, filtering, interlace = header
    if color not in _PNG_CHANNELS or depth not in _PNG_DEPTHS[color]:
        raise ImageError(f"corrupt PNG image: colour type {color} with bit depth {depth}")
    if compression or filtering or interlace > 1:
        raise ImageError("corrupt PNG image: unknown compression, filter or interlace method")
    if not 0 < width * height <= MAX_PIXELS:
        raise ImageError(f"PNG image of {width}x{height} pixels is empty or too large")
    channels = _PNG_CHANNELS[color]
    raw = zlib.decompress(b"".join(idat))
    if interlace:
        out = np.zeros((height, width, channels), np.uint16 if depth == 16 else np.uint8)
        offset = 0
        for y0, x0, dy, dx in _ADAM7:
            h, w = -(-(height - y0) // dy), -(-(width - x0) // dx)
            if h <= 0 or w <= 0:
                continue
            sub, used = _png_image(raw[offset:], w, h, depth, channels)
            out[y0::dy, x0::dx] = sub
            offset += used
    else:
        out, _ = _png_image(raw, width, height, depth, channels)
    if color == 3:
        if palette is None:
            raise ImageError("corrupt PNG image: palette image without PLTE chunk")
        if out.max(initial=0) >= len(palette):
            raise ImageError("corrupt PNG image: pixel index beyond the palette")
        return palette[out[:, :, 0]], 255
    return (out[:, :, 0] if channels == 1 else out), (1 << depth) - 1


def _png_image(raw: bytes, width: int, height: int, depth: int, channels: int):
    """Unfilter and unpack one (sub-)image; returns it and the bytes it used."""
    bits = depth * channels
    row_bytes = (width * bits + 7) // 8
    bpp = max(1, bits // 8)  # the filter's "bytes per complete pixel"
    used = height * (row_bytes + 1)
    if len(raw) < used:
        raise ImageError(f"corrupt PNG image: {len(raw)} bytes of pixel data, {used} needed")
    rows = np.frombuffer(raw, np.uint8, used).reshape(height, row_bytes + 1)
    filters, filtered = rows[:, 0], rows[:, 1:]
    if filters.max(initial=0) > 4:
        raise ImageError(f"corrupt PNG image: row filter type {int(filters.max())}")
    pixels = unfilter(filtered, filters, bpp)
    if depth == 16:
        values = pixels.view(">u2").astype(np.uint16).reshape(height, width, channels)
    elif depth == 8:
        values = pixels.reshape(height, width, channels)
    else:
        unpacked = np.unpackbits(pixels, axis=1).reshape(height, row_bytes * 8 // depth, depth)
        weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
        values = (unpacked * weights).sum(axis=2, dtype=np.uint8)[:, :width, None]
    return values, used


def unfilter(filtered: np.ndarray, filters: np.ndarray, bpp: int) -> np.ndarray:
    """Undo PNG row filters (None, Sub, Up, Average, Paeth) on ``(H, row_bytes)``.

    A byte depends on its left neighbour (``bpp`` bytes before), the byte above
    and the one above-left, so all bytes on one anti-diagonal of the
    ``(row, pixel)`` grid are independent: they are computed together, one
    numpy step per diagonal.
    """
    h, n = filtered.shape
    units = -(-n // bpp)
    grid = np.zeros((h, units * bpp), np.uint8)
    grid[:, :n] = filtered
    grid = grid.reshape(h, units, bpp)
    out = np.zeros((h + 1, units + 1, bpp), np.int32)  # row 0 and column 0: the zero border
    kinds = filters.astype(np.int32)
    for d in range(h + units - 1):
        y = np.arange(max(0, d - units + 1), min(h, d + 1))
        u = d - y
        raw = grid[y, u].astype(np.int32)
        a, b, c = out[y + 1, u], out[y, u + 1], out[y, u]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        k = kinds[y][:, None]
        predicted = np.select([k == 1, k == 2, k == 3, k == 4],
                              [a, b, (a + b) >> 1, paeth], 0)
        out[y + 1, u + 1] = (raw + predicted) & 0xFF
    return out[1:, 1:].reshape(h, units * bpp)[:, :n].astype(np.uint8)


# ---------------------------------------------------------------------------- PNM


def decode_pnm(data: bytes) -> tuple[np.ndarray, int]:
    """Netpbm P2/P3 (ASCII) and P5/P6 (binary) grey and RGB images."""
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise ImageError(f"{magic.decode('latin-1')} Netpbm files are not supported "
                         f"(P2, P3, P5 and P6 are)")
    fields, pos = [], 2
    token = re.compile(rb"\s*(?:#[^\n]*\n\s*)*(\d+)")
    for _ in range(3):
        m = token.match(data, pos)
        if not m:
            raise ImageError("corrupt PNM image: bad header")
        fields.append(int(m.group(1)))
        pos = m.end()
    width, height, maxval = fields
    if not (0 < width * height <= MAX_PIXELS and 0 < maxval < 65536):
        raise ImageError(f"corrupt PNM image: {width}x{height} pixels, maximum value {maxval}")
    channels = 3 if magic in (b"P3", b"P6") else 1
    count = width * height * channels
    if magic in (b"P2", b"P3"):
        values = np.array(data[pos:].split()[:count], dtype=np.int64)
    else:
        pos += 1  # the single whitespace byte after maxval
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        if len(data) < pos + count * dtype.itemsize:
            raise ImageError(f"corrupt PNM image: {max(len(data) - pos, 0)} bytes of pixel "
                             f"data for {width}x{height} pixels "
                             f"({count * dtype.itemsize} needed)")
        values = np.frombuffer(data, dtype, count, pos)
    if values.size != count:
        raise ImageError(f"corrupt PNM image: {values.size} values for {width}x{height} pixels")
    if values.max(initial=0) > maxval:
        raise ImageError("corrupt PNM image: a value exceeds the maximum")
    shape = (height, width, channels) if channels == 3 else (height, width)
    return values.astype(np.uint16).reshape(shape), maxval


# ---------------------------------------------------------------------------- BMP


def decode_bmp(data: bytes) -> tuple[np.ndarray, int]:
    """Uncompressed Windows bitmaps: 24/32 bit, 32 bit with bit fields, 1/4/8-bit palettes."""
    (offset,) = struct.unpack_from("<I", data, 10)
    (dib,) = struct.unpack_from("<I", data, 14)
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _planes, bits = struct.unpack_from("<hhHH", data, 18)
        compression, colors, entry = 0, 0, 3
    elif dib >= 40:
        width, height, _planes, bits, compression = struct.unpack_from("<iiHHI", data, 18)
        (colors,) = struct.unpack_from("<I", data, 46)
        entry = 4
    else:
        raise ImageError(f"corrupt BMP image: header size {dib}")
    top_down = height < 0
    height = abs(height)
    if not 0 < width * height <= MAX_PIXELS:
        raise ImageError(f"corrupt BMP image: {width}x{height} pixels")
    if compression not in (0, 3) or (compression == 3 and bits != 32):
        raise ImageError("compressed BMP images are not supported (convert to PNG or an "
                         "uncompressed BMP)")
    if bits not in (1, 4, 8, 24, 32):
        raise ImageError(f"{bits}-bit BMP images are not supported (1, 4, 8, 24 and 32-bit are)")
    stride = (width * bits + 31) // 32 * 4
    pixels = np.frombuffer(data, np.uint8, stride * height, offset).reshape(height, stride)
    if not top_down:
        pixels = pixels[::-1]
    if bits == 24:
        img = pixels[:, :width * 3].reshape(height, width, 3)[:, :, ::-1]
    elif bits == 32:
        words = pixels[:, :width * 4].copy().view("<u4").reshape(height, width)
        masks = (struct.unpack_from("<3I", data, 54) if compression == 3
                 else (0xFF0000, 0xFF00, 0xFF))
        img = np.stack([_bitfield(words, m) for m in masks], axis=2)
    else:
        palette_at = 14 + dib
        n = colors or (1 << bits)
        palette = np.frombuffer(data, np.uint8, n * entry, palette_at).reshape(n, entry)
        palette = palette[:, 2::-1]  # BGR(x) -> RGB
        index = np.unpackbits(pixels, axis=1).reshape(height, stride * 8 // bits, bits)
        index = (index * (1 << np.arange(bits - 1, -1, -1))).sum(axis=2)[:, :width]
        if index.max(initial=0) >= n:
            raise ImageError("corrupt BMP image: pixel index beyond the palette")
        img = palette[index]
    return np.ascontiguousarray(img), 255


def _bitfield(words: np.ndarray, mask: int) -> np.ndarray:
    if mask == 0:
        return np.zeros(words.shape, np.uint8)
    shift = (mask & -mask).bit_length() - 1
    top = (mask >> shift)
    return ((words & mask) >> shift).astype(np.float64) * 255 // top


# ---------------------------------------------------------------------------- preprocessing


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(H, W, C)`` float32 to ``(height, width, C)``.

    Pixel centres are aligned (output pixel ``i`` samples input coordinate
    ``(i + 0.5) * H_in / height - 0.5``) and coordinates outside the image are
    clamped to its edge -- the mapping of OpenCV's ``INTER_LINEAR`` and of
    ``skimage.transform.resize(order=1, mode='edge')``, without anti-aliasing.
    """
    h, w, _ = img.shape
    if (h, w) == (height, width):
        return img.astype(np.float32, copy=True)
    ys, wy = _axis(h, height)
    xs, wx = _axis(w, width)
    top = img[ys[0]] * (1 - wy)[:, None, None] + img[ys[1]] * wy[:, None, None]
    out = top[:, xs[0]] * (1 - wx)[None, :, None] + top[:, xs[1]] * wx[None, :, None]
    return out.astype(np.float32)


def _axis(n_in: int, n_out: int):
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return (lo, hi), (pos - lo).astype(np.float32)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Match the network's channel count: RGB -> grey with skimage's ``rgb2gray``
    weights for 1-channel networks (mvNCCheck read such images ``as_grey``),
    grey -> three equal channels for 3-channel networks."""
    have = img.shape[2]
    if have == channels:
        return img
    if channels == 1 and have == 3:
        return (img @ GREY_WEIGHTS)[:, :, None]
    if channels == 3 and have == 1:
        return np.repeat(img, 3, axis=2)
    raise UsageError(f"the image has {have} channels and the network takes {channels}: "
                     f"pass the input as a .npy array instead")


@dataclass(frozen=True)
class Preprocessing:
    """mvNCCheck's preprocessing options (``-S``, ``-cs``, ``-M``)."""

    #: Multiplier applied to the 0..1 image (mvNCCheck's ``-S``; 255 for
    #: networks trained on 0..255 pixels).
    scale: float = 1.0
    #: mvNCCheck's ``-cs``: the network's channels are the image's in the order
    #: ``argsort(channel_swap)`` (so ``2,1,0`` turns RGB into BGR); None = keep.
    channel_swap: tuple[int, ...] | None = None
    #: Subtracted last, per channel in the network's channel order (after the
    #: swap), or one number for all channels.
    mean: np.ndarray | float | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(H, W, C)`` float32 -> scaled, channel-swapped, mean-subtracted."""
        x = x.astype(np.float32) * np.float32(self.scale)
        c = x.shape[2]
        if self.channel_swap is not None:
            if sorted(self.channel_swap) != list(range(c)):
                raise UsageError(f"--channel-swap {','.join(map(str, self.channel_swap))} is "
                                 f"not a permutation of the input's {c} channels")
            x = x[:, :, np.argsort(self.channel_swap)]
        if self.mean is not None:
            mean = np.asarray(self.mean, np.float32).reshape(-1)
            if mean.size not in (1, c):
                raise UsageError(f"the mean has {mean.size} values; the input has {c} channels")
            x = x - mean
        return x


def preprocess(img: np.ndarray, shape_hwc: tuple[int, int, int],
               options: Preprocessing) -> np.ndarray:
    """An image from :func:`load_image` -> the network input, mvNCCheck's way:
    channels matched, resized to ``shape_hwc``, then :meth:`Preprocessing.apply`."""
    h, w, c = shape_hwc
    return options.apply(resize_bilinear(to_channels(img, c), h, w))


def parse_channel_swap(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--channel-swap {text!r}: expected comma-separated channel indices "
                         f"such as 2,1,0") from None
    return values


def parse_mean(text: str) -> np.ndarray | float:
    """``--mean``: one number, comma-separated numbers (one per channel, in the
    network's channel order), or a ``.npy`` file: a Caffe mean image ``(C, H, W)``
    (averaged per channel, as mvNCCheck did) or ``C`` values."""
    try:
        return float(text)
    except ValueError:
        pass
    if "," in text:
        try:
            return np.array([float(v) for v in text.split(",")], np.float32)
        except ValueError:
            raise UsageError(f"--mean {text!r}: expected a number, comma-separated numbers or "
                             f"a .npy file") from None
    arr = load_npy(text)
    if arr.ndim == 3:
        return arr.mean(axis=(1, 2)).astype(np.float32)
    if arr.ndim <= 1:
        return arr.astype(np.float32).reshape(-1)
    raise UsageError(f"--mean {text}: a mean .npy must be a (C, H, W) image or C values, not "
                     f"shape {arr.shape}")


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    try:
        _check_size(path)
        with open(path, "rb") as f:
            arr = np.load(f, allow_pickle=False)
    except OSError as err:
        raise unreadable(err, path) from None
    except ValueError as err:
        raise InputFileError(f"not a readable .npy array: {err}", path) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiub":
        raise InputFileError(f"a .npy input must hold numbers, not {arr.dtype}", path)
    return arr


def tensor_from_npy(path: str | os.PathLike[str], shape_hwc: tuple[int, int, int],
                    layout: str = "hwc") -> np.ndarray:
    """A ``.npy`` array as the network input ``(H, W, C)`` float32.

    Taken in the device's order H x W x C (what the SDK's ``LoadTensor`` takes)
    or, with ``layout="chw"``, in Caffe's C x H x W; leading dimensions of size
    1 (a batch of one) are dropped; a 2-D array is one channel.  No resizing:
    the shape must match.
    """
    arr = load_npy(path)
    shape = arr.shape
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[:, :, None] if layout == "hwc" else arr[None]
    as_given = arr
    if arr.ndim == 3 and layout == "chw":
        arr = arr.transpose(1, 2, 0)
    h, w, c = shape_hwc
    if arr.shape != (h, w, c):
        hint = ""
        if layout == "hwc" and as_given.shape == (c, h, w):
            hint = " (it looks like C x H x W: pass --layout chw)"
        elif layout == "chw" and as_given.shape == (h, w, c):
            hint = " (it looks like H x W x C: drop --layout chw)"
        want = f"{h}x{w}x{c} (HxWxC)" if layout == "hwc" else f"{c}x{h}x{w} (CxHxW)"
        raise InputFileError(f"the array is {'x'.join(map(str, shape))} but the graph takes "
                             f"{want}{hint}", path)
    return arr.astype(np.float32)
