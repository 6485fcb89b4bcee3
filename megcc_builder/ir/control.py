"""ONNX control flow in the IR: If, Loop and Scan with their subgraphs.

A subgraph (an If branch, a Loop or Scan body, nested to any depth) may read tensors of
every enclosing graph by name ("outer-scope references"). The IR turns each subgraph into
a self-contained `Graph`, a *body*:

* its formal inputs are the ONNX subgraph inputs (Loop: iteration number, condition,
  carried values; Scan: states, scan-input slices) followed by one input per non-constant
  outer tensor it reads (a *capture*); the control op lists the captured outer tensors
  after its ONNX inputs, so every pass sees the use (DCE keeps the producer, fusion does
  not swallow it) and the lowering binds formal to actual by position;
* outer constants it reads are copied in as constants (weights stay foldable);
* every name local to the body gets the control op's prefix, so two branches (or a body
  and its enclosing graph) never share a tensor name once lowered into one plan.

A constant If condition inlines the chosen branch; references inside nested subgraphs of
the inlined nodes are renamed with it (the nested-If bug: an Identity in an inner branch
reading a tensor of the outer branch was "not produced by any node").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

import numpy as np
import onnx
from onnx import numpy_helper

from .graph import CompileError, Graph, NeedsValue, Op, Tensor
from .onnx_attrs import attrs_of
from .onnx_types import from_onnx_elem_type
from . import symbolic
from .symbolic import Sym

CONTROL_OPS = ("If", "Loop", "Scan")

# attrs keys of a converted control op (leading "_": never exported to ONNX)
BODIES = "_bodies"          # name -> Body
N_ONNX_INPUTS = "_n_onnx_inputs"


@dataclass
class Body:
    """One subgraph as a graph of its own. `graph.inputs` are the formal inputs: the ONNX
    subgraph inputs first, then `captures` (actual outer tensor per extra formal)."""

    graph: Graph
    n_formal: int                     # ONNX subgraph inputs (the rest are captures)
    captures: List[str] = field(default_factory=list)  # outer tensor per capture formal
    trap: str = ""  # non-empty: a branch that cannot run for these shapes (fails if taken)


def _graph_attrs(node: onnx.NodeProto):
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a, [a.g]
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield a, list(a.graphs)


def _locals(g: onnx.GraphProto) -> Set[str]:
    names = {vi.name for vi in g.input} | {t.name for t in g.initializer}
    names.update(t.values.name for t in g.sparse_initializer)
    names.update(o for n in g.node for o in n.output if o)
    return names


def free_names(g: onnx.GraphProto) -> List[str]:
    """Names `g` (or a subgraph nested in it) reads that it does not define, in first-use
    order (deterministic)."""
    local = _locals(g)
    seen: Dict[str, None] = {}
    for n in g.node:
        for i in n.input:
            if i and i not in local:
                seen[i] = None
        for _, subs in _graph_attrs(n):
            for sub in subs:
                for i in free_names(sub):
                    if i not in local:
                        seen[i] = None
    for vi in g.output:
        if vi.name not in local:
            seen[vi.name] = None
    return list(seen)


def rename_free(g: onnx.GraphProto, mapping: Dict[str, str]) -> onnx.GraphProto:
    """A copy of `g` whose references to enclosing-scope names are renamed by `mapping`
    (names `g` defines itself shadow the outer ones and stay)."""
    out = onnx.GraphProto()
    out.CopyFrom(g)
    _rename_in_place(out, mapping)
    return out


def _rename_in_place(g: onnx.GraphProto, mapping: Dict[str, str]) -> None:
    local = _locals(g)
    m = {k: v for k, v in mapping.items() if k not in local}
    if not m:
        return
    for n in g.node:
        for k, i in enumerate(n.input):
            if i in m:
                n.input[k] = m[i]
        for _, subs in _graph_attrs(n):
            for sub in subs:
                _rename_in_place(sub, m)
    for vi in g.output:
        if vi.name in m:
            # an output that is an outer name: keep the output name, read it through an
            # Identity (renaming the output would change the subgraph's interface)
            n = g.node.add()
            n.op_type, n.name = "Identity", f"{vi.name}__outer_ref"
            n.input.append(m[vi.name])
            local_name = f"{vi.name}__outer_ref"
            n.output.append(local_name)
            vi.name = local_name


def _ops_of(nodes, rename: Callable[[str], str], prefix: str, graph: Graph, op: Op,
            scope_map: Dict[str, str]) -> List[Op]:
    ops = []
    for k, n in enumerate(nodes):
        if n.domain not in ("", "ai.onnx"):
            raise graph.error(f"subgraph operator {n.domain}.{n.op_type} is not supported", op)
        attrs = attrs_of(n)
        for a, subs in _graph_attrs(n):
            renamed = [rename_free(s, scope_map) for s in subs]
            attrs[a.name] = renamed[0] if a.type == onnx.AttributeProto.GRAPH else renamed
        ops.append(Op(n.op_type, [rename(i) if i else "" for i in n.input],
                      [rename(o) if o else "" for o in n.output], attrs,
                      prefix + (n.name or f"{n.op_type}_{k}")))
    return ops


def inline_branch(graph: Graph, op: Op) -> List[Op]:
    """The ops of the branch a constant If condition selects, then Identities onto the
    If's outputs. Names local to the branch get a prefix; outer-scope names stay, and
    nested subgraphs see the renamed locals."""
    cond = bool(np.asarray(graph.tensors[op.inputs[0]].data).reshape(-1)[0])
    branch = op.attrs["then_branch" if cond else "else_branch"]
    prefix = (op.name or op.outputs[0]) + ("__then__" if cond else "__else__")
    local = _locals(branch)
    mapping = {n: prefix + n for n in local}
    rename = lambda n: mapping.get(n, n)  # noqa: E731
    for init in branch.initializer:
        graph.add_const(rename(init.name), numpy_helper.to_array(init))
    ops = _ops_of(branch.node, rename, prefix, graph, op, mapping)
    if len(branch.output) != len(op.outputs):
        raise graph.error(f"the {'then' if cond else 'else'} branch has {len(branch.output)} "
                          f"outputs, the If {len(op.outputs)}", op)
    for out, vi in zip(op.outputs, branch.output):
        if out:
            ops.append(Op("Identity", [rename(vi.name)], [out], {}, out + "__if_out"))
    return ops


def make_body(graph: Graph, op: Op, sub: onnx.GraphProto, prefix: str,
              formals: List[Tuple[Tuple[int, ...], str]],
              pins: Optional[Dict[str, int]] = None) -> Body:
    """`sub` as a self-contained Body. `formals`: (shape, dtype) of each ONNX subgraph
    input, from the actual values the op binds to them. `pins`: value symbols defined in
    the body known to equal a static extent (see `_infer_pinned`); nested bodies inherit
    the enclosing graph's."""
    if len(sub.input) != len(formals):
        raise graph.error(f"subgraph '{sub.name}' has {len(sub.input)} inputs, expected "
                          f"{len(formals)}", op)
    body = Graph(graph.source)
    body.opset = graph.opset
    body.is_subgraph = True
    body.value_pins = {**graph.value_pins, **(pins or {})}
    body.value_caps = graph.value_caps
    local = _locals(sub)
    free = free_names(sub)
    mapping = {n: prefix + n for n in list(local) + free}
    rename = lambda n: mapping.get(n, n)  # noqa: E731
    for vi, (shape, dtype) in zip(sub.input, formals):
        declared = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if vi.type.ByteSize() and declared is None:
            raise graph.error(f"subgraph input '{vi.name}' is not a tensor (sequences and "
                              "optionals are not supported)", op)
        if declared is not None and declared.elem_type and \
                from_onnx_elem_type(declared.elem_type) != dtype:
            raise graph.error(f"subgraph input '{vi.name}' is declared "
                              f"{from_onnx_elem_type(declared.elem_type)} but receives {dtype}",
                              op)
        body.add_tensor(Tensor(rename(vi.name), shape, dtype))
        body.inputs.append(rename(vi.name))
    for init in sub.initializer:
        body.add_const(rename(init.name), numpy_helper.to_array(init))
    captures = []
    for name in free:
        outer = graph.tensors.get(name)
        if outer is None:
            raise graph.error(f"subgraph '{sub.name}' reads '{name}', which is not produced by "
                              "any node of an enclosing graph", op)
        if outer.is_const:
            body.add_const(rename(name), np.asarray(outer.data), outer.dtype)
            body.tensors[rename(name)].quant = outer.quant
        else:
            body.add_tensor(Tensor(rename(name), outer.shape, outer.dtype, quant=outer.quant,
                                   layout=outer.layout))
            body.inputs.append(rename(name))
            captures.append(name)
    body.ops = _ops_of(sub.node, rename, prefix, graph, op, mapping)
    body.outputs = [rename(vi.name) for vi in sub.output]
    for vi in sub.output:
        if vi.type.ByteSize() and not vi.type.HasField("tensor_type"):
            raise graph.error(f"subgraph output '{vi.name}' is not a tensor (sequences and "
                              "optionals are not supported)", op)
    return Body(body, len(formals), captures)


