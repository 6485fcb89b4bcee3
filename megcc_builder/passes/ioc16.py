"""enable_ioc16: compute a float32 model in float16 on levels with half-precision arithmetic
(Armv8.2-A + FP16, level arm64-fp16), MegCC's `enable_ioc16`.

Every float32 operator a float16 kernel can compute is rewritten onto float16 tensors
(`<name>_f16` shadows of its activations, float16 copies of its constant weights and
biases): convolutions (packed GEMM, depthwise), fully-connected layers (Gemm / MatMul by a
constant, rewritten as MatMul of the (K, N) weights with the bias a third input), pooling,
trailing-axes means and maxima, element-wise operations and activations, softmax, and a
BatchNormalization left unfolded (after a Concat: a per-channel float16 Mul and Add). Which ones
can is the kernel registry's answer: the op is tried on float16 tensors and kept in float16
only if the cheapest implementation that applies is a float16 one (`*_neon64fp16_f16`).
Data movement (Reshape, Concat, Transpose, Gather, ...) follows its input: in float16 when
that is float16, so a region continues through it.

Conversions are inserted only at region boundaries: one Cast to float16 per float32 tensor
a float16 operator reads, one Cast back per float16 tensor a float32 operator (or the
graph's output) reads. Weights outside the float16 range (|w| > 65504) keep their operator
in float32, and so do the operators of an NCHW44 region (enable_nchw44 alone; with
enable_nchw88 the float16 region is laid out in NCHW88 after this pass,
passes/layout_nchw44.layout_nchw88). On a level without float16 arithmetic the option is
refused, naming the level.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from ..ir import CompileError, Graph, Op, Tensor, symbolic
from .dce import eliminate_dead_code

ONNX_FLOAT16, ONNX_FLOAT = 10, 1
F16_MAX = 65504.0

# operators computed by a float16 kernel when the registry finds one that applies
ARITHMETIC = {"Conv", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool",
              "GlobalMaxPool", "ReduceMean", "ReduceMax", "Relu", "Clip", "HardSwish",
              "Sigmoid", "Add", "Sub", "Mul", "Div", "Max", "Min", "Neg", "Abs", "Exp", "Tanh",
              "HardSigmoid", "FusedElementwise", "Softmax"}
# operators that only move data (any element type): float16 when their input already is
DATA = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Concat", "Transpose",
        "Gather", "Slice", "Split", "Dropout"}


def _fc_weights(op: Op, graph: Graph):
    """(B as (K, N), bias (N,) or None) of a float32 FC layer this pass runs in float16."""
    if op.type not in ("Gemm", "MatMul") or len(op.inputs) < 2:
        return None
    x, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if x.dtype != "float32" or x.is_const or b.dtype != "float32" or not b.is_const \
            or len(b.shape) != 2 or len(x.shape) != 2:
        return None
    act = op.attrs.get("activation")
    if act is not None and act != ("Relu", ("in", 0)):
        return None
    w = np.asarray(b.data, np.float32)
    bias = None
    if op.type == "Gemm":
        if int(op.attrs.get("transA", 0)) or float(op.attrs.get("alpha", 1.0)) != 1.0:
            return None
        if int(op.attrs.get("transB", 0)):
            w = w.T
        beta = float(op.attrs.get("beta", 1.0))
        if len(op.inputs) > 2 and op.inputs[2] and beta != 0.0:
            c = graph.tensors[op.inputs[2]]
            if not c.is_const or c.dtype != "float32" or c.data.size not in (1, w.shape[1]) \
                    or (len(c.shape) == 2 and c.shape[0] != 1):
                return None
            bias = np.broadcast_to(np.asarray(c.data, np.float32).reshape(-1),
                                   (w.shape[1],)) * np.float32(beta)
    elif len(op.inputs) > 2:
        return None
    if _out_of_range(w) or (bias is not None and _out_of_range(bias)):
        return None
    return np.ascontiguousarray(w), bias


def _batchnorm_affine(op: Op, graph: Graph):
    """(scale, shift) shaped (C, 1, ..., 1) of an inference BatchNormalization with constant
    statistics on an N-D (N >= 3) float32 activation (one left unfolded by
    passes/fold_batchnorm.py: after a Concat, as in DenseNet), or None."""
    if op.type != "BatchNormalization" or len(op.inputs) != 5 or len([o for o in op.outputs if o]) != 1:
        return None
    x = graph.tensors[op.inputs[0]]
    params = [graph.tensors[n] for n in op.inputs[1:]]
    if x.dtype != "float32" or x.is_const or len(x.shape) < 3 or int(op.attrs.get("training_mode", 0)) \
            or not all(t.is_const and t.dtype == "float32" for t in params):
        return None
    gamma, beta, mean, var = (np.asarray(t.data, np.float64).reshape(-1) for t in params)
    scale = gamma / np.sqrt(var + float(op.attrs.get("epsilon", 1e-5)))
    shift = beta - mean * scale
    shape = (-1,) + (1,) * (len(x.shape) - 2)
    scale, shift = scale.astype(np.float32).reshape(shape), shift.astype(np.float32).reshape(shape)
    if _out_of_range(scale) or _out_of_range(shift):
        return None
    return scale, shift


def _out_of_range(a: np.ndarray) -> bool:
    a = np.asarray(a, np.float64)
    return bool(np.any(np.abs(a[np.isfinite(a)]) > F16_MAX))


class _Rewriter:
    def __init__(self, graph: Graph, isa):
        self.graph, self.isa = graph, isa
        self.shadow: Dict[str, str] = {}       # float32 activation -> its float16 shadow
        self.const16: Dict[str, str] = {}      # float32 constant -> its float16 copy
        self.in_f16: set = set()               # float32 names whose value is computed in float16
        self.widened: set = set()              # float32 names widened exactly from float16

    def shadow_of(self, name: str) -> str:
        if name not in self.shadow:
            t = self.graph.tensors[name]
            s = self.graph.unique_name(name + "_f16")
            self.graph.add_tensor(Tensor(s, t.shape, "float16", layout=t.layout))
            self.shadow[name] = s
        return self.shadow[name]

    def const_of(self, name: str) -> Optional[str]:
        if name not in self.const16:
            data = np.asarray(self.graph.tensors[name].data, np.float32)
            if _out_of_range(data):
                return None
            c = self.graph.unique_name(name + "__f16")
            self.graph.add_const(c, data.astype(np.float16))
            self.const16[name] = c
        return self.const16[name]

    def batchnorm_trial(self, op: Op) -> Optional[List[Op]]:
        """A standalone inference BatchNormalization as y = x * scale + shift (float16
        Mul and Add with per-channel constants), if float16 kernels take both."""
        affine = _batchnorm_affine(op, self.graph)
        if affine is None:
            return None
        g = self.graph
        names = []
        for what, value in zip(("scale", "shift"), affine):
            names.append(g.unique_name(f"{op.outputs[0]}__bn_{what}_f16"))
            g.add_const(names[-1], value.astype(np.float16))
        x16, y16 = self.shadow_of(op.inputs[0]), self.shadow_of(op.outputs[0])
        t = g.unique_name(op.outputs[0] + "__bn_scaled_f16")
        g.add_tensor(Tensor(t, g.tensors[y16].shape, "float16", layout=g.tensors[y16].layout))
        ops = [Op("Mul", [x16, names[0]], [t], {}, op.name + "_scale"),
               Op("Add", [t, names[1]], [y16], {}, op.name + "_shift")]
        return ops if all(self.float16_kernel_takes(o) for o in ops) else None

    def trial(self, op: Op) -> Optional[Op]:
        """`op` on float16 tensors, or None if one of its constants is out of range."""
        g = self.graph
        if op.type in ("Gemm", "MatMul"):
            fc = _fc_weights(op, g)
            if fc is None:
                return None
            w, bias = fc
            wname = g.unique_name(op.inputs[1] + "__kn_f16")
            g.add_const(wname, w.astype(np.float16))
            inputs = [self.shadow_of(op.inputs[0]), wname]
            if bias is not None:
                bname = g.unique_name(op.outputs[0] + "__bias_f16")
                g.add_const(bname, np.asarray(bias).astype(np.float16))
                inputs.append(bname)
            attrs = {"activation": op.attrs["activation"]} if op.attrs.get("activation") else {}
            return Op("MatMul", inputs, [self.shadow_of(op.outputs[0])], attrs, op.name)
        inputs = []
        for n in op.inputs:
            t = g.tensors.get(n) if n else None
            if t is None or t.dtype != "float32":
                inputs.append(n)
            elif t.is_const:
                c = self.const_of(n)
                if c is None:
                    return None
                inputs.append(c)
            else:
                inputs.append(self.shadow_of(n))
        outputs = [self.shadow_of(n) if n and g.tensors[n].dtype == "float32" else n
                   for n in op.outputs]
        return Op(op.type, inputs, outputs, dict(op.attrs), op.name)

    def float16_kernel_takes(self, op16: Op) -> bool:
        """Whether the cheapest implementation applying to `op16` is a float16 one."""
        from ..kernels import registry

        ok, _ = registry.candidates(op16, self.graph, self.isa)
        if not ok:
            return False
        with symbolic.hint_only():  # as the registry ranks: a symbolic extent at its hint
            best = min(ok, key=lambda impl: impl.cost(op16, self.graph, self.isa)
                       if impl.cost else float("inf"))
        return best.dtypes is not None and "float16" in best.dtypes

    def convertible_layout(self, op: Op) -> bool:
        """Whether `op`'s activations are plain NCHW float32 (not an NCHW44 region)."""
        g = self.graph
        return all(g.tensors[n].layout == "nchw" and g.tensors[n].dtype == "float32"
                   for n in list(op.inputs[:1]) + list(op.outputs[:1]) if n)

    def convertible(self, op: Op) -> Optional[Op]:
        g = self.graph
        floats = [g.tensors[n] for n in list(op.inputs) + list(op.outputs)
                  if n and g.tensors[n].dtype in ("float32", "float16", "float64")]
        if not floats or any(t.dtype != "float32" for t in floats):
            return None
        if not all(n and g.tensors[n].dtype == "float32" for n in op.outputs[:1]):
            return None
        if any(t.layout != "nchw" for t in floats):
            return None  # an NCHW44 region (enable_nchw44) stays float32 (NCHW88 comes later)
        if op.type in DATA:
            acts = [n for n in op.inputs if n and not g.tensors[n].is_const
                    and g.tensors[n].dtype == "float32"]
            if not acts or not any(n in self.in_f16 or n in self.widened for n in acts):
                return None
            return self.trial(op)
        if op.type not in ARITHMETIC:
            return None
        op16 = self.trial(op)
        if op16 is None or not self.float16_kernel_takes(op16):
            return None
        return op16

    def run(self) -> List[Op]:
        g = self.graph
        out: List[Op] = []
        have32 = set(g.inputs) | {n for n, t in g.tensors.items() if t.is_const}
        have16: set = set()
        # a float32 value widened from float16 (a float16 model's region entry, exact) is
        # read as that float16 value: no conversion back
        for op in g.ops:
            if op.type == "Cast" and op.attrs.get("to") == ONNX_FLOAT and op.inputs \
                    and g.tensors[op.inputs[0]].dtype == "float16":
                self.shadow[op.outputs[0]] = op.inputs[0]
                have16.add(op.inputs[0])
                self.widened.add(op.outputs[0])

        def need16(name):  # a float16 reader of float32 `name`
            s = self.shadow_of(name)
            if s not in have16:
                out.append(Op("Cast", [name], [s], {"to": ONNX_FLOAT16}, s + "_cast"))
                have16.add(s)

        def need32(name):  # a float32 reader of `name`, computed in float16
            if name in self.in_f16 and name not in have32:
                out.append(Op("Cast", [self.shadow[name]], [name], {"to": ONNX_FLOAT},
                              name + "_cast_f32"))
                have32.add(name)

        for op in g.ops:
            if (op.type == "Cast" and op.attrs.get("to") == ONNX_FLOAT16 and op.inputs
                    and op.inputs[0] in self.in_f16):
                # rounding a value computed in float16 to float16 (a float16 model's exit)
                out.append(Op("Identity", [self.shadow[op.inputs[0]]], list(op.outputs), {},
                              op.name))
                continue
            bn16 = self.batchnorm_trial(op) if self.convertible_layout(op) else None
            if bn16 is not None:
                if op.inputs[0] not in self.in_f16:
                    need16(op.inputs[0])
                out.extend(bn16)
                self.in_f16.add(op.outputs[0])
                have16.add(self.shadow[op.outputs[0]])
                continue
            op16 = self.convertible(op)
            if op16 is None:
                for n in op.inputs:
                    if n:
                        need32(n)
                out.append(op)
                have32.update(n for n in op.outputs if n)
                continue
            for n, n16 in zip(op.inputs, op16.inputs):
                if n and n16 != n and n in self.shadow and n16 == self.shadow[n]:
                    if n not in self.in_f16:
                        need16(n)
            out.append(op16)
            for n, n16 in zip(op.outputs, op16.outputs):
                if n and n16 != n:
                    self.in_f16.add(n)
                    have16.add(n16)
        for n in g.outputs:
            need32(n)
        return out


def float16_model_in_float16(graph: Graph, isa) -> Graph:
    """A float16 model (computed in float32 by passes/float16_regions.py) on a level with
    float16 arithmetic: its float32 region back to float16 where the kernels take it, the
    conversions at its edges cancelled (exact both ways)."""
    if isa.vec("f16").gemm is None:
        return graph
    graph.ops = _Rewriter(graph, isa).run()
    return eliminate_dead_code(graph)


def compute_in_float16(graph: Graph, isa) -> Graph:
    if isa.vec("f16").gemm is None:
        raise CompileError(f"enable_ioc16 computes in float16, and ISA level '{isa.name}' has "
                           "no float16 arithmetic (Armv8.2-A with FP16 has: --isa arm64-fp16)",
                           graph.source)
    graph.ops = _Rewriter(graph, isa).run()
    return eliminate_dead_code(graph)
