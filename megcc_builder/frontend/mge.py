"""MegEngine `.mge` frontend: a dumped MegEngine graph -> Graph IR (ONNX opset-17 ops).

The file is read with MegEngine's own loader (`megengine.utils.network.Network`),
so every var comes with MegEngine's static shape and dtype; we never re-derive
them.  Each MegEngine opr type has one converter function below (see
`_CONVERTERS`); a converter reads the opr's params and emits one or more IR ops
whose final outputs are exactly the opr's output vars.

Translation rules worth knowing:

* Tensors keep MegEngine's dtypes.  Shape arithmetic in MegEngine is int32, while
  ONNX wants int64 for Reshape/Expand/Slice operands, so GetVarShape becomes
  `Shape` + `Cast(int32)` and the consumers cast back to int64.  Constant folding
  (a later pass) removes all of that for static models.
* Per-channel parameters that MegEngine keeps as (1, C, 1, 1) (conv bias, BN) are
  turned into ONNX's 1-D (C,) form; group-conv weights (G, OC/G, IC/G, KH, KW)
  become (OC, IC/G, KH, KW) with `group=G`.
* A few oprs do not expose their parameter in MegEngine's Python API
  (Softmax's axis, PowC's exponent).  We recover it by running that single opr in
  MegEngine on a probe input (`_probe`), which is exact and uses MegEngine itself.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..ir import CompileError, Graph, Op, Tensor
from ..ir.dtypes import dtype_of_numpy, numpy_dtype
from ..ir import symbolic
from . import mge_quant
from .dims import SymbolMaker, SymbolSpec
from .model_file import require_regular_file

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

# IR dtype -> ONNX TensorProto element type, for Cast's `to` attribute.
ONNX_ELEM_TYPE = {
    "float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6,
    "int64": 7, "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13,
}


# ====================================================================== entry point
def load_mge(path: str, input_shapes: Optional[dict] = None,
             symbols: Optional[SymbolSpec] = None) -> Graph:
    """Translate the MegEngine model at `path` into a Graph.

    `input_shapes` maps input names to shapes; inputs not named keep the shape
    stored in the model.  MegEngine re-infers every var's shape for the new
    input shapes, so the shape sub-graphs stay consistent.  A dimension given as a
    name (`data=(N,3,H,W)`) is a run-time symbol (docs/dynamic-shapes.md): see
    `_load_symbolic`.
    """
    input_shapes = input_shapes or {}
    if any(isinstance(d, str) for shape in input_shapes.values() for d in shape):
        return _load_symbolic(path, input_shapes, symbols)
    graph, _ = _convert(path, input_shapes)
    if symbols is not None:  # bounds or hints for a model without symbols: a mistake
        SymbolMaker(graph, symbols, path).check_spec()
    return graph


def _convert(path: str, input_shapes: dict):
    """(Graph, MegEngine input var name -> IR input name) of the model at these static
    input shapes."""
    with _without_native_info_logs():
        net = _load_network(path)
        _override_input_shapes(net, path, input_shapes)
        cv = _Converter(net, path)
        graph = cv.run()
        # (by var, not by position: MegEngine lists input_vars in argument order, the
        # graph's inputs follow the oprs' topological order)
        names = {v.name: cv.input_names[v.name] for v in net.input_vars}
    return graph, names


def _load_symbolic(path: str, input_shapes: dict, symbols: Optional[SymbolSpec]) -> Graph:
    """A Graph whose inputs have symbolic dimensions.

    MegEngine's graph only has static shapes, so the model is converted at the symbols'
    hints and the inputs then get their symbolic shapes back: the compiler re-infers every
    other tensor's shape from the ops (ir/infer.py), with the shape arithmetic MegEngine
    recorded (GetVarShape -> Subtensor -> Concat -> Reshape, the default
    `trace(symbolic_shape=True)`) folded into expressions. A converter that read a
    dimension's value would have baked it into an attribute or a constant: the model is
    also converted at other values of the symbols and the two graphs must be the same but
    for their tensor shapes (`_same_translation`), or the dimension cannot stay dynamic.
    """
    holder = Graph(source=path)
    maker = SymbolMaker(holder, symbols, path)
    sym_shapes = {name: tuple(maker.symbol(d, k) if isinstance(d, str) else int(d)
                              for k, d in enumerate(shape))
                  for name, shape in input_shapes.items()}
    maker.check_spec()
    graph, names = _convert(path, {n: symbolic.substitute_hints(s)
                                   for n, s in sym_shapes.items()})
    graph.symbols, graph.default_bounded = holder.symbols, holder.default_bounded
    _check_reshapes_fit(path, graph)
    _check_translation_at_other_sizes(path, graph, sym_shapes)
    for name, shape in sym_shapes.items():
        ir_name = names[name]
        t = graph.tensors[ir_name]
        graph.tensors[ir_name] = Tensor(ir_name, shape, t.dtype, quant=t.quant)
    return graph


def _check_reshapes_fit(path: str, graph: Graph) -> None:
    """A reshape whose target was traced as a constant (`trace(symbolic_shape=False)`)
    only fits the traced size; MegEngine does not check it when the input shape changes,
    so a size that does not fit it shows as an element count that changed."""
    for op in graph.ops:
        if op.type != "Reshape" or graph.tensors[op.inputs[1]].data is None:
            continue
        x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if x.numel != y.numel:
            target = tuple(int(v) for v in graph.tensors[op.inputs[1]].data.reshape(-1))
            raise CompileError(
                f"dimension {', '.join(sorted(graph.symbols))} cannot stay dynamic: MegEngine "
                f"opr '{op.name}' reshapes to the constant shape {target}, which only fits the "
                "size the model was traced at (trace with symbolic_shape=True to keep shapes "
                "computed); give the shapes with --input-shapes", path, op.name)


def _other_values(graph: Graph):
    """Symbol values other than the hints, within the bounds, for the translation check
    (every value changed and none 1, as in dynamic_check.probe_dims)."""
    for step in (lambda h: 2 * h, lambda h: h + 32, lambda h: h + 1, lambda h: h * 3 // 2,
                 lambda h: h // 2, lambda h: h - 1):
        values = {n: min(max(step(h), lo), hi) for n, (lo, hi, h) in graph.symbols.items()}
        # (a symbol its bounds pin keeps its one value)
        if all(v != h and v != 1 for n, v in values.items()
               for lo, hi, h in [graph.symbols[n]] if lo < hi):
            yield values


def _check_translation_at_other_sizes(path: str, graph: Graph, sym_shapes: dict) -> None:
    tried = []
    for values in _other_values(graph):
        shapes = {n: tuple(symbolic.evaluate(d, values) for d in s)
                  for n, s in sym_shapes.items()}
        try:
            other, _ = _convert(path, shapes)
        except CompileError as exc:  # MegEngine refuses this size: try another one
            tried.append(exc.message)
            continue
        _same_translation(path, graph, other, values)
        return
    if not any(lo < hi for lo, hi, _ in graph.symbols.values()):
        return  # every symbol is pinned by its bounds: nothing else to compare with
    reason = tried[0] if tried else "the bounds leave no other value"
    raise CompileError(f"dimension {', '.join(sorted(graph.symbols))} cannot stay dynamic: "
                       f"MegEngine accepts the model at no other size than the hints "
                       f"({reason}); give the shapes with --input-shapes", path)


def _translation(graph: Graph):
    """What a translation is made of, except the shapes of run-time tensors."""
    ops = [(op.type, tuple(op.inputs), tuple(op.outputs), repr(sorted(op.attrs.items())))
           for op in graph.ops]
    consts = {n: (t.dtype, tuple(t.shape), t.data.tobytes())
              for n, t in graph.tensors.items() if t.data is not None}
    return ops, consts


def _same_translation(path: str, graph: Graph, other: Graph, values: dict) -> None:
    ops, consts = _translation(graph)
    ops2, consts2 = _translation(other)
    at = ", ".join(f"{n}={v}" for n, v in sorted(values.items()))
    blame = None
    for k, (a, b) in enumerate(zip(ops, ops2)):
        changed = [n for n in a[1] if consts.get(n) != consts2.get(n)]
        if a != b or changed:
            what = (f"constant input '{changed[0]}'" if a == b else
                    "its attributes" if a[:3] == b[:3] else "its translation")
            blame = (graph.ops[k], what)
            break
    if blame is None and len(ops) != len(ops2):
        blame = (graph.ops[min(len(ops), len(ops2)) - 1], "the number of operators")
    if blame is None:
        return
    op, what = blame
    names = ", ".join(sorted(graph.symbols))
    raise CompileError(f"dimension {names} cannot stay dynamic: MegEngine opr '{op.name}' "
                       f"({op.type}) becomes a different {what} at {at} (its value is fixed in "
                       "the dumped graph, e.g. a shape traced as a constant); give the shapes "
                       "with --input-shapes", path, op.name)


# MegEngine's C++ side writes "info:"/"debug:" lines (a CUDA banner, driver probing)
# straight to file descriptor 2, which would bury our one-line errors.
_NATIVE_NOISE = re.compile(r"(info|debug): ")


@contextlib.contextmanager
def _without_native_info_logs():
    """Capture fd 2 while MegEngine runs and replay all but its info/debug lines."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreter): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [ln for ln in text.splitlines() if not _NATIVE_NOISE.match(ln)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def _load_network(path: str):
    require_regular_file(path)
    from megengine.utils.network import Network

    try:
        # MegEngine turns its own warnings on and leaks the model's file object: keep its
        # ResourceWarning out of our one-line output.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            return Network.load(path)
    except Exception as e:  # MegEngine raises its own error types for bad files
        raise CompileError(f"not a valid MegEngine model: {_first_line(e)}", source=path)


def _override_input_shapes(net, path: str, input_shapes: dict) -> None:
    inputs = {v.name: v for v in net.input_vars}
    for name, shape in input_shapes.items():
        if name not in inputs:
            raise CompileError(
                f"input_shapes names '{name}', but the model's inputs are {sorted(inputs)}",
                source=path)
        old = inputs[name]
        shape = tuple(int(d) for d in shape)
        if tuple(old.shape) == shape:
            continue
        try:
            new = net.make_input_node(shape, old.dtype, name)
            net.replace_vars({old: new})
        except Exception as e:  # shape inference failed somewhere downstream
            raise CompileError(f"model does not accept shape {shape} for input '{name}': "
                               f"{_first_line(e)}", source=path)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ====================================================================== converter state