# -- output inference of the control ops ----------------------------------------------

def _infer(body: Body, infer_body) -> None:
    """Infer the body; a value it needs that is a captured outer tensor is reported under
    the outer name (a caller knowing input values may specialise on it, at any depth)."""
    try:
        infer_body(body.graph)
    except NeedsValue as exc:
        formals = body.graph.inputs[body.n_formal:]
        if exc.tensor in formals:
            exc.tensor = body.captures[formals.index(exc.tensor)]
        raise


def _value_symbols(g: Graph) -> Set[str]:
    """Value symbols defined in `g` or in a body nested in it (ir/value_shapes.py)."""
    out = set(g.value_symbols)
    for op in g.ops:
        for b in (op.attrs.get(BODIES) or {}).values():
            out |= _value_symbols(b.graph)
    return out


def _pins(init: Tensor, new: Tensor, value_syms: Set[str]) -> Optional[Dict[str, int]]:
    """Where a loop-carried value's new shape differs from its initial one only by value
    symbols standing for static extents (x[i:i + 1] with a computed i has a computed
    length, which must be 1 for the loop to be valid): those symbols -> the extent. None
    when the shapes really differ."""
    if len(init.shape) != len(new.shape) or init.dtype != new.dtype:
        return None
    pins: Dict[str, int] = {}
    for a, b in zip(init.shape, new.shape):
        if symbolic.same(a, b):
            continue
        names = b.symbols if isinstance(b, Sym) else set()
        if isinstance(a, Sym) or len(names) != 1 or not names <= value_syms or \
                b.poly != Sym.symbol(next(iter(names)), 1).poly:
            return None
        pins[next(iter(names))] = int(a)
    return pins


