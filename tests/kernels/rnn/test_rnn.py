"""Every LSTM/GRU/RNN case (cases.py) against every recurrent implementation that applies,
on every platform that runs it; and the NumPy reference itself against onnxruntime on every
case onnxruntime runs (it refuses layout 1)."""
import numpy as np
import onnxruntime as ort
import pytest

from kernels.harness import build_model, check_choice, choice_params, feeds, plan_cases
from kernels.rnn.cases import BOOK
from megcc_builder.ir import CompileError


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_rnn(impl, platform, case):
    BOOK.check(impl, platform, case)


@pytest.mark.parametrize("platform,case", choice_params(BOOK))
def test_cost_model_choice(platform, case):
    check_choice(BOOK, platform, case)


@pytest.mark.parametrize("attrs,message", [
    ({"activations": ["Gelu"]}, "activation 'Gelu' is not supported"),
    ({"activations": ["Tanh", "Tanh"]}, "activations: 2 given, 1 expected"),
    ({"activations": ["Relu"], "direction": "bidirectional"},
     "activations: 1 given, 2 expected (1 per direction)"),
    ({"direction": "sideways"}, "Unknown direction 'sideways'"),  # ONNX's shape inference
])
def test_bad_attributes_name_the_node(attrs, message):
    case = BOOK.cases[0]
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    bad = type(case)("bad", "RNN", [np.zeros((2, 1, 3), np.float32),
                                    np.zeros((dirs, 4, 3), np.float32),
                                    np.zeros((dirs, 4, 4), np.float32)], dict(attrs, hidden_size=4))
    with pytest.raises(CompileError) as err:
        plan_cases([bad], "generic", False)
    text = err.value.one_line()
    assert "case0" in text and message in text and "\n" not in text, text


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
