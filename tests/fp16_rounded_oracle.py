"""Independent oracles for enable_compress_fp16: the reference framework itself running the
model with the weights enable_compress_fp16 stores as float16 rounded to float16 and kept
float32 (onnxruntime for ONNX models, MegEngine for .mge dumps). Our compressed build is
exact when it matches this oracle within the float32 rule; what remains against the
float32 reference is then the rounding of the weights, a property of the model.

The weights rounded are those passes/compress_fp16.py compresses: the weight input (input
1) of convolutions and fully-connected layers with at least MIN_ELEMENTS elements, all
within float16's range. The compiler rounds them after folding a BatchNormalization that
follows a convolution into it (passes/fold_batchnorm.py), so the ONNX oracle folds those
first (float64 arithmetic, float32 results, as the pass does: an independent re-derivation,
not the pass itself) and rounds the folded weights.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from megcc_builder.passes.compress_fp16 import F16_MAX, MIN_ELEMENTS

ONNX_WEIGHTED = ("Conv", "Gemm", "MatMul")
DATA_MOVES = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity")
MGE_WEIGHTED = ("ConvBiasForward", "ConvolutionForward", "MatrixMul")


def _rounded(a: np.ndarray):
    """`a` rounded to float16 values in float32, or None if compress_fp16 leaves it."""
    a = np.asarray(a)
    if a.dtype != np.float32 or a.size < MIN_ELEMENTS or a.ndim < 2 \
            or not np.all(np.abs(a[np.isfinite(a)]) <= F16_MAX):
        return None
    return a.astype(np.float16).astype(np.float32)


def fold_conv_batchnorm(model: onnx.ModelProto) -> onnx.ModelProto:
    """Each BatchNormalization whose input is a Conv output read by it alone, folded into
    the Conv's weights and bias (constant statistics)."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    readers: dict = {}
    for n in g.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    outputs = {o.name for o in g.output}
    drop = []
    for bn in g.node:
        if bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1:
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or readers.get(bn.input[0]) != 1 \
                or bn.input[0] in outputs or conv.input[1] not in inits \
                or not all(i in inits for i in bn.input[1:5]) \
                or (len(conv.input) > 2 and conv.input[2] and conv.input[2] not in inits):
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(inits[i]).astype(np.float64)
                                  for i in bn.input[1:5])
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + eps)
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        b = (numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
             if len(conv.input) > 2 and conv.input[2] else np.zeros(w.shape[0]))
        wname, bname = conv.input[1] + "__folded", conv.output[0] + "__folded_bias"
        g.initializer.extend([
            numpy_helper.from_array((w * scale.reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32), wname),
            numpy_helper.from_array((b * scale + beta - mean * scale).astype(np.float32), bname)])
        del conv.input[1:]
        conv.input.extend([wname, bname])
        conv.output[0] = bn.output[0]
        drop.append(bn)
    for bn in drop:
        g.node.remove(bn)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    keep_in = [v for v in g.input if v.name in used or v.name not in inits]
    del g.input[:]
    g.input.extend(keep_in)
    return m


def onnx_rounded_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model (BatchNormalizations after convolutions folded) with its Conv/Gemm/MatMul
    weight initializers rounded to float16 values."""
    m = fold_conv_batchnorm(model)
    producer = {o: n for n in m.graph.node for o in n.output}
    weights = set()
    for n in m.graph.node:
        if n.op_type in ONNX_WEIGHTED and len(n.input) > 1:
            w = n.input[1]
            # the compiler sees a Reshape/Transpose of a constant as a constant: round its
            # source (rounding commutes with moving data)
            while w in producer and producer[w].op_type in DATA_MOVES:
                w = producer[w].input[0]
            weights.add(w)
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
