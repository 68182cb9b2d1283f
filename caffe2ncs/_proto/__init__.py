"""caffe2ncs's own Caffe schema, compiled for Python.

``caffe_pb2`` is generated from ``proto/caffe.proto`` by ``proto/generate``;
do not edit it by hand.  It covers BVLC Caffe and SSD Caffe (proto package
``caffe2ncs_caffe``, registered as ``caffe2ncs/_proto/caffe.proto``), so it can
be imported next to any other tool's ``caffe_pb2``.
"""
