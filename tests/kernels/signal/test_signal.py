"""Every signal-family case (cases.py: DFT) against every implementation that applies to
it, on every platform that runs it."""
import pytest

from kernels.signal.cases import BOOK


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_signal(impl, platform, case):
    BOOK.check(impl, platform, case)
