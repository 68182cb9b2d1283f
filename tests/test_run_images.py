"""Image decoding and preprocessing for ``caffe2ncs run`` (caffe2ncs.runtime.images).

Oracles: OpenCV (a test-only dependency) writes and reads images with libpng
and its own PNM/BMP code; a small PNG encoder here produces what OpenCV does
not write (every filter type, palettes, low bit depths, Adam7 interlacing),
and OpenCV must read those files the same way we do.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from caffe2ncs.errors import InputFileError, UsageError
from caffe2ncs.runtime import images

# ----------------------------------------------------------------------------- PNG encoder

ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
         (1, 0, 2, 1))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _pack_rows(values: np.ndarray, depth: int) -> np.ndarray:
    """``(H, W, C)`` integers -> ``(H, row_bytes)`` uint8 scanlines."""
    h = values.shape[0]
    if depth == 16:
        return values.astype(">u2").reshape(h, -1).view(np.uint8)
    if depth == 8:
        return values.astype(np.uint8).reshape(h, -1)
    flat = values.reshape(h, -1).astype(np.uint8)
    bits = ((flat[:, :, None] >> np.arange(depth - 1, -1, -1)) & 1).reshape(h, -1)
    return np.packbits(bits, axis=1)


def _filter_row(kind: int, row: list[int], prev: list[int], bpp: int) -> list[int]:
    out = []
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = a
        elif kind == 2:
            pred = b
        elif kind == 3:
            pred = (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
        out.append((x - pred) % 256)
    return out


def _image_data(values, depth, channels, filters):
    rows = _pack_rows(values, depth)
    bpp = max(1, depth * channels // 8)
    prev = [0] * rows.shape[1]
    out = bytearray()
    for y, row in enumerate(rows.tolist()):
        kind = filters[y % len(filters)]
        out.append(kind)
        out += bytes(_filter_row(kind, row, prev, bpp))
        prev = row
    return bytes(out)


def encode_png(values: np.ndarray, color: int, depth: int, *, filters=(0, 1, 2, 3, 4),
               palette: np.ndarray | None = None, interlace: bool = False) -> bytes:
    values = values if values.ndim == 3 else values[:, :, None]
    h, w, channels = values.shape
    if interlace:
        data = b"".join(_image_data(values[y0::dy, x0::dx], depth, channels, filters)
                        for y0, x0, dy, dx in ADAM7 if h > y0 and w > x0)
    else:
        data = _image_data(values, depth, channels, filters)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color,
                                                                0, 0, int(interlace)))
    if palette is not None:
        out += _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    out += _chunk(b"IDAT", zlib.compress(data)[:7]) + _chunk(b"IDAT", zlib.compress(data)[7:])
    return out + _chunk(b"IEND", b"")


def cv_read(path) -> np.ndarray:
    """OpenCV's reading, as RGB(A)/grey float in [0, 1] with our channel conventions."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    maxval = 65535 if img.dtype == np.uint16 else 255
    img = img.astype(np.float64) / maxval
    if img.ndim == 2:
        return img[:, :, None]
    return img[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped


# ----------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("color,depth,channels", [
    (0, 1, 1), (0, 2, 1), (0, 4, 1), (0, 8, 1), (0, 16, 1), (2, 8, 3), (2, 16, 3), (4, 8, 2),
    (4, 16, 2), (6, 8, 4), (6, 16, 4), (3, 1, 1), (3, 2, 1), (3, 4, 1), (3, 8, 1)])
@pytest.mark.parametrize("interlace", [False, True])
def test_png_every_colour_type_filter_and_interlace(tmp_path, color, depth, channels, interlace):
    rng = np.random.default_rng(color * 100 + depth)
    h, w = 11, 13  # odd sizes: partial bytes at low depths, empty Adam7 passes' columns
    top = (1 << depth) - 1
    values = rng.integers(0, top + 1, (h, w, channels))
    values[:4] = (np.arange(w) * top // max(w - 1, 1))[None, :, None]  # smooth rows too
    palette = rng.integers(0, 256, (1 << depth, 3)) if color == 3 else None
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(values, color, depth, palette=palette, interlace=interlace))
    got = images.load_image(path)
    if color == 3:
        want = palette[values[:, :, 0]] / 255
    else:
        want = values[:, :, :3 if channels >= 3 else 1] / top
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    assert got.dtype == np.float32
    if depth >= 8 or color == 3:  # OpenCV reads the same file the same way
        theirs = cv_read(path)
        if color == 4:  # OpenCV expands grey+alpha to BGRA
            theirs = theirs[:, :, :1]
        np.testing.assert_allclose(got, theirs, rtol=0, atol=1e-7)


