"""Static shape inference and constant folding for ONNX-semantics ops.

Because the IR speaks ONNX, both jobs reuse the `onnx` package's own definitions instead of
a hand-written rule per operator: each op is wrapped in a one-node ONNX model, with the
op's small constant inputs as initializers so data-dependent shapes (Reshape, Expand,
Slice, ...) resolve. Ops whose inputs are all constant are evaluated with ONNX's reference
implementation and become constants. Ops introduced by our own passes (fused kernels) are
never seen here: the passes set their shapes.
"""
from __future__ import annotations

import warnings
from typing import Callable, Dict, List, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper

from . import control
from .functions import expand_function
from .graph import Graph, Op, Tensor
from .onnx_types import from_onnx_elem_type, to_onnx_elem_type
from .opdefs import infer_outputs, lookup
from .quant_fold import evaluate_quant_op
from . import symbolic, value_shapes
from .infer_symbolic import (fold_values, has_symbolic_inputs, is_symbolic_value, shape_value,
                             specialise_value, symbolic_shapes)

# Constant inputs up to this many elements go into the one-node model as initializers
# (shape-like data); larger ones (weights) only as typed inputs, to keep inference cheap.
_SMALL_CONST = 4096

# Folding these would only copy large weights around or cannot be done ahead of time.
_NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
               "Multinomial", "Bernoulli"}

# Upper bound on the bytes one folded constant may take; beyond it the model is absurd.
MAX_CONST_BYTES = 2 << 30


def _value_info(name: str, t: Tensor):
    # symbolic dimensions go in as their hints: ONNX infers the hint instance
    return helper.make_tensor_value_info(name, to_onnx_elem_type(t.dtype),
                                         [symbolic.hint(d) for d in t.shape])


def _hint_data(t: Tensor) -> np.ndarray:
    if is_symbolic_value(t.data):
        return np.array([symbolic.hint(v) for v in t.data.reshape(-1)],
                        dtype=np.int64).reshape(t.data.shape)
    return np.asarray(t.data)


