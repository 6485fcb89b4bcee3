"""Data-movement kernels: ops that only rearrange, select or convert elements.

Most layout ops (Transpose, Slice, Expand, Tile, DepthToSpace, SpaceToDepth) are one
*strided copy*: the output is written contiguously while the input is read at
`offset + sum(index[d] * stride[d])`, with strides that may be zero (broadcast) or
negative (reversed slices). Only the rank and the element size shape that loop, so one
kernel (`strided_copy_r3_e4`) serves every 4-byte dtype and every such op. Concat, Split
and Gather move whole contiguous blocks with memcpy; Pad and Cast have their own loops.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...codegen.kernel import Instr, View, make_kernel, numel, strides_of
from ...codegen.params import i32, i64, schema, table
from ...ir import Graph, Op, c_type, itemsize, numpy_dtype
from ..elementwise.generic import broadcast_strides, collapse
from ...ir.infer_symbolic import slice_range
from ...ir.value_shapes import cap_of, computed_shape, runtime_slice, slice_axes
from .computed_shape_generic import computed_shape_instr
from ...ir.symbolic import Sym, known
from . import narrow_types
from ..registry import implements
from .views import copy_instr


# Unsigned C type that moves one element of each size.
UINT_OF_SIZE = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}


def norm_axis(axis: int, rank: int, op: Op, graph: Graph) -> int:
    if not -rank <= axis < max(rank, 1):
        raise graph.error(f"axis {axis} is out of range for rank {rank}", op)
    return axis + rank if axis < 0 else axis


def const_input(op: Op, graph: Graph, index: int, what: str):
    """The value of an optional compile-time input, or None when it is omitted."""
    if len(op.inputs) <= index or not op.inputs[index]:
        return None
    t = graph.tensors[op.inputs[index]]
    if not t.is_const:
        raise graph.needs_value(op, op.inputs[index], what)
    return np.asarray(t.data)


# --- strided copy ---------------------------------------------------------------------

def strided_copy_instr(src: str, dst: str, graph: Graph, out_dims: Sequence[int],
                       in_strides: Sequence[int], offset: int = 0, note: str = "") -> Instr:
    """dst (contiguous, shape out_dims) [i] = src[offset + sum(i[d] * in_strides[d])]."""
    esize = itemsize(graph.tensors[src].dtype)
    dims, (strides,) = collapse(list(out_dims), [list(in_strides)])
    rank = len(dims)
    ct = UINT_OF_SIZE[esize]
    name = f"strided_copy_r{rank}_e{esize}"
    params = schema(table("dims", rank, "output extents (collapsed)"),
                    table("st", rank, "input element stride per output axis (0: broadcast)"),
                    i64("offset", "input element read for output element 0"))
    # The innermost dimension is a memcpy when unit-stride, a gather loop otherwise; the
    # outer ones advance an odometer so each row costs O(1) index work.
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    const int32_t n = dims[{rank - 1}], s = st[{rank - 1}];
    int32_t idx[{rank}] = {{0}};
    int64_t off = offset, rows = 1, r;
    int32_t d, j;
    for (d = 0; d < {rank - 1}; ++d) rows *= dims[d];
    for (r = 0; r < rows; ++r, y += n) {{
        const {ct} *row = x + off;
        if (s == 1) memcpy(y, row, sizeof({ct}) * (size_t)n);
        else for (j = 0; j < n; ++j) y[j] = row[(int64_t)j * s];
        for (d = {rank - 2}; d >= 0; --d) {{
            off += st[d];
            if (++idx[d] < dims[d]) break;
            off -= (int64_t)dims[d] * st[d];
            idx[d] = 0;
        }}
    }}
"""
    return Instr(make_kernel(name, body, params), [src], [dst],
                 params.pack(dims=dims, st=strides, offset=offset), note=note)


