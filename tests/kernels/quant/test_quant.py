"""Every quantized-op case (cases.py) against every int8 implementation that applies to
it, on every platform that runs that implementation; onnxruntime is the oracle and integer
outputs must match it bit for bit."""
import pytest

from kernels.harness import check_choice, choice_params
from kernels.quant.cases import BOOK


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_quant(impl, platform, case):
    BOOK.check(impl, platform, case)


@pytest.mark.parametrize("platform,case", choice_params(BOOK))
def test_cost_model_choice(platform, case):
    check_choice(BOOK, platform, case)
