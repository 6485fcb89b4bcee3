"""If, Loop and Scan lowered into the plan's one instruction stream.

Bodies (ir/control.py) are lowered inline, between two built-in control instructions of
the runtime (docs/model-format.md, "Control flow"): `JUMP target` and
`BRANCH_IF_ZERO cond, target` (taken when the first byte of `cond` is 0). Everything else
is ordinary generated kernels, checked by the loader's signatures like any other:

    If:   BRANCH_IF_ZERO cond -> else;  then-body; copy outputs;  JUMP -> end
          else: else-body; copy outputs;  end:
    Loop: copy initial values into the carried tensors (the Loop's outputs); i = 0
          top:  go = loop_continue(i, M, cond);  BRANCH_IF_ZERO go -> exit
                body;  store scan slices at i;  copy new carried values;  i = i + 1
                JUMP -> top
          exit:
    Scan: a Loop over the scan axis whose body first loads slice i of every scan input.

Formal body inputs become views of the tensors they are bound to (captured outer tensors,
the carried tensors, the counter), so a body reads them in place. The range of each loop
goes to the memory planner, which keeps every buffer a loop touches and that lives beyond
one iteration alive over the whole loop (back edge).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .codegen.kernel import Instr, Kernel, View, make_kernel, numel
from .codegen.params import i32, schema
from .emit.model_blob import CONTROL_BRANCH_IF_ZERO, CONTROL_JUMP, CONTROL_KERNELS
from .ir import CompileError, Graph, Op, Tensor, itemsize
from .ir.symbolic import Sym
from .ir.control import BODIES, N_ONNX_INPUTS, Body
from .kernels.data.views import copy_instr

# Built-in instructions of the runtime (runtime/src/control.c): reserved kernel indices.
JUMP, BRANCH_IF_ZERO = CONTROL_JUMP, CONTROL_BRANCH_IF_ZERO
CONTROL_CODES = CONTROL_KERNELS

# Stands in for a kernel: control instructions run no generated code.
CONTROL_KERNEL = Kernel("megcc_control", "")


@dataclass
class ControlInstr(Instr):
    code: int = JUMP
    target: int = -1  # instruction index jumped to (may be len(instrs): the end)


def is_control(ins: Instr) -> bool:
    return isinstance(ins, ControlInstr)


@dataclass
class Emitter:
    """Where lowering appends: the plan's instructions, views and loop ranges."""

    graph: Graph
    instrs: List[Instr]
    views: Dict[str, View]
    loops: List[Tuple[int, int]]
    lower_ops: Callable[[List[Op]], None]  # lowers ops of `graph` (bodies merged into it)
    optimize: Callable[[Graph], None]

    def root(self, name: str) -> str:
        while name in self.views:
            name = self.views[name].base
        return name

    def fresh(self, base: str, shape, dtype: str) -> str:
        name = self.graph.unique_name(base)
        self.graph.add_tensor(Tensor(name, tuple(shape), dtype))
        return name

    def const(self, base: str, value) -> str:
        name = self.graph.unique_name(base)
        self.graph.add_const(name, np.asarray(value))
        return name

    def copy(self, src: str, dst: str) -> None:
        if self.root(src) != self.root(dst):
            self.instrs.append(copy_instr(src, dst, self.graph))

    def jump(self, code: int, cond: Optional[str] = None) -> ControlInstr:
        ins = ControlInstr(CONTROL_KERNEL, [cond] if cond else [], [], code=code,
                           note=CONTROL_CODES[code])
        self.instrs.append(ins)
        return ins


# -- generated kernels the loops use -----------------------------------------------------

def _loop_continue(counter: str, trips: str, cond: str, go: str) -> Instr:
    body = """    int64_t i = *(const int64_t *)in_ptrs[0];
    uint8_t go = 1;
    if (in_ptrs[1] && !(i < *(const int64_t *)in_ptrs[1])) go = 0;
    if (in_ptrs[2] && !*(const uint8_t *)in_ptrs[2]) go = 0;
    *(uint8_t *)out_ptrs[0] = go;
"""
    return Instr(make_kernel("loop_continue", body), [counter, trips, cond], [go])


LOOP_N_PARAMS = schema(i32("n", "trip count"))


