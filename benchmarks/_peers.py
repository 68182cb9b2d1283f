"""The peers the benchmarks measure against, imported with one error message each."""

from __future__ import annotations

import sys


def opencv_with_caffe():
    """OpenCV's module if it has the Caffe importer (OpenCV < 5), else None
    after saying why on stderr (the scripts then exit 2)."""
    try:
        import cv2
    except ImportError:
        print("error: OpenCV is needed: pip install 'opencv-python-headless<5'", file=sys.stderr)
        return None
    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        print(f"error: OpenCV {cv2.__version__} has no Caffe importer (removed in 5.0)",
              file=sys.stderr)
        return None
    return cv2
