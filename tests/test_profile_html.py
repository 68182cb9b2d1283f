"""The HTML report rendered by a real browser (headless Chromium): the network
graph and the table must actually render, not just be in the file.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped
with that reason when no Chromium is installed.  ``CAFFE2NCS_CHROMIUM`` names
another binary."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from profile_support import googlenet

from caffe2ncs.lowering.graphfile import write_graph
from caffe2ncs.profile.report_html import INPUT_FILL, PALETTE

WIDTH, HEIGHT = 1400, 9000


def chromium() -> str:
    for name in (os.environ.get("CAFFE2NCS_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium)")


def run_chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    profile_dir = tmp_path / "chromium-profile"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile_dir}", *extra,
           page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def read_png(path: Path) -> np.ndarray:
    """A minimal PNG reader (8-bit RGB/RGBA, non-interlaced: what Chromium
    writes) -> uint8 array (height, width, 3)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), np.int32)
    prev = np.zeros(width * channels, np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 255
        else:
            cur = np.zeros_like(line)
            for x in range(len(line)):
                left = cur[x - channels] if x >= channels else 0
                up = prev[x]
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:  # Paeth
                    ul = prev[x - channels] if x >= channels else 0
                    p = left + up - ul
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                cur[x] = (line[x] + pred) & 255
        out[y] = cur
        prev = cur
    return out.reshape(height, width, channels)[:, :, :3].astype(np.uint8)


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def _count_colour(img: np.ndarray, hex_colour: str, tol: int = 6) -> int:
    return int(np.all(np.abs(img.astype(int) - _rgb(hex_colour)) <= tol, axis=2).sum())


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """GoogLeNet, lowered and written as a graph file, profiled with --html."""
    from conftest import run_cli

    tmp = tmp_path_factory.mktemp("html")
    _, graph, _ = googlenet()
    path = tmp / "googlenet.graph"
    path.write_bytes(write_graph(graph, "ncsdk1"))
    html = tmp / "report.html"
    r = run_cli("profile", path, "--html", html)
    assert r.returncode == 0, r.stderr
    return tmp, html, len(graph.stages)


def test_dom_has_every_node_and_row(report):
    tmp, html, nstages = report
    r = run_chromium(tmp, html, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert len(re.findall(r'<g class="node"[ >]', dom)) == nstages == 75
    assert len(re.findall(r'<g class="node input"', dom)) == 1
    # 9 inception concats; the 3 read by a single pooling layer need no junction
    assert len(re.findall(r'<g class="junction"', dom)) == 6
    assert len(re.findall(r'class="edge"', dom)) > 75
    tbody = dom[dom.index("<tbody>"):dom.index("</tbody>")]
    assert tbody.count("<tr>") == 75
    assert "conv2/3x3" in tbody and "Total inference time" in dom
    assert len(re.findall(r'<g class="bar">', dom)) == 75


def test_screenshot_shows_the_graph_and_the_table(report):
    tmp, html, _ = report
    png = tmp / "report.png"
    r = run_chromium(tmp, html, f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}")
    assert r.returncode == 0 and png.is_file(), r.stderr[-2000:]
    img = read_png(png)
    assert img.shape == (HEIGHT, WIDTH, 3)
    assert img.std() > 20, "the screenshot is blank"
    # The input node's fill and the hottest node's (conv2/3x3, the palette's end)
    # are on the page: the SVG boxes were painted.
    assert _count_colour(img, INPUT_FILL) > 2000
    assert _count_colour(img, PALETTE[-1]) > 2000
    # The 75 layer boxes (176 x 40 px each) are filled with the warm palette
    # (yellow to red: red channel high, blue well below it).
    top = img[: HEIGHT // 2].astype(int)
    warm = (top[:, :, 0] > 180) & (top[:, :, 0] - top[:, :, 2] > 40)
    assert warm.sum() > 75 * 176 * 40 * 0.8
    # Below the graph, the bar chart and the table: the last sections still have
    # text (dark pixels) well down the page, and the striped table rows.
    rows_with_text = np.nonzero((img.min(axis=2) < 90).sum(axis=1) > 5)[0]
    assert rows_with_text.max() > HEIGHT * 0.5
    assert _count_colour(img, "#f1f5f9", tol=1) > 5000  # the table header
