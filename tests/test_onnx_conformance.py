"""ONNX's backend conformance suite through our backend (megcc_builder.onnx_backend).

Every CPU case of ONNX's generated node tests, the simple-model, PyTorch-converted and
PyTorch-operator model tests is compiled to C, built and run on the host, and checked with
ONNX's own tolerances (the real-model cases run in test_onnx_real_models.py). Cases in
onnx_expected_failures.EXPECTED_FAILURES carry a one-line reason; they are
`unittest.expectedFailure`s, so a listed case that starts to pass fails the run just like
an unlisted case that breaks. The pass counts per category are printed at the end of the
run ("onnx conformance" section).
"""
from megcc_builder import onnx_backend
from onnx_expected_failures import EXPECTED_FAILURES
from onnx_suite import all_cases, suite_cases

CATEGORIES = ("NodeModel", "SimpleModel", "PyTorchConvertedModel", "PyTorchOperatorModel")

globals().update(suite_cases(onnx_backend, __name__, r"_cpu$", EXPECTED_FAILURES, CATEGORIES))


def test_expected_failures_name_real_cases():
    """A stale entry (a case ONNX renamed or removed) must not linger in the list."""
    names = {n for c in CATEGORIES for n in all_cases(onnx_backend)[c]}
    stale = sorted(set(EXPECTED_FAILURES) - names)
    assert not stale, f"expected failures that are not suite cases: {stale[:10]}"


def test_every_expected_failure_has_a_reason():
    bad = [n for n, why in EXPECTED_FAILURES.items() if not why.strip() or "\n" in why]
    assert not bad, f"expected failures without a one-line reason: {bad[:10]}"
