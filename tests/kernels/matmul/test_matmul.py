"""Every matmul case (cases.py) against every matmul implementation that applies to it, on
every platform that runs that implementation; and the cost model's pick where a case
records one."""
import pytest

from kernels.matmul.cases import BOOK
from kernels.harness import check_choice, choice_params


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_matmul(impl, platform, case):
    BOOK.check(impl, platform, case)


@pytest.mark.parametrize("platform,case", choice_params(BOOK))
def test_cost_model_choice(platform, case):
    check_choice(BOOK, platform, case)


@pytest.mark.xfail(strict=True, reason="portable Gemm kernel names omit transA (no C input): "
                   "two Gemms differing only in transA get one name, two sources")
def test_portable_gemm_kernel_names_encode_trans_a():
    import numpy as np
    from kernels.harness import Const, build_model, Case

    a = np.ones((3, 4), np.float32)
    cases = [Case(f"t{t}", "Gemm", [a, Const(np.ones((3 if t else 4, 5), np.float32))],
                  {"transA": t}, opset=13) for t in (0, 1)]
    cases[1].inputs[0] = np.ones((4, 3), np.float32)
    cases[1].inputs[1] = Const(np.ones((4, 5), np.float32))
    from megcc_builder.compiler import ModelSpec, compile_bundle
    import os, tempfile, onnx
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        onnx.save(build_model(cases), path)
        compile_bundle([ModelSpec("m", path)], tmp, save_c_array=False, isa="generic")
