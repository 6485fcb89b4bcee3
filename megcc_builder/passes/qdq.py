"""QDQ islands -> integer operators (onnxruntime's QDQ format, quantize_static's default).

A QDQ model writes every quantized operator as DequantizeLinear -> float op ->
QuantizeLinear. This pass rewrites each island whose operator has an integer kernel into
that kernel's QOperator op (as onnxruntime's QDQ transformer does), reading the int8 tensors
the DequantizeLinears read and writing the int8 tensor the QuantizeLinear wrote:

    DQ(x), DQ(w), DQ(bias int32) -> Conv   [-> Relu | Clip] -> Q   =>  QLinearConv
    DQ(a), DQ(b)                 -> MatMul                  -> Q   =>  QLinearMatMul
    DQ(a), DQ(b)                 -> MatMul (float output)          =>  MatMulIntegerToFloat
    DQ(a), DQ(b), DQ(c)          -> Gemm   [-> Relu | Clip] [-> Q] =>  QGemm
    DQ(a), DQ(b)                 -> Add | Mul               -> Q   =>  QLinearAdd | QLinearMul
    DQ(x) -> Sigmoid | LeakyRelu | AveragePool | GlobalAveragePool -> Q => QLinear...
    DQ(x...)                     -> Concat                  -> Q   =>  QLinearConcat
    DQ(x)                        -> Softmax                 -> Q   =>  QLinearSoftmax
    DQ(x) -> Reshape | Transpose | MaxPool | ... -> Q (same scale and zero point): the op
             runs on the int8 tensor itself

A Relu or Clip between the operator and its QuantizeLinear becomes the integer op's
`activation` (applied before rounding). Everything else stays in float between its
DequantizeLinear and QuantizeLinear (those run as kernels); `graph.quant_notes` records
which operators stayed float and why (`megcc inspect` prints it). It runs before shape
inference and constant folding, while the quantized weights are still DequantizeLinear
inputs; malformed quantization parameters are refused here with the node's name.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ..ir import Graph, Op
from ..ir.quant import QRANGE

QTYPES = ("int8", "uint8")
# ops that only move or select elements: they run on the int8 tensor when the island's
# input and output quantization are equal (onnxruntime drops their DQ/Q pair)
MOVERS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "MaxPool", "Identity",
          "Slice", "DepthToSpace", "SpaceToDepth", "Expand", "Tile", "Gather"}
UNARY = {"Sigmoid": "QLinearSigmoid", "LeakyRelu": "QLinearLeakyRelu",
         "AveragePool": "QLinearAveragePool", "GlobalAveragePool": "QLinearGlobalAveragePool"}
BINARY = {"Add": "QLinearAdd", "Mul": "QLinearMul", "Sum": "QLinearAdd"}


class _DQ:
    """A DequantizeLinear's operands: the quantized tensor, scale / zero-point names,
    their constant values and the axis."""

    def __init__(self, graph: Graph, op: Op):
        self.op = op
        self.x = op.inputs[0]
        self.scale = op.inputs[1]
        self.zp = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else ""
        self.scale_value = _const(graph, self.scale)
        self.zp_value = _const(graph, self.zp) if self.zp else np.zeros((), np.int64)
        self.axis = int(op.attrs.get("axis", 1))
        self.dtype = _dtype_of(graph, op)

    @property
    def per_tensor(self) -> bool:
        return self.scale_value is not None and self.scale_value.size == 1

    def zp_name(self, graph: Graph) -> str:
        """A zero-point tensor name (a zero of the data's dtype when the model omits it)."""
        if self.zp:
            return self.zp
        name = graph.unique_name(self.x + "_zero_point")
        graph.add_const(name, np.zeros((), self.dtype or "uint8"))
        self.zp = name
        return name


def _const(graph: Graph, name: str) -> Optional[np.ndarray]:
    t = graph.tensors.get(name) if name else None
    return None if t is None or not t.is_const else np.asarray(t.data)


def _dtype_of(graph: Graph, dq: Op) -> Optional[str]:
    """The quantized dtype of a DequantizeLinear's input: its zero point's dtype, else the
    input tensor's when known (before shape inference an intermediate tensor is not)."""
    if len(dq.inputs) > 2 and dq.inputs[2] and dq.inputs[2] in graph.tensors:
        return graph.tensors[dq.inputs[2]].dtype
    t = graph.tensors.get(dq.inputs[0])
    return t.dtype if t is not None else "uint8"  # ONNX's type when the zero point is omitted


def _q_dtype(graph: Graph, q: Op) -> str:
    if len(q.inputs) > 2 and q.inputs[2] and q.inputs[2] in graph.tensors:
        return graph.tensors[q.inputs[2]].dtype
    return {3: "int8"}.get(int(q.attrs.get("output_dtype", 2)), "uint8")


def validate(graph: Graph, op: Op) -> None:
    """One-line errors for malformed quantization parameters of a Q / DQ node."""
    if len(op.inputs) < 2 or not op.inputs[1]:
        raise graph.error("the scale (input 1) is missing", op)
    scale = _const(graph, op.inputs[1])
    if scale is not None:
        if scale.dtype.kind != "f":
            raise graph.error(f"the scale '{op.inputs[1]}' must be float, not {scale.dtype}", op)
        bad = ~(np.isfinite(scale) & (scale > 0))
        if scale.size == 0 or bad.any():
            value = scale.reshape(-1)[np.flatnonzero(bad.reshape(-1))[:1]]
            raise graph.error(f"the scale '{op.inputs[1]}' must be finite and > 0 (has "
                              f"{value[0] if value.size else 'no value'})", op)
    zp_name = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else ""
    zp = _const(graph, zp_name)
    if zp is not None:
        dtype = graph.tensors[zp_name].dtype
        if dtype in QRANGE and zp.size and (zp.min() < QRANGE[dtype][0] or
                                            zp.max() > QRANGE[dtype][1]):
            raise graph.error(f"the zero point '{zp_name}' is out of the {dtype} range", op)
        if scale is not None and zp.size not in (1, scale.size):
            raise graph.error(f"the zero point has {zp.size} values but the scale "
                              f"{scale.size}", op)
        if op.type == "DequantizeLinear" and dtype == "int32" and np.any(zp != 0):
            raise graph.error("an int32 DequantizeLinear must have zero point 0", op)


class _Fuser:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.producers = graph.producers()
        self.consumers = graph.consumers()
        self.outputs = set(graph.outputs)
        self.dead: set = set()   # ids of ops removed (Q nodes and absorbed activations)
        self.notes: List[Tuple[str, str, str]] = []

    # --- matching helpers ------------------------------------------------------------
    def dq(self, name: str) -> Optional[_DQ]:
        p = self.producers.get(name)
        if p is None or p.type != "DequantizeLinear" or id(p) in self.dead:
            return None
        d = _DQ(self.graph, p)
        if d.scale_value is None or (d.zp and _const(self.graph, d.zp) is None):
            return None
        return d

    def only_consumer(self, name: str) -> Optional[Op]:
        uses = self.consumers.get(name, [])
        if len(uses) != 1 or name in self.outputs:
            return None
        return uses[0]

    def q_after(self, name: str):
        """(Q op, activation attrs, absorbed ops) if `name` flows (through at most one Relu /
        Clip) into exactly one per-tensor QuantizeLinear with constant parameters."""
        absorbed, attrs = [], {}
        nxt = self.only_consumer(name)
        if nxt is not None and nxt.type in ("Relu", "Clip"):
            act = self.activation(nxt)
            if act is None:
                return None
            attrs, absorbed = act, [nxt]
            nxt = self.only_consumer(nxt.outputs[0])
        if nxt is None or nxt.type != "QuantizeLinear" or nxt.inputs[0] != \
                (absorbed[-1].outputs[0] if absorbed else name):
            return None
        scale = _const(self.graph, nxt.inputs[1])
        zp_name = nxt.inputs[2] if len(nxt.inputs) > 2 and nxt.inputs[2] else ""
        if scale is None or scale.size != 1 or (zp_name and _const(self.graph, zp_name) is None):
            return None
        if _q_dtype(self.graph, nxt) not in QTYPES or nxt.attrs.get("block_size"):
            return None
        return nxt, attrs, absorbed

    def activation(self, op: Op) -> Optional[dict]:
        if op.type == "Relu":
            return {"activation": "Relu"}
        lo, hi = op.attrs.get("min"), op.attrs.get("max")
        for k, key in ((1, "min"), (2, "max")):
            if len(op.inputs) > k and op.inputs[k]:
                v = _const(self.graph, op.inputs[k])
                if v is None:
                    return None
                if key == "min":
                    lo = float(v.reshape(-1)[0])
                else:
                    hi = float(v.reshape(-1)[0])
        lo = -np.inf if lo is None else float(lo)
        hi = np.inf if hi is None else float(hi)
        if lo == 0.0 and hi == np.inf:
            return {"activation": "Relu"}
        return {"activation": "Clip", "activation_bounds": [max(lo, -3.4e38), min(hi, 3.4e38)]}

    def q_zp(self, q: Op) -> str:
        if len(q.inputs) > 2 and q.inputs[2]:
            return q.inputs[2]
        name = self.graph.unique_name(q.outputs[0] + "_zero_point")
        self.graph.add_const(name, np.zeros((), _q_dtype(self.graph, q)))
        return name

    def finish(self, op: Op, new_type: str, inputs: List[str], q: Op, absorbed: List[Op],
               attrs: dict) -> Op:
        self.dead.add(id(q))
        self.dead.update(id(a) for a in absorbed)
        return Op(new_type, inputs, [q.outputs[0]], attrs, op.name)

    # --- rewrites ----------------------------------------------------------------------
    def rewrite(self, op: Op):
        """(new op or None, why it stays float or '')."""
        t = op.type
        if t == "Conv":
            return self.conv(op)
        if t in ("MatMul", "Gemm"):
            return self.matmul(op)
        if t in BINARY:
            return self.binary(op)
        if t in UNARY:
            return self.unary(op)
        if t == "Concat":
            return self.concat(op)
        if t == "Softmax":
            return self.softmax(op)
        if t in MOVERS:
            return self.mover(op)
        return None, f"no int8 kernel for {t}"

    def conv(self, op: Op):
        x, w = self.dq(op.inputs[0]), self.dq(op.inputs[1])
        if x is None or w is None:
            return None, "input or weights not dequantized with constant parameters"
        if not x.per_tensor:
            return None, "per-channel activation scale"
        if not w.per_tensor and w.axis not in (0, -4, -3):
            return None, f"weights quantized along axis {w.axis} (0 expected)"
        if _const(self.graph, w.x) is None:
            return None, "weights are not constant"
        if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            return None, f"auto_pad {op.attrs['auto_pad']} (pads known only after shape inference)"
        after = self.q_after(op.outputs[0])
        if after is None:
            return None, "output is not quantized"
        q, act, absorbed = after
        bias = self.int32_bias(op, 2, x, w)
        if bias is False:
            return None, "bias is not a constant"
        attrs = {k: v for k, v in op.attrs.items() if not k.startswith("_")}
        attrs.update(act)
        ins = [x.x, x.scale, x.zp_name(self.graph), w.x, w.scale, w.zp_name(self.graph),
               q.inputs[1], self.q_zp(q)] + ([bias] if bias else [])
        return self.finish(op, "QLinearConv", ins, q, absorbed, attrs), ""

    def int32_bias(self, op: Op, index: int, x: _DQ, w: _DQ):
        """The int32 bias of scale x_scale * w_scale for input `index` ('' if none, False if
        it cannot be made): a DQ'd int32 constant with that scale is used as is, any other
        constant bias is quantized to it (round half to even)."""
        if len(op.inputs) <= index or not op.inputs[index]:
            return ""
        name = op.inputs[index]
        want = (np.float32(x.scale_value.reshape(-1)[0]) *
                w.scale_value.astype(np.float32).reshape(-1)).astype(np.float32)
        d = self.dq(name)
        if d is not None and d.dtype == "int32" and _const(self.graph, d.x) is not None:
            have = d.scale_value.astype(np.float32).reshape(-1)
            if np.allclose(have, want, rtol=1e-6, atol=0):
                return d.x
            real = _dequantized(self.graph, d)
        else:
            real = _const(self.graph, name)
            if real is None:
                return False
            if real.dtype.kind != "f":
                return False
        q = np.rint(real.astype(np.float64).reshape(-1) / want.astype(np.float64))
        q = np.clip(q, -(1 << 31), (1 << 31) - 1).astype(np.int32)
        new = self.graph.unique_name(name + "_int32")
        self.graph.add_const(new, q, "int32")
        return new

    def matmul(self, op: Op):
        a, b = self.dq(op.inputs[0]), self.dq(op.inputs[1])
        if a is None or b is None:
            return None, "inputs not dequantized with constant parameters"
        if not a.per_tensor:
            return None, "per-channel activation scale"
        gemm = op.type == "Gemm"
        trans_b = int(op.attrs.get("transB", 0)) if gemm else 0
        if not b.per_tensor:
            b_rank = len(self.graph.tensors[b.x].shape) if b.x in self.graph.tensors else 2
            col_axis = (0 if trans_b else 1) if gemm else b_rank - 1
            if b.axis % max(b_rank, 1) != col_axis or b_rank != 2:
                return None, f"B quantized along axis {b.axis} (per column expected)"
        if gemm and float(op.attrs.get("beta", 1.0)) != 1.0 and len(op.inputs) > 2:
            return None, "Gemm beta != 1 with a bias"
        after = self.q_after(op.outputs[0])
        ins = [a.x, a.scale, a.zp_name(self.graph), b.x, b.scale, b.zp_name(self.graph)]
        if gemm:
            bias = self.int32_bias(op, 2, a, b)
            if bias is False:
                return None, "bias is not a constant"
            attrs = {k: op.attrs[k] for k in ("alpha", "transA", "transB") if k in op.attrs}
            if after is None:
                return Op("QGemm", ins + [bias], [op.outputs[0]], attrs, op.name), ""
            q, act, absorbed = after
            attrs.update(act)
            return self.finish(op, "QGemm", ins + [bias, q.inputs[1], self.q_zp(q)], q,
                               absorbed, attrs), ""
        if after is None or after[1]:
            if after is not None:
                return None, "a MatMul activation has no int8 fusion"
            return Op("MatMulIntegerToFloat", [a.x, b.x, a.scale, b.scale, a.zp_name(self.graph),
                                               b.zp_name(self.graph)], [op.outputs[0]], {},
                      op.name), ""
        q, act, absorbed = after
        return self.finish(op, "QLinearMatMul", ins + [q.inputs[1], self.q_zp(q)], q,
                           absorbed, {}), ""

    def binary(self, op: Op):
        if len(op.inputs) != 2:
            return None, f"{op.type} of {len(op.inputs)} inputs"
        a, b = self.dq(op.inputs[0]), self.dq(op.inputs[1])
        if a is None or b is None:
            return None, "inputs not dequantized with constant parameters"
        if not (a.per_tensor and b.per_tensor):
            return None, "per-channel scale"
        after = self.q_after(op.outputs[0])
        if after is None:
            return None, "output is not quantized"
        q, act, absorbed = after
        if a.dtype != b.dtype or a.dtype != _q_dtype(self.graph, q):
            return None, "inputs and output of different integer types"
        if act and act.get("activation") != "Relu":
            return None, "Clip after an element-wise op has no int8 fusion"
        if act and not _relu_is_redundant(self.graph, q):
            # onnxruntime's kernel has no activation: keep its formula, Relu separate
            return None, "Relu after an element-wise op stays float"
        ins = [a.x, a.scale, a.zp_name(self.graph), b.x, b.scale, b.zp_name(self.graph),
               q.inputs[1], self.q_zp(q)]
        return self.finish(op, BINARY[op.type], ins, q, absorbed, {}), ""

    def _unary_island(self, op: Op):
        """(dequantized input, the QuantizeLinear after op) of a one-input island, or
        (None, why not)."""
        x = self.dq(op.inputs[0])
        if x is None or not x.per_tensor:
            return None, "input not dequantized per tensor with constant parameters"
        after = self.q_after(op.outputs[0])
        if after is None or after[1]:
            return None, "output is not quantized" if after is None else \
                "activation after it has no int8 fusion"
        q, _, _ = after
        if x.dtype != _q_dtype(self.graph, q):
            return None, "input and output of different integer types"
        return x, q

    def unary(self, op: Op):
        x, q = self._unary_island(op)
        if x is None:
            return None, q
        attrs = {k: v for k, v in op.attrs.items() if not k.startswith("_")}
        if op.type == "AveragePool" and (attrs.get("dilations") and
                                         any(d != 1 for d in attrs["dilations"])):
            return None, "dilated average pooling"
        if op.type == "AveragePool":
            attrs.pop("dilations", None)
        ins = [x.x, x.scale, x.zp_name(self.graph), q.inputs[1], self.q_zp(q)]
        return self.finish(op, UNARY[op.type], ins, q, [], attrs), ""

    def softmax(self, op: Op):
        """onnxruntime's optimiser forms QLinearSoftmax whatever the output scale, with the
        Softmax's axis made explicit and its opset version (below 13: rows coerced to 2-D)."""
        x, q = self._unary_island(op)
        if x is None:
            return None, q
        old = self.graph.opset < 13
        attrs = {"axis": int(op.attrs.get("axis", 1 if old else -1)),
                 "opset": 11 if old else 13}
        ins = [x.x, x.scale, x.zp_name(self.graph), q.inputs[1], self.q_zp(q)]
        return self.finish(op, "QLinearSoftmax", ins, q, [], attrs), ""

    def concat(self, op: Op):
        dqs = [self.dq(n) for n in op.inputs]
        if any(d is None or not d.per_tensor for d in dqs):
            return None, "an input not dequantized per tensor"
        after = self.q_after(op.outputs[0])
        if after is None or after[1]:
            return None, "output is not quantized"
        q, _, _ = after
        ins = [q.inputs[1], self.q_zp(q)]
        for d in dqs:
            ins += [d.x, d.scale, d.zp_name(self.graph)]
        return self.finish(op, "QLinearConcat", ins, q, [], {"axis": op.attrs["axis"]}), ""

    def mover(self, op: Op):
        x = self.dq(op.inputs[0])
        if x is None or not x.per_tensor:
            return None, "input not dequantized per tensor"
        if op.type == "MaxPool" and len(op.outputs) > 1 and op.outputs[1]:
            return None, "MaxPool with indices"
        after = self.q_after(op.outputs[0])
        if after is None or after[1]:
            return None, "output is not quantized"
        q, _, _ = after
        qs = _const(self.graph, q.inputs[1])
        qz = _const(self.graph, q.inputs[2]) if len(q.inputs) > 2 and q.inputs[2] else \
            np.zeros(())
        if x.dtype != _q_dtype(self.graph, q) or np.float32(qs.reshape(-1)[0]) != \
                np.float32(x.scale_value.reshape(-1)[0]) or \
                int(qz.reshape(-1)[0]) != int(x.zp_value.reshape(-1)[0]):
            return None, "input and output quantized differently"
        self.dead.add(id(q))
        return Op(op.type, [x.x] + list(op.inputs[1:]), [q.outputs[0]] + list(op.outputs[1:]),
                  dict(op.attrs), op.name), ""


def _relu_is_redundant(graph: Graph, q: Op) -> bool:
    """A Relu before a QuantizeLinear whose zero point is its type's minimum changes nothing:
    quantization clamps at the zero point, i.e. at 0 (onnxruntime's ReluQuantFusion)."""
    dtype = _q_dtype(graph, q)
    zp = _const(graph, q.inputs[2]) if len(q.inputs) > 2 and q.inputs[2] else np.zeros(())
    return int(zp.reshape(-1)[0]) == QRANGE[dtype][0]


def _dequantized(graph: Graph, d: _DQ) -> np.ndarray:
    from ..ir.quant import dequantize

    data = _const(graph, d.x)
    axis = d.axis % max(data.ndim, 1)
    return dequantize(data, d.scale_value, d.zp_value if d.zp else None, axis)


def fuse_qdq(graph: Graph) -> Graph:
    for op in graph.ops:
        if op.type in ("QuantizeLinear", "DequantizeLinear"):
            validate(graph, op)
    if not any(op.type == "DequantizeLinear" for op in graph.ops):
        return graph
    f = _Fuser(graph)
    new_ops = []
    for op in graph.ops:
        if id(op) in f.dead:
            continue
        if op.type in ("QuantizeLinear", "DequantizeLinear"):
            new_ops.append(op)
            continue
        from_dq = any(f.dq(n) for n in op.inputs if n)
        if not from_dq:
            new_ops.append(op)
            continue
        new, why = f.rewrite(op)
        if new is None:
            new_ops.append(op)
            f.notes.append((op.name or op.outputs[0], op.type, why))
            continue
        new_ops.append(new)
    graph.ops = [op for op in new_ops if id(op) not in f.dead]
    _drop_unused_dequantize(graph)
    graph.quant_notes = graph.quant_notes + f.notes
    return graph


def _drop_unused_dequantize(graph: Graph) -> None:
    """DequantizeLinears nothing reads any more (their islands became integer ops)."""
    while True:
        used = {i for op in graph.ops for i in op.inputs if i} | set(graph.outputs)
        keep = [op for op in graph.ops if op.type != "DequantizeLinear" or op.outputs[0] in used]
        if len(keep) == len(graph.ops):
            return
        graph.ops = keep


def quant_notes(graph: Graph) -> Dict[str, str]:
    """node name -> why it stayed float (for `megcc inspect`)."""
    return {name: f"{t}: {why}" for name, t, why in graph.quant_notes}