class _Converter:
    """Walks the oprs in MegEngine's topological order and fills a Graph."""

    def __init__(self, net, path: str):
        self.net = net
        self.path = path
        self.g = Graph(source=path)
        self.names: Dict[int, str] = {}  # id(VarNode) -> IR tensor name
        self.opr = None  # the opr being converted, for error messages
        self.shared_consts: Dict[tuple, str] = {}  # (dtype, bytes) -> name (mge_quant)
        # IR tensors whose shape MegEngine leaves to run time (a slice with computed
        # bounds): declared with a placeholder shape that ir/infer.py replaces
        self.computed: set = set()
        self.input_names: Dict[str, str] = {}  # MegEngine input var name -> IR input name

    def run(self) -> Graph:
        for opr in self.net.all_oprs:
            self.opr = opr
            convert = _CONVERTERS.get(opr.type)
            if convert is None:
                raise self.error(f"unsupported MegEngine opr type '{opr.type}'")
            try:
                if opr.type not in _QUANT_AWARE and mge_quant.is_quantized(self, opr):
                    raise self.error("quantized tensors are not supported by this opr")
                if opr.type in _QUANT_DATA_MOVEMENT:
                    mge_quant.check_data_movement(self, opr)
                self._check_computed_inputs(opr)
                convert(self, opr)
            except CompileError:
                raise
            except Exception as e:  # a bug or an opr variant we did not foresee
                raise self.error(f"internal error: {type(e).__name__}: {_first_line(e)}")
        self.opr = None
        self.g.outputs = [self.name(v) for v in self.net.output_vars]
        return self.g

    def _check_computed_inputs(self, opr) -> None:
        """Only converters that never read their inputs' shapes take a tensor shaped at
        run time (the rest would bake the placeholder shape into the translation)."""
        if opr.type in _COMPUTED_SHAPE_INPUTS:
            return
        for var in opr.inputs:
            if self.names.get(id(var)) in self.computed:
                raise self.error(f"input var '{var.name}' has a shape computed at run time "
                                 "(e.g. a slice with computed bounds), which this opr does not "
                                 "support")

    # -- errors -----------------------------------------------------------------
    def error(self, message: str) -> CompileError:
        node = self.opr.name if self.opr is not None else ""
        kind = f"{self.opr.type}: " if self.opr is not None else ""
        if message.startswith(kind):  # the message names the opr already
            kind = ""
        return CompileError(kind + message, source=self.path, node=node)

    # -- vars -> tensors ----------------------------------------------------------
    def name(self, var) -> str:
        """IR name of an already-converted var."""
        try:
            return self.names[id(var)]
        except KeyError:
            raise self.error(f"uses var '{var.name}', an output that no converter produced")

    def tensor(self, var) -> Tensor:
        return self.g.tensor(self.name(var))

    def value(self, var) -> Optional[np.ndarray]:
        """Constant value of a var, or None if it is computed at run time."""
        return self.tensor(var).data

    def shape(self, var) -> tuple:
        shape = var.shape
        if shape is None:
            raise self.error(f"var '{var.name}' has no static shape")
        return tuple(int(d) for d in shape)

    def dtype(self, var) -> str:
        q = self.quant(var)
        if q is not None:
            return q.dtype
        np_dtype = np.dtype(var.dtype)
        try:
            return dtype_of_numpy(np_dtype)
        except KeyError:
            raise self.error(f"dtype {np_dtype} is not supported")

    def quant(self, var) -> Optional[mge_quant.MgbQuant]:
        """MegEngine's quantization parameters of `var` (None for plain dtypes)."""
        try:
            np_dtype = var.dtype
        except RuntimeError:  # e.g. BatchNorm's Byte workspace output has no numpy dtype
            return None
        try:
            return mge_quant.quant_of(np_dtype)
        except mge_quant.QuantDtypeError as e:
            raise self.error(f"var '{var.name}': {e}")

    def bind(self, var, name: str) -> None:
        """Make `var` refer to an existing tensor (for oprs that change nothing)."""
        self.names[id(var)] = name

    def out(self, var, rank: Optional[int] = None) -> str:
        """Declare the IR tensor holding MegEngine var `var`. A var MegEngine shapes at
        run time gets a placeholder of ones (ir/infer.py sets its shape); its rank is
        `rank`, else the largest of the opr's inputs (element-wise oprs)."""
        name = self.g.unique_name(_clean(var.name))
        q = self.quant(var)
        computed = var.shape is None and self.opr is not None and \
            self.opr.type in _COMPUTED_SHAPE_OUTPUTS and q is None
        if computed:
            if rank is None:
                rank = max(len(self.tensor(v).shape) for v in self.opr.inputs)
            shape = (1,) * rank
        else:
            shape = self.shape(var)
        self.g.add_tensor(Tensor(name, shape, self.dtype(var),
                                 quant=q.params if q is not None else None))
        if computed:
            self.computed.add(name)
        self.names[id(var)] = name
        return name

    def tmp(self, base: str, shape: Sequence[int], dtype: str) -> str:
        name = self.g.unique_name(_clean(base))
        self.g.add_tensor(Tensor(name, tuple(shape), dtype))
        return name

    def const(self, base: str, value) -> str:
        name = self.g.unique_name(_clean(base))
        self.g.add_const(name, np.asarray(value))
        return name

    def emit(self, op_type: str, inputs: List[str], outputs: List[str], **attrs) -> None:
        self.g.ops.append(Op(op_type, list(inputs), list(outputs), attrs, name=self.opr.name))

    def unary(self, op_type: str, x: str, out: str, **attrs) -> str:
        self.emit(op_type, [x], [out], **attrs)
        return out

    def like(self, base: str, ref: str) -> str:
        """Temporary with the shape and dtype of tensor `ref`."""
        t = self.g.tensor(ref)
        return self.tmp(base, t.shape, t.dtype)

    def params(self, opr):
        """The opr's params as MegEngine serialises them (raw JSON, not the
        Python wrapper's rewritten dict)."""
        return json.loads(opr._opr.params)

    # -- shape-tensor helpers -----------------------------------------------------
    def as_int64(self, var) -> str:
        """An int64 1-D tensor with the value of shape-like var `var`."""
        value = self.value(var)
        if value is not None:
            return self.const(f"{var.name}_i64", value.astype(np.int64).reshape(-1))
        x = self.name(var)
        t = self.g.tensor(x)
        cast = self.tmp(f"{x}_i64", t.shape, "int64")
        self.emit("Cast", [x], [cast], to=ONNX_ELEM_TYPE["int64"])
        if len(t.shape) != 1:
            flat = self.tmp(f"{x}_flat", (t.numel,), "int64")
            self.emit("Reshape", [cast, self.const("shape_flat", np.array([-1], np.int64))], [flat])
            cast = flat
        return cast

    def reshape_to(self, x: str, shape: Sequence[int], out: Optional[str] = None) -> str:
        """Reshape to a static shape (used for MegEngine's (1, C, 1, 1) -> (C,))."""
        t = self.g.tensor(x)
        if t.data is not None and out is None:
            return self.const(f"{x}_r", t.data.reshape(shape))
        out = out or self.tmp(f"{x}_r", shape, t.dtype)
        self.emit("Reshape", [x, self.const(f"{x}_shape", np.array(shape, np.int64))], [out])
        return out


def _clean(name: str) -> str:
    """Tensor names readable in C comments and dumps (MegEngine names hold ()[],: etc.)."""
    out = "".join(c if c.isalnum() or c in "._" else "_" for c in name)
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_") or "t"


# ====================================================================== sources
def _input(cv: _Converter, opr) -> None:
    name = cv.out(opr.outputs[0])
    cv.g.inputs.append(name)
    cv.input_names[opr.outputs[0].name] = name


def _constant(cv: _Converter, opr) -> None:
    var = opr.outputs[0]
    dtype = cv.dtype(var)
    # a quantized constant's numpy dtype carries MegEngine metadata: keep only the values
    value = np.array(opr.numpy(), dtype=numpy_dtype(dtype))
    value = value.reshape(cv.shape(var))
    name = cv.g.unique_name(_clean(var.name))
    t = cv.g.add_const(name, value, dtype)
    q = cv.quant(var)
    if q is not None:
        t.quant = q.params
    cv.bind(var, name)


def _alias(cv: _Converter, opr) -> None:
    """Oprs that only mark or copy a var (Identity, MarkNoBroadcastElemwise, ...)."""
    cv.bind(opr.outputs[0], cv.name(opr.inputs[0]))


# ====================================================================== elementwise
def _bshape(cv, names):
    return tuple(np.broadcast_shapes(*[cv.g.tensor(n).shape for n in names]))


def _elemwise(cv: _Converter, opr) -> None:
    mode = opr.params["mode"]
    if mge_quant.is_quantized(cv, opr):
        return mge_quant.elemwise(cv, opr, mode)
    xs = [cv.name(v) for v in opr.inputs]
    out = cv.out(opr.outputs[0])
    if mode in _UNARY:
        cv.emit(_UNARY[mode], xs, [out])
    elif mode in _BINARY:
        cv.emit(_BINARY[mode], xs, [out])
    elif mode in _COMPOUND:
        _COMPOUND[mode](cv, xs, out)
    else:
        raise cv.error(f"elemwise mode {mode} is not supported")


_UNARY = {
    "RELU": "Relu", "ABS": "Abs", "CEIL": "Ceil", "FLOOR": "Floor", "COS": "Cos",
    "SIN": "Sin", "TAN": "Tan", "EXP": "Exp", "LOG": "Log", "NEGATE": "Neg",
    "SIGMOID": "Sigmoid", "TANH": "Tanh", "ERF": "Erf", "SQRT": "Sqrt", "SIGN": "Sign",
    "NOT": "Not", "H_SWISH": "HardSwish", "ACOS": "Acos", "ASIN": "Asin", "SINH": "Sinh",
    "COSH": "Cosh", "ASINH": "Asinh", "ACOSH": "Acosh", "ATANH": "Atanh",
    "ISNAN": "IsNaN", "ISINF": "IsInf", "SOFTPLUS": "Softplus",
}
_BINARY = {
    "ADD": "Add", "SUB": "Sub", "MUL": "Mul", "MAX": "Max", "MIN": "Min", "POW": "Pow",
    "AND": "And", "OR": "Or", "XOR": "Xor",
}


def _scalar(cv, base, like_name, value):
    """A (1,)-shaped constant of `like_name`'s dtype."""
    return cv.const(base, np.array([value], numpy_dtype(cv.g.tensor(like_name).dtype)))


def _then(cv, op_type, inputs, out, shape, dtype, last, **attrs):
    """Emit an intermediate op, or the final one writing `out` when `last`."""
    dst = out if last else cv.tmp(f"{out}_{op_type.lower()}", shape, dtype)
    cv.emit(op_type, inputs, [dst], **attrs)
    return dst


