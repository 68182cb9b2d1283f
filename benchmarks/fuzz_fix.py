#!/usr/bin/env python3
"""Fuzz caffe2ncs through the fix engine (idempotence, comments kept); see benchmarks/fuzzrun.py and
tests/fuzz_support.py.

    python benchmarks/fuzz_fix.py [-n 100000] [--seed 1] [--crash-dir DIR] [--replay FILE]
"""

import sys

from fuzzrun import main

if __name__ == "__main__":
    sys.exit(main("fix"))