def _infer_pinned(graph: Graph, op: Op, make: Callable[[Dict[str, int]], Body], infer_body,
                  carried: List[str], first: int) -> Body:
    """Make and infer a Loop or Scan body whose carried values (body outputs first,
    first + 1, ... against the outer tensors `carried`) keep their shapes. A computed
    extent (a value symbol) where the initial value has a static one is *pinned* to it:
    the body is inferred again with that symbol static, and the runtime refuses any other
    count (the symbol's bounds are [extent, extent])."""
    s = symbolic.current()
    mark = len(s.guards) if s is not None else 0
    pins: Dict[str, int] = {}
    while True:
        body = make(pins)
        _infer(body, infer_body)
        outs = _body_outputs(body)
        found: Dict[str, int] = {}
        value_syms = _value_symbols(body.graph)
        for k, name in enumerate(carried):
            if first + k < len(outs):
                more = _pins(graph.tensors[name], outs[first + k], value_syms)
                found.update((n, v) for n, v in (more or {}).items() if n not in pins)
        if not found:
            return body
        pins.update(found)
        if s is not None:  # decisions taken on the unpinned symbols no longer hold
            del s.guards[mark:]


def _const_bool(graph: Graph, name: str) -> Optional[bool]:
    if not name:
        return None
    t = graph.tensors[name]
    return bool(np.asarray(t.data).reshape(-1)[0]) if t.is_const and t.numel else None


def _body_outputs(body: Body) -> List[Tensor]:
    return [body.graph.tensors[n] for n in body.graph.outputs]


def _is_graph_attr(v) -> bool:
    return isinstance(v, onnx.GraphProto) or (
        isinstance(v, list) and bool(v) and isinstance(v[0], onnx.GraphProto))