def _add_then(act):
    def convert(cv, xs, out):
        t = cv.g.tensor(out)
        s = _then(cv, "Add", xs, out, t.shape, t.dtype, False)
        cv.emit(act, [s], [out])
    return convert


def _true_div(cv, xs, out):
    t = cv.g.tensor(out)
    if t.dtype.startswith("float"):
        xs = [x if cv.g.tensor(x).dtype == t.dtype else _cast(cv, x, t.dtype) for x in xs]
    cv.emit("Div", xs, [out])


def _cast(cv, x, dtype):
    dst = cv.tmp(f"{x}_{dtype}", cv.g.tensor(x).shape, dtype)
    cv.emit("Cast", [x], [dst], to=ONNX_ELEM_TYPE[dtype])
    return dst


def _floor_div(cv, xs, out):
    t = cv.g.tensor(out)
    a, b = xs
    if t.dtype.startswith("float"):
        q = _then(cv, "Div", xs, out, t.shape, t.dtype, False)
        cv.emit("Floor", [q], [out])
    else:
        # Integer floor division: a - mod(a, b) is an exact multiple of b, and ONNX
        # Mod with fmod=0 is Python's modulus (sign of the divisor).
        m = _then(cv, "Mod", xs, out, t.shape, t.dtype, False, fmod=0)
        d = _then(cv, "Sub", [a, m], out, t.shape, t.dtype, False)
        cv.emit("Div", [d, b], [out])


def _mod(cv, xs, out):
    # MegEngine's MOD is C's fmod / % (result takes the dividend's sign).
    cv.emit("Mod", xs, [out], fmod=1)


def _compare(onnx_op, negate=False):
    """MegEngine comparisons yield the inputs' dtype (1.0 / 0.0 for floats), ONNX's bool."""
    def convert(cv, xs, out):
        t = cv.g.tensor(out)
        steps = [(onnx_op, xs)] + ([("Not", None)] if negate else [])
        if t.dtype != "bool":
            steps.append(("Cast", None))
        cur = None
        for i, (op_type, inputs) in enumerate(steps):
            last = i == len(steps) - 1
            attrs = {"to": ONNX_ELEM_TYPE[t.dtype]} if op_type == "Cast" else {}
            cur = _then(cv, op_type, inputs or [cur], out, t.shape, "bool", last, **attrs)
    return convert


def _switch_gt0(cv, xs, out):
    # SWITCH_GT0(x, y) = y where x > 0 else 0 (the gradient of ReLU)
    x, y = xs
    t = cv.g.tensor(out)
    gt = cv.tmp(f"{out}_gt0", _bshape(cv, xs), "bool")
    cv.emit("Greater", [x, _scalar(cv, "zero", x, 0)], [gt])
    cv.emit("Where", [gt, y, _scalar(cv, "zero", y, 0)], [out])


def _cond_mov(cmp):
    def convert(cv, xs, out):
        # COND_LEQ_MOV(a, b, c) = c where a <= b else 0
        a, b, c = xs
        m = cv.tmp(f"{out}_cond", _bshape(cv, [a, b]), "bool")
        cv.emit(cmp, [a, b], [m])
        cv.emit("Where", [m, c, _scalar(cv, "zero", c, 0)], [out])
    return convert


def _fuse_mul_add3(cv, xs, out):
    a, b, c = xs
    t = cv.g.tensor(out)
    m = cv.tmp(f"{out}_mul", _bshape(cv, [a, b]), t.dtype)
    cv.emit("Mul", [a, b], [m])
    cv.emit("Add", [m, c], [out])


def _fuse_mul_add4(cv, xs, out):
    a, b, c, d = xs
    t = cv.g.tensor(out)
    m1 = cv.tmp(f"{out}_mul", _bshape(cv, [a, b]), t.dtype)
    m2 = cv.tmp(f"{out}_mul", _bshape(cv, [c, d]), t.dtype)
    cv.emit("Mul", [a, b], [m1])
    cv.emit("Mul", [c, d], [m2])
    cv.emit("Add", [m1, m2], [out])


def _relu6(cv, xs, out):
    x = xs[0]
    cv.emit("Clip", [x, _scalar(cv, "zero", x, 0), _scalar(cv, "six", x, 6)], [out])


def _hsigmoid(cv, xs, out):
    # relu6(x + 3) / 6
    cv.emit("HardSigmoid", xs, [out], alpha=1.0 / 6.0, beta=0.5)


def _silu(cv, xs, out):
    s = cv.like(f"{out}_sigmoid", out)
    cv.emit("Sigmoid", xs, [s])
    cv.emit("Mul", [xs[0], s], [out])


def _gelu(cv, xs, out):
    # MegEngine's GELU is the exact one: x * (1 + erf(x / sqrt(2))) / 2
    x = xs[0]
    t1, t2, t3, t4 = (cv.like(f"{out}_gelu", out) for _ in range(4))
    cv.emit("Mul", [x, _scalar(cv, "inv_sqrt2", x, 1 / math.sqrt(2))], [t1])
    cv.emit("Erf", [t1], [t2])
    cv.emit("Add", [t2, _scalar(cv, "one", x, 1)], [t3])
    cv.emit("Mul", [x, t3], [t4])
    cv.emit("Mul", [t4, _scalar(cv, "half", x, 0.5)], [out])


def _log1p(cv, xs, out):
    s = cv.like(f"{out}_plus1", out)
    cv.emit("Add", [xs[0], _scalar(cv, "one", xs[0], 1)], [s])
    cv.emit("Log", [s], [out])


def _expm1(cv, xs, out):
    e = cv.like(f"{out}_exp", out)
    cv.emit("Exp", xs, [e])
    cv.emit("Sub", [e, _scalar(cv, "one", xs[0], 1)], [out])


def _square(cv, xs, out):
    cv.emit("Mul", [xs[0], xs[0]], [out])


def _round(cv, xs, out):
    # MegEngine rounds half away from zero; ONNX Round is half-to-even.
    x = xs[0]
    a, b, f, s = (cv.like(f"{out}_round", out) for _ in range(4))
    cv.emit("Abs", [x], [a])
    cv.emit("Add", [a, _scalar(cv, "half", x, 0.5)], [b])
    cv.emit("Floor", [b], [f])
    cv.emit("Sign", [x], [s])
    cv.emit("Mul", [s, f], [out])


_COMPOUND: Dict[str, Callable] = {
    "TRUE_DIV": _true_div, "FLOOR_DIV": _floor_div, "MOD": _mod,
    "LT": _compare("Less"), "LEQ": _compare("LessOrEqual"), "EQ": _compare("Equal"),
    "NEQ": _compare("Equal", negate=True),
    "SWITCH_GT0": _switch_gt0, "COND_LEQ_MOV": _cond_mov("LessOrEqual"),
    "COND_LT_MOV": _cond_mov("Less"),
    "FUSE_MUL_ADD3": _fuse_mul_add3, "FUSE_MUL_ADD4": _fuse_mul_add4,
    "FUSE_ADD_RELU": _add_then("Relu"), "FUSE_ADD_SIGMOID": _add_then("Sigmoid"),
    "FUSE_ADD_TANH": _add_then("Tanh"), "FUSE_ADD_H_SWISH": _add_then("HardSwish"),
    "RELU6": _relu6, "HSIGMOID": _hsigmoid, "SILU": _silu, "GELU": _gelu,
    "LOG1P": _log1p, "EXPM1": _expm1, "SQUARE": _square, "ROUND": _round,
}


def _pow_c(cv: _Converter, opr) -> None:
    """x ** exp with a constant exponent the Python API does not expose."""
    exp = _probe_pow_exponent(cv, opr)
    x = cv.name(opr.inputs[0])
    out = cv.out(opr.outputs[0])
    cv.emit("Pow", [x, _scalar(cv, "exponent", x, exp)], [out])


def _type_cvt(cv: _Converter, opr) -> None:
    if mge_quant.is_quantized(cv, opr):
        return mge_quant.type_cvt(cv, opr)
    out = cv.out(opr.outputs[0])
    cv.emit("Cast", [cv.name(opr.inputs[0])], [out], to=ONNX_ELEM_TYPE[cv.g.tensor(out).dtype])


# ====================================================================== probing
def _probe(cv: _Converter, opr, data: np.ndarray) -> np.ndarray:
    """Run MegEngine's own `opr` on the constant `data`; returns its first output."""
    return _probe_many(cv, opr, {0: data})


def _probe_many(cv: _Converter, opr, data: Dict[int, np.ndarray]) -> np.ndarray:
    """Run MegEngine's own `opr` with inputs (by position) replaced by constants."""
    from megengine.core import _imperative_rt as rt
    from megengine.core.tensor import megbrain_graph as G
    from megengine.utils.comp_graph_tools import replace_vars

    mgb_opr = opr._opr
    try:
        repl = {}
        for k, value in data.items():
            src = mgb_opr.inputs[k]
            repl[src] = rt.make_const(cv.net.graph, value.astype(np.dtype(src.dtype)),
                                      src.comp_node, np.dtype(src.dtype), f"probe{k}")
        (probed,) = replace_vars([mgb_opr.outputs[0]], repl)
        node = G.OutputNode(probed)
        func = cv.net.graph.compile([node.outputs[0]])
        func.execute()
        func.wait()
        return node.get_value().numpy()
    except Exception as e:
        raise cv.error(f"cannot evaluate the opr to recover its parameters: {_first_line(e)}")


def _probe_softmax_axis(cv: _Converter, opr) -> int:
    shape = tuple(opr._opr.inputs[0].shape)
    data = np.random.RandomState(0).uniform(-2, 2, size=shape).astype(np.float32)
    got = _probe(cv, opr, data)
    for axis in range(len(shape)):
        e = np.exp(data - data.max(axis=axis, keepdims=True))
        if np.allclose(got, e / e.sum(axis=axis, keepdims=True), rtol=1e-4, atol=1e-6):
            return axis
    raise cv.error("cannot determine the softmax axis")


def _probe_pow_exponent(cv: _Converter, opr) -> float:
    shape = tuple(opr._opr.inputs[0].shape)
    at2 = float(_probe(cv, opr, np.full(shape, 2.0)).reshape(-1)[0])
    exp = math.log2(at2)
    if abs(exp * 2 - round(exp * 2)) < 1e-5:  # MegEngine's fast paths are halves/integers
        exp = round(exp * 2) / 2
    exp = float(np.float32(exp))
    # Cross-check at another point, so a wrong guess cannot pass silently.
    at3 = float(_probe(cv, opr, np.full(shape, 3.0)).reshape(-1)[0])
    if not math.isclose(at3, 3.0 ** exp, rel_tol=1e-5):
        raise cv.error("cannot determine the exponent")
    return exp


