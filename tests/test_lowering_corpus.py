"""The real-world corpus, read in place (``tests/conftest.py``).

* Every network that ``caffe2ncs check`` passes without error-level findings
  for a target builds for that target, and the file it writes reads back
  (``read_graph``) to the same IR (after ``convert``, as graphfile documents).
* The other networks are first put through ``caffe2ncs fix --unsafe-fixes``
  (in memory): those the checks then pass must build too; for the rest,
  lowering either works or refuses with an ``UnsupportedNetworkError`` naming
  the layer - never another exception.
"""

from __future__ import annotations

import pytest
from conftest import corpus_params

from caffe2ncs.errors import UnsupportedNetworkError
from caffe2ncs.fixes.engine import fix_text
from caffe2ncs.lowering import lower_network, write_graph_file
from caffe2ncs.lowering.emit import graph_bytes
from caffe2ncs.lowering.graphfile import convert, read_graph
from caffe2ncs.lowering.ir import GraphFormat, Location
from caffe2ncs.model.loader import loads
from caffe2ncs.rules.base import Severity
from caffe2ncs.rules.runner import check_source
from caffe2ncs.rules.settings import Settings

TARGETS = ("ncsdk1", "ncsdk2")


def _errors(text: str, path: str, target: str) -> list[str]:
    report = check_source(text, path, Settings(target=target))
    return sorted({d.code for d in report.diagnostics if d.severity >= Severity.ERROR or d.fatal})


def _check_graph(low, target: str, data: bytes) -> None:
    g = low.graph
    assert g.format is GraphFormat(target) and g.shave_count == 12
    assert g.stages[-1].output.location is Location.OUTPUT  # the output stage last
    assert len(low.stage_layers) == len(g.stages)
    assert all(layers for layers in low.stage_layers)
    back = read_graph(data)
    assert back == convert(g, target)
    if target == "ncsdk1":  # 1.x stores names: the lowered graph comes back as it is
        assert back == g


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_network_builds_for_each_target_the_checks_pass(path, tmp_path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    passing = [t for t in TARGETS if not _errors(text, str(path), t)]
    fixed = False
    if not passing:
        text = fix_text(text, str(path), Settings(unsafe_fixes=True), unsafe=True).text
        passing = [t for t in TARGETS if not _errors(text, str(path), t)]
        fixed = True
    try:
        net = loads(text, path=str(path))
    except Exception as err:  # the loader refuses it (Caffe would): nothing to lower
        assert not passing, f"the checks pass but the network does not load: {err}"
        return
    for target in TARGETS:
        if target not in passing:
            try:
                low = lower_network(net, target=target)
            except UnsupportedNetworkError as err:
                assert str(err)
                continue
            _check_graph(low, target, graph_bytes(low.graph, target))
            continue
        low = lower_network(net, target=target)
        if fixed:
            _check_graph(low, target, graph_bytes(low.graph, target))
        else:
            out = tmp_path / f"{target}.graph"
            size = write_graph_file(low.graph, target, out)
            data = out.read_bytes()
            assert size == len(data)
            _check_graph(low, target, data)
