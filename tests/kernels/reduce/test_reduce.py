"""Every reduce-family case (cases.py: Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax)
against every implementation that applies to it, on every platform that runs it."""
import pytest

from kernels.reduce.cases import BOOK


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_reduce(impl, platform, case):
    BOOK.check(impl, platform, case)
