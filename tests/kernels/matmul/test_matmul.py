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


def test_portable_gemm_kernel_names_encode_trans_a(tmp_path):
    """Two Gemms differing only in transA (no C input) once got one kernel name and two
    sources, and the model did not compile; now each gets its own kernel."""
    import numpy as np
    import onnx

    from kernels.harness import Case, Const, build_model
    from megcc_builder.compiler import ModelSpec, compile_bundle

    cases = [Case("t0", "Gemm", [np.ones((3, 4), np.float32), Const(np.ones((4, 5), np.float32))],
                  {"transA": 0}, opset=13),
             Case("t1", "Gemm", [np.ones((4, 3), np.float32), Const(np.ones((4, 5), np.float32))],
                  {"transA": 1}, opset=13)]
    path = str(tmp_path / "m.onnx")
    onnx.save(build_model(cases), path)
    bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path), save_c_array=False,
                            isa="generic")
    names = {k.name for k in bundle.kernels}
    assert {"gemm_nn_f32", "gemm_tn_f32"} <= names, names