def _loop_continue_n(counter: str, n, go: str) -> Instr:
    """A trip count that is a run-time dimension (a Scan over a symbolic axis): a param
    recomputed when the shapes change, not a constant tensor."""
    body = """    *(uint8_t *)out_ptrs[0] = *(const int64_t *)in_ptrs[0] < (int64_t)n;
"""
    return Instr(make_kernel("loop_continue_n", body, LOOP_N_PARAMS), [counter], [go],
                 LOOP_N_PARAMS.pack(n=n))


def _trap(reason: str) -> Instr:
    """Fails the forward: a branch that cannot run for the compiled shapes was taken."""
    body = """    return 1; /* an If branch invalid for the compiled input shapes was taken */
"""
    return Instr(make_kernel("if_branch_invalid_for_these_shapes", body), [], [],
                 note=reason)


def _loop_next(counter: str) -> Instr:
    body = """    *(int64_t *)out_ptrs[0] = *(const int64_t *)in_ptrs[0] + 1;
"""
    return Instr(make_kernel("loop_next", body), [counter], [counter])


SLICE_PARAMS = schema(i32("outer", "slices before the scan axis"),
                      i32("n", "length of the scan axis"),
                      i32("inner", "bytes of one slice row after the scan axis"),
                      i32("reverse", "1: iteration i uses position n - 1 - i"))


def _slice_instr(load: bool, full: str, part: str, counter: str, axis: int,
                 reverse: bool, graph: Graph) -> Instr:
    """Copy slice `counter` along `axis` of `full` to `part` (load) or back (store). The
    kernel refuses a counter outside [0, n): its value is data, not a checked param."""
    t = graph.tensors[full]
    outer = numel(t.shape[:axis])  # (products that stay expressions of run-time dims)
    inner = numel(t.shape[axis + 1:]) * itemsize(t.dtype)
    if load:  # part <- full
        copy = ("memcpy((uint8_t *)out_ptrs[0] + (size_t)o * (size_t)inner,\n"
                "               (const uint8_t *)in_ptrs[0] + at, (size_t)inner);")
    else:     # full <- part
        copy = ("memcpy((uint8_t *)out_ptrs[0] + at,\n"
                "               (const uint8_t *)in_ptrs[0] + (size_t)o * (size_t)inner, "
                "(size_t)inner);")
    body = f"""    int64_t i = *(const int64_t *)in_ptrs[1];
    int32_t o;
    if (i < 0 || i >= n) return 1;
    if (reverse) i = n - 1 - i;
    for (o = 0; o < outer; o++) {{
        size_t at = ((size_t)o * (size_t)n + (size_t)i) * (size_t)inner;
        {copy}
    }}
"""
    name = "scan_slice_load" if load else "scan_slice_store"
    params = SLICE_PARAMS.pack(outer=outer, n=t.shape[axis], inner=inner,
                               reverse=int(bool(reverse)))
    ins = [full, counter] if load else [part, counter]
    outs = [part] if load else [full]
    return Instr(make_kernel(name, body, SLICE_PARAMS), ins, outs, params)


# -- bodies ------------------------------------------------------------------------------

def _merge_body(em: Emitter, body: Body, bind: List[Optional[str]], op: Op) -> Graph:
    """Optimise the body, move its tensors into the plan's graph and bind its formal inputs:
    formal k becomes a view of bind[k] (None: the caller writes the formal itself)."""
    g = body.graph
    em.optimize(g)
    for name, t in g.tensors.items():
        old = em.graph.tensors.get(name)
        if old is not None and old is not t:
            raise CompileError(f"{op.type}: body tensor '{name}' clashes with a tensor of the "
                               "enclosing graph", em.graph.source, op.name)
        em.graph.tensors[name] = t
    # value symbols a body's instruction defines (ir/value_shapes.py) belong to the plan
    em.graph.symbols.update(g.value_symbols and {n: g.symbols[n] for n in g.value_symbols})
    em.graph.value_symbols.update(g.value_symbols)
    em.graph.shape_symbols.update(g.shape_symbols)
    for formal, actual in zip(g.inputs, bind):
        if actual is None:
            continue
        a, f = em.graph.tensors[actual], g.tensors[formal]
        if a.nbytes != f.nbytes or a.dtype != f.dtype or a.layout != f.layout:
            raise CompileError(f"{op.type}: body input '{formal}' ({f.dtype}{list(f.shape)} {f.layout}) "
                               f"is bound to '{actual}' ({a.dtype}{list(a.shape)} {a.layout})",
                               em.graph.source, op.name)
        em.views[formal] = View(formal, actual)
    return g