def _finish(graph: Graph, op: Op, bodies: Dict[str, Body], outs: List[Optional[Tensor]]) -> Op:
    captures = []
    for b in bodies.values():
        captures.extend(b.captures)
    new = Op(op.type, list(op.inputs) + captures, list(op.outputs),
             {**{k: v for k, v in op.attrs.items() if not _is_graph_attr(v)},
              BODIES: bodies, N_ONNX_INPUTS: len(op.inputs)}, op.name)
    for name, t in zip(op.outputs, outs):
        if name and t is not None:
            graph.tensors[name] = Tensor(name, t.shape, t.dtype, quant=t.quant)
    return new


def convert_if(graph: Graph, op: Op, infer_body) -> Op:
    """An If whose condition is known only at run time. Both branches must give each output
    the same shape and dtype (otherwise the shape depends on the condition's value)."""
    prefix = op.name or op.outputs[0]
    bodies, invalid = {}, {}
    for attr, tag in (("then_branch", "__then__"), ("else_branch", "__else__")):
        body = make_body(graph, op, op.attrs[attr], prefix + tag, [])
        try:
            _infer(body, infer_body)
        except CompileError as exc:
            if type(exc) is not CompileError or not _is_shape_error(exc):
                raise
            invalid[attr] = exc
        if len(body.graph.outputs) != len(op.outputs):
            raise graph.error(f"{attr} has {len(body.graph.outputs)} outputs, the If "
                              f"{len(op.outputs)}", op)
        bodies[attr] = body
    if len(invalid) == 2:
        raise invalid["then_branch"]
    for attr, exc in invalid.items():
        # A branch whose shapes do not work out for the compiled input shapes would fail
        # if taken (onnxruntime fails at run time too, e.g. Silero VAD's 8 kHz network fed
        # a 16 kHz frame): it becomes a trap that fails the forward with this reason.
        other = bodies["else_branch" if attr == "then_branch" else "then_branch"].graph
        bodies[attr] = _trap_body(graph, other, prefix + "__" + attr + "__trap__", exc)
    outs = []
    for k, (t, e) in enumerate(zip(_body_outputs(bodies["then_branch"]),
                                   _body_outputs(bodies["else_branch"]))):
        if t.dtype != e.dtype:
            raise graph.error(f"output {k}: the branches give {t.dtype} and {e.dtype}", op)
        if t.shape != e.shape:
            raise graph.needs_value(op, op.inputs[0],
                                    f"the condition (the branches give output {k} the shapes "
                                    f"{t.shape} and {e.shape}, so its shape)")
        outs.append(t)
    return _finish(graph, op, bodies, outs)


def _is_shape_error(exc: CompileError) -> bool:
    text = exc.message
    return any(k in text for k in ("ShapeInferenceError", "TypeInferenceError",
                                   "cannot infer output shape", "inconsistent shapes"))


def _trap_body(graph: Graph, like: Graph, prefix: str, exc: CompileError) -> Body:
    """A branch that only fails (no ops; its outputs shaped like `like`'s)."""
    body = Graph(graph.source)
    body.opset = graph.opset
    body.is_subgraph = True
    outs = []
    for k, name in enumerate(like.outputs):
        t = like.tensors[name]
        outs.append(body.add_tensor(Tensor(f"{prefix}out{k}", t.shape, t.dtype)).name)
    body.outputs = outs
    return Body(body, 0, [], trap=exc.message[:200])


def _needs_value_of(graph: Graph, op: Op, name: str, what: str, producers: Dict[str, Op]):
    """NeedsValue for `name`, naming the graph input its value is computed from when it is
    not an input itself (a caller that knows input values can then specialise on it)."""
    seen, stack = set(), [name]
    while stack:
        n = stack.pop()
        if n in seen or not n:
            continue
        seen.add(n)
        if n in graph.inputs:
            err = graph.needs_value(op, name, what)
            err.tensor = n
            return err
        p = producers.get(n)
        if p is not None:
            stack.extend(reversed([i for i in p.inputs if i]))
    return graph.needs_value(op, name, what)


def _passes_condition_through(body: Graph) -> bool:
    """Whether the body's condition output is its condition input (through Identities) or
    a constant true: then the loop runs exactly its trip count."""
    out = body.outputs[0]
    producers = body.producers()
    while out in producers and producers[out].type == "Identity":
        out = producers[out].inputs[0]
    if out == body.inputs[1]:
        return True
    t = body.tensors[out]
    return t.is_const and t.numel == 1 and bool(np.asarray(t.data).reshape(-1)[0])