def _softmax(cv: _Converter, opr) -> None:
    axis = _probe_softmax_axis(cv, opr)
    out = cv.out(opr.outputs[0])
    cv.emit("Softmax", [cv.name(opr.inputs[0])], [out], axis=axis)


def _padding(cv: _Converter, opr) -> None:
    """PaddingForward -> Pad.  MegEngine's Python API hides the offsets, value and
    mode, so we recover them from two probes with distinct input values and keep
    only an explanation that reproduces both probes exactly."""
    x = cv.name(opr.inputs[0])
    ishape, oshape = cv.shape(opr.inputs[0]), cv.shape(opr.outputs[0])
    a = np.arange(1, int(np.prod(ishape)) + 1, dtype=np.float32).reshape(ishape)
    b = a * 2 + 3
    ya, yb = _probe(cv, opr, a), _probe(cv, opr, b)
    for fronts in _front_offset_candidates(ishape, oshape):
        inner = tuple(slice(f, f + d) for f, d in zip(fronts, ishape))
        if not np.array_equal(ya[inner], a):
            continue
        widths = [(f, o - i - f) for f, i, o in zip(fronts, ishape, oshape)]
        found = _padding_mode(ya, yb, a, b, widths)
        if found is None:
            continue
        mode, value = found
        pads = np.array([w[0] for w in widths] + [w[1] for w in widths], np.int64)
        inputs = [x, cv.const("pads", pads)]
        if mode == "constant":  # ONNX wants a scalar of the input's dtype
            inputs.append(cv.const("pad_value", np.array(value, numpy_dtype(cv.dtype(opr.inputs[0])))))
        cv.emit("Pad", inputs, [cv.out(opr.outputs[0])], mode=mode)
        return
    raise cv.error("cannot determine the padding offsets and mode")


def _padding_mode(ya, yb, a, b, widths):
    """(mode, value) for which np.pad reproduces both probes, else None."""
    for mode in ("constant", "edge", "reflect"):
        try:
            if mode == "constant":
                pad_mask = np.ones(ya.shape, bool)
                pad_mask[tuple(slice(w[0], w[0] + d) for w, d in zip(widths, a.shape))] = False
                value = float(ya[pad_mask][0]) if pad_mask.any() else 0.0
                ea, eb = (np.pad(v, widths, constant_values=value) for v in (a, b))
            else:
                ea, eb = (np.pad(v, widths, mode=mode) for v in (a, b))
        except ValueError:  # reflect needs dims > pad width
            continue
        if np.array_equal(ya, ea) and np.array_equal(yb, eb):
            return mode, (value if mode == "constant" else None)
    return None


def _front_offset_candidates(ishape, oshape, limit=100000):
    counts = [o - i + 1 for i, o in zip(ishape, oshape)]
    if int(np.prod(counts)) > limit:
        return []
    return np.ndindex(*counts)


# ====================================================================== convolution
_ACTIVATIONS = {"IDENTITY": None, "RELU": "Relu", "SIGMOID": "Sigmoid", "H_SWISH": "HardSwish"}


def _conv_weight(cv: _Converter, opr, params) -> tuple:
    """ONNX (OC, IC/G, KH, KW) weight name and group count."""
    wvar = opr.inputs[1]
    w = cv.name(wvar)
    shape = cv.shape(wvar)
    value = cv.value(wvar)
    if params.get("format", "NCHW") in _NCHW44_FORMATS:
        if value is None:
            raise cv.error("an NCHW44 convolution needs a constant weight")
        value = _nchw44_weight(cv, value, params["sparse"], len(cv.shape(opr.inputs[0])),
                               dot=params["format"] == "NCHW44_DOT")
        w, shape = cv.const(f"{w}_nchw", value), value.shape
    if params["mode"] == "CONVOLUTION":  # true convolution: flipped kernel
        if value is None:
            raise cv.error("CONVOLUTION mode needs a constant weight")
        value = np.ascontiguousarray(value[..., ::-1, ::-1])
        w = cv.const(f"{w}_flipped", value)
    elif params["mode"] != "CROSS_CORRELATION":
        raise cv.error(f"conv mode {params['mode']} is not supported")
    if params["sparse"] == "DENSE":
        return w, 1
    if params["sparse"] != "GROUP":
        raise cv.error(f"sparse={params['sparse']} is not supported")
    g, ocg, icg, kh, kw = shape
    return cv.reshape_to(w, (g * ocg, icg, kh, kw)), g


# MegEngine's NCHW44 format (MegCC's --enable_nchw44 dumps): activations (N, C/4, H, W, 4),
# channel c in block c // 4, lane c % 4. Convolutions and pooling in that format are
# converted to NCHW ops between a relayout in and out (Transpose + Reshape, which
# passes/transposes.py cancels between neighbours), with the weights re-laid out at load.
# NCHW44_DOT (--enable_nchw44_dot dumps, int8) has the same activations; its weights keep
# the 4 input channels of one output channel together (4oc, 4ic) for the dot product.
_NCHW44_FORMATS = ("NCHW44", "NCHW44_DOT")


def _nchw44_weight(cv: _Converter, w: np.ndarray, sparse: str, input_rank: int,
                   dot: bool = False) -> np.ndarray:
    """NCHW44 conv weight -> MegEngine's NCHW layout: dense (OC, IC, KH, KW), group
    (G, OC/G, IC/G, KH, KW)."""
    if dot and sparse == "DENSE" and w.ndim == 6:  # (OC/4, IC/4, KH, KW, 4oc, 4ic)
        o4, i4, kh, kw, _, _ = w.shape
        return w.transpose(0, 4, 1, 5, 2, 3).reshape(o4 * 4, i4 * 4, kh, kw)
    if dot and sparse == "GROUP" and w.ndim == 7:  # (G, OCg/4, ICg/4, KH, KW, 4oc, 4ic)
        g, o4, i4, kh, kw, _, _ = w.shape
        return w.transpose(0, 1, 5, 2, 6, 3, 4).reshape(g, o4 * 4, i4 * 4, kh, kw)
    if sparse == "DENSE" and input_rank == 4 and w.ndim == 5:
        # "hybrid" first conv, NCHW input: (OC/4, KH, KW, IC, 4oc)
        o4, kh, kw, ic, _ = w.shape
        return w.transpose(0, 4, 3, 1, 2).reshape(o4 * 4, ic, kh, kw)
    if sparse == "DENSE" and w.ndim == 6:  # (OC/4, IC/4, KH, KW, 4ic, 4oc)
        o4, i4, kh, kw, _, _ = w.shape
        return w.transpose(0, 5, 1, 4, 2, 3).reshape(o4 * 4, i4 * 4, kh, kw)
    if sparse == "GROUP" and w.ndim == 6 and w.shape[1:3] == (1, 1):
        # channel-wise: (G/4, 1, 1, KH, KW, 4)
        g4, _, _, kh, kw, _ = w.shape
        return w.transpose(0, 5, 1, 2, 3, 4).reshape(g4 * 4, 1, 1, kh, kw)
    if sparse == "GROUP" and w.ndim == 7:  # (G, OCg/4, ICg/4, KH, KW, 4ic, 4oc)
        g, o4, i4, kh, kw, _, _ = w.shape
        return w.transpose(0, 1, 6, 2, 5, 3, 4).reshape(g, o4 * 4, i4 * 4, kh, kw)
    raise cv.error(f"NCHW44 weight of shape {w.shape} ({sparse}) is not supported")


def _from_nchw44(cv: _Converter, x: str) -> str:
    """(N, C/4, H, W, 4) -> (N, C, H, W)."""
    n, c4, h, w, lanes = cv.g.tensor(x).shape
    dtype = cv.g.tensor(x).dtype
    t = cv.tmp(f"{x}_t", (n, c4, lanes, h, w), dtype)
    cv.emit("Transpose", [x], [t], perm=[0, 1, 4, 2, 3])
    return cv.reshape_to(t, (n, c4 * lanes, h, w))


