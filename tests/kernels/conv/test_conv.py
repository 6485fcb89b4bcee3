"""Every conv case (cases.py) against every conv implementation that applies to it, on
every platform that runs that implementation; and the cost model's pick where a case
records one."""
import pytest

from kernels.conv.cases import BOOK
from kernels.harness import check_choice, choice_params


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_conv(impl, platform, case):
    BOOK.check(impl, platform, case)


@pytest.mark.parametrize("platform,case", choice_params(BOOK))
def test_cost_model_choice(platform, case):
    check_choice(BOOK, platform, case)