@implements("Transpose")
def lower_transpose(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    perm = [int(a) for a in op.attrs.get("perm", list(range(rank))[::-1])]
    st = strides_of(x.shape)
    out_dims = [x.shape[a] for a in perm]
    return [strided_copy_instr(op.inputs[0], op.outputs[0], graph, out_dims,
                               [st[a] for a in perm], note=f"perm={perm}")]


def _slice_params(op: Op, graph: Graph):
    """(starts, ends, axes, steps) from attributes (opset < 10) or constant inputs."""
    if graph.opset < 10:
        starts, ends = op.attrs["starts"], op.attrs["ends"]
        axes = op.attrs.get("axes", list(range(len(starts))))
        return list(starts), list(ends), list(axes), [1] * len(starts)
    starts = const_input(op, graph, 1, "Slice starts")
    ends = const_input(op, graph, 2, "Slice ends")
    axes = const_input(op, graph, 3, "Slice axes")
    steps = const_input(op, graph, 4, "Slice steps")
    n = len(starts)
    axes = list(range(n)) if axes is None else axes.tolist()
    steps = [1] * n if steps is None else steps.tolist()
    return starts.tolist(), ends.tolist(), axes, steps


def _int_or_sym(v):
    return v if isinstance(v, Sym) else int(v)


def _runtime_slice(op: Op, graph: Graph) -> Instr:
    """Slice whose starts, ends or steps are tensors computed at run time: the kernel
    clamps them as ONNX says (onnxruntime's arithmetic), writes each sliced extent into
    the count output (value symbols, ir/value_shapes.py) and copies. A count above its cap
    is written but nothing is copied: the runtime refuses it."""
    x = graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    if rank == 0:
        raise graph.error("Slice of a scalar", op)
    axes, _ = slice_axes(graph, op)
    idx_type = graph.tensors[op.inputs[1]].dtype
    it = c_type(idx_type)
    esize = itemsize(x.dtype)
    ct = UINT_OF_SIZE[esize]
    y = graph.tensors[op.outputs[0]]
    steps = op.inputs[4] if len(op.inputs) > 4 and op.inputs[4] else ""
    params = schema(i32("nax", "sliced axes"), table("dims", rank, "input extents"),
                    table("axes", "nax", "axis of each start/end"),
                    table("caps", "nax", "most elements each sliced axis holds"))
    last = rank - 1
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    const {it} *sv = (const {it} *)in_ptrs[1];
    const {it} *ev = (const {it} *)in_ptrs[2];
    const {it} *pv = (const {it} *)in_ptrs[3];
    {ct} *y = ({ct} *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int64_t beg[{rank}], stp[{rank}], len[{rank}], ist[{rank}];
    int64_t off = 0, rows = 1, r, n, s;
    int32_t d, k, j, idx[{rank}];
    for (d = {last}; d >= 0; --d) {{
        beg[d] = 0; stp[d] = 1; len[d] = dims[d]; idx[d] = 0;
        ist[d] = d == {last} ? 1 : ist[d + 1] * dims[d + 1];
    }}
    for (k = 0; k < nax; ++k) {{
        const int64_t dim = dims[axes[k]];
        int64_t b = (int64_t)sv[k], e = (int64_t)ev[k], st = pv ? (int64_t)pv[k] : 1, l;
        if (st == 0) return -1;
        /* a step longer than the axis selects one element at most: clamped, no overflow */
        if (st > dim + 1) st = dim + 1;
        if (st < -dim - 1) st = -dim - 1;
        if (b < 0) b += dim;
        if (e < 0) e += dim;
        if (st > 0) {{
            b = b < 0 ? 0 : (b > dim ? dim : b);
            e = e < 0 ? 0 : (e > dim ? dim : e);
            l = e > b ? (e - b - 1) / st + 1 : 0;
        }} else {{
            b = b < 0 ? 0 : (b > dim - 1 ? dim - 1 : b);
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
            l = b > e ? (b - e - 1) / -st + 1 : 0;
        }}
        count[k] = l;
        beg[axes[k]] = b; stp[axes[k]] = st; len[axes[k]] = l;
    }}
    for (k = 0; k < nax; ++k)
        if (count[k] > caps[k]) return 0; /* the runtime refuses the count */
    for (d = 0; d < {rank}; ++d) {{
        if (len[d] == 0) return 0;
        off += beg[d] * ist[d];
    }}
    for (d = 0; d < {last}; ++d) rows *= len[d];
    n = len[{last}];
    s = stp[{last}];
    for (r = 0; r < rows; ++r, y += n) {{
        const {ct} *row = x + off;
        if (s == 1) memcpy(y, row, sizeof({ct}) * (size_t)n);
        else for (j = 0; j < n; ++j) y[j] = row[(int64_t)j * s];
        for (d = {last} - 1; d >= 0; --d) {{
            off += stp[d] * ist[d];
            if (++idx[d] < len[d]) break;
            off -= len[d] * stp[d] * ist[d];
            idx[d] = 0;
        }}
    }}
"""
    kernel = make_kernel(f"slice_rt_r{rank}_e{esize}_{idx_type}", body, params,
                         prelude="#include <string.h>\n")
    packed = params.pack(nax=len(axes), dims=list(x.shape), axes=axes,
                         caps=[cap_of(graph, y.shape[a]) for a in axes])
    return Instr(kernel, [op.inputs[0], op.inputs[1], op.inputs[2], steps],
                 list(op.outputs[:2]), packed, note=f"axes={axes}, bounds computed")


@implements("Slice")
def lower_slice(op: Op, graph: Graph):
    if runtime_slice(graph, op):
        return [_runtime_slice(op, graph)]
    x = graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    st = strides_of(x.shape)
    starts, ends, axes, steps = _slice_params(op, graph)
    begin, step = [0] * rank, [1] * rank
    out_dims = list(x.shape)
    for s, e, a, k in zip(starts, ends, axes, steps):
        a = norm_axis(int(a), rank, op, graph)
        if k == 0:
            raise graph.error("Slice step must not be 0", op)
        if isinstance(x.shape[a], Sym) or isinstance(s, Sym) or isinstance(e, Sym):
            # a run-time extent or bound (x[..., W // 2:]): the same clamping as expressions
            begin[a], out_dims[a] = slice_range(_int_or_sym(s), _int_or_sym(e), int(k),
                                                x.shape[a])
            step[a] = int(k)
            continue
        # Python's slice clamping is exactly ONNX's (including negative steps).
        b, stop, k = slice(int(s), int(e), int(k)).indices(x.shape[a])
        begin[a], step[a], out_dims[a] = b, k, len(range(b, stop, k))
    offset = sum(b * s for b, s in zip(begin, st))
    if any(known(d, 0) for d in out_dims):
        offset = 0  # nothing is read; keep the offset in bounds
    return [strided_copy_instr(op.inputs[0], op.outputs[0], graph, out_dims,
                               [s * k for s, k in zip(st, step)], offset)]


@implements("Expand")
def lower_expand(op: Op, graph: Graph):
    if computed_shape(graph, op):
        return [computed_shape_instr(op, graph)]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    return [strided_copy_instr(op.inputs[0], op.outputs[0], graph, y.shape,
                               broadcast_strides(x.shape, y.shape))]


@implements("Tile")
def lower_tile(op: Op, graph: Graph):
    # Output axis a of extent r*n is the pair (repeat, i) in row-major order: read the
    # input with stride 0 over the repeat and the normal stride over i.
    if computed_shape(graph, op):
        return [computed_shape_instr(op, graph)]
    x = graph.tensors[op.inputs[0]]
    repeats = const_input(op, graph, 1, "Tile repeats")
    if repeats is None:
        raise graph.error("Tile needs its repeats input", op)
    dims, strides = [], []
    for n, s, r in zip(x.shape, strides_of(x.shape), repeats.tolist()):
        dims += [int(r), n]
        strides += [0, s]
    return [strided_copy_instr(op.inputs[0], op.outputs[0], graph, dims, strides)]


def _space_depth_view(op: Op, graph: Graph):
    """DepthToSpace / SpaceToDepth as (input 6-D view shape, permutation)."""
    x = graph.tensors[op.inputs[0]]
    if len(x.shape) != 4:
        raise graph.error(f"input must be 4-D (NCHW), got rank {len(x.shape)}", op)
    n, c, h, w = x.shape
    b = int(op.attrs["blocksize"])
    if op.type == "SpaceToDepth":
        return [n, c, h // b, b, w // b, b], [0, 3, 5, 1, 2, 4]
    mode = op.attrs.get("mode", "DCR")
    if mode == "DCR":
        return [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2]
    if mode == "CRD":
        return [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]
    raise graph.error(f"mode '{mode}' is not supported (DCR and CRD are)", op)


@implements("DepthToSpace", "SpaceToDepth")
def lower_space_depth(op: Op, graph: Graph):
    shape, perm = _space_depth_view(op, graph)
    st = strides_of(shape)
    return [strided_copy_instr(op.inputs[0], op.outputs[0], graph, [shape[a] for a in perm],
                               [st[a] for a in perm], note=f"6-D transpose {perm}")]


# --- block copies: Concat, Split, Gather -------------------------------------------------

CONCAT_PARAMS = schema(i32("n_in", "inputs"), i32("outer", "blocks per input"),
                       table("blocks", "n_in", "bytes of one block, per input"))
SPLIT_PARAMS = schema(i32("n_out", "outputs"), i32("outer", "blocks per output"),
                      table("blocks", "n_out", "bytes of one block, per output"))
GATHER_PARAMS = schema(i32("outer", "elements before the axis"),
                       i32("axis_n", "extent of the gathered axis"),
                       i32("n_ind", "indices"), i64("blk", "bytes per gathered slice"))

def _outer_inner(shape: Sequence[int], axis: int):
    return numel(shape[:axis]), numel(shape[axis + 1:])


@implements("Concat")
def lower_concat(op: Op, graph: Graph):
    y = graph.tensors[op.outputs[0]]
    axis = norm_axis(int(op.attrs["axis"]), len(y.shape), op, graph)
    esize = itemsize(y.dtype)
    outer, inner = _outer_inner(y.shape, axis)
    inputs = [i for i in op.inputs if i]
    # Each outer index copies one contiguous block from every input, back to back.
    blocks = [graph.tensors[i].shape[axis] * inner * esize for i in inputs]
    name = "concat_bytes"
    body = """    uint8_t *y = (uint8_t *)out_ptrs[0];
    int32_t o, k;
    for (o = 0; o < outer; ++o)
        for (k = 0; k < n_in; ++k) {
            const int64_t blk = blocks[k];
            memcpy(y, (const uint8_t *)in_ptrs[k] + o * blk, (size_t)blk);
            y += blk;
        }
"""
    kernel = make_kernel(name, body, CONCAT_PARAMS)
    return [Instr(kernel, inputs, [op.outputs[0]],
                  CONCAT_PARAMS.pack(n_in=len(inputs), outer=outer, blocks=blocks),
                  note=f"axis={axis}, {len(inputs)} inputs")]


@implements("Split")
def lower_split(op: Op, graph: Graph):
    # The output shapes (from shape inference) already encode every Split form: the
    # 'split' attribute, the 'split' input, num_outputs, or equal parts.
    x = graph.tensors[op.inputs[0]]
    axis = norm_axis(int(op.attrs.get("axis", 0)), len(x.shape), op, graph)
    if any(not o for o in op.outputs):
        raise graph.error("omitted Split outputs are not supported", op)
    esize = itemsize(x.dtype)
    outer, inner = _outer_inner(x.shape, axis)
    blocks = [graph.tensors[o].shape[axis] * inner * esize for o in op.outputs]
    name = "split_bytes"
    body = """    const uint8_t *x = (const uint8_t *)in_ptrs[0];
    int32_t o, k;
    for (o = 0; o < outer; ++o)
        for (k = 0; k < n_out; ++k) {
            const int64_t blk = blocks[k];
            memcpy((uint8_t *)out_ptrs[k] + o * blk, x, (size_t)blk);
            x += blk;
        }
"""
    kernel = make_kernel(name, body, SPLIT_PARAMS)
    return [Instr(kernel, [op.inputs[0]], list(op.outputs),
                  SPLIT_PARAMS.pack(n_out=len(op.outputs), outer=outer, blocks=blocks),
                  note=f"axis={axis}, {len(op.outputs)} outputs")]


def _gather_view(op: Op, graph: Graph, axis: int, outer, inner):
    """One constant index where nothing varies before the axis (ShuffleNetV2's channel
    shuffle: Transpose, then Gather 0 and 1 of the two halves) selects one contiguous block
    of the input: a view at its offset, no copy. Not for a graph input, constant or output
    (those keep their own buffers, like Concat's in-place parts)."""
    x, ind = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if not (ind.is_const and ind.numel == 1 and outer == 1 and isinstance(inner, int)
            and all(isinstance(d, int) and not isinstance(d, Sym) for d in x.shape)):
        return None
    if (x.is_const or op.inputs[0] in graph.inputs or op.outputs[0] in graph.outputs
            or op.inputs[0] in graph.outputs):
        return None
    i = int(np.asarray(ind.data).reshape(-1)[0])
    i += x.shape[axis] if i < 0 else 0
    return [View(op.outputs[0], op.inputs[0], i * inner * itemsize(x.dtype))]


@implements("Gather")
def lower_gather(op: Op, graph: Graph):
    x, ind = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    axis = norm_axis(int(op.attrs.get("axis", 0)), len(x.shape), op, graph)
    if ind.dtype not in ("int32", "int64"):
        raise graph.error(f"indices of dtype {ind.dtype} are not supported (int32, int64 are)",
                          op)
    n = x.shape[axis]
    if ind.is_const and ind.numel and isinstance(n, Sym):
        # a run-time extent: the extreme indices must fit it (guards, naming this node)
        lo, hi = int(ind.data.min()), int(ind.data.max())
        for i, ok in ((lo, lo >= -n), (hi, hi < n)):
            if not ok:
                raise graph.error(f"index {i} is out of range for axis of size {n!r} "
                                  "(at the hints)", op)
    elif ind.is_const:
        bad = (ind.data < -n) | (ind.data >= n)
        if bad.any():
            raise graph.error(f"index {int(ind.data[bad].flat[0])} is out of range for axis "
                              f"of size {n}", op)
    outer, inner = _outer_inner(x.shape, axis)
    view = _gather_view(op, graph, axis, outer, inner)
    if view:
        return view
    it = c_type(ind.dtype)
    name = f"gather_{ind.dtype}_bytes"
    # Indices may be runtime values: negative ones count from the end, out-of-range
    # ones make the kernel fail instead of reading outside the tensor.
    body = f"""    const uint8_t *x = (const uint8_t *)in_ptrs[0];
    const {it} *ind = (const {it} *)in_ptrs[1];
    uint8_t *y = (uint8_t *)out_ptrs[0];
    int32_t o, k;
    for (o = 0; o < outer; ++o, x += axis_n * blk)
        for (k = 0; k < n_ind; ++k, y += blk) {{
            int64_t i = (int64_t)ind[k];
            if (i < 0) i += axis_n;
            if (i < 0 || i >= axis_n) return -1;
            memcpy(y, x + i * blk, (size_t)blk);
        }}
"""
    kernel = make_kernel(name, body, GATHER_PARAMS)
    params = GATHER_PARAMS.pack(outer=outer, axis_n=x.shape[axis], n_ind=ind.numel,
                                blk=inner * itemsize(x.dtype))
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]], params,
                  note=f"axis={axis}")]