def _to_nchw44(cv: _Converter, x: str, out: str) -> None:
    """(N, C, H, W) -> the NCHW44 tensor `out` (N, C/4, H, W, 4)."""
    n, c, h, w = cv.g.tensor(x).shape
    r = cv.reshape_to(x, (n, c // 4, 4, h, w))
    cv.emit("Transpose", [r], [out], perm=[0, 1, 3, 4, 2])


def _nchw44_io(cv: _Converter, opr, params):
    """(NCHW input names, the name the converted op writes its output to, finish) for an
    opr with one output. For an NCHW44 opr the inputs are relaid out to NCHW, the output is
    an NCHW temporary, and finish() - called after the op is emitted - relays it out into
    the opr's real NCHW44 output; for an NCHW opr everything is as it is."""
    out_var = opr.outputs[0]
    if params.get("format", "NCHW") not in _NCHW44_FORMATS:
        return [cv.name(v) for v in opr.inputs], cv.out(out_var), lambda: None
    names = []
    for v in opr.inputs:
        name = cv.name(v)
        shape = cv.g.tensor(name).shape
        if len(shape) == 5 and shape[-1] == 4 and cv.value(v) is None:
            name = _from_nchw44(cv, name)
        names.append(name)
    real = cv.out(out_var)
    n, c4, h, w, lanes = cv.shape(out_var)
    nchw = cv.tmp(f"{real}_nchw", (n, c4 * lanes, h, w), cv.g.tensor(real).dtype)
    return names, nchw, lambda: _to_nchw44(cv, nchw, real)


def _conv_attrs(cv: _Converter, params, kernel) -> dict:
    if params.get("format", "NCHW") not in ("NCHW",) + _NCHW44_FORMATS:
        raise cv.error(f"format {params['format']} is not supported "
                       "(NCHW, NCHW44 and NCHW44_DOT are)")
    return {
        "kernel_shape": list(kernel),
        "strides": [params["stride_h"], params["stride_w"]],
        "pads": [params["pad_h"], params["pad_w"], params["pad_h"], params["pad_w"]],
        "dilations": [params["dilate_h"], params["dilate_w"]],
    }


def _conv(cv: _Converter, opr) -> None:
    """ConvolutionForward and ConvBiasForward (bias, optional z, nonlinearity), in NCHW or
    NCHW44 format."""
    params = cv.params(opr)
    w, group = _conv_weight(cv, opr, params)
    attrs = _conv_attrs(cv, params, cv.g.tensor(w).shape[2:])
    attrs["group"] = group
    names, out, finish = _nchw44_io(cv, opr, params)
    x = names[0]
    oshape, odtype = cv.g.tensor(out).shape, cv.g.tensor(out).dtype
    oc = oshape[1]

    if mge_quant.is_quantized(cv, opr):
        bias = None
        if len(opr.inputs) > 2 and cv.g.tensor(names[2]).data is not None \
                and cv.g.tensor(names[2]).data.size == oc:
            bias = cv.reshape_to(names[2], (oc,))
        mge_quant.conv_bias(cv, opr, params, x, w, attrs, out, bias)
        finish()
        return
    inputs, post = [x, w], []  # post: (op, other operand) applied after the conv
    if len(opr.inputs) > 2:
        bias = names[2]
        bvalue = cv.g.tensor(bias).data
        if bvalue is not None and bvalue.size == oc and cv.shape(opr.inputs[2]) in (
                (1, oc, 1, 1), (1, oc // 4, 1, 1, 4)):
            inputs.append(cv.reshape_to(bias, (oc,)))  # ONNX wants (C,); NCHW44 order is c
        elif cv.shape(opr.inputs[2]):
            post.append(("Add", bias))  # run-time or full-shape bias
    if len(opr.inputs) > 3:
        post.append(("Add", names[3]))  # the "z" residual input
    mode = params.get("nonlineMode", "IDENTITY")
    if mode not in _ACTIVATIONS:
        raise cv.error(f"nonlineMode {mode} is not supported")
    if _ACTIVATIONS[mode]:
        post.append((_ACTIVATIONS[mode], None))

    cur = out if not post else cv.tmp(f"{out}_conv", oshape, odtype)
    cv.emit("Conv", inputs, [cur], **attrs)
    for i, (op_type, operand) in enumerate(post):
        dst = out if i == len(post) - 1 else cv.tmp(f"{out}_{op_type.lower()}", oshape, odtype)
        cv.emit(op_type, [cur] + ([operand] if operand else []), [dst])
        cur = dst
    finish()


def _conv_transpose(cv: _Converter, opr) -> None:
    """ConvolutionBackwardData (F.conv_transpose2d): inputs (weight, x); the weight is
    ONNX ConvTranspose's (IC, OC / G, KH, KW) already (dense), or (G, ICg, OCg, KH, KW).
    MegEngine derives the output size from the input like ONNX without output_padding;
    the bias, when the module has one, follows as an Elemwise ADD."""
    params = cv.params(opr)
    if params.get("format", "NCHW") != "NCHW":
        raise cv.error(f"ConvTranspose: format {params['format']} is not supported (NCHW is)")
    wvar, xvar = opr.inputs[0], opr.inputs[1]
    w, shape, value = cv.name(wvar), cv.shape(wvar), cv.value(wvar)
    if params["mode"] == "CONVOLUTION":  # true convolution: flipped kernel
        if value is None:
            raise cv.error("ConvTranspose: CONVOLUTION mode needs a constant weight")
        w = cv.const(f"{w}_flipped", np.ascontiguousarray(value[..., ::-1, ::-1]))
    elif params["mode"] != "CROSS_CORRELATION":
        raise cv.error(f"ConvTranspose: conv mode {params['mode']} is not supported")
    group = 1
    if params["sparse"] == "GROUP":
        group, icg, ocg, kh, kw = shape
        w = cv.reshape_to(w, (group * icg, ocg, kh, kw))
    elif params["sparse"] != "DENSE":
        raise cv.error(f"ConvTranspose: sparse={params['sparse']} is not supported")
    attrs = _conv_attrs(cv, params, cv.g.tensor(w).shape[2:])
    attrs["group"] = group
    cv.emit("ConvTranspose", [cv.name(xvar), w], [cv.out(opr.outputs[0])], **attrs)


def _resize(cv: _Converter, opr) -> None:
    """ResizeForward (F.vision.interpolate, NCHW): MegDNN's LINEAR samples at (d + 0.5) /
    scale - 0.5 clamped, NEAREST at floor(d / scale), scale = out / in in float32: ONNX
    Resize's half_pixel linear and asymmetric floor-nearest, computed the same way
    (kernels/data/resize_generic.py). Inputs: x and the (H, W) target size."""
    params = cv.params(opr)
    if params.get("format", "NCHW") != "NCHW":
        raise cv.error(f"Resize: format {params['format']} is not supported (NCHW is)")
    imode = params.get("imode", "LINEAR")
    if imode not in ("LINEAR", "NEAREST"):
        raise cv.error(f"Resize: interpolation {imode} is not supported (LINEAR, NEAREST are)")
    x = cv.name(opr.inputs[0])
    xshape = cv.shape(opr.inputs[0])
    if len(xshape) != 4:
        raise cv.error(f"Resize: a {len(xshape)}-D input (NCHW 4-D is supported)")
    hw = cv.value(opr.inputs[1])
    out = cv.out(opr.outputs[0])
    if hw is not None:
        sizes = cv.const(f"{out}_sizes",
                         np.array(list(xshape[:2]) + [int(v) for v in hw.reshape(-1)], np.int64))
    else:  # a computed target size: (N, C) of x, then it
        nc = cv.tmp(f"{out}_nc", (2,), "int64")
        cv.emit("Shape", [x], [nc], start=0, end=2)
        sizes = cv.tmp(f"{out}_sizes", (4,), "int64")
        cv.emit("Concat", [nc, cv.as_int64(opr.inputs[1])], [sizes], axis=0)
    if imode == "LINEAR":
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    cv.emit("Resize", [x, "", "", sizes], [out], **attrs)


def _evaluate_vars(cv: _Converter, vars_) -> List[np.ndarray]:
    """Values of vars that depend on no input (MultipleDeviceTensorHolder's), computed by
    MegEngine itself."""
    from megengine.core.tensor import megbrain_graph as G

    try:
        nodes = [G.OutputNode(v._var if hasattr(v, "_var") else v) for v in vars_]
        func = cv.net.graph.compile([n.outputs[0] for n in nodes])
        func.execute()
        func.wait()
        return [n.get_value().numpy() for n in nodes]
    except Exception as e:
        raise cv.error(f"cannot evaluate the constants: {_first_line(e)}")


def _multi_holder(cv: _Converter, opr) -> None:
    """MultipleDeviceTensorHolder: several constants in one opr."""
    outs = list(opr.outputs)
    for var, value in zip(outs, _evaluate_vars(cv, [v for v in opr._opr.outputs])):
        dtype = cv.dtype(var)
        name = cv.g.unique_name(_clean(var.name))
        cv.g.add_const(name, np.asarray(value, numpy_dtype(dtype)).reshape(cv.shape(var)), dtype)
        cv.bind(var, name)


def _probe_layer_norm_eps(cv: _Converter, opr, shape, k, w, b) -> float:
    """MegEngine hides LayerNorm's epsilon: groups of +-a have mean 0 and variance a^2, so
    y = a / sqrt(a^2 + eps) * w + b gives it; cross-checked on random data."""
    a = 1e-2
    group = int(np.prod(shape[len(shape) - k:]))
    pattern = np.where(np.arange(group) % 2 == 0, a, -a).astype(np.float32)
    if group % 2:
        pattern[-1] = 0.0  # keep the mean 0: (g - 1) / 2 pairs and a zero
    data = np.broadcast_to(pattern, (int(np.prod(shape)) // group, group)).reshape(shape)
    got = _probe(cv, opr, np.ascontiguousarray(data)).reshape(-1, group)[0]
    wv = np.ones(group, np.float32) if w is None else np.asarray(w, np.float32).reshape(-1)
    bv = np.zeros(group, np.float32) if b is None else np.asarray(b, np.float32).reshape(-1)
    var = float(np.mean(pattern.astype(np.float64) ** 2))
    i = int(np.argmax(np.abs(wv) * (np.abs(pattern) > 0)))
    r = (float(got[i]) - float(bv[i])) / float(wv[i]) / float(pattern[i])  # 1/sqrt(var+eps)
    eps = float(np.float32(max(1.0 / (r * r) - var, 0.0)))
    for cand in (1e-5, 1e-6, 1e-12, 1e-3, 1e-4):  # snap to the usual values when that close
        if abs(eps - cand) <= cand * 1e-2:
            eps = cand
            break
    rnd = np.random.RandomState(1).uniform(-2, 2, shape).astype(np.float32)
    got = _probe(cv, opr, rnd).reshape(-1, group).astype(np.float64)
    x = rnd.reshape(-1, group).astype(np.float64)
    ref = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + eps) * wv + bv
    if not np.allclose(got, ref, rtol=1e-4, atol=1e-5):
        raise cv.error("LayerNorm: cannot determine its epsilon")
    return eps


def _layer_norm(cv: _Converter, opr) -> None:
    """LayerNormForward: normalised over the trailing axes its mean output drops, with an
    optional affine weight and bias; only the normalised output may be used."""
    xvar = opr.inputs[0]
    shape = cv.shape(xvar)
    k = len(shape) - len(cv.shape(opr.outputs[1]))
    if k < 1:
        raise cv.error("LayerNorm: cannot tell the normalised axes")
    affine = len(opr.inputs) == 3
    w = cv.value(opr.inputs[1]) if affine else None
    b = cv.value(opr.inputs[2]) if affine else None
    if affine and (w is None or b is None):
        raise cv.error("LayerNorm: weight and bias must be constants")
    eps = _probe_layer_norm_eps(cv, opr, shape, k, w, b)
    norm_shape = shape[len(shape) - k:]
    scale = cv.const("ln_scale", (np.ones(norm_shape, np.float32) if w is None
                                  else np.asarray(w, np.float32).reshape(norm_shape)))
    bias = cv.const("ln_bias", (np.zeros(norm_shape, np.float32) if b is None
                                else np.asarray(b, np.float32).reshape(norm_shape)))
    cv.emit("LayerNormalization", [cv.name(xvar), scale, bias], [cv.out(opr.outputs[0])],
            axis=-k, epsilon=eps)


def _arg_reduce(op_type: str):
    def convert(cv: _Converter, opr) -> None:
        """Argmax / Argmin along `axis`, keeping it (MegEngine's int32 result)."""
        axis = cv.params(opr)["axis"]
        out = cv.out(opr.outputs[0])
        idx = cv.tmp(f"{out}_i64", cv.shape(opr.outputs[0]), "int64")
        cv.emit(op_type, [cv.name(opr.inputs[0])], [idx], axis=axis, keepdims=1)
        cv.emit("Cast", [idx], [out], to=ONNX_ELEM_TYPE[cv.dtype(opr.outputs[0])])
    return convert


def _top_k(cv: _Converter, opr) -> None:
    """TopK (F.topk) along the last axis: k < 0 asks for the largest; sorted results only
    (an unsorted or k-th-only TopK is refused)."""
    mode = cv.params(opr).get("mode", "VALUE_IDX_SORTED")
    if mode != "VALUE_IDX_SORTED":
        raise cv.error(f"TopK: mode {mode} is not supported (VALUE_IDX_SORTED is)")
    kval = cv.value(opr.inputs[1])
    if kval is None:
        raise cv.error("TopK: k must be a constant")
    k = int(np.asarray(kval).reshape(-1)[0])
    values, indices = cv.out(opr.outputs[0]), cv.out(opr.outputs[1])
    idx = cv.tmp(f"{indices}_i64", cv.shape(opr.outputs[1]), "int64")
    cv.emit("TopK", [cv.name(opr.inputs[0]), cv.const("k", np.array([abs(k)], np.int64))],
            [values, idx], axis=-1, largest=int(k < 0), sorted=1)
    cv.emit("Cast", [idx], [indices], to=ONNX_ELEM_TYPE[cv.dtype(opr.outputs[1])])


def _indexing_multi_axis_vec(cv: _Converter, opr) -> None:
    """x[..., idx, ...] with one index tensor and no slice: Gather on that axis. The leading
    axes indexed by 1-D index tensors of one length (F.gather's lowering, `x[a, b]`):
    GatherND on the stacked coordinates, the index tensors matched to axes by probing
    MegEngine. Index tensors computed at run time are stacked at run time; the output
    shape follows theirs. Other mixes of indices and slices are refused."""
    items = cv.params(opr)
    indexed = [it for it in items if it.get("idx")]
    xshape = cv.shape(opr.inputs[0])
    if len(indexed) == 1 and len(items) == 1:
        cv.emit("Gather", [cv.name(opr.inputs[0]), cv.name(opr.inputs[1])],
                [cv.out(opr.outputs[0])], axis=int(indexed[0]["axis"]))
        return
    idx_vars = list(opr.inputs[1:])
    lengths = {cv.shape(v) for v in idx_vars}
    if len(indexed) != len(items) or len(items) > len(xshape) or len(idx_vars) != len(items) \
            or len(lengths) != 1 or len(next(iter(lengths))) != 1 \
            or sorted(int(it["axis"]) for it in items) != list(range(len(items))):
        raise cv.error("IndexingMultiAxisVec: only one indexed axis, or the leading axes "
                       "indexed by 1-D index tensors of one length, is supported")
    values = [cv.value(v) for v in idx_vars]
    axes = _match_index_axes(cv, opr, items, values, xshape)
    if all(v is not None for v in values):
        coords = [None] * len(axes)
        for v, axis in zip(values, axes):
            coords[axis] = np.asarray(v, np.int64).reshape(-1)
        stacked = cv.const("gather_nd_indices", np.stack(coords, -1))
    else:
        stacked = _stack_indices(cv, [v for _, v in sorted(zip(axes, idx_vars),
                                                           key=lambda p: p[0])])
    cv.emit("GatherND", [cv.name(opr.inputs[0]), stacked], [cv.out(opr.outputs[0])])


def _match_index_axes(cv, opr, items, values, xshape) -> List[int]:
    """Which axis each index tensor indexes (MegEngine may list them out of axis order):
    the order whose numpy indexing reproduces MegEngine's output on a probe. Computed
    index tensors are replaced by probe values of their shape."""
    k = len(items)
    orders = [[int(it["axis"]) for it in items], sorted(int(it["axis"]) for it in items)]
    data = np.random.RandomState(4).uniform(-1, 1, xshape).astype(np.float32)
    extent = min(xshape[:k])
    for seed in range(4):
        rng = np.random.RandomState(5 + seed)
        probe_values = [v if v is not None else
                        rng.randint(0, extent, cv.shape(var)).astype(np.dtype(var.dtype))
                        for v, var in zip(values, opr.inputs[1:])]
        got = _probe_many(cv, opr, {0: data, **{j + 1: pv for j, (pv, v) in enumerate(
            zip(probe_values, values)) if v is None}})
        matches = []
        for order in orders:
            coords = [None] * k
            for v, axis in zip(probe_values, order):
                coords[axis] = np.asarray(v, np.int64).reshape(-1)
            try:
                if np.array_equal(data[tuple(coords)], got):
                    matches.append(order)
            except IndexError:  # an index outside that axis: not this order
                pass
        if matches and (all(m == matches[0] for m in matches)
                        or all(v is not None for v in values)):
            return matches[0]  # (constant indices that fit both orders: either is right)
        if not matches or all(v is not None for v in values):
            break  # constant indices: another probe gives the same answer
    raise cv.error("IndexingMultiAxisVec: cannot match the index tensors to axes")


def _stack_indices(cv, idx_names_vars) -> str:
    """(L, k) int64 GatherND indices from k computed 1-D index tensors of length L."""
    cols = []
    for var in idx_names_vars:
        (n,) = cv.shape(var)
        col = cv.tmp(f"{cv.name(var)}_col", (n, 1), "int64")
        cast = cv.tmp(f"{cv.name(var)}_i64", (n,), "int64")
        cv.emit("Cast", [cv.name(var)], [cast], to=ONNX_ELEM_TYPE["int64"])
        cv.emit("Unsqueeze", [cast, cv.const("axes", np.array([1], np.int64))], [col])
        cols.append(col)
    out = cv.tmp("gather_nd_indices", (cv.shape(idx_names_vars[0])[0], len(cols)), "int64")
    cv.emit("Concat", cols, [out], axis=1)
    return out


def _cumsum(cv: _Converter, opr) -> None:
    """Cumsum: MegEngine hides axis / exclusive / reverse; the one combination that
    reproduces MegEngine on a probe is taken."""
    shape = cv.shape(opr.inputs[0])
    data = np.random.RandomState(2).randint(-5, 6, shape).astype(np.float32)
    got = _probe(cv, opr, data)
    for axis in range(len(shape)):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                x = np.flip(data, axis) if reverse else data
                ref = np.cumsum(x, axis=axis)
                if exclusive:
                    ref = ref - x
                if reverse:
                    ref = np.flip(ref, axis)
                if np.array_equal(got, ref):
                    cv.emit("CumSum", [cv.name(opr.inputs[0]),
                                       cv.const("axis", np.array(axis, np.int64))],
                            [cv.out(opr.outputs[0])], exclusive=exclusive, reverse=reverse)
                    return
    raise cv.error("Cumsum: cannot determine its axis")


def _warp_affine(cv: _Converter, opr) -> None:
    """WarpAffineForward (F.vision.warp_affine): a WarpPerspective whose matrices end in
    (0, 0, 1), in NCHW (NHWC input transposed in and out)."""
    params = cv.params(opr)
    fmt = params.get("format", "NHWC")
    if fmt not in ("NHWC", "NCHW"):
        raise cv.error(f"WarpAffine: format {fmt} is not supported (NHWC, NCHW are)")
    if params.get("imode", "LINEAR") != "LINEAR":
        raise cv.error(f"WarpAffine: interpolation {params['imode']} is not supported")
    bmode = params.get("border_mode", "REPLICATE")
    if bmode not in _WARP_BORDERS:
        raise cv.error(f"WarpAffine: border mode {bmode} is not supported")
    mat = cv.value(opr.inputs[1])
    size = cv.value(opr.inputs[2])
    if mat is None or size is None:
        raise cv.error("WarpAffine: the matrices and the output size must be constants")
    mat = np.asarray(mat, np.float32)
    full = np.concatenate([mat, np.tile(np.array([[[0, 0, 1]]], np.float32),
                                        (mat.shape[0], 1, 1))], 1)
    oh, ow = (int(v) for v in size.reshape(-1))
    x = cv.name(opr.inputs[0])
    out = cv.out(opr.outputs[0])
    xs = cv.shape(opr.inputs[0])
    attrs = dict(out_h=oh, out_w=ow, bmode=_WARP_BORDERS[bmode],
                 border_val=float(params.get("border_val", 0.0)))
    m = cv.const("warp_affine_mat", full)
    if fmt == "NCHW":
        cv.emit("WarpPerspective", [x, m], [out], **attrs)
        return
    nchw = cv.tmp(f"{x}_nchw", (xs[0], xs[3], xs[1], xs[2]), cv.dtype(opr.inputs[0]))
    cv.emit("Transpose", [x], [nchw], perm=[0, 3, 1, 2])
    warped = cv.tmp(f"{out}_nchw", (xs[0], xs[3], oh, ow), cv.dtype(opr.inputs[0]))
    cv.emit("WarpPerspective", [nchw, m], [warped], **attrs)
    cv.emit("Transpose", [warped], [out], perm=[0, 2, 3, 1])


_WARP_BORDERS = {"REPLICATE": "replicate", "REFLECT": "reflect", "REFLECT_101": "reflect_101",
                 "WRAP": "wrap", "CONSTANT": "constant"}


def _warp_perspective(cv: _Converter, opr) -> None:
    """WarpPerspectiveForward (F.vision.warp_perspective; interpolate with align_corners):
    inputs x, the (N, 3, 3) matrices and the constant output (H, W); bilinear only."""
    params = cv.params(opr)
    if params.get("format", "NCHW") != "NCHW":
        raise cv.error(f"WarpPerspective: format {params['format']} is not supported (NCHW is)")
    if params.get("imode", "LINEAR") != "LINEAR":
        raise cv.error(f"WarpPerspective: interpolation {params['imode']} is not supported "
                       "(LINEAR is)")
    if params.get("bmode") not in _WARP_BORDERS:
        raise cv.error(f"WarpPerspective: border mode {params.get('bmode')} is not supported")
    if len(opr.inputs) != 3:
        raise cv.error("WarpPerspective with a mat_idx input is not supported")
    size = cv.value(opr.inputs[2])
    if size is None:
        raise cv.error("WarpPerspective: the output size must be a constant")
    oh, ow = (int(v) for v in size.reshape(-1))
    mat = cv.name(opr.inputs[1])
    if cv.dtype(opr.inputs[1]) != "float32":
        cast = cv.tmp(f"{mat}_f32", cv.shape(opr.inputs[1]), "float32")
        cv.emit("Cast", [mat], [cast], to=ONNX_ELEM_TYPE["float32"])
        mat = cast
    cv.emit("WarpPerspective", [cv.name(opr.inputs[0]), mat], [cv.out(opr.outputs[0])],
            out_h=oh, out_w=ow, bmode=_WARP_BORDERS[params["bmode"]],
            border_val=float(params.get("border_val", 0.0)))


def _batch_norm(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    if params["fwd_mode"] != "INFERENCE":
        raise cv.error("only inference-mode BatchNorm can be compiled (dump the model in eval mode)")
    if params["param_dim"] != "DIM_1C11":
        raise cv.error(f"param_dim {params['param_dim']} is not supported")
    x, scale, bias, mean, var = opr.inputs[:5]
    c = cv.shape(x)[1]
    args = [cv.name(x)] + [cv.reshape_to(cv.name(v), (c,)) for v in (scale, bias, mean, var)]
    out = cv.out(opr.outputs[-1])  # the other outputs are training statistics
    cv.emit("BatchNormalization", args, [out], epsilon=float(params["epsilon"]))


# ====================================================================== pooling
def _pooling(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    attrs = _conv_attrs(cv, {**params, "dilate_h": 1, "dilate_w": 1},
                        (params["window_h"], params["window_w"]))
    del attrs["dilations"]
    names, out, finish = _nchw44_io(cv, opr, params)
    _emit_pool(cv, opr, params["mode"], attrs, names[0], out)
    finish()


def _emit_pool(cv, opr, mode, attrs, x=None, out=None):
    x = x or cv.name(opr.inputs[0])
    out = out or cv.out(opr.outputs[0])
    if mode != "MAX" and mge_quant.is_quantized(cv, opr):
        if mode not in ("AVERAGE", "AVERAGE_COUNT_EXCLUDE_PADDING"):
            raise cv.error(f"pooling mode {mode} is not supported")
        return mge_quant.average_pool(cv, opr, x, out, attrs, int(mode == "AVERAGE"))
    if mode == "MAX":
        mge_quant.check_data_movement(cv, opr)
    if mode == "MAX":
        cv.emit("MaxPool", [x], [out], **attrs)
    elif mode == "AVERAGE":  # MegEngine's AVERAGE counts padded zeros
        cv.emit("AveragePool", [x], [out], count_include_pad=1, **attrs)
    elif mode == "AVERAGE_COUNT_EXCLUDE_PADDING":
        cv.emit("AveragePool", [x], [out], count_include_pad=0, **attrs)
    else:
        raise cv.error(f"pooling mode {mode} is not supported")


def _adaptive_pooling(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    if params.get("format", "NCHW") not in ("NCHW", "NCHW44"):
        raise cv.error(f"format {params['format']} is not supported (NCHW and NCHW44 are)")
    names, out, finish = _nchw44_io(cv, opr, params)
    x = names[0]
    _, _, ih, iw = cv.g.tensor(x).shape
    _, _, oh, ow = cv.g.tensor(out).shape
    mode = params["mode"]
    # (quantized: the global pools become windowed ones, which have int8 kernels)
    if (oh, ow) == (1, 1) and mode in ("MAX", "AVERAGE") and not mge_quant.is_quantized(cv, opr):
        cv.emit("GlobalMaxPool" if mode == "MAX" else "GlobalAveragePool", [x], [out])
    else:
        # MegEngine computes adaptive pooling as a plain pooling with
        # stride = floor(in / out) and window = in - (out - 1) * stride.
        sh, sw = ih // oh, iw // ow
        attrs = {"kernel_shape": [ih - (oh - 1) * sh, iw - (ow - 1) * sw],
                 "strides": [sh, sw], "pads": [0, 0, 0, 0]}
        _emit_pool(cv, opr, mode, attrs, x, out)
    finish()


# ====================================================================== matmul
def _matrix_mul(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    a, b = opr.inputs
    if len(cv.shape(a)) != 2 or len(cv.shape(b)) != 2:
        raise cv.error("only 2-D MatrixMul is supported")
    if params.get("format", "DEFAULT") != "DEFAULT":
        raise cv.error(f"format {params['format']} is not supported")
    if mge_quant.is_quantized(cv, opr):
        return mge_quant.matrix_mul(cv, opr, params)
    out = cv.out(opr.outputs[0])
    cv.emit("Gemm", [cv.name(a), cv.name(b)], [out],
            transA=int(params["transposeA"]), transB=int(params["transposeB"]))


def _batched_matmul(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    names = []
    for var, flag in zip(opr.inputs, ("transposeA", "transposeB")):
        x = cv.name(var)
        if params[flag]:
            shape = list(cv.shape(var))
            perm = list(range(len(shape)))
            perm[-2], perm[-1] = perm[-1], perm[-2]
            t = cv.tmp(f"{x}_T", [shape[p] for p in perm], cv.dtype(var))
            cv.emit("Transpose", [x], [t], perm=perm)
            x = t
        names.append(x)
    cv.emit("MatMul", names, [cv.out(opr.outputs[0])])


# ====================================================================== reductions
_REDUCE = {"SUM": "ReduceSum", "SUM_SQR": "ReduceSumSquare", "PRODUCT": "ReduceProd",
           "MIN": "ReduceMin", "MAX": "ReduceMax", "MEAN": "ReduceMean"}


def _reduce(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    mode = params["mode"]
    if mode not in _REDUCE:
        raise cv.error(f"reduce mode {mode} is not supported")
    ishape, oshape = cv.shape(opr.inputs[0]), cv.shape(opr.outputs[0])
    axis = params.get("axis")
    if axis is not None and 0 <= axis < len(ishape) and len(opr.inputs) == 1:
        axes = [axis]
    else:  # reduce to a target shape: every axis whose size changed
        axes = [i for i, (a, b) in enumerate(zip(ishape, oshape)) if a != b]
    x = cv.name(opr.inputs[0])
    out = cv.out(opr.outputs[0])  # MegEngine's Reduce keeps reduced axes as 1
    if mode == "SUM":  # opset 13+: ReduceSum takes axes as a tensor
        cv.emit("ReduceSum", [x, cv.const("axes", np.array(axes, np.int64))], [out], keepdims=1)
    else:
        cv.emit(_REDUCE[mode], [x], [out], axes=axes, keepdims=1)


# ====================================================================== shapes
def _get_var_shape(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    x = cv.name(opr.inputs[0])
    out = cv.out(opr.outputs[0])
    attrs = {}
    if "axis" in params and params["axis"] is not None and 0 <= params["axis"] < 7:
        attrs = {"start": params["axis"], "end": params["axis"] + 1}
    n = cv.g.tensor(out).shape
    shape64 = cv.tmp(f"{out}_i64", n, "int64")
    cv.emit("Shape", [x], [shape64], **attrs)
    cv.emit("Cast", [shape64], [out], to=ONNX_ELEM_TYPE[cv.g.tensor(out).dtype])


def _reshape(cv: _Converter, opr) -> None:
    params = cv.params(opr)
    x = cv.name(opr.inputs[0])
    shape = cv.as_int64(opr.inputs[1])
    axis = params.get("axis")
    if axis is not None and 0 <= axis < 7:
        shape = _set_unspec_axis(cv, shape, axis)
    out = cv.out(opr.outputs[0])
    cv.emit("Reshape", [x, shape], [out])


def _set_unspec_axis(cv, shape: str, axis: int) -> str:
    """MegEngine's Reshape ignores tshp[axis] and infers it: that is ONNX's -1."""
    t = cv.g.tensor(shape)
    if t.data is not None:
        value = t.data.copy()
        value[axis] = -1
        return cv.const(f"{shape}_unspec", value)
    n = t.shape[0]
    parts = []
    if axis > 0:
        parts.append(_slice1d(cv, shape, 0, axis))
    parts.append(cv.const("minus_one", np.array([-1], np.int64)))
    if axis + 1 < n:
        parts.append(_slice1d(cv, shape, axis + 1, n))
    out = cv.tmp(f"{shape}_unspec", (n,), "int64")
    cv.emit("Concat", parts, [out], axis=0)
    return out


def _slice1d(cv, x, start, end):
    out = cv.tmp(f"{x}_{start}_{end}", (end - start,), cv.g.tensor(x).dtype)
    cv.emit("Slice", [x, cv.const("starts", np.array([start], np.int64)),
                      cv.const("ends", np.array([end], np.int64))], [out])
    return out


def _broadcast(cv: _Converter, opr) -> None:
    x = cv.name(opr.inputs[0])
    shape = cv.as_int64(opr.inputs[1])
    cv.emit("Expand", [x, shape], [cv.out(opr.outputs[0])])


def _concat(cv: _Converter, opr) -> None:
    axis = cv.params(opr)["axis"]
    cv.emit("Concat", [cv.name(v) for v in opr.inputs], [cv.out(opr.outputs[0])], axis=axis)


def _split(cv: _Converter, opr) -> None:
    """Split(x, size_0, size_1, ...): the axis is not exposed by MegEngine's Python
    API, but it is the one axis along which the outputs differ from the input."""
    ishape = cv.shape(opr.inputs[0])
    oshapes = [cv.shape(v) for v in opr.outputs]
    axes = {a for s in oshapes for a in range(len(ishape)) if s[a] != ishape[a]}
    if len(axes) > 1:
        raise cv.error(f"cannot tell the split axis from shapes {oshapes}")
    axis = axes.pop() if axes else 0
    sizes = _int64_vector(cv, "split", list(opr.inputs[1:]))
    outs = [cv.out(v) for v in opr.outputs]
    cv.emit("Split", [cv.name(opr.inputs[0]), sizes], outs, axis=axis)


def _dimshuffle(cv: _Converter, opr) -> None:
    """pattern: output axis i takes input axis pattern[i]; -1 inserts a size-1 axis;
    input axes absent from the pattern (size 1) are dropped."""
    pattern = list(cv.params(opr)["pattern"])
    x = cv.name(opr.inputs[0])
    ishape = cv.shape(opr.inputs[0])
    dtype = cv.dtype(opr.inputs[0])
    kept = [p for p in pattern if p >= 0]
    dropped = [i for i in range(len(ishape)) if i not in kept]
    steps = []  # (op, attrs/const, shape)
    if dropped:
        renumber = {old: new for new, old in enumerate(i for i in range(len(ishape)) if i not in dropped)}
        kept = [renumber[p] for p in kept]
        shape = [d for i, d in enumerate(ishape) if i not in dropped]
        steps.append(("Squeeze", dropped, shape))
    else:
        shape = list(ishape)
    if kept != sorted(kept):
        shape = [shape[p] for p in kept]
        steps.append(("Transpose", kept, shape))
    added = [i for i, p in enumerate(pattern) if p < 0]
    if added:
        steps.append(("Unsqueeze", added, cv.shape(opr.outputs[0])))
    out = cv.out(opr.outputs[0])
    if not steps:
        steps.append(("Identity", None, None))
    cur = x
    for i, (op_type, arg, shape) in enumerate(steps):
        dst = out if i == len(steps) - 1 else cv.tmp(f"{out}_{op_type.lower()}", shape, dtype)
        if op_type == "Transpose":
            cv.emit("Transpose", [cur], [dst], perm=arg)
        elif op_type == "Identity":
            cv.emit("Identity", [cur], [dst])
        else:  # Squeeze / Unsqueeze take axes as a tensor since opset 13
            cv.emit(op_type, [cur, cv.const("axes", np.array(arg, np.int64))], [dst])
        cur = dst


def _axis_add_remove(cv: _Converter, opr) -> None:
    """Applied one desc at a time, in order, exactly like MegEngine does."""
    descs = cv.params(opr)["desc"]
    cur = cv.name(opr.inputs[0])
    shape = list(cv.shape(opr.inputs[0]))
    dtype = cv.dtype(opr.inputs[0])
    out = cv.out(opr.outputs[0])
    for i, d in enumerate(descs):
        axis = d["axisnum"]
        if d["method"] == 0:  # ADD
            shape.insert(axis, 1)
            op_type = "Unsqueeze"
        else:  # REMOVE
            if shape[axis] != 1:
                raise cv.error(f"cannot remove axis {axis} of size {shape[axis]}")
            del shape[axis]
            op_type = "Squeeze"
        dst = out if i == len(descs) - 1 else cv.tmp(f"{out}_{op_type.lower()}", shape, dtype)
        cv.emit(op_type, [cur, cv.const("axes", np.array([axis], np.int64))], [dst])
        cur = dst
    if tuple(shape) != cv.g.tensor(out).shape:
        raise cv.error(f"axis changes give {shape}, MegEngine says {cv.g.tensor(out).shape}")


# ====================================================================== indexing
def _subtensor(cv: _Converter, opr) -> None:
    """x[items]: slices (begin/end/step) become one Slice, integer indices become
    Gathers that keep the axis, then one Squeeze drops the indexed axes. Bounds computed
    at run time leave the output without a static shape in MegEngine: the Slice then has
    computed starts/ends/steps (its sliced extents are value symbols, ir/value_shapes.py)
    and the shapes below are placeholders that ir/infer.py replaces."""
    items = cv.params(opr)
    x = cv.name(opr.inputs[0])
    ishape = cv.g.tensor(x).shape if x in cv.computed else cv.shape(opr.inputs[0])
    computed = opr.outputs[0].shape is None
    oshape = cv.shape(opr.outputs[0]) if not computed else None
    dtype = cv.dtype(opr.inputs[0])
    ndim = len(ishape)
    values = iter(opr.inputs[1:])

    slices, indices = [], []  # (axis, begin, end, step) / (axis, var)
    for it in items:
        axis = it["axis"] % ndim
        begin = next(values) if it["begin"] else None
        end = next(values) if it["end"] else None
        step = next(values) if it["step"] else None
        idx = next(values) if it["idx"] else None
        if idx is not None:
            indices.append((axis, idx))
        else:
            slices.append((axis, begin, end, step))

    idx_axes = sorted(a for a, _ in indices)
    squeeze = idx_axes[:-1] if len(idx_axes) == ndim else idx_axes  # MegEngine keeps (1,)
    if computed:
        if x not in cv.computed and (not slices or all(
                cv.value(v) is not None for _, *bounds in slices for v in bounds if v is not None)):
            raise cv.error(f"var '{opr.outputs[0].name}' has no static shape")
        sliced = list(ishape)
        oshape = [d for a, d in enumerate(ishape) if a not in squeeze]
    else:
        pre_squeeze = list(oshape)
        for a in squeeze:
            pre_squeeze.insert(a, 1)
        sliced = [ishape[a] if a in idx_axes else pre_squeeze[a] for a in range(ndim)]

    out = cv.out(opr.outputs[0], rank=len(oshape))
    steps = (1 if slices else 0) + len(indices) + (1 if squeeze else 0)
    done = 0

    def target(shape):
        nonlocal done
        done += 1
        return out if done == steps else cv.tmp(f"{out}_part", shape, dtype)

    cur = x
    if slices:
        starts, ends, stride = _slice_operands(cv, slices)
        axes = cv.const("axes", np.array([a for a, *_ in slices], np.int64))
        dst = target(sliced)
        cv.emit("Slice", [cur, starts, ends, axes, stride], [dst])
        cur = dst
    shape = list(sliced)
    for axis, var in indices:
        shape[axis] = 1
        index = cv.name(var)
        if cv.g.tensor(index).shape != (1,):
            index = cv.reshape_to(index, (1,))
        dst = target(shape)
        cv.emit("Gather", [cur, index], [dst], axis=axis)
        cur = dst
    if squeeze:
        cv.emit("Squeeze", [cur, cv.const("axes", np.array(squeeze, np.int64))], [target(oshape)])
    if steps == 0:
        cv.emit("Identity", [x], [out])


def _slice_operands(cv, slices):
    """starts, ends, steps tensors for ONNX Slice; MegEngine's omitted bounds
    become the int64 extremes that ONNX clamps the same way Python does."""
    cols = {"starts": [], "ends": [], "steps": []}
    for axis, begin, end, step in slices:
        step_value = 1
        if step is not None:
            sv = cv.value(step)
            if sv is None and (begin is None or end is None):
                raise cv.error("a run-time slice step needs explicit begin and end")
            step_value = int(sv.reshape(-1)[0]) if sv is not None else 1
        cols["starts"].append(begin if begin is not None else (0 if step_value > 0 else INT64_MAX))
        cols["ends"].append(end if end is not None else (INT64_MAX if step_value > 0 else INT64_MIN))
        cols["steps"].append(step if step is not None else 1)
    return tuple(_int64_vector(cv, name, parts) for name, parts in cols.items())


def _int64_vector(cv, base, parts) -> str:
    """One int64 1-D tensor from python ints and shape-like vars."""
    pieces = [np.array([p], np.int64) if isinstance(p, (int, np.integer)) else p for p in parts]
    if all(isinstance(p, np.ndarray) or cv.value(p) is not None for p in pieces):
        vals = [p if isinstance(p, np.ndarray) else cv.value(p).astype(np.int64).reshape(-1)
                for p in pieces]
        return cv.const(base, np.concatenate(vals))
    names = [cv.const(base, p) if isinstance(p, np.ndarray) else cv.as_int64(p) for p in pieces]
    out = cv.tmp(base, (len(names),), "int64")
    cv.emit("Concat", names, [out], axis=0)
    return out


def _indexing_one_hot(cv: _Converter, opr) -> None:
    """out[..., 0, ...] = src[..., index[...], ...] along `axis` (axis kept as 1)."""
    axis = cv.params(opr)["axis"]
    src, index = opr.inputs
    idx = cv.name(index)
    ishape = list(cv.shape(index))
    ishape.insert(axis, 1)
    expanded = cv.tmp(f"{idx}_unsq", ishape, cv.dtype(index))
    cv.emit("Unsqueeze", [idx, cv.const("axes", np.array([axis], np.int64))], [expanded])
    cv.emit("GatherElements", [cv.name(src), expanded], [cv.out(opr.outputs[0])], axis=axis)


# ====================================================================== dispatch
_CONVERTERS: Dict[str, Callable[[_Converter, object], None]] = {
    "Host2DeviceCopy": _input,
    "ImmutableTensor": _constant,
    "SharedDeviceTensor": _constant,
    "Identity": _alias,
    "MarkNoBroadcastElemwise": _alias,
    "MarkDynamicVar": _alias,
    "Copy": _alias,
    "Elemwise": _elemwise,
    "PowC": _pow_c,
    "TypeCvt": _type_cvt,
    "Convolution": _conv,
    "ConvolutionForward": _conv,
    "ConvBias": _conv,
    "ConvBiasForward": _conv,
    "ConvolutionBackwardData": _conv_transpose,
    "ConvTranspose": _conv_transpose,
    "ResizeForward": _resize,
    "MultipleDeviceTensorHolder": _multi_holder,
    "LayerNormForward": _layer_norm,
    "LayerNorm": _layer_norm,
    "Argmax": _arg_reduce("ArgMax"),
    "Argmin": _arg_reduce("ArgMin"),
    "TopK": _top_k,
    "IndexingMultiAxisVec": _indexing_multi_axis_vec,
    "Cumsum": _cumsum,
    "WarpAffineForward": _warp_affine,
    "WarpAffine": _warp_affine,
    "WarpPerspectiveForward": _warp_perspective,
    "WarpPerspective": _warp_perspective,
    "Resize": _resize,
    "BatchNorm": _batch_norm,
    "BatchNormForward": _batch_norm,
    "Pooling": _pooling,
    "PoolingForward": _pooling,
    "AdaptivePooling": _adaptive_pooling,
    "AdaptivePoolingForward": _adaptive_pooling,
    "MatrixMul": _matrix_mul,
    "BatchedMatrixMul": _batched_matmul,
    "BatchedMatmul": _batched_matmul,
    "Reduce": _reduce,
    "SoftmaxForward": _softmax,
    "Softmax": _softmax,
    "GetVarShape": _get_var_shape,
    "Reshape": _reshape,
    "Broadcast": _broadcast,
    "Concat": _concat,
    "Split": _split,
    "Dimshuffle": _dimshuffle,
    "AxisAddRemove": _axis_add_remove,
    "Subtensor": _subtensor,
    "PaddingForward": _padding,
    "Padding": _padding,
    "IndexingOneHot": _indexing_one_hot,
    "ElemwiseMultiType": lambda cv, opr: mge_quant.elemwise_multi_type(cv, opr),
}

# Oprs whose converters read no input shape, so they take inputs shaped at run time, and
# whose outputs then have no static shape in MegEngine either (Subtensor: computed bounds).
_COMPUTED_SHAPE_INPUTS = {"Elemwise", "TypeCvt", "Identity", "MarkNoBroadcastElemwise",
                          "MarkDynamicVar", "Copy", "Subtensor"}
_COMPUTED_SHAPE_OUTPUTS = _COMPUTED_SHAPE_INPUTS | {"Subtensor"}

# Oprs that only move values: on quantized tensors they must keep the scale.
_QUANT_DATA_MOVEMENT = {
    "Identity", "MarkNoBroadcastElemwise", "MarkDynamicVar", "Copy", "Reshape", "Broadcast",
    "Concat", "Split", "Dimshuffle", "AxisAddRemove", "Subtensor", "GetVarShape",
}
# Oprs whose converter knows quantized tensors (the rest refuse them with a one-line error).
_QUANT_AWARE = _QUANT_DATA_MOVEMENT | {
    "Host2DeviceCopy", "ImmutableTensor", "SharedDeviceTensor", "TypeCvt", "ConvBias",
    "ConvBiasForward", "ElemwiseMultiType", "MatrixMul", "Elemwise", "Pooling",
    "PoolingForward", "AdaptivePooling", "AdaptivePoolingForward",
}
