"""TensorScatter (opset 24, a KV-cache update): the past cache with the update written at
write_indices[b] + s along `axis` for every batch b (circular mode: modulo the cache
length). Any element type (bytes are moved); write indices are read at run time; a
linear-mode position outside the cache is skipped (ONNX leaves it undefined)."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema
from ...ir import Graph, Op, itemsize
from ..data.copy_generic import norm_axis
from ..registry import implements

PARAMS = schema(i32("B", "batch"), i32("P", "rows per batch before the axis"),
                i32("S", "cache length along the axis"), i32("U", "update length"),
                i32("R", "bytes per position (elements after the axis x element size)"))


@implements("TensorScatter")
def emit(op: Op, graph: Graph):
    past, upd, out = (graph.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    rank = len(past.shape)
    axis = norm_axis(int(op.attrs.get("axis", -2)), rank, op, graph)
    mode = op.attrs.get("mode", "linear")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if axis == 0 or mode not in ("linear", "circular"):
        raise graph.error(f"axis {axis} / mode '{mode}' is not supported (axis >= 1, linear "
                          "or circular)", op)
    if any(a != b for k, (a, b) in enumerate(zip(past.shape, upd.shape)) if k != axis) \
            or upd.shape[axis] > past.shape[axis] or len(upd.shape) != rank:
        raise graph.error(f"update {list(upd.shape)} does not fit cache {list(past.shape)}", op)
    has_idx = len(op.inputs) > 2 and bool(op.inputs[2])
    it = graph.tensors[op.inputs[2]].dtype if has_idx else "int64"
    ct = {"int64": "int64_t", "int32": "int32_t"}.get(it)
    if ct is None:
        raise graph.error(f"write_indices of {it} are not supported (int64, int32 are)", op)
    # circular: wrap into [0, S); linear: positions past the cache are skipped below
    wrap = "w = w % S; if (w < 0) w += S;" if mode == "circular" else ""
    body = f"""    const uint8_t *past = (const uint8_t *)in_ptrs[0];
    const uint8_t *upd = (const uint8_t *)in_ptrs[1];
    {"const " + ct + " *wi = (const " + ct + " *)in_ptrs[2];" if has_idx else ""}
    uint8_t *y = (uint8_t *)out_ptrs[0];
    int32_t b, r, s;
    if (y != past) memcpy(y, past, (size_t)B * P * S * R);
    for (b = 0; b < B; ++b)
        for (r = 0; r < P; ++r)
            for (s = 0; s < U; ++s) {{
                int64_t w = {"(int64_t)wi[b]" if has_idx else "0"} + s;
                {wrap}
                if (w < 0 || w >= S) continue;
                memcpy(y + (((int64_t)b * P + r) * S + w) * R,
                       upd + (((int64_t)b * P + r) * U + s) * R, (size_t)R);
            }}
"""
    name = f"tensor_scatter_{mode}{'_' + it if has_idx else '_noidx'}"
    kernel = make_kernel(name, body, PARAMS)
    inputs = [op.inputs[0], op.inputs[1]] + ([op.inputs[2]] if has_idx else [])
    return [Instr(kernel, inputs, [op.outputs[0]],
                  PARAMS.pack(B=past.shape[0], P=numel(past.shape[1:axis]), S=past.shape[axis],
                              U=upd.shape[axis],
                              R=numel(past.shape[axis + 1:]) * itemsize(past.dtype)),
                  note=f"axis {axis}, {mode}")]
