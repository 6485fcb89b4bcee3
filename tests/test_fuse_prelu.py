"""PRelu after a Conv runs in the conv's epilogue (passes/fuse.py _fold_prelu): no
separate PRelu instruction is left, on every level and layout. The numbers are checked
against onnxruntime by the kernel cases (tests/kernels/conv/cases.py PRELU, every
implementation on host and under qemu)."""
import numpy as np
import pytest

from kernels.conv.cases import BOOK
from kernels.harness import plan_cases
from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.options import CompileOptions
from onnx import TensorProto, helper, numpy_helper

PRELU_CASES = [c for c in BOOK.cases if c.id.startswith("prelu")]


@pytest.mark.parametrize("level", ["generic", "x86_64-v3", "arm64-neon", "armv7-neon"])
@pytest.mark.parametrize("nchw44,fp16", [(False, False), (False, True), (True, False)])
def test_no_prelu_instruction_left(level, nchw44, fp16):
    cases = [c for c in PRELU_CASES if c.nchw44 == nchw44 and c.compress_fp16 == fp16]
    plan = plan_cases(cases, level, nchw44, fp16)
    names = [i.kernel.name for i in plan.instrs]
    convs = [n for n in names if n.startswith("conv")]
    assert len(convs) == len(cases), names
    assert all("_prelu" in n for n in convs), names
    assert not [n for n in names if "leaky" in n], names


def _conv_prelu_model(slope: np.ndarray, opset: int = 13):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w")
    s = numpy_helper.from_array(slope.astype(np.float32), "s")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "s"], ["y"])]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w, s]),
                             opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("shape", [(1, 1, 1, 6), (6,), (4, 6, 1), (1, 4, 6, 6)])
def test_slope_not_per_channel_stays_separate(shape):
    """A slope varying along W (a 1-D slope broadcasts to the last axis from opset 7) or per
    element is not a per-channel epilogue: the PRelu stays an element-wise op."""
    slope = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 10
    plan = build_plan(load_onnx(_conv_prelu_model(slope)), "m", CompileOptions(isa="generic"))
    names = [i.kernel.name for i in plan.instrs]
    assert any("leaky" in n for n in names) and not any("_prelu" in n for n in names), names
