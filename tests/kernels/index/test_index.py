"""Every indexing case (cases.py) against every implementation that applies to it."""
import pytest

from kernels.index.cases import BOOK


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_index(impl, platform, case):
    BOOK.check(impl, platform, case)
