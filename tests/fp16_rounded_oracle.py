"""Independent oracles for enable_compress_fp16: the reference framework itself running the
model with the weights enable_compress_fp16 stores as float16 rounded to float16 and kept
float32 (onnxruntime for ONNX models, MegEngine for .mge dumps). Our compressed build is
exact when it matches this oracle within the float32 rule; what remains against the
float32 reference is then the rounding of the weights, a property of the model.

The weights rounded are those passes/compress_fp16.py compresses: the weight input (input
1) of convolutions and fully-connected layers with at least MIN_ELEMENTS elements, all
within float16's range.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from megcc_builder.passes.compress_fp16 import F16_MAX, MIN_ELEMENTS

ONNX_WEIGHTED = ("Conv", "Gemm", "MatMul")
MGE_WEIGHTED = ("ConvBiasForward", "ConvolutionForward", "MatrixMul")


def _rounded(a: np.ndarray):
    """`a` rounded to float16 values in float32, or None if compress_fp16 leaves it."""
    a = np.asarray(a)
    if a.dtype != np.float32 or a.size < MIN_ELEMENTS or a.ndim < 2 \
            or not np.all(np.abs(a[np.isfinite(a)]) <= F16_MAX):
        return None
    return a.astype(np.float16).astype(np.float32)


def onnx_rounded_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its Conv/Gemm/MatMul weight initializers rounded to float16 values."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {n.input[1] for n in m.graph.node if n.op_type in ONNX_WEIGHTED and len(n.input) > 1}
    for k, t in enumerate(m.graph.initializer):
        if t.name in weights:
            r = _rounded(numpy_helper.to_array(t))
            if r is not None:
                m.graph.initializer[k].CopyFrom(numpy_helper.from_array(r, t.name))
    return m


def mge_rounded_weights(path: str, out_path: str) -> str:
    """A copy of the .mge dump with its convolution / matrix-multiply weights rounded."""
    from megengine.utils.network import Network

    net = Network.load(path)
    for opr in net.all_oprs:
        if type(opr).__name__ in MGE_WEIGHTED and len(opr.inputs) > 1:
            src = opr.inputs[1].owner
            if type(src).__name__ == "ImmutableTensor":
                r = _rounded(src.numpy())
                if r is not None:
                    src.set_value(r)
    net.dump(out_path, keep_var_name=2, keep_opr_name=True)
    return out_path