# --- Pad ------------------------------------------------------------------------------

# Where output position o (o - pad_begin in input coordinates) reads from, per mode;
# constant mode has no mapping (outside positions take the value).
PAD_MAP = {
    "reflect": "i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i)",
    "edge": "i < 0 ? 0 : (i >= n ? n - 1 : i)",
    "wrap": "((i % n) + n) % n",
}


RUNTIME_VALUE = object()  # Pad's constant_value given as a run-time tensor


def _pad_amounts(op: Op, graph: Graph, rank: int):
    """(pads [2*rank], mode, constant value) for every Pad opset form."""
    mode = op.attrs.get("mode", "constant")
    if graph.opset < 11:
        pads = list(op.attrs.get("pads", op.attrs.get("paddings")))
        return pads, mode, float(op.attrs.get("value", 0.0))
    pads = const_input(op, graph, 1, "Pad pads").tolist()
    if len(op.inputs) > 2 and op.inputs[2] and not graph.tensors[op.inputs[2]].is_const:
        value = RUNTIME_VALUE  # read by the kernel from the tensor
    else:
        value = const_input(op, graph, 2, "Pad constant_value")
        value = 0 if value is None or value.size == 0 else value.reshape(-1)[0]
    axes = const_input(op, graph, 3, "Pad axes")
    if axes is not None:  # opset 18: pads only for the listed axes
        full = [0] * (2 * rank)
        for k, a in enumerate(axes.tolist()):
            a = norm_axis(int(a), rank, op, graph)
            full[a], full[rank + a] = pads[k], pads[len(axes) + k]
        pads = full
    return pads, mode, value


