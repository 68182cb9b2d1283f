"""``python -m caffe2ncs`` is the same as the ``caffe2ncs`` command."""

import sys

from .cli import main

sys.exit(main())
