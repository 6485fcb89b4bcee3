"""Every element-wise case (cases.py) against every element-wise implementation that
applies to it, on every platform that runs that implementation."""
import pytest

from kernels.elementwise.cases import BOOK


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_elementwise(impl, platform, case):
    BOOK.check(impl, platform, case)