def _copy_outputs(em: Emitter, pairs: List[Tuple[str, str]], carried_roots) -> None:
    """Copy body outputs into their destinations as if all at once: a source that is one
    of the destinations (a carried value passed on to another slot) is saved first."""
    staged = []
    for src, dst in pairs:
        if em.root(src) in carried_roots and em.root(src) != em.root(dst):
            t = em.graph.tensors[src]
            tmp = em.fresh(dst + "__next", t.shape, t.dtype)
            em.copy(src, tmp)
            src = tmp
        staged.append((src, dst))
    for src, dst in staged:
        em.copy(src, dst)


def lower_if(em: Emitter, op: Op) -> None:
    bodies: Dict[str, Body] = op.attrs[BODIES]
    n_onnx = op.attrs[N_ONNX_INPUTS]
    captures = op.inputs[n_onnx:]
    at = 0
    branch = em.jump(BRANCH_IF_ZERO, op.inputs[0])
    to_end = None
    for key in ("then_branch", "else_branch"):
        body = bodies[key]
        mine = captures[at:at + len(body.captures)]
        at += len(body.captures)
        if key == "else_branch":
            branch.target = len(em.instrs)
        if body.trap:
            em.instrs.append(_trap(body.trap))
        else:
            g = _merge_body(em, body, list(mine), op)
            em.lower_ops(g.ops)
            for src, dst in zip(g.outputs, op.outputs):
                if dst:
                    em.copy(src, dst)
        if key == "then_branch":
            to_end = em.jump(JUMP)
    to_end.target = len(em.instrs)


def _int64_scalar(em: Emitter, name: str, op: Op, what: str) -> None:
    t = em.graph.tensors[name]
    if t.dtype != "int64" or t.numel != 1:
        raise CompileError(f"{op.type}: {what} '{name}' must be a one-element int64 tensor, "
                           f"not {t.dtype}{list(t.shape)}", em.graph.source, op.name)


def _loop(em: Emitter, op: Op, body: Body, trips, cond: Optional[str],
          carried: List[str], bind_iter: bool, scan_inputs, scan_outputs) -> None:
    """The common loop skeleton. carried: the tensors holding the loop-carried values (the
    op's outputs, already initialised); scan_inputs: (full tensor, formal, axis, reverse);
    scan_outputs: (body output index, full tensor, axis, reverse)."""
    g = body.graph
    name = op.name or op.outputs[0]
    counter = em.fresh(name + "__i", (), "int64")
    em.copy(em.const(name + "__zero", np.int64(0)), counter)
    cond_slot = None
    if bind_iter:  # Loop: the body's condition output is honoured even without a cond input
        cond_slot = em.fresh(name + "__cond", (), "bool")
        em.copy(cond or em.const(name + "__true", np.bool_(True)), cond_slot)
    n_formal = body.n_formal
    captures = op.inputs[op.attrs[N_ONNX_INPUTS]:]
    if bind_iter:  # Loop: (iteration number, condition, carried...)
        bind = [counter, cond_slot] + carried
    else:          # Scan: (states..., scan slices...)
        bind = list(carried) + [None] * len(scan_inputs)
    bind += list(captures)
    assert len(bind) == n_formal + len(body.captures)
    g = _merge_body(em, body, bind, op)
    go = em.fresh(name + "__go", (), "bool")
    top = len(em.instrs)
    if isinstance(trips, Sym):
        em.instrs.append(_loop_continue_n(counter, trips, go))
    else:
        em.instrs.append(_loop_continue(counter, trips or "", cond_slot or "", go))
    exit_branch = em.jump(BRANCH_IF_ZERO, go)
    for full, formal, axis, reverse in scan_inputs:
        em.instrs.append(_slice_instr(True, full, formal, counter, axis, reverse, em.graph))
    em.lower_ops(g.ops)
    outs = g.outputs
    for k, full, axis, reverse in scan_outputs:
        em.instrs.append(_slice_instr(False, full, outs[k], counter, axis, reverse, em.graph))
    pairs = []
    first = 1 if bind_iter else 0
    if bind_iter and cond_slot:
        pairs.append((outs[0], cond_slot))
    pairs += list(zip(outs[first:first + len(carried)], carried))
    _copy_outputs(em, pairs, {em.root(c) for c in carried} | ({cond_slot} if cond_slot else set()))
    em.instrs.append(_loop_next(counter))
    em.jump(JUMP).target = top
    em.loops.append((top, len(em.instrs) - 1))
    exit_branch.target = len(em.instrs)