def convert_loop(graph: Graph, op: Op, infer_body, producers: Dict[str, Op]) -> Op:
    ins = list(op.inputs) + [""] * (2 - min(len(op.inputs), 2))
    m_name, cond_name, carried = ins[0], ins[1], ins[2:]
    for n in carried:
        if not n:
            raise graph.error("a loop-carried initial value is omitted", op)
    formals = [((), "int64"), ((), "bool")] + [
        (graph.tensors[n].shape, graph.tensors[n].dtype) for n in carried]
    prefix = (op.name or op.outputs[0]) + "__body__"
    body = _infer_pinned(graph, op, lambda pins: make_body(graph, op, op.attrs["body"], prefix,
                                                           formals, pins),
                         infer_body, carried, 1)
    outs = _body_outputs(body)
    n_carried = len(carried)
    if len(outs) < 1 + n_carried or len(op.outputs) != len(outs) - 1:
        raise graph.error(f"the body has {len(outs)} outputs: expected the condition, "
                          f"{n_carried} carried values and the scan outputs ({len(op.outputs)} "
                          "Loop outputs in all)", op)
    if outs[0].dtype != "bool" or outs[0].numel != 1:
        raise graph.error("the body's condition output is not a one-element bool", op)
    for k in range(n_carried):
        init, new = graph.tensors[carried[k]], outs[1 + k]
        if init.shape != new.shape or init.dtype != new.dtype:
            raise graph.error(f"loop-carried value {k} changes from {init.dtype}"
                              f"{list(init.shape)} to {new.dtype}{list(new.shape)} across "
                              "iterations (shapes that vary per iteration are not supported)",
                              op)
    scans = outs[1 + n_carried:]
    results: List[Optional[Tensor]] = [graph.tensors[n] for n in carried]
    if scans:
        # The scan outputs stack one slice per iteration: their length is the number of
        # iterations, which must be known at compile time.
        m = graph.tensors[m_name] if m_name else None
        if m is None:
            raise graph.error("scan outputs of a Loop without a trip count have a length only "
                              "known at run time (value-dependent shape): not supported", op)
        if not m.is_const:
            raise _needs_value_of(graph, op, m_name, "the trip count (it sets the length of "
                                  "the scan outputs)", producers)
        if cond_name and _const_bool(graph, cond_name) is None:
            raise _needs_value_of(graph, op, cond_name, "the initial condition (it sets the "
                                  "length of the scan outputs)", producers)
        trips = int(np.asarray(m.data).reshape(-1)[0])
        if cond_name and not _const_bool(graph, cond_name):
            trips = 0
        elif not _passes_condition_through(body.graph):
            raise graph.error("scan outputs of a Loop whose body computes its exit condition "
                              "have a length only known at run time (value-dependent shape): "
                              "not supported", op)
        trips = max(trips, 0)
        if trips == 0:
            raise graph.error("a Loop that runs zero times has empty scan outputs (zero-sized "
                              "tensors are not supported)", op)
        results += [Tensor("", (trips,) + t.shape, t.dtype) for t in scans]
    return _finish(graph, op, {"body": body}, results)


def scan_layout(graph: Graph, op: Op):
    """(n_states, scan inputs, axes, directions, output axes, output directions, trip
    count) of a Scan (opset 9+ semantics; opset 8's batch axis handled by the caller)."""
    n_scan = int(op.attrs["num_scan_inputs"])
    ins = list(op.inputs)
    n_states = len(ins) - n_scan
    scan_ins = ins[n_states:]
    axes = list(op.attrs.get("scan_input_axes", [0] * n_scan))
    dirs = list(op.attrs.get("scan_input_directions", [0] * n_scan))
    lengths = set()
    for k, name in enumerate(scan_ins):
        t = graph.tensors[name]
        if not t.shape:
            raise graph.error(f"scan input '{name}' is a scalar", op)
        axes[k] = axes[k] + len(t.shape) if axes[k] < 0 else axes[k]
        if not 0 <= axes[k] < len(t.shape):
            raise graph.error(f"scan input axis {axes[k]} out of range", op)
        lengths.add(t.shape[axes[k]])
    if len(lengths) != 1:
        raise graph.error(f"scan inputs differ in length along their scan axes "
                          f"({sorted(lengths)})", op)
    return n_states, scan_ins, axes, dirs, lengths.pop()


