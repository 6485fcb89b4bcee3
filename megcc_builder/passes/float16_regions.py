"""float16 models computed in float32, converting only at the edges of float16 regions.

ONNX graphs with float16 tensors (converted models, float16 conformance cases) have kernels
for float32; converting around every operator (what promote.py does op by op) costs two
conversions and a rounding per operator boundary and stops fusion. Here every float16
tensor inside the graph becomes float32 (constants widened exactly), so a float16 region
computes as one float32 region, and conversions remain only where float16 values enter or
leave the computation:

- a float16 graph input: one Cast to float32 after it (the model's interface keeps its
  dtype); a float16 graph output: one Cast from float32 before it;
- an explicit Cast/CastLike to float16 from a floating-point value (a mixed-precision
  model's region entry, e.g. onnxconverter-common's keep_io_types): the value is rounded to
  float16 and back (two conversions), so the region starts from the values it would have
  had; from an integer or bool, the Cast goes straight to float32 (float16's integers up
  to 2048 are exact in both);
- ops whose output dtype an attribute fixes (ConstantOfShape, EyeLike, Random*) keep their
  float16 output, followed by a Cast to float32.
Inside the region the arithmetic is float32: results differ from a float16 evaluation by
float16's rounding (relative 2^-11 per operation), usually in the direction of the exact
value. Conv/Gemm/MatMul weights that float16 represents exactly (those of a float16 model,
unless batch-norm folding changed them) are stored as float16 again after the other passes
(compiler.build_plan, passes/compress_fp16.py: lossless, the kernels widen them), so the
model file does not double.
A graph with no operator that needs a float32 kernel (promote.FLOAT32_ONLY: only data
movement and element-wise operations, which read float16 directly) is left as it is.
`conversion_count` is what `megcc inspect` reports. A graph with subgraphs (If/Loop bodies
read outer tensors with their types) keeps promote.py's conversions around each operator.

bfloat16 tensors get the same treatment (ONNX_BFLOAT16 conversions, rounded to nearest
even), whatever the operators: no kernel computes in bfloat16, and a region of pure data
movement converts exactly both ways. A graph with subgraphs and bfloat16 is left alone
(its operators then refuse bfloat16 clearly).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..ir import Graph, Op, Tensor
from .promote import FLOAT32_ONLY, promote_float16

F16, F32, BF16 = "float16", "float32", "bfloat16"
ONNX_FLOAT16, ONNX_FLOAT, ONNX_BFLOAT16 = 10, 1, 16
# ops whose output dtype an attribute decides, not their inputs
ATTR_TYPED = {"ConstantOfShape", "EyeLike", "RandomNormal", "RandomUniform",
              "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial"}
CASTS = {"Cast", "CastLike"}
FLOATING = {"float16", "float32", "float64", "bfloat16"}


def _has_subgraph(op: Op) -> bool:
    return any(hasattr(v, "node") for v in op.attrs.values())


def compute_float16_in_float32(graph: Graph) -> Graph:
    """Rewrite the graph (see the module doc); a graph without float16 or bfloat16 is
    unchanged."""
    tensors = graph.tensors
    if any(t.dtype == BF16 for t in tensors.values()) and \
            not any(map(_has_subgraph, graph.ops)):
        graph = _compute_in_float32(graph, BF16, ONNX_BFLOAT16)
    if not any(t.dtype == F16 for t in tensors.values()):
        return graph
    if not any(op.type in FLOAT32_ONLY for op in graph.ops):
        # nothing needs float32 kernels: data movement and element-wise kernels read
        # float16 directly, and converting would only add work
        return graph
    if any(map(_has_subgraph, graph.ops)):  # a body's types are not ours to change
        return promote_float16(graph)
    return _compute_in_float32(graph, F16, ONNX_FLOAT16)


def _compute_in_float32(graph: Graph, narrow: str, onnx_code: int) -> Graph:
    """Every `narrow` (float16, bfloat16) tensor inside the graph becomes float32."""
    tensors = graph.tensors
    interface = set(graph.inputs) | set(graph.outputs)
    keep = {o for op in graph.ops if op.type in ATTR_TYPED for o in op.outputs if o}
    cast_outputs = {op.outputs[0]: op for op in graph.ops if op.type in CASTS
                    and tensors[op.outputs[0]].dtype == narrow}

    # 1. every other narrow tensor becomes float32
    widened = set()
    for name, t in list(tensors.items()):
        if t.dtype != narrow or name in interface or name in keep:
            continue
        if t.is_const:
            tensors[name] = Tensor(name, t.shape, F32, np.asarray(t.data).astype(np.float32),
                                   t.quant, t.layout)
        else:
            t.dtype = F32
        widened.add(name)

    ops: List[Op] = []
    # 2. float16 graph inputs: converted once, consumers read the float32 copy
    renamed: Dict[str, str] = {}
    for name in graph.inputs:
        if tensors[name].dtype == narrow and any(name in op.inputs for op in graph.ops):
            renamed[name] = _add_like(graph, name, "_f32", F32)
            ops.append(Op("Cast", [name], [renamed[name]], {"to": ONNX_FLOAT},
                          renamed[name]))
    for op in graph.ops:
        op.inputs = [renamed.get(n, n) for n in op.inputs]
        after: List[Op] = []
        for k, out in enumerate(op.outputs):
            if not out:
                continue
            if out in graph.outputs and tensors[out].dtype == narrow and op.type not in CASTS \
                    and out not in keep:
                # 3. a float16 graph output: computed in float32, converted once
                tmp = _add_like(graph, out, "_f32", F32)
                op.outputs[k] = tmp
                renamed[out] = tmp  # later readers inside the graph take the float32 value
                after.append(Op("Cast", [tmp], [out], {"to": onnx_code},
                                out + ("_to_f16" if narrow == F16 else "_to_bf16")))
            elif out in keep and op.type in ATTR_TYPED and tensors[out].dtype == narrow \
                    and out not in interface:
                # 4. an attribute-typed float16 value enters the float32 computation
                f16 = _add_like(graph, out, "_f16" if narrow == F16 else "_bf16", narrow)
                op.outputs[k] = f16
                tensors[out] = Tensor(out, tensors[out].shape, F32)
                after.append(Op("Cast", [f16], [out], {"to": ONNX_FLOAT}, out + "_to_f32"))
        if op.type in CASTS and op.outputs[0] in cast_outputs and op.outputs[0] in widened:
            ops += _cast_to_rounded(graph, op, narrow, onnx_code)
        elif op.type in CASTS and tensors[op.inputs[0]].dtype == tensors[op.outputs[0]].dtype:
            # a region's exit to float32 that now starts from float32: no copy, a view
            ops.append(Op("Identity", [op.inputs[0]], list(op.outputs), {}, op.name))
        else:
            ops.append(op)
        ops += after
    graph.ops = ops
    return graph


def has_float16_weights(graph: Graph) -> bool:
    """A float16 model's constants (checked before the rewrite): its Conv/Gemm/MatMul
    weights are then stored as float16 whenever that is exact (compress_weights_fp16's
    exact_only), after the passes that fold into them (batch norm) have run."""
    return any(t.is_const and t.dtype == F16 for t in graph.tensors.values())


def _add_like(graph: Graph, name: str, suffix: str, dtype: str) -> str:
    new = graph.unique_name(name + suffix)
    graph.add_tensor(Tensor(new, graph.tensors[name].shape, dtype))
    return new


def _cast_to_rounded(graph: Graph, op: Op, narrow: str = F16,
                     onnx_code: int = ONNX_FLOAT16) -> List[Op]:
    """A Cast(Like) to float16 (bfloat16) whose output is now float32: from a floating-point
    value, round to float16 (bfloat16) and widen back; from anything else, convert straight
    to float32."""
    src, out = op.inputs[0], op.outputs[0]
    if graph.tensors[src].dtype not in FLOATING:
        return [Op("Cast", [src], [out], {"to": ONNX_FLOAT}, op.name)]
    mid = _add_like(graph, out, "_f16" if narrow == F16 else "_bf16", narrow)
    return [Op("Cast", [src], [mid], {"to": onnx_code}, op.name),
            Op("Cast", [mid], [out], {"to": ONNX_FLOAT}, (op.name or out) + "_to_f32")]


def conversion_count(instrs, graph: Graph) -> int:
    """Instructions converting between float16 and float32 (either way)."""
    n = 0
    for ins in instrs:
        dts = {graph.tensors[x].dtype for x in list(ins.inputs[:1]) + list(ins.outputs[:1]) if x}
        if dts == {F16, F32} and ins.kernel.name.startswith("cast_"):
            n += 1
    return n
