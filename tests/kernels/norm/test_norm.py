"""Every normalisation case (cases.py) against every implementation that applies to it;
the refusals a user can hit."""
import numpy as np
import pytest

from kernels.harness import Case, Const, build_model
from kernels.norm.cases import BOOK, rand
from megcc_builder.host import run_onnx
from megcc_builder.ir import CompileError


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_norm(impl, platform, case):
    BOOK.check(impl, platform, case)


def test_batchnorm_training_mode_is_refused():
    x = rand(2, 3, 4)
    stats = [Const(np.ones(3, np.float32)) for _ in range(4)]
    model = build_model([Case("bn", "BatchNormalization", [x] + stats,
                              {"training_mode": 1}, opset=15, n_out=3)])
    with pytest.raises(CompileError, match="training mode"):
        run_onnx(model, {"c0_in0": x})