def _one_node_model(graph: Graph, op: Op, with_all_consts: bool) -> onnx.ModelProto:
    inputs, inits = [], []
    for name in dict.fromkeys(i for i in op.inputs if i):
        t = graph.tensors[name]
        if t.is_const and (with_all_consts or t.numel <= _SMALL_CONST):
            inits.append(numpy_helper.from_array(_hint_data(t), name))
        else:
            inputs.append(_value_info(name, t))
    attrs = {k: v for k, v in op.attrs.items() if not k.startswith("_")}
    attrs = _schema_attrs(op.type, graph.opset, op.attrs.get("_domain", ""), attrs)
    node = helper.make_node(op.type, op.inputs, op.outputs, domain=op.attrs.get("_domain", ""),
                            **attrs)
    outputs = [helper.make_empty_tensor_value_info(o) for o in op.outputs if o]
    g = helper.make_graph([node], "one_node", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", graph.opset)]
    if op.attrs.get("_domain"):
        opsets.append(helper.make_opsetid(op.attrs["_domain"], 1))
    model = helper.make_model(g, opset_imports=opsets)
    model.ir_version = min(model.ir_version, 10)
    return model


def _schema_attrs(op_type: str, opset: int, domain: str, attrs: dict) -> dict:
    """Only the attributes ONNX's schema declares: megcc's own annotations on ONNX ops
    (e.g. `rounding`, `activation` on QLinearConv) would fail strict shape inference."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except Exception:
        return attrs
    return {k: v for k, v in attrs.items() if k in schema.attributes}


def _evaluate(graph: Graph, op: Op, feeds: dict) -> List[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    quant = evaluate_quant_op(graph, op, feeds)
    if quant is not None:  # (the reference evaluator lacks them before opset 19)
        return quant

    model = _one_node_model(graph, op, with_all_consts=False)
    feed_names = {vi.name for vi in model.graph.input}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sess = ReferenceEvaluator(model)
        return sess.run(None, {k: v for k, v in feeds.items() if k in feed_names})


# Ops whose output can be far larger than their inputs: their size is learnt from shape
# inference before they are evaluated, so an absurd model (a 2^40-element constant) fails
# at once instead of exhausting memory.
_AMPLIFYING = {"ConstantOfShape", "Expand", "Tile", "Resize", "Upsample", "Pad", "Range",
               "OneHot", "EyeLike"}


def _fold(graph: Graph, op: Op) -> bool:
    if op.type in _AMPLIFYING:
        for t in _infer_shapes(graph, op) or []:
            if t.nbytes > MAX_CONST_BYTES:
                raise graph.error(f"constant '{t.name}' of shape {tuple(t.shape)} would take "
                                  f"{t.nbytes} bytes: too large", op)
    feeds = {i: np.asarray(graph.tensors[i].data) for i in op.inputs if i}
    try:
        results = _evaluate(graph, op, feeds)
    except Exception as exc:  # the reference evaluator rejects what ONNX rejects
        raise graph.error(f"cannot evaluate constant operator: {_short(exc)}", op) from None
    for name, value in zip([o for o in op.outputs if o], results):
        value = np.asarray(value)
        if value.nbytes > MAX_CONST_BYTES:
            raise graph.error(f"constant of {value.nbytes} bytes is too large", op)
        graph.add_const(name, value)
    return True


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__


def _infer_shapes(graph: Graph, op: Op) -> Optional[List[Tensor]]:
    try:  # building the probe can fail too: an attribute of a type ONNX cannot express
        model = _one_node_model(graph, op, with_all_consts=False)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise graph.error(_short(exc), op) from None
    known = {vi.name: vi for vi in inferred.graph.output}
    known.update({vi.name: vi for vi in inferred.graph.value_info})
    result = []
    for name in op.outputs:
        if not name:
            continue
        vi = known.get(name)
        if vi is None or not vi.type.HasField("tensor_type"):
            return None
        tt = vi.type.tensor_type
        if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
            return None
        try:
            dtype = from_onnx_elem_type(tt.elem_type)
        except KeyError as exc:
            raise graph.error(f"output dtype {exc} is not supported", op) from None
        result.append(Tensor(name, tuple(d.dim_value for d in tt.shape.dim), dtype))
    return result


# Operands whose *values* set an op's output shape: when one is not a constant, zeros
# would give a wrong shape, so the probe below refuses instead (with NeedsValue).
_REDUCE_OPS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
               "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
_SHAPE_OPERANDS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "Pad": (1, 3),
    "TopK": (1,), "OneHot": (1,), "Range": (0, 1, 2), "ConstantOfShape": (0,),
    "Resize": (1, 2, 3), "Upsample": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,),
    "CenterCropPad": (1, 2), "Col2Im": (1, 2), "AffineGrid": (1,), "BlackmanWindow": (0,),
    "HannWindow": (0,), "HammingWindow": (0,), "MelWeightMatrix": (0, 1, 2),
    "DFT": (1, 2), "STFT": (2, 3), "MaxUnpool": (2,), "RandomNormalLike": (),
}


def shape_operands(op: Op, opset: int):
    if op.type in _REDUCE_OPS:
        return (1,)
    return _SHAPE_OPERANDS.get(op.type, ())


def _probe_shapes(graph: Graph, op: Op) -> List[Tensor]:
    """Last resort: run the reference implementation on zeros to learn the output shapes.

    Only valid when the output shape does not depend on input *values*; ops whose shape
    does (NonZero, Unique, ...) are refused.
    """
    if op.type in ("NonZero", "Unique", "Compress", "NonMaxSuppression", "StringSplit"):
        raise graph.error("output shape depends on input values (dynamic shapes are not "
                          "supported yet)", op)
    for k in shape_operands(op, graph.opset):
        if k < len(op.inputs) and op.inputs[k] and not graph.tensors[op.inputs[k]].is_const:
            raise graph.needs_value(op, op.inputs[k], f"input {k}, which sets the output shape,")
    feeds = {}
    for name in op.inputs:
        if name and not graph.tensors[name].is_const:
            t = graph.tensors[name]
            from .dtypes import numpy_dtype

            if t.nbytes >= 1 << 32:  # an earlier op's inferred shape; refuse, not allocate
                raise graph.error(f"input '{name}' of shape {tuple(t.shape)} takes {t.nbytes} "
                                  "bytes; a compiled model addresses at most 4 GiB - 1", op)
            feeds[name] = np.zeros(t.shape, numpy_dtype(t.dtype))
        elif name:
            feeds[name] = np.asarray(graph.tensors[name].data)
    try:
        results = _evaluate(graph, op, feeds)
    except Exception as exc:
        raise graph.error(f"cannot infer output shape: {_short(exc)}", op) from None
    from .dtypes import dtype_of_numpy

    return [Tensor(n, np.asarray(v).shape, dtype_of_numpy(np.asarray(v).dtype))
            for n, v in zip([o for o in op.outputs if o], results)]


def _foldable(op: Op, ins: List[Tensor]) -> bool:
    """All inputs constant (an op without inputs only if it is a Constant)."""
    if op.type in _NEVER_FOLD or not all(t.is_const for t in ins):
        return False
    return bool(ins) or op.type == "Constant"


def infer_and_fold(graph: Graph, has_kernel: Callable[[str], bool]) -> Graph:
    """Give every tensor a static shape and dtype; replace all-constant ops by constants.

    `has_kernel(op_type)` tells whether the backend lowers an op type: an ONNX function op
    without a kernel is replaced by its function body (the IR does not know the backend).
    """

    kept = []
    work = list(reversed(graph.ops))  # a stack: function bodies are pushed in place
    while work:
        op = work.pop()
        with symbolic.at_node(node_label(op)):
            _infer_one(graph, op, work, kept, has_kernel)
    graph.ops = kept
    return graph


def node_label(op: Op) -> str:
    return f"'{op.name or op.outputs[0]}' ({op.type})"


def _runs_with_symbolic_shape(graph: Graph, op: Op) -> bool:
    """Constant inputs, but a shape operand holds Syms that value folding cannot handle
    (Expand of a constant to a run-time shape): the op stays, its output sized at run time."""
    operands = shape_operands(op, graph.opset)
    symbolic_at = [k for k, n in enumerate(op.inputs)
                   if n and is_symbolic_value(graph.tensors[n].data)]
    return bool(symbolic_at) and all(k in operands for k in symbolic_at) and \
        fold_values(graph, op) is None and symbolic_shapes(graph, op) is not None


def _folded_dtype(graph: Graph, op: Op) -> str:
    """dtype of shape arithmetic folded into Syms: the op's (MegEngine computes shapes in
    int32, ONNX exporters in int64)."""
    if op.type == "Cast":
        return from_onnx_elem_type(int(op.attrs["to"]))
    data = graph.tensors[op.inputs[0]]
    return data.dtype if data.dtype in ("int32", "int64") else "int64"


def _specialise_values(graph: Graph, op: Op, keep=()) -> None:
    """Constant inputs holding Syms become int64 values pinned on their hints (except the
    shape operands `keep`, which the symbolic shape rules read)."""
    for k, n in enumerate(op.inputs):
        if k in keep:
            continue
        if n and is_symbolic_value(graph.tensors[n].data):
            t = graph.tensors[n]
            from .dtypes import numpy_dtype

            value = specialise_value(t.data).astype(numpy_dtype(t.dtype))  # (int32 shapes)
            graph.tensors[n] = Tensor(n, t.shape, t.dtype, data=value)


def _infer_symbolic(graph: Graph, op: Op) -> List[Tensor]:
    """Output tensors of an op reading symbolic dimensions: shapes from the symbolic
    rules, dtypes (and a cross-check on the hint instance) from ONNX's inference."""
    if lookup(op.type) is not None:
        return infer_outputs(graph, op)
    shapes = symbolic_shapes(graph, op)
    if shapes is None:
        syms = sorted({s for n in op.inputs if n for d in graph.tensors[n].shape
                       if isinstance(d, symbolic.Sym) for s in d.symbols}
                      | {s for n in op.inputs if n and is_symbolic_value(graph.tensors[n].data)
                         for v in graph.tensors[n].data.reshape(-1)
                         if isinstance(v, symbolic.Sym) for s in v.symbols})
        raise graph.error(f"dimension {', '.join(syms)} cannot stay dynamic: this operator "
                          "has no symbolic shape rule; give the shape with --input-shapes", op)
    computed = _value_dims_as_ones(graph, op)
    try:
        with symbolic.hint_only():
            outs = _infer_shapes(graph, op) or _probe_shapes(graph, op)
    finally:
        graph.tensors.update(computed)
    if len(outs) != len(shapes):
        raise AssertionError(f"{op.type}: {len(shapes)} symbolic shapes for {len(outs)} outputs")
    result = []
    for t, shape in zip(outs, shapes):
        if not computed and tuple(symbolic.hint(d) for d in shape) != tuple(t.shape):
            raise AssertionError(f"{op.type} '{op.name}': symbolic shape {shape} disagrees with "
                                 f"ONNX's {t.shape} on the hints")
        result.append(Tensor(t.name, shape, t.dtype))
    return result