@implements("Pad")
def lower_pad(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    rank = len(x.shape)
    pads, mode, value = _pad_amounts(op, graph, rank)
    if mode != "constant" and mode not in PAD_MAP:
        raise graph.error(f"mode '{mode}' is not supported (constant, reflect, edge, wrap "
                          "are)", op)
    begin = [int(v) for v in pads[:rank]]
    in_dims, out_dims = list(x.shape), list(y.shape)
    for d in range(rank):
        if out_dims[d] == in_dims[d] and begin[d] == 0:
            continue
        if mode != "constant" and in_dims[d] == 0:
            raise graph.error(f"{mode} padding of an empty axis {d}", op)
        if mode == "reflect" and max(begin[d], out_dims[d] - in_dims[d] - begin[d]) \
                >= max(in_dims[d], 2):
            raise graph.error(f"reflect padding of axis {d} must be smaller than its size "
                              f"{in_dims[d]}", op)
    # Merge neighbouring axes that are not padded: fewer, longer rows.
    dims = [[in_dims[0], out_dims[0], begin[0]]] if rank else [[1, 1, 0]]
    for d in range(1, rank):
        prev = dims[-1]
        if prev[0] == prev[1] and prev[2] == 0 and in_dims[d] == out_dims[d] and begin[d] == 0:
            prev[0] *= in_dims[d]
            prev[1] *= in_dims[d]
        else:
            dims.append([in_dims[d], out_dims[d], begin[d]])
    r = len(dims)
    esize = itemsize(x.dtype)
    ct = UINT_OF_SIZE[esize]
    runtime_value = value is RUNTIME_VALUE
    name = f"pad_{mode}{'_rtv' if runtime_value and mode == 'constant' else ''}_r{r}_e{esize}"
    if runtime_value:
        value = 0
    if mode == "constant":
        # The value, as bytes of the tensor's dtype, rides in two params.
        raw = np.zeros(8, np.uint8)
        raw[:esize] = np.frombuffer(np.asarray(value).astype(numpy_dtype(x.dtype)).tobytes(),
                                    np.uint8)
        value_params = np.frombuffer(raw.tobytes(), "<i4").tolist()
        outside_row = "if (src < 0) { for (j = 0; j < on; ++j) y[j] = v; continue; }"
        fill_left = "for (j = 0; j < lo; ++j) y[j] = v;"
        fill_right = "for (j = hi; j < on; ++j) y[j] = v;"
        map_outer = ("if (i < 0 || i >= n) { src = -1; break; }")
    else:
        value_params = [0, 0]
        outside_row = ""
        pm = PAD_MAP[mode]
        fill_left = f"for (j = 0; j < lo; ++j) {{ const int32_t i = j - pb, n = in_n; " \
                    f"y[j] = row[{pm}]; }}"
        fill_right = f"for (j = hi; j < on; ++j) {{ const int32_t i = j - pb, n = in_n; " \
                     f"y[j] = row[{pm}]; }}"
        map_outer = f"i = {pm};"
    # the padding value (constant mode): from the params, or the run-time tensor
    value_decl = "" if mode != "constant" else \
        f"    {ct} v;\n    memcpy(&v, {'in_ptrs[1]' if runtime_value else 'value'}, sizeof v);\n"
    params = schema(table("in_d", r, "input extents (unpadded neighbours merged)"),
                    table("out_d", r, "output extents"),
                    table("beg", r, "padding before, per axis (negative: crop)"),
                    table("value", 2, "constant value's bytes (zero-extended to 8)"))
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    const int32_t in_n = in_d[{r - 1}], on = out_d[{r - 1}], pb = beg[{r - 1}];
    /* output columns [lo, hi) come straight from the input row */
    const int32_t lo = pb < 0 ? 0 : (pb > on ? on : pb);
    const int32_t hi = pb + in_n > on ? on : (pb + in_n < lo ? lo : pb + in_n);
    int32_t idx[{r}] = {{0}};
    int64_t rows = 1, q;
    int32_t d, j;
{value_decl}    for (d = 0; d < {r - 1}; ++d) rows *= out_d[d];
    for (q = 0; q < rows; ++q, y += on) {{
        int64_t src = 0;
        const {ct} *row;
        for (d = {r - 2}; q > 0 && d >= 0; --d) {{  /* advance to this output row */
            if (++idx[d] < out_d[d]) break;
            idx[d] = 0;
        }}
        for (d = 0; d < {r - 1}; ++d) {{
            int32_t i = idx[d] - beg[d];
            const int32_t n = in_d[d];
            {map_outer}
            src = src * n + i;
        }}
        {outside_row}
        row = x + src * in_n;
        {fill_left}
        if (hi > lo) memcpy(y + lo, row + (lo - pb), sizeof({ct}) * (size_t)(hi - lo));
        {fill_right}
    }}
"""
    kernel = make_kernel(name, body, params)
    params = params.pack(in_d=[d[0] for d in dims], out_d=[d[1] for d in dims],
                         beg=[d[2] for d in dims], value=value_params)
    inputs = [op.inputs[0]] + ([op.inputs[2]] if runtime_value and mode == "constant" else [])
    return [Instr(kernel, inputs, [op.outputs[0]], params, note=f"pads={list(pads)!r}")]


# --- Cast -------------------------------------------------------------------------------

# IEEE binary16 <-> binary32 conversions come from helpers.HELPERS (found by use); kernels
# still list the name so readers see the dependency.
F16_HELPERS = "cast_f16"


CASTABLE = ("float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8",
            "uint16", "uint32", "uint64", "bool")
FLOATS = ("float32", "float64")
CAST_PARAMS = schema(i32("n", "elements"))


def cast_expr(src: str, dst: str, v: str) -> str:
    """C expression converting value `v` of dtype src to dtype dst."""
    if src == "float16":
        if dst == "bool":
            return f"(uint8_t)(({v} & 0x7fffu) != 0)"
        return cast_expr("float32", dst, f"megcc_f16_to_f32({v})")
    if dst == "float16":
        return f"megcc_f32_to_f16((float)({v}))"
    if dst == "bool" or src == "bool":
        return f"({c_type(dst)})({v} != 0)"
    if src in FLOATS and dst == "uint64":  # negatives wrap like NumPy instead of C's UB
        return f"(({v}) < 0 ? (uint64_t)(int64_t)({v}) : (uint64_t)({v}))"
    if src in FLOATS and dst.startswith("uint"):
        return f"({c_type(dst)})(int64_t)({v})"  # wrap like NumPy instead of C's UB
    return f"({c_type(dst)})({v})"


@implements("Cast", "CastLike")
def lower_cast(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    for dt in (x.dtype, y.dtype):
        if dt not in CASTABLE and not narrow_types.is_narrow(dt):
            raise graph.error(f"Cast of {dt} is not supported", op)
    if x.dtype == y.dtype:
        return [copy_instr(op.inputs[0], op.outputs[0], graph)]
    expr, helpers, tag = _narrow_cast(op, x.dtype, y.dtype, "x[i]")
    if expr is None:
        expr = cast_expr(x.dtype, y.dtype, "x[i]")
        helpers = (F16_HELPERS,) if "float16" in (x.dtype, y.dtype) else ()
    name = f"cast_{x.dtype}_to_{y.dtype}{tag}"
    body = f"""    const {c_type(x.dtype)} *x = (const {c_type(x.dtype)} *)in_ptrs[0];
    {c_type(y.dtype)} *y = ({c_type(y.dtype)} *)out_ptrs[0];
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = {expr};
"""
    kernel = make_kernel(name, body, CAST_PARAMS, helpers)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], CAST_PARAMS.pack(n=x.numel))]


def _narrow_cast(op: Op, src: str, dst: str, v: str):
    """(C expression, helpers, kernel-name tag) of a Cast from or to a narrow type (through
    float32, or the integer value for the 2- and 4-bit integers); (None, (), "") if
    neither type is narrow."""
    if not (narrow_types.is_narrow(src) or narrow_types.is_narrow(dst)):
        return None, (), ""
    helpers: tuple = ()
    if narrow_types.is_narrow(src):
        v, kind, helpers = narrow_types.decode(src, v)
    elif src == "float16":
        v, kind, helpers = f"megcc_f16_to_f32({v})", "float", (F16_HELPERS,)
    else:
        kind = {"float32": "float", "float64": "double"}.get(src, "int")
    if not narrow_types.is_narrow(dst):
        return cast_expr("float32" if kind == "float" else "int32", dst, v), \
            helpers + ((F16_HELPERS,) if dst == "float16" else ()), ""
    saturate = bool(int(op.attrs.get("saturate", 1)))
    mode = op.attrs.get("round_mode", "up")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    expr, more = narrow_types.encode(dst, v, kind, saturate, mode)
    tag = ""
    if dst in narrow_types.TABLE_FLOATS and dst != "float4e2m1" and not saturate:
        tag = "_nosat"
    if dst == "float8e8m0":
        tag = f"_{mode}" + ("" if saturate else "_nosat")
    return expr, helpers + more, tag
