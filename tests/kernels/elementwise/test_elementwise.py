"""Every element-wise case (cases.py) against every element-wise implementation that
applies to it, on every platform that runs that implementation."""
import pytest

from kernels.elementwise.cases import BOOK
from kernels.harness import check_choice, choice_params


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_elementwise(impl, platform, case):
    BOOK.check(impl, platform, case)


@pytest.mark.parametrize("platform,case", choice_params(BOOK))
def test_cost_model_choice(platform, case):
    check_choice(BOOK, platform, case)
