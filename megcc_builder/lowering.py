"""Optimised graph -> execution plan: instructions, tensor storage, memory plan.

This is where a graph stops being a graph: ops become kernel calls in order, views are
resolved to the tensor that owns the bytes, and the planner gives every activation an
arena offset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .codegen.kernel import Instr, View
from .control_lowering import Emitter, annotate_jumps, lower_control
from .ir import Graph, itemsize
from .ir.control import BODIES, CONTROL_OPS
from .ir.expr import is_elementwise
from .ir import symbolic
from .ir.symbolic import Sym, known, same, same_shape
from .ir.value_shapes import arena_bytes, reads_shape_symbol
from .kernels import lower
from .kernels.data.copy_generic import norm_axis
from .kernels.data.views import copy_instr
from .options import CompileOptions
from .passes import optimize
from .planner import MemoryPlan, plan_memory


@dataclass
class Plan:
    """One compiled execution of a model for one set of input shapes."""

    graph: Graph
    name: str
    instrs: List[Instr]
    views: Dict[str, View]  # view tensor -> how it maps onto its root
    memory: MemoryPlan
    workspaces: Dict[int, str] = field(default_factory=dict)  # instr index -> workspace name
    output_names: List[str] = field(default_factory=list)  # user-visible, in output order
    # control flow: (first, last) instruction index of every loop (control_lowering.py)
    loops: List[Tuple[int, int]] = field(default_factory=list)
    # conditions the plan relies on when its dimensions are symbolic (ir/symbolic.py)
    guards: list = field(default_factory=list)
    choices: Dict[str, str] = field(default_factory=dict)  # node -> implementation by cost
    instr_nodes: List[str] = field(default_factory=list)  # the node each instruction computes
    # model-format arch code (emit/model_blob.ARCH_CODES): 0 in a single-architecture build,
    # the level's architecture in a multi-architecture one (compiler.compile_bundle)
    arch: int = 0

    def root(self, name: str) -> str:
        while name in self.views:
            name = self.views[name].base
        return name

    def view_offset(self, name: str) -> int:
        off = 0
        while name in self.views:
            off += self.views[name].byte_offset
            name = self.views[name].base
        return off


def lower_graph(graph: Graph, name: str = "", options: CompileOptions = CompileOptions()) -> Plan:
    isa = options.isa_spec
    graph.max_threads = options.workspace_threads  # what kernels size their areas for
    instrs: List[Instr] = []
    views: Dict[str, View] = {}
    loops: List[Tuple[int, int]] = []  # control flow: instruction ranges of loop bodies
    nodes: List[str] = []

    def lower_ops(ops) -> None:
        for op in ops:
            label = f"'{op.name or op.outputs[0]}' ({op.type})"
            if op.type in CONTROL_OPS and BODIES in op.attrs:  # If/Loop/Scan: inline bodies
                lower_control(emitter, op)
            else:
                with symbolic.at_node(label):
                    _lower_op(op, graph, isa, instrs, views)
            nodes.extend([label] * (len(instrs) - len(nodes)))

    emitter = Emitter(graph, instrs, views, loops, lower_ops,
                      lambda body: optimize(body, options))
    lower_ops(graph.ops)
    annotate_jumps(instrs)

    plan = Plan(graph, name, instrs, views, None,  # type: ignore[arg-type]
                output_names=list(graph.outputs), loops=loops, instr_nodes=nodes)
    _own_outputs(plan)
    plan.memory = _plan(plan)
    return plan


def _lower_op(op, graph: Graph, isa, instrs: List[Instr], views: Dict[str, View]) -> None:
    parts = _concat_in_place(op, graph, views)
    if parts:
        views.update((v.output, v) for v in parts)
        return
    for item in lower(op, graph, isa):
        if isinstance(item, View):
            views[item.output] = item
        else:
            if is_elementwise(op) or op.type == "FusedElementwise":
                item.note = item.note or "element-wise"
                # An input may share the output's buffer only if element i of both sits
                # at the same bytes: same shape (not broadcast) and same element size.
                out = graph.tensors[item.outputs[0]]
                item.in_place = [
                    n for n in item.inputs
                    if n and same_shape(graph.tensors[n].shape, out.shape)
                    and itemsize(graph.tensors[n].dtype) == itemsize(out.dtype)]
            instrs.append(item)


def _concat_in_place(op, graph: Graph, views: Dict[str, View]) -> List[View]:
    """A Concat whose inputs lie back to back in its output (nothing varies before the axis,
    e.g. N=1 and axis=1) costs no copy: each input becomes a view into the output at its
    offset, so the op that computes an input writes straight into the concatenation
    (SqueezeNet's fire modules, Inception's branches, DenseNet's growing feature maps).
    [] when an input must keep its own buffer: a graph input, output or constant, a tensor
    that is already a view (e.g. part of another concatenation), or one given twice."""
    if op.type != "Concat":
        return []
    y = graph.tensors[op.outputs[0]]
    axis = norm_axis(int(op.attrs["axis"]), len(y.shape), op, graph)
    inputs = list(op.inputs)
    if any(not known(d, 1) for d in y.shape[:axis]) or not inputs \
            or len(set(inputs)) != len(inputs) or "" in inputs:
        return []
    parts, offset = [], 0
    for name in inputs:
        t = graph.tensors[name]
        if (t.is_const or name in graph.inputs or name in graph.outputs or name in views
                or t.dtype != y.dtype):
            return []
        parts.append(View(name, y.name, offset))
        offset += t.nbytes
    return parts if same(offset, y.nbytes) else []


def _own_outputs(plan: Plan) -> None:
    """Outputs must be arena tensors the runtime can hand out: copy constants, inputs and
    tensors that are already another output into their own buffer."""
    graph = plan.graph
    seen = set()
    for k, out in enumerate(graph.outputs):
        root = plan.root(out)
        t = graph.tensors[root]
        needs_copy = t.is_const or root in graph.inputs or root in seen
        seen.add(root)
        if not needs_copy:
            continue
        new_name = graph.unique_name(out + "_out")
        from .ir import Tensor

        graph.add_tensor(Tensor(new_name, graph.tensors[out].shape, graph.tensors[out].dtype,
                                quant=graph.tensors[out].quant))
        plan.instrs.append(copy_instr(out, new_name, graph))
        graph.outputs[k] = new_name  # plan.output_names keeps the name the user knows


def _plan(plan: Plan) -> MemoryPlan:
    graph = plan.graph
    steps, sizes = [], {}
    for i, ins in enumerate(plan.instrs):
        reads = [plan.root(n) for n in ins.inputs if n]
        reads = [r for r in reads if not graph.tensors[r].is_const]
        writes = [plan.root(n) for n in ins.outputs]
        ws = None
        if isinstance(ins.workspace_bytes, Sym) or ins.workspace_bytes:
            ws_name = f"__workspace_{i}"
            plan.workspaces[i] = ws_name
            ws = (ws_name, arena_bytes(graph, ws_name, ins.workspace_bytes))
        for n in reads + writes:  # (computed shapes: their byte caps, ir/value_shapes.py)
            sizes[n] = arena_bytes(graph, n, graph.tensors[n].nbytes)
        # In place only where input and output elements sit at the same bytes: not for an
        # output that is a part of a concatenation (a view at an offset into its root).
        in_place = [] if any(not known(plan.view_offset(n), 0) for n in ins.outputs) else \
            [plan.root(n) for n in ins.in_place if known(plan.view_offset(n), 0)]
        # (buffers at byte caps look alike: in place only where the real sizes are equal)
        in_place = [r for r in in_place
                    if all(same(graph.tensors[r].nbytes, graph.tensors[w].nbytes)
                           for w in writes)
                    or not any(reads_shape_symbol(graph, graph.tensors[n].nbytes)
                               for n in [r] + writes)]
        steps.append((reads, writes, ws, in_place))
    for n in graph.inputs:
        sizes[n] = graph.tensors[n].nbytes
    outputs = [plan.root(n) for n in graph.outputs]
    return plan_memory(steps, sizes, list(graph.inputs), outputs, plan.loops)
