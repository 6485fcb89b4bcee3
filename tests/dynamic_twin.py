"""Checks of dynamic plans with the Python twin of the runtime (emit/dynamic.py).

`instance(blob, dims)` evaluates a dynamic BlobPlan at input dims exactly as the runtime
will (symbols, guards, dims, nbytes, view offsets, params, buffers and placement);
`compare_with_static` compiles the model statically at those dims (the oracle: the
compiler's ordinary static path, with the same implementation choices where several
apply) and asserts every tensor shape, view offset, kernel and param agrees.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Sequence

from megcc_builder.compiler import ModelSpec, compile_model, plan_to_blob, shared_kernels
from megcc_builder.emit.dynamic import (EvalError, bind_symbols, evaluate, place_buffers)
from megcc_builder.emit.model_blob import BlobPlan
from megcc_builder.ir import itemsize


from megcc_builder.dynamic_check import runtime_extent_kernel  # noqa: E402


def _family(kernel: str) -> str:
    """A kernel name without its rank / layout-of-the-loop tags: element-wise `_flat_vs`
    vs `_nd2`, copies `_r3` vs `_r2` differ only in how many extent-1 axes they merged."""
    return re.sub(r"\d+", "", re.sub(r"_(flat_[a-z]+|nd\d+)$", "", kernel))


@dataclass
class Instance:
    shapes: List[tuple]
    nbytes: List[int]
    view_offsets: Dict[int, int]
    params: List[List[int]]
    arena: int
    offsets: List[int]   # arena offset of every arena tensor (by tensor index), -1 otherwise


def blob_of(model) -> tuple:
    """(BlobPlan, kernel names) of a CompiledModel's first plan."""
    kernels = shared_kernels([model])
    index = {k.name: i for i, k in enumerate(kernels)}
    blob = plan_to_blob(model.plans[0], index, [], {})
    return blob, [k.name for k in kernels]


def instance(blob: BlobPlan, input_dims: Sequence[Sequence[int]]) -> Instance:
    """What the runtime computes for these input dims (EvalError when it refuses)."""
    dyn = blob.dynamic
    for k, (t, dims) in enumerate(zip(blob.inputs, input_dims)):
        have = blob.tensors[t].shape
        if len(dims) != len(have):
            raise EvalError(f"input {k}: rank {len(dims)}, expected {len(have)}")
    values = bind_symbols(dyn, input_dims)
    shapes = [list(t.shape) for t in blob.tensors]
    exprs = [evaluate(e, values) for e in dyn.exprs]
    bound = {(t, a): exprs[e] for t, a, e in dyn.dims}
    for k, (t, dims) in enumerate(zip(blob.inputs, input_dims)):
        for a, d in enumerate(dims):
            want = bound.get((t, a), blob.tensors[t].shape[a])
            if d != want:
                raise EvalError(f"input {k} axis {a} is {d}, the plan needs {want}")
    for e, msg in dyn.guards:
        if not exprs[e]:
            raise EvalError(f"guard failed: {msg}")
    for (t, a), v in bound.items():
        if not 0 <= v <= 2**31 - 1:
            raise EvalError(f"tensor {t} dim {a} = {v}")
        shapes[t][a] = v
    nbytes = []
    for t, s in zip(blob.tensors, shapes):
        n = itemsize(t.dtype)
        for d in s:
            n *= d
        nbytes.append(n)
    views = {k: t.offset for k, t in enumerate(blob.tensors) if t.storage == "view"}
    for t, e in dyn.view_offsets:
        views[t] = exprs[e]
    params = [list(i.params) for i in blob.instrs]
    for i, p, e in dyn.params:
        params[i][p] = exprs[e]
    sizes = [exprs[b.size] for b in dyn.buffers]
    for b, size in zip(dyn.buffers, sizes):
        for m in b.members:
            assert size >= nbytes[m], "a buffer smaller than its member"
    buf_offsets, arena = place_buffers(sizes, dyn.buffers)
    offsets = [-1] * len(blob.tensors)
    for b, off in zip(dyn.buffers, buf_offsets):
        for m in b.members:
            offsets[m] = off
    return Instance([tuple(s) for s in shapes], nbytes, views, params, arena, offsets)


def check_no_overlap(blob: BlobPlan, inst: Instance) -> None:
    """Buffers live at the same time never share bytes (what place_buffers promises)."""
    dyn = blob.dynamic
    placed = []
    for b in dyn.buffers:
        off = inst.offsets[b.members[0]]
        size = max(inst.nbytes[m] for m in b.members)
        placed.append((off, off + size, b.first, b.last))
    for i, (a0, a1, f0, l0) in enumerate(placed):
        assert a1 <= inst.arena
        for b0, b1, f1, l1 in placed[i + 1:]:
            if f0 <= l1 and f1 <= l0:
                assert a1 <= b0 or b1 <= a0, "live buffers overlap"


def compare_with_static(path: str, dyn_model, blob: BlobPlan, kernel_names: List[str],
                        shapes: Dict[str, tuple], **spec_kw) -> Instance:
    """Evaluate the dynamic plan at `shapes` and check it against a static compile there."""
    plan = dyn_model.plans[0]
    dims = [shapes[n] for n in plan.graph.inputs]
    inst = instance(blob, dims)
    check_no_overlap(blob, inst)
    static = compile_model(ModelSpec("s", path, [shapes], **spec_kw),
                           kernel_choices=plan.choices)
    sblob, snames = blob_of(static)
    # a kernel of the same name must be the same code (nothing specialised on the hints
    # without the compiler noticing)
    dyn_src = {k.name: k.source for k in shared_kernels([dyn_model])}
    for k in shared_kernels([static]):
        if k.name in dyn_src:
            assert dyn_src[k.name] == k.source, f"kernel {k.name} differs from the static one"
    # The two compiles may lower differently where the static one knows an extent (an
    # extent-1 batch makes a transpose a view, a batched MatMul specialises its offsets):
    # tensors are compared by name, instructions by the tensor they write, and params
    # wherever both chose the same kernel.
    dyn_by_name = {t.name: k for k, t in enumerate(blob.tensors)}
    common = 0
    for st in sblob.tensors:
        k = dyn_by_name.get(st.name)
        if k is None or st.storage == "weight" or st.name.startswith("__workspace_"):
            continue  # (workspaces are named by instruction index: compared below)
        common += 1
        assert tuple(st.shape) == inst.shapes[k], (st.name, st.shape, inst.shapes[k])
        if st.storage == "view" and blob.tensors[k].storage == "view":
            assert st.offset == inst.view_offsets[k], st.name
    assert common >= len([t for t in blob.tensors if t.storage != "weight"]) // 2
    writes = {sblob.tensors[i.outputs[0]].name: i for i in sblob.instrs if i.outputs}
    same_kernel = 0
    for k, (ins, p) in enumerate(zip(blob.instrs, inst.params)):
        si = writes.get(blob.tensors[ins.outputs[0]].name)
        if si is None:
            continue
        if kernel_names[ins.kernel_index] == snames[si.kernel_index]:
            same_kernel += 1
            assert si.params == p, (k, kernel_names[ins.kernel_index], si.params, p)
            if si.workspace >= 0:
                assert sblob.tensors[si.workspace].shape == inst.shapes[ins.workspace], k
        else:  # same family at another rank (extent-1 axes merged), or a run-time variant
            dname, sname = kernel_names[ins.kernel_index], snames[si.kernel_index]
            assert runtime_extent_kernel(dname) or \
                _family(dname) == _family(sname), (k, dname, sname)
    assert same_kernel >= len(blob.instrs) * 3 // 4
    return inst
