"""A dynamic plan checked against a static compile at another size, at compile time.

The symbolic trace (ir/symbolic.py) only sees what Python arithmetic does with a `Sym`;
code that turns an extent into a plain number without asking (numpy shapes, a C literal
written some unusual way) would make a plan silently specialised. So after building a
dynamic plan the compiler evaluates it, with the Python twin of the runtime, at a *probe*
instance (other symbol values that pass the guards) and compiles the model statically
there: every tensor shape, kernel source and param the two share must agree, or the
dimension cannot stay dynamic (the error names the node whose instruction differs).
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

from .emit.dynamic import (CONST, SYM, VALUE_SHAPE, EvalError, bind_symbols, evaluate, is_value_symbol,
                           value_symbols_of)
from .emit.model_blob import BlobPlan
from .ir import CompileError


def evaluate_plan(blob: BlobPlan, input_dims: Sequence[Sequence[int]]):
    """(tensor shapes, instruction params) of the dynamic plan at these input dims, as the
    runtime computes them (EvalError where it refuses: bounds, static dims, guards)."""
    dyn = blob.dynamic
    values = bind_symbols(dyn, input_dims)
    exprs = [evaluate(e, values) for e in dyn.exprs]
    bound = {(t, a): exprs[e] for t, a, e in dyn.dims}
    for k, (t, dims) in enumerate(zip(blob.inputs, input_dims)):
        for a, d in enumerate(dims):
            if d != bound.get((t, a), blob.tensors[t].shape[a]):
                raise EvalError(f"input {k} axis {a} differs")
    for e, msg in dyn.guards:
        if not exprs[e] and not value_symbols_of(dyn.exprs[e], dyn):
            raise EvalError(msg)
    shapes = [list(t.shape) for t in blob.tensors]
    for (t, a), v in bound.items():
        shapes[t][a] = v
    params = [list(i.params) for i in blob.instrs]
    for i, p, e in dyn.params:
        params[i][p] = exprs[e]
    return [tuple(s) for s in shapes], params


def probe_dims(blob: BlobPlan) -> Optional[List[tuple]]:
    """Input dims at other symbol values than the hints that the plan accepts (None if no
    candidate passes its guards)."""
    dyn = blob.dynamic
    if all(is_value_symbol(s) for s in dyn.symbols):
        return None  # nothing to vary at compile time: value symbols stand at their caps
    hints = [0 if is_value_symbol(s) else blob.tensors[blob.inputs[s.input]].shape[s.axis]
             for s in dyn.symbols]
    for step in (lambda h: 2 * h, lambda h: h + 32, lambda h: h + 1, lambda h: h * 3 // 2,
                 lambda h: h // 2, lambda h: h - 1):
        values = [min(max(step(h), s.min), s.max) for h, s in zip(hints, dyn.symbols)]
        # (every value changed, none 1: a static compile merges extent-1 axes)
        if any(v == h or v == 1 for v, h, s in zip(values, hints, dyn.symbols)
               if not is_value_symbol(s)):
            continue
        dims = [list(blob.tensors[t].shape) for t in blob.inputs]
        for s, v in zip(dyn.symbols, values):
            if not is_value_symbol(s):
                dims[s.input][s.axis] = v
        try:  # other input dims bound to expressions of the symbols follow them
            values = bind_symbols(dyn, dims)
            exprs = [evaluate(e, values) for e in dyn.exprs]
            for t, a, e in dyn.dims:
                if t in blob.inputs:
                    dims[blob.inputs.index(t)][a] = exprs[e]
            evaluate_plan(blob, dims)
        except EvalError:
            continue
        return [tuple(d) for d in dims]
    return None


def compare(dyn_blob: BlobPlan, dyn_kernels: Dict[str, object], dyn_names: List[str],
            static_blob: BlobPlan, static_kernels: Dict[str, object], static_names: List[str],
            input_dims, instr_nodes: List[str], source: str) -> None:
    """Raise CompileError where the dynamic plan evaluated at `input_dims` disagrees with
    the static compile there. Kernels are name -> Kernel; *_names by kernel index."""
    shapes, params = evaluate_plan(dyn_blob, input_dims)
    by_name = {t.name: k for k, t in enumerate(dyn_blob.tensors)}
    # computed shape extents stand at their min here, at their hints in the static
    # compile: what they shape is checked at run time, once computed
    dyn = dyn_blob.dynamic
    shape_syms = {k for k, s in enumerate(dyn.symbols)
                  if is_value_symbol(s) and s.axis == VALUE_SHAPE}
    shaped = {t for t, _, e in dyn.dims if set(_reads(dyn.exprs[e])) & shape_syms}
    shaped_instrs = {i for i, _, e in dyn.params if set(_reads(dyn.exprs[e])) & shape_syms}
    for st in static_blob.tensors:
        k = by_name.get(st.name)
        if k is None or st.storage == "weight" or st.name.startswith("__workspace_") or \
                k in shaped:
            continue
        if tuple(st.shape) != shapes[k]:
            raise CompileError(f"run-time dimensions: tensor '{st.name}' would be "
                               f"{shapes[k]} at input {input_dims}, but is {tuple(st.shape)}"
                               " when compiled for it; give the shapes with --input-shapes",
                               source)
    # Instructions pair by the tensor they write; with control flow several write one
    # tensor (an If output in each branch, a loop counter), so the n-th writer of a tensor
    # pairs with the n-th. Control records (jumps) have no outputs and no kernel.
    writers: Dict[str, list] = {}
    for i in static_blob.instrs:
        if i.outputs and i.kernel_index < len(static_names):
            writers.setdefault(static_blob.tensors[i.outputs[0]].name, []).append(i)
    seen: Dict[str, int] = {}
    for k, ins in enumerate(dyn_blob.instrs):
        if not ins.outputs or ins.kernel_index >= len(dyn_names):
            continue
        out = dyn_blob.tensors[ins.outputs[0]].name
        nth = seen[out] = seen.get(out, -1) + 1
        si = writers.get(out, [])[nth] if nth < len(writers.get(out, [])) else None
        if si is None:
            continue
        # The probe has no extent 1 the hints lack and the static compile repeats the
        # dynamic one's choices, so it must pick the same kernels (a kernel name that
        # changes with an extent specialises on it), except where only a dynamic plan
        # needs a kernel with run-time extents.
        dname, sname = dyn_names[ins.kernel_index], static_names[si.kernel_index]
        if runtime_extent_kernel(dname) or k in shaped_instrs:
            continue
        if dname != sname and _family(dname) == _family(sname):
            # the same loop over differently merged axes (two equal extents written as
            # different expressions do not merge): the element counts must agree
            n_dyn = _elements(dyn_kernels[dname], params[k])
            n_static = _elements(static_kernels[sname], si.params)
            if n_dyn == n_static:
                continue
        same = dname == sname and dyn_kernels[dname].source == static_kernels[sname].source
        if not same or si.params != params[k] or \
                same and si.workspace >= 0 and \
                tuple(static_blob.tensors[si.workspace].shape) != shapes[ins.workspace]:
            raise CompileError(f"dimension cannot stay dynamic: node {instr_nodes[k]} "
                               f"compiles its extents into kernel {dname} in a way the "
                               f"compiler cannot recompute at run time (at {input_dims}: "
                               f"{sname}{'' if dname == sname else ' instead'}); give the "
                               "shapes with --input-shapes", source)


def _family(kernel: str) -> str:
    """A kernel name without its rank / loop-shape tags (`_nd3`, `_flat_vs`, `_r2`)."""
    return re.sub(r"\d+", "", re.sub(r"_(flat_[a-z]+|nd\d+)$", "", kernel))


def _elements(kernel, params) -> Optional[int]:
    """Elements an element-wise or copy kernel's params say it writes (None: unknown)."""
    text = kernel.params.describe(params)
    m = re.search(r"(?:^| )dims=\[([-0-9,]*)\]", text)
    if m:
        n = 1
        for d in m.group(1).split(","):
            n *= int(d) if d else 1
        return n
    m = re.search(r"(?:^| )n=(-?\d+)", text)
    return int(m.group(1)) if m else None


# kernels only dynamic plans use, where a static compile specialises on the extent
RUNTIME_EXTENT_KERNELS = re.compile(
    r"^(matmul_f32_bstrided|resize_(nearest|bilinear)_rt_|loop_continue_n$)|_pwrt_|_ohrt_")


def runtime_extent_kernel(name: str) -> bool:
    return RUNTIME_EXTENT_KERNELS.search(name) is not None


def _reads(expr) -> List[int]:
    """Symbol indices an expression program reads."""
    out, i = [], 0
    while i < len(expr):
        if expr[i] == SYM:
            out.append(expr[i + 1])
        i += 2 if expr[i] in (SYM, CONST) else 1
    return out
