"""Short fuzz runs of every input format, driven by hypothesis.

The generators and targets are those of the long runs (``tests/fuzz_support.py``,
``benchmarks/fuzz_<format>.py``): hypothesis hands them a ``Random`` whose
every choice it controls (``st.randoms``), so a failure shrinks to a small
sequence of mutations.  A target may fail only with a ``Caffe2NcsError``
(which it reports as its outcome); any other exception, and any broken promise
of the fix engine (idempotence, comments kept), fails the test.

The runs are derandomized so CI explores the same inputs every time; the long
runs explore new ones (``--seed``).  Sizes are chosen for 10-30 seconds of CPU per format (about 1.5 minutes
in all).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_support as fs

# numpy's overflow/NaN warnings from the emulator running mutated weights are
# expected; only exceptions count.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")



def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def caffemodel_tmp(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz-caffemodel"))


@fuzz(3000)
@given(rnd=st.randoms(use_true_random=False))
def test_prototxt(rnd):
    text = fs.gen_prototxt(rnd)
    assert fs.target_prototxt(text)


@fuzz(2000)
@given(rnd=st.randoms(use_true_random=False))
def test_caffemodel(rnd, caffemodel_tmp):
    text, data = fs.gen_caffemodel(rnd)
    assert fs.target_caffemodel(text, data, caffemodel_tmp)


@pytest.mark.parametrize("fmt", ["ncsdk1", "ncsdk2"])
def test_graph_file(fmt):
    @fuzz(1500)
    @given(rnd=st.randoms(use_true_random=False))
    def run(rnd):
        assert fs.target_graph(fs.gen_graph(rnd, fmt))

    run()


@fuzz(1500)
@given(rnd=st.randoms(use_true_random=False), unsafe=st.booleans())
def test_fix_engine(rnd, unsafe):
    assert fs.target_fix(fs.gen_fix_input(rnd), unsafe)


def test_seeds_are_real():
    """The generators start from real material when it is here: corpus files,
    caffemodels written for corpus networks, vendor and built graph files."""
    if not fs.corpus_texts():
        pytest.skip(f"corpus not found at {fs.CORPUS}")
    assert len(fs.small_corpus_texts()) >= 10
    assert len(fs.layer_fragments()) >= 100
    assert len(fs.caffemodel_seeds()) >= 4
    for fmt in ("ncsdk1", "ncsdk2"):
        seeds = fs.graph_seeds(fmt)
        assert len(seeds) >= 4
        assert all(fs.target_graph(s) == "ok" for s in seeds)
