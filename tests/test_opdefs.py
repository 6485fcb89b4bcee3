"""The IR's definitions of non-ONNX operators (ir/opdefs) and its expression language
(ir/expr.py) agree with the passes and kernels that use them."""
import numpy as np
import pytest

from megcc_builder.ir import CompileError, Graph, Op, Tensor
from megcc_builder.ir import expr
from megcc_builder.ir.opdefs import OPDEFS, check, check_attrs, create
from megcc_builder.kernels import has_kernel
from megcc_builder.kernels.elementwise import generic as ew_kernels


def test_every_opdef_has_a_kernel():
    """...or names the pass that rewrites it into ops that have kernels."""
    import importlib

    for op_type, opdef in OPDEFS.items():
        if opdef.expanded_by:
            module, function = opdef.expanded_by.rsplit(".", 1)
            assert callable(getattr(importlib.import_module(f"megcc_builder.{module}"),
                                    function, None)), opdef.expanded_by
            assert op_type in importlib.import_module(f"megcc_builder.{module}").__doc__
        else:
            assert has_kernel(op_type), op_type


def test_expression_vocabulary_matches_the_c_templates():
    assert expr.COMPARE == set(ew_kernels.COMPARE_OPS)
    assert expr.LOGICAL == set(ew_kernels.BOOL_OPS)


def _graph(*tensors):
    g = Graph("test")
    for t in tensors:
        g.add_tensor(t)
    return g


def test_relayout_declares_its_output():
    g = _graph(Tensor("x", (1, 8, 5, 6)))
    create(g, "Relayout", ["x"], ["x44"], {"to": "nchw44"}, "r")
    assert g.tensors["x44"].shape == (1, 2, 5, 6, 4) and g.tensors["x44"].layout == "nchw44"
    create(g, "Relayout", ["x44"], ["back"], {"to": "nchw"}, "r2")
    assert g.tensors["back"].shape == (1, 8, 5, 6) and g.tensors["back"].layout == "nchw"


def test_pool_shape_follows_onnx_ceil_mode():
    g = _graph(Tensor("x", (1, 1, 6, 6, 4), layout="nchw44"))
    create(g, "PoolNCHW44", ["x"], ["y"], {"mode": "MaxPool", "kernel_shape": [3, 3],
                                           "strides": [2, 2], "pads": [0, 0, 1, 1],
                                           "ceil_mode": 1}, "p")
    assert g.tensors["y"].shape == (1, 1, 3, 3, 4)


def test_conv_output_is_checked_against_the_opdef():
    g = _graph(Tensor("x", (1, 2, 8, 8, 4), layout="nchw44"),
               Tensor("y", (1, 4, 8, 8, 4), layout="nchw44"))  # wrong: stride 2 gives 4x4
    g.add_const("w", np.zeros((4, 2, 3, 3, 4, 4), np.float32))
    attrs = {"kind": "dense", "strides": [2, 2], "pads": [1, 1, 1, 1]}
    with pytest.raises(CompileError, match="definition gives"):
        create(g, "ConvNCHW44", ["x", "w", ""], ["y"], attrs, "c")


def test_attributes_are_validated():
    op = Op("Relayout", ["x"], ["y"], {"too": "nchw44", "_note": 1}, "r")
    assert check_attrs(op) == ["unknown attribute 'too'", "missing attribute 'to'"]


def test_fused_elementwise_broadcasts():
    g = _graph(Tensor("a", (1, 3, 4, 4)), Tensor("b", (1, 3, 1, 1)), Tensor("y", (1, 3, 4, 4)))
    op = Op("FusedElementwise", ["a", "b"], ["y"],
            {"expr": ("Relu", ("Add", ("in", 0), ("in", 1))), "chain": "Add+Relu"}, "f")
    check(g, op)
