"""One module per sub-command; see :mod:`caffe2ncs.cli` for the contract."""