def test_png_written_by_libpng(tmp_path):
    rng = np.random.default_rng(1)
    img = (rng.random((97, 131, 3)) * 255).astype(np.uint8)
    img[:40] = np.linspace(0, 255, 131)[None, :, None].astype(np.uint8)
    for level in (0, 9):
        cv2.imwrite(str(tmp_path / "a.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, level])
        np.testing.assert_array_equal(images.load_image(tmp_path / "a.png") * 255,
                                      img[:, :, ::-1])
    grey16 = (rng.random((20, 30)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "b.png"), grey16)
    np.testing.assert_array_equal(images.load_image(tmp_path / "b.png")[:, :, 0],
                                  grey16 / np.float32(65535))


@pytest.mark.parametrize("name,shape", [("x.ppm", (9, 7, 3)), ("x.pgm", (9, 7)),
                                        ("x.bmp", (9, 7, 3)), ("g.bmp", (9, 7)),
                                        ("a.bmp", (9, 7, 4)), ("w.ppm", (3, 5, 3))])
def test_pnm_and_bmp_written_by_opencv(tmp_path, name, shape):
    rng = np.random.default_rng(len(shape))
    img = (rng.random(shape) * 255).astype(np.uint8)
    path = tmp_path / name
    cv2.imwrite(str(path), img)
    got = images.load_image(path)
    want = cv_read(path)
    if want.shape[2] == 1 and got.shape[2] == 3:  # an 8-bit BMP: a grey palette
        want = np.repeat(want, 3, axis=2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_ascii_and_16_bit_pnm(tmp_path):
    (tmp_path / "a.pgm").write_bytes(b"P2\n# comment\n3 2\n# another\n1000\n0 500 1000\n1 2 3\n")
    np.testing.assert_allclose(images.load_image(tmp_path / "a.pgm")[:, :, 0],
                               np.array([[0, 500, 1000], [1, 2, 3]]) / 1000)
    (tmp_path / "b.ppm").write_bytes(b"P6 1 1 65535\n" + struct.pack(">3H", 65535, 0, 32768))
    np.testing.assert_allclose(images.load_image(tmp_path / "b.ppm")[0, 0],
                               [1, 0, 32768 / 65535], atol=1e-7)


@pytest.mark.parametrize("data,message", [
    (b"\xff\xd8\xff\xe0" + bytes(100), "JPEG images are not supported .* convert it to PNG"),
    (b"GIF89a" + bytes(100), "GIF images are not supported"),
    (b"hello world", "not an image caffe2ncs can read"),
    (b"\x89PNG\r\n\x1a\n" + bytes(30), "corrupt PNG image"),
    (b"P6 10 10 255\n" + bytes(20), "corrupt PNM image: 20 bytes of pixel data for 10x10 pixels"),
    (b"P4 1 1\n\0", "P4 Netpbm files are not supported"),
    (b"BM" + bytes(60), "BMP image"),
])
def test_unreadable_images_give_one_clear_error(tmp_path, data, message):
    path = tmp_path / "in.img"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match=message) as err:
        images.load_image(path)
    assert err.value.path == str(path)


def test_png_crc_and_truncation_are_detected(tmp_path):
    good = encode_png(np.zeros((2, 2, 3), np.uint8), 2, 8)
    bad = bytearray(good)
    bad[40] ^= 0xFF
    (tmp_path / "a.png").write_bytes(bytes(bad))
    with pytest.raises(InputFileError, match="bad CRC"):
        images.load_image(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(good[:-20])
    with pytest.raises(InputFileError, match="corrupt PNG"):
        images.load_image(tmp_path / "b.png")


# ----------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("src,dst", [((5, 7), (13, 4)), ((480, 640), (224, 224)), ((3, 3), (3, 3)),
                                     ((1, 5), (4, 2))])
def test_bilinear_resize_matches_opencv(src, dst):
    img = np.random.default_rng(sum(src)).random((*src, 3)).astype(np.float32)
    got = images.resize_bilinear(img, *dst)
    want = cv2.resize(img, dst[::-1], interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(got, want.reshape(got.shape), atol=2e-6)


def test_preprocessing_order_and_channel_swap_semantics():
    """mvNCCheck: resize, x scale, channels reordered by argsort(channel_swap), - mean."""
    img = np.zeros((2, 2, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 0.1, 0.2, 0.3  # R, G, B
    opts = images.Preprocessing(scale=255, channel_swap=(2, 1, 0), mean=np.array([1, 2, 3]))
    x = images.preprocess(img, (4, 4, 3), opts)
    assert x.shape == (4, 4, 3)
    np.testing.assert_allclose(x[0, 0], [0.3 * 255 - 1, 0.2 * 255 - 2, 0.1 * 255 - 3], rtol=1e-6)
    # A rotation shows the argsort: (1, 2, 0) makes channel 0 the image's channel 2.
    x = images.Preprocessing(channel_swap=(1, 2, 0)).apply(img)
    np.testing.assert_allclose(x[0, 0], [0.3, 0.1, 0.2])
    with pytest.raises(UsageError, match="not a permutation"):
        images.Preprocessing(channel_swap=(0, 0, 1)).apply(img)
    with pytest.raises(UsageError, match="mean has 2 values"):
        images.Preprocessing(mean=np.array([1.0, 2.0])).apply(img)


def test_channel_matching():
    rgb = np.random.default_rng(0).random((3, 3, 3)).astype(np.float32)
    grey = images.to_channels(rgb, 1)
    np.testing.assert_allclose(grey[..., 0], rgb @ [0.2125, 0.7154, 0.0721], rtol=1e-6)
    np.testing.assert_array_equal(images.to_channels(grey, 3), np.repeat(grey, 3, axis=2))


def test_mean_forms(tmp_path):
    assert images.parse_mean("127.5") == 127.5
    np.testing.assert_array_equal(images.parse_mean("104,117,123"), [104, 117, 123])
    mean_image = np.stack([np.full((4, 5), v) for v in (1.0, 2.0, 4.0)])  # Caffe (C, H, W)
    np.save(tmp_path / "mean.npy", mean_image)
    np.testing.assert_array_equal(images.parse_mean(str(tmp_path / "mean.npy")), [1, 2, 4])
    with pytest.raises(UsageError, match="expected a number"):
        images.parse_mean("1,x,3")
    with pytest.raises(InputFileError, match="no such file"):
        images.parse_mean(str(tmp_path / "missing.npy"))


def test_npy_inputs(tmp_path):
    arr = np.random.default_rng(1).random((4, 5, 3))
    np.save(tmp_path / "hwc.npy", arr[None])  # a batch of one
    np.testing.assert_array_equal(images.tensor_from_npy(tmp_path / "hwc.npy", (4, 5, 3)),
                                  arr.astype(np.float32))
    np.save(tmp_path / "chw.npy", arr.transpose(2, 0, 1))
    np.testing.assert_array_equal(images.tensor_from_npy(tmp_path / "chw.npy", (4, 5, 3), "chw"),
                                  arr.astype(np.float32))
    with pytest.raises(InputFileError, match=r"3x4x5 but the graph takes 4x5x3 \(HxWxC\) "
                                             r"\(it looks like C x H x W: pass --layout chw\)"):
        images.tensor_from_npy(tmp_path / "chw.npy", (4, 5, 3))
    np.save(tmp_path / "obj.npy", np.array(["a"]))
    with pytest.raises(InputFileError, match="must hold numbers"):
        images.tensor_from_npy(tmp_path / "obj.npy", (1, 1, 1))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputFileError, match="not a readable .npy"):
        images.tensor_from_npy(tmp_path / "bad.npy", (1, 1, 1))
