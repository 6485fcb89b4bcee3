"""onnxruntime's fused dynamic-quantization ops -> the ops they are made of.

`com.microsoft.DynamicQuantizeMatMul(A, B, b_scale, [b_zero_point], [bias])` is what
onnxruntime's optimiser makes of quantize_dynamic's DynamicQuantizeLinear -> MatMulInteger
-> Cast -> Mul (-> Add) chain, and what a model saved after that optimisation contains. Its
kernel (contrib_ops/cpu/quantization/dynamic_quantize_matmul.cc) quantizes A exactly as
DynamicQuantizeLinear does (uint8, range widened to include 0, ties to even) and then runs
MatMulIntegerToFloat's computation, float(acc) * (a_scale * b_scale[n]) + bias[n]; so it
becomes those two ops, each with its own bit-exact kernel. Runs before the QDQ pass and
shape inference."""
from __future__ import annotations

from ..ir import Graph, Op


def expand_dynamic_quantize_matmul(graph: Graph) -> Graph:
    if not any(op.type == "DynamicQuantizeMatMul" for op in graph.ops):
        return graph
    taken = set(graph.tensors) | {n for op in graph.ops for n in op.outputs}
    new_ops = []
    for op in graph.ops:
        if op.type != "DynamicQuantizeMatMul":
            new_ops.append(op)
            continue
        ins = list(op.inputs) + [""] * (5 - len(op.inputs))
        if len(op.inputs) < 3 or not all(ins[:3]) or len(op.inputs) > 5:
            raise graph.error("expects inputs A, B, b_scale, [b_zero_point], [bias]", op)
        a, b, b_scale, b_zp, bias = ins[:5]
        names = []
        for what in ("quantized", "scale", "zero_point"):
            base = f"{op.outputs[0]}_a_{what}"
            name, k = base, 1
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            names.append(name)
        name = op.name or op.outputs[0]
        new_ops.append(Op("DynamicQuantizeLinear", [a], names, {}, f"{name}/quantize_a"))
        new_ops.append(Op("MatMulIntegerToFloat", [names[0], b, names[1], b_scale, names[2],
                                                   b_zp, bias], [op.outputs[0]], {}, name))
    graph.ops = new_ops
    return graph
