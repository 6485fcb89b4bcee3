"""float16 tensors through float32 kernels: Cast in, compute in float32, Cast out.

Kernels of the heavy ops (convolution, matrix products, pooling, normalisations,
softmax, reductions) exist for float32; a float16 model keeps its float16 inputs and
outputs (rounded to nearest even on the way out) and computes these ops in float32, which
is also what most CPU runtimes do without native half arithmetic.
"""
import numpy as np

from ..ir import Graph, Op, Tensor

# Ops whose kernels compute in float32 only.
FLOAT32_ONLY = {
    "Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "LpPool", "GlobalLpPool", "Softmax", "LogSoftmax", "Hardmax",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN", "PRelu",
    "Resize", "Upsample", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
    "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ArgMax",
    "ArgMin", "LpNormalization", "GroupNormalization", "RMSNormalization", "Einsum",
    "GridSample", "MaxUnpool", "RNN", "GRU", "LSTM",
}


def promote_float16(graph: Graph) -> Graph:
    ops = []
    for op in graph.ops:
        if op.type not in FLOAT32_ONLY or not any(
                n and graph.tensors[n].dtype == "float16" for n in op.inputs + op.outputs):
            ops.append(op)
            continue
        for k, name in enumerate(op.inputs):
            if not name or graph.tensors[name].dtype != "float16":
                continue
            t = graph.tensors[name]
            new = graph.unique_name(name + "_f32")
            if t.is_const:
                graph.add_const(new, np.asarray(t.data).astype(np.float32))
            else:
                graph.add_tensor(Tensor(new, t.shape, "float32"))
                ops.append(Op("Cast", [name], [new], {"to": 1}, new))
            op.inputs[k] = new
        after = []
        for k, name in enumerate(op.outputs):
            if not name or graph.tensors[name].dtype != "float16":
                continue
            t = graph.tensors[name]
            new = graph.unique_name(name + "_f32")
            graph.add_tensor(Tensor(new, t.shape, "float32"))
            op.outputs[k] = new
            after.append(Op("Cast", [new], [name], {"to": 10}, name + "_to_f16"))
        ops.append(op)
        ops += after
    graph.ops = ops
    return graph
