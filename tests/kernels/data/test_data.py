"""Every data-movement case (cases.py) against every implementation that applies to it; the
errors a user can hit."""
import numpy as np
import pytest

from kernels.data.cases import BOOK, Const, rand, scales
from kernels.harness import Case, build_model
from megcc_builder.host import run_onnx
from megcc_builder.ir import CompileError


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_data(impl, platform, case):
    BOOK.check(impl, platform, case)


# --- errors a user can hit ----------------------------------------------------------------

def test_gather_constant_index_out_of_range():
    x = rand(3, 4)
    model = build_model([Case("bad", "Gather", [x, Const(np.array([3], np.int64))], {})])
    with pytest.raises(CompileError, match="out of range"):
        run_onnx(model, {"c0_in0": x})


def test_gather_runtime_index_out_of_range_fails_at_run_time():
    x, idx = rand(3, 4), np.array([1, 5], np.int64)
    model = build_model([Case("bad", "Gather", [x, idx], {})])
    with pytest.raises(RuntimeError):
        run_onnx(model, {"c0_in0": x, "c0_in1": idx})


def test_slice_runtime_axes_are_refused():
    # run-time starts/ends/steps are computed shapes now (tests/test_computed_shapes.py);
    # run-time axes still need their value at compile time
    x, axes = rand(4, 5), np.array([1], np.int64)
    model = build_model([Case("bad", "Slice", [x, Const(np.array([1], np.int64)),
                                               Const(np.array([3], np.int64)), axes])])
    with pytest.raises(CompileError, match="input 3.*must be a constant"):
        run_onnx(model, {"c0_in0": x, "c0_in3": axes})


def test_reflect_pad_larger_than_axis_is_refused():
    x = rand(2, 3)
    model = build_model([Case("bad", "Pad", [x, Const(np.array([0, 3, 0, 0], np.int64))],
                              {"mode": "reflect"}, opset=13)])
    with pytest.raises(CompileError, match="reflect"):
        run_onnx(model, {"c0_in0": x})


def test_cubic_resize_of_integers_is_refused_clearly():
    x = rand(1, 1, 3, 3, dtype=np.int8, low=-100, high=100)
    model = build_model([Case("cubic", "Resize", [x, None, scales(1, 1, 2, 2)],
                              {"mode": "cubic"}, opset=13)])
    with pytest.raises(CompileError, match="cubic Resize on int8 is not supported"):
        run_onnx(model, {"c0_in0": x})