def convert_scan(graph: Graph, op: Op, infer_body) -> Op:
    if graph.opset < 9 and not op.attrs.get("_scan9"):
        raise graph.error("opset 8 Scan (with a batch axis) must be rewritten first", op)
    n_states, scan_ins, axes, _, trips = scan_layout(graph, op)
    if trips == 0:
        raise graph.error("a Scan over zero iterations is not supported (zero-sized tensors)",
                          op)
    formals = [(graph.tensors[n].shape, graph.tensors[n].dtype) for n in op.inputs[:n_states]]
    for name, axis in zip(scan_ins, axes):
        t = graph.tensors[name]
        formals.append((t.shape[:axis] + t.shape[axis + 1:], t.dtype))
    prefix = (op.name or op.outputs[0]) + "__body__"
    body = _infer_pinned(graph, op, lambda pins: make_body(graph, op, op.attrs["body"], prefix,
                                                           formals, pins),
                         infer_body, list(op.inputs[:n_states]), 0)
    outs = _body_outputs(body)
    if len(outs) != len(op.outputs) or len(outs) < n_states:
        raise graph.error(f"the body has {len(outs)} outputs, the Scan {len(op.outputs)}", op)
    results: List[Optional[Tensor]] = []
    for k in range(n_states):
        init, new = graph.tensors[op.inputs[k]], outs[k]
        if init.shape != new.shape or init.dtype != new.dtype:
            raise graph.error(f"state {k} changes from {init.dtype}{list(init.shape)} to "
                              f"{new.dtype}{list(new.shape)} across iterations", op)
        results.append(init)
    out_axes = list(op.attrs.get("scan_output_axes", [0] * (len(outs) - n_states)))
    for k, t in enumerate(outs[n_states:]):
        axis = out_axes[k] + len(t.shape) + 1 if out_axes[k] < 0 else out_axes[k]
        if not 0 <= axis <= len(t.shape):
            raise graph.error(f"scan output axis {out_axes[k]} out of range", op)
        out_axes[k] = axis
        results.append(Tensor("", t.shape[:axis] + (trips,) + t.shape[axis:], t.dtype))
    new = _finish(graph, op, {"body": body}, results)
    new.attrs["scan_input_axes"] = axes
    new.attrs["scan_output_axes"] = out_axes
    return new


def rewrite_scan8(graph: Graph, op: Op) -> List[Op]:
    """Opset 8's Scan has a batch axis 0 on every input and output and an optional
    sequence_lens; with batch 1 and no sequence_lens it is opset 9's Scan over axis 1
    (the batch axis squeezed away around it)."""
    if op.inputs and op.inputs[0]:
        raise graph.error("opset 8 Scan with sequence_lens is not supported", op)
    ins = op.inputs[1:]
    if any(graph.tensors[n].shape[:1] != (1,) for n in ins):
        raise graph.error("opset 8 Scan with a batch size other than 1 is not supported", op)
    pre = (op.name or op.outputs[0]) + "__b"
    ops, squeezed = [], []

    def reshape(src: str, dst: str, shape) -> Op:
        const = graph.unique_name(dst + "_shape")
        graph.add_const(const, np.array(shape, dtype=np.int64))
        return Op("Reshape", [src, const], [dst], {}, dst + "_reshape")

    for n in ins:
        ops.append(reshape(n, pre + n, graph.tensors[n].shape[1:]))
        squeezed.append(pre + n)
    inner_outs = [pre + "_o_" + o if o else "" for o in op.outputs]
    attrs = {k: v for k, v in op.attrs.items() if k != "directions"}
    if "directions" in op.attrs:
        attrs["scan_input_directions"] = list(op.attrs["directions"])
    attrs["_scan9"] = True
    ops.append(Op("Scan", squeezed, inner_outs, attrs, op.name))
    for o, i in zip(op.outputs, inner_outs):
        if o:
            ops.append(Op("Unsqueeze", [i], [o], {"axes": [0]}, pre + "_unsq_" + o))
    return ops