def _value_dims_as_ones(graph: Graph, op: Op) -> Dict[str, Tensor]:
    """Inputs with extents computed at run time (value symbols, whose hints need not be
    consistent with each other: a broadcast of one is a guard) get those extents as 1 for
    ONNX's inference of the dtypes; returns the original tensors to put back."""
    s = symbolic.current()
    if s is None or not s.value_symbols:
        return {}
    saved = {}
    for n in op.inputs:
        t = graph.tensors.get(n) if n else None
        if t is None or n in saved:
            continue
        if any(isinstance(d, symbolic.Sym) and d.symbols & s.value_symbols for d in t.shape):
            saved[n] = t
            graph.tensors[n] = Tensor(n, tuple(1 if isinstance(d, symbolic.Sym) and
                                               d.symbols & s.value_symbols else d
                                               for d in t.shape), t.dtype, quant=t.quant)
    return saved


def _infer_one(graph: Graph, op: Op, work: list, kept: list, has_kernel) -> None:
    ins = [graph.tensors.get(i) for i in op.inputs if i]
    if any(t is None for t in ins):
        missing = [i for i in op.inputs if i and i not in graph.tensors]
        raise graph.error(f"input '{missing[0]}' is not produced by any node", op)
    if op.type in control.CONTROL_OPS and control.BODIES not in op.attrs:
        # control flow (ir/control.py): a constant If condition selects a branch whose
        # nodes replace the If; otherwise the subgraphs become bodies run at run time
        if op.type == "If" and ins and ins[0].is_const:
            work.extend(reversed(control.inline_branch(graph, op)))
            return
        if op.type == "Scan" and graph.opset < 9 and not op.attrs.get("_scan9"):
            work.extend(reversed(control.rewrite_scan8(graph, op)))
            return
        infer_body = lambda body: infer_and_fold(body, has_kernel)  # noqa: E731
        if op.type == "If":
            kept.append(control.convert_if(graph, op, infer_body))
        elif op.type == "Loop":
            producers = {o: p for p in kept for o in p.outputs if o}
            kept.append(control.convert_loop(graph, op, infer_body, producers))
        else:
            kept.append(control.convert_scan(graph, op, infer_body))
        return
    if lookup(op.type) is not None:  # a megcc / com.microsoft op: our own definition
        _specialise_values(graph, op)
        for t in infer_outputs(graph, op):
            graph.tensors[t.name] = t
        kept.append(op)
        return
    if _foldable(op, ins) and not _runs_with_symbolic_shape(graph, op):
        if any(is_symbolic_value(t.data) for t in ins):
            values = fold_values(graph, op)  # shape arithmetic on symbolic dims
            if values is not None:
                for name, value in zip([o for o in op.outputs if o], values):
                    dtype = None
                    if value.dtype.kind in "iuO":  # keep the op's integer type
                        dtype = _folded_dtype(graph, op)
                        if value.dtype != object:
                            value = value.astype(dtype)
                    graph.add_const(name, value, dtype)
                return
            _specialise_values(graph, op)
        _fold(graph, op)
        return
    if op.type == "NonZero" and ins and not ins[0].is_const:
        value_shapes.infer_nonzero(graph, op)  # the count is a value symbol
        kept.append(op)
        return
    if op.type == "TopK" and graph.opset >= 10 and len(ins) == 2 and not ins[0].is_const \
            and not ins[1].is_const:
        value_shapes.infer_topk(graph, op)
        kept.append(op)
        return
    if op.type == "Compress" and len(ins) == 2 and not all(t.is_const for t in ins):
        value_shapes.infer_compress(graph, op)
        kept.append(op)
        return
    # (not in an If branch or loop body: a computed extent defined there did not reach the
    # enclosing graph's outputs (an If returned a (0, 0) tensor), so there the op still
    # needs its shape operand's value, as before computed shapes)
    if value_shapes.computed_shape(graph, op) and not all(t.is_const for t in ins) and \
            (op.type != "Expand" or graph.opset >= 8) and not graph.is_subgraph:
        _specialise_values(graph, op)
        value_shapes.infer_computed_shape(graph, op)  # each extent a shape value symbol
        kept.append(op)
        return
    if value_shapes.runtime_slice(graph, op):
        _specialise_values(graph, op)
        value_shapes.infer_slice(graph, op)  # each sliced extent is a value symbol
        kept.append(op)
        return
    if op.type == "NonMaxSuppression" and ins and not all(t.is_const for t in ins):
        _specialise_values(graph, op)
        value_shapes.infer_nms(graph, op)
        kept.append(op)
        return
    if op.type == "Range" and len(ins) == 3 and not all(t.is_const for t in ins) and \
            ins[0].dtype in value_shapes.RANGE_DTYPES:
        _specialise_values(graph, op)
        value_shapes.infer_range(graph, op)
        kept.append(op)
        return
    if op.type in ("Shape", "Size") and ins and \
            any(isinstance(d, symbolic.Sym) for d in ins[0].shape):
        dims = list(ins[0].shape)
        if op.type == "Shape":
            start, end = op.attrs.get("start", 0), op.attrs.get("end", len(dims))
            value = shape_value(dims[start:end])
        else:
            n = 1
            for d in dims:
                n = n * d
            value = shape_value([n]).reshape(())
        graph.add_const(op.outputs[0], value, "int64")
        return
    if op.type in ("Shape", "Size") and ins:
        # Shapes are static, so Shape/Size of any tensor is a constant: folding it lets
        # the shape arithmetic after it (MegEngine's flatten: GetVarShape -> Subtensor ->
        # Concat -> Reshape) fold too instead of being probed with zeros.
        dims = np.array(ins[0].shape, dtype=np.int64)
        if op.type == "Shape":
            start, end = op.attrs.get("start", 0), op.attrs.get("end", len(dims))
            value = dims[start:end]
        else:
            value = np.array(int(np.prod(dims)), dtype=np.int64)
        graph.add_const(op.outputs[0], value)
        return
    if op.type == "EyeLike" and ins:
        # the value depends only on the input's shape: a constant
        from .dtypes import numpy_dtype

        feeds = {op.inputs[0]: np.zeros(ins[0].shape, numpy_dtype(ins[0].dtype))}
        try:
            (value,) = _evaluate(graph, op, feeds)
        except Exception as exc:
            raise graph.error(f"cannot evaluate: {_short(exc)}", op) from None
        graph.add_const(op.outputs[0], np.asarray(value))
        return
    if op.type == "CastLike" and ins[0].is_const and len(ins) == 2:
        # only the second input's dtype matters: a Cast of a constant, folded
        op = Op("Cast", [op.inputs[0]], op.outputs,
                {"to": to_onnx_elem_type(ins[1].dtype)}, op.name)
        _fold(graph, op)
        return
    if not has_kernel(op.type):
        for k in shape_operands(op, graph.opset):
            if k < len(op.inputs) and op.inputs[k] and \
                    not graph.tensors[op.inputs[k]].is_const:
                raise graph.needs_value(op, op.inputs[k],
                                        f"input {k}, which sets the output shape,")
        body = expand_function(graph, op)
        if body is not None:  # no kernel, but an ONNX function: use its definition
            work.extend(reversed(body))
            return
    if has_symbolic_inputs(graph, op):
        # a kernel reads every other input's values: those cannot stay symbolic
        _specialise_values(graph, op, keep=shape_operands(op, graph.opset))
        outs = _infer_symbolic(graph, op)
    else:
        outs = _infer_shapes(graph, op)
        if outs is None:
            outs = _probe_shapes(graph, op)
    for t in outs:
        old = graph.tensors.get(t.name)
        if old is not None and old.quant is not None:
            t.quant = old.quant
        graph.tensors[t.name] = t
    kept.append(op)
