"""Operators the IR carries beyond ONNX: one module per family declares each op's
attributes and how its outputs' shapes and dtypes follow from its inputs.

ONNX operators need no entry: ONNX's own schemas define them (ir/infer.py). The ops here
are created by our passes (fusion, the NCHW44 layout); a new family (CV operators,
MegEngine-only operators) is one more module imported below.
"""
from . import cv, fused, nchw44, quant, warp  # noqa: F401  (importing a family registers its ops)
from .base import (OPDEFS, Attr, OpDef, check, check_attrs, create, infer_outputs,  # noqa: F401
                   lookup)
