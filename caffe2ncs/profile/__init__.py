"""``caffe2ncs profile``: a per-layer cost model of the NCS1 (Myriad 2) and its reports.

* :mod:`.costmodel` - MFLOPs as the vendor counts them, bytes moved, predicted
  time per stage (:class:`CostModel`, :data:`DEFAULT_MODEL`);
* :mod:`.constants` - every constant of the model with its source or calibration;
* :mod:`.calibrate` - the calibration on the vendor's GoogLeNet table;
* :mod:`.result` - stages grouped into Caffe layers, totals, JSON;
* :mod:`.dataflow`, :mod:`.svg`, :mod:`.report_html` - the graph picture and the
  HTML report.

See ``docs/profile.md``.
"""

from .costmodel import DEFAULT_MODEL, CostModel, StageCost, vendor_mflops
from .result import LayerRow, Profile, build_profile
from .source import ProfileInput, load_input

__all__ = ["DEFAULT_MODEL", "CostModel", "LayerRow", "Profile", "ProfileInput", "StageCost",
           "build_profile", "load_input", "vendor_mflops"]