def lower_loop(em: Emitter, op: Op) -> None:
    body: Body = op.attrs[BODIES]["body"]
    n_onnx = op.attrs[N_ONNX_INPUTS]
    ins = list(op.inputs[:n_onnx]) + [""] * max(0, 2 - n_onnx)
    trips, cond, inits = ins[0], ins[1], ins[2:n_onnx]
    if trips:
        _int64_scalar(em, trips, op, "the trip count")
    if cond:
        t = em.graph.tensors[cond]
        if t.dtype != "bool" or t.numel != 1:
            raise CompileError(f"Loop: the condition must be a one-element bool, not "
                               f"{t.dtype}{list(t.shape)}", em.graph.source, op.name)
    n_carried = len(inits)
    carried = []
    for k, init in enumerate(inits):
        out = op.outputs[k] if k < len(op.outputs) else ""
        if not out:
            t = em.graph.tensors[init]
            out = em.fresh((op.name or "loop") + f"__carried{k}", t.shape, t.dtype)
        em.copy(init, out)
        carried.append(out)
    scans = []
    for k, out in enumerate(op.outputs[n_carried:]):
        if not out:  # an unused scan output still needs a place for its slices
            bt = body.graph.tensors[body.graph.outputs[1 + n_carried + k]]
            raise CompileError("Loop: an omitted scan output is not supported (shape "
                               f"{list(bt.shape)})", em.graph.source, op.name)
        scans.append((1 + n_carried + k, out, 0, False))
    _loop(em, op, body, trips or None, cond or None, carried, True, [], scans)


def lower_scan(em: Emitter, op: Op) -> None:
    from .ir.control import scan_layout

    body: Body = op.attrs[BODIES]["body"]
    n_onnx = op.attrs[N_ONNX_INPUTS]
    onnx_op = Op(op.type, op.inputs[:n_onnx], op.outputs, op.attrs, op.name)
    n_states, scan_ins, axes, dirs, trips = scan_layout(em.graph, onnx_op)
    carried = []
    for k in range(n_states):
        out = op.outputs[k]
        if not out:
            t = em.graph.tensors[op.inputs[k]]
            out = em.fresh((op.name or "scan") + f"__state{k}", t.shape, t.dtype)
        em.copy(op.inputs[k], out)
        carried.append(out)
    formals = body.graph.inputs[n_states:n_states + len(scan_ins)]
    scan_inputs = [(full, formal, axes[k], bool(dirs[k]))
                   for k, (full, formal) in enumerate(zip(scan_ins, formals))]
    out_axes = op.attrs.get("scan_output_axes", [])
    out_dirs = list(op.attrs.get("scan_output_directions", [0] * len(out_axes)))
    scans = []
    for k, out in enumerate(op.outputs[n_states:]):
        if not out:
            continue
        scans.append((n_states + k, out, out_axes[k], bool(out_dirs[k])))
    # (a run-time scan length stays an expression: the loop tests it as a param)
    m = trips if isinstance(trips, Sym) else em.const((op.name or "scan") + "__n",
                                                       np.int64(trips))
    _loop(em, op, body, m, None, carried, False, scan_inputs, scans)


def lower_control(em: Emitter, op: Op) -> None:
    {"If": lower_if, "Loop": lower_loop, "Scan": lower_scan}[op.type](em, op)


def annotate_jumps(instrs: List[Instr]) -> None:
    """`megcc inspect` shows where each control instruction goes."""
    for ins in instrs:
        if is_control(ins):
            ins.note = f"{CONTROL_CODES[ins.code]} -> #{ins.target}"


def resolve_jump_targets(instrs) -> None:
    """Fill the params of the blob's control records, [0, target index] so far, with the
    target's byte offset in the instruction stream: [offset, index] (the loader checks
    that the two name the same record)."""
    offsets, at = [], 0
    for ins in instrs:
        offsets.append(at)
        at += 16 + 4 * (len(ins.inputs) + len(ins.outputs) + len(ins.params))
    offsets.append(at)
    for ins in instrs:
        if ins.kernel_index in CONTROL_CODES:
            ins.params = [offsets[ins.params[1]], ins.params[1]]
