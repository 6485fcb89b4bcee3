"""Every LSTM/GRU/RNN case (cases.py) against every recurrent implementation that applies,
on every platform that runs it; and the NumPy reference itself against onnxruntime on every
case onnxruntime runs (it refuses layout 1)."""
import numpy as np
import onnxruntime as ort
import pytest

from kernels.harness import build_model, feeds
from kernels.rnn.cases import BOOK


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_rnn(impl, platform, case):
    BOOK.check(impl, platform, case)


ORT_RUNS = [c for c in BOOK.cases if not c.attrs.get("layout")]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ORT_RUNS])
def test_reference_matches_onnxruntime(case):
    sess = ort.InferenceSession(build_model([case]).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds([case]))
    want = case.ref(*case.values())
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
