"""1x1 convolution on a small feature map (NCHW, float32): the packed GEMM with the output
positions as its rows and the output channels as its columns, C^T = X^T * W^T.

The ordinary packed-GEMM convolution (gemm_simd_f32.py) puts the output channels on the
micro-tile's MR rows and the output positions on its NR columns. The late layers of small
models have few positions (MobileNetV2 at 96x96: 3 x 3 = 9; SSD heads: 5 x 5) and many
channels: 9 positions fill 9 of the 16 AVX2 columns, so almost half of every FMA is wasted,
and a long K (960) is cut into K blocks that walk the weights in short strided pieces.
Transposed, the 9 positions are a 6-row and a 3-row panel with every lane live, and the
weights are one sequential stream of NR-column panels over the full K (packed at compile
time, like a fully-connected layer's), read once.

Per image: X^T is packed into MR-row panels (a strided copy of S x K floats), the GEMM writes
C^T (S x OC) into the workspace with the bias (per column) and the clamp in the epilogue,
and C^T is transposed into the NCHW output. A fused residual is transposed into C^T first
and accumulated onto. The cost model (cost below against gemm_simd_f32's) decides where
this pays; it applies to ungrouped, static-shape 1x1 convolutions of at most MAX_POSITIONS
positions without a fused PReLU (whose slope is per row of the ordinary layout) or float16
weights.
"""
from __future__ import annotations

import numpy as np

from ...codegen import packed_gemm as g
from ...codegen.kernel import Instr, c_float, make_kernel
from ...codegen.params import i32
from ...codegen.vector import Simd
from ...ir import Graph, Op
from ...ir.symbolic import is_sym
from ...isa import IsaSpec
from ..cost import PACKED_CONV_CALL, gemm_cycles
from ..elementwise.activation import activation_tag
from ..registry import F32, implements
from .gemm_simd_f32 import gemm_shape, is_pointwise
from .geometry import (bias_of, conv_head_values, conv_problem, conv_schema, scalar_activation_pass,
                       vector_conv_rejection)

PARAMS = conv_schema(i32("MC", "output positions per row block (all of them)"))

# Above this many output positions per image the ordinary layout fills its columns well
# (an 8 x 8 map already leaves at most a half-empty edge panel in 4); the workspace holds
# X^T and C^T of one image.
MAX_POSITIONS = 36

# Cycles per element of the strided copies: packing X^T, transposing C^T out (and a
# residual in); scalar loops, mostly L1 hits.
COPY_CYCLES = 0.6


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    reason = vector_conv_rejection(op, graph)
    if reason:
        return reason
    geo = conv_problem(op, graph)
    if not is_pointwise(geo):
        return "not a 1x1 stride-1 unpadded convolution"
    if geo["group"] != 1:
        return "grouped"
    # (Sym is an int: test for it, or the size check below becomes a run-time guard
    # that refuses every shape on the other side of it)
    if any(is_sym(geo[k]) or not isinstance(geo[k], int)
           for k in ("n", "c", "oc", "oh", "ow")):
        return "shape known only at run time"
    if geo["oh"] * geo["ow"] > MAX_POSITIONS:
        return f"more than {MAX_POSITIONS} output positions"
    if graph.tensors[op.inputs[1]].dtype != "float32":
        return "float16 weights"
    if op.attrs.get("prelu"):
        return "fused PReLU (a per-row slope of the ordinary layout)"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    geo = conv_problem(op, graph)
    m, s, k = gemm_shape(geo)
    copies = s * k + s * m * (2 if op.attrs.get("residual") else 1)
    return geo["n"] * (gemm_cycles(s, m, k, 0.0, 1, isa.vec("f32").gemm, isa.core)
                       + copies * COPY_CYCLES + PACKED_CONV_CALL)


def _label(isa: IsaSpec) -> str:
    gs = isa.vec("f32").gemm
    return f"{gs.name} packed GEMM {gs.mr}x{gs.nr}, positions as rows (small maps)"


def lower_pointwise_rows(op: Op, graph: Graph, s: Simd):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = bias_of(op)
    residual = bool(op.attrs.get("residual"))  # y = act(conv + bias + r), passes/fuse.py
    bias_tag += "_residual" if residual else ""
    m, sp, k = gemm_shape(geo)
    mc = -(-sp // s.mr) * s.mr
    # W^T (K x OC) in NR-column panels over the full K, zero-padded to whole panels
    w = np.asarray(graph.tensors[op.inputs[1]].data, np.float32).reshape(m, k)
    wname = graph.unique_name(op.inputs[1] + f"__{s.name}_bt{s.nr}")
    graph.add_const(wname, g.pack_b(np.ascontiguousarray(w.T), s.nr))
    inputs = [op.inputs[0], wname]
    if has_bias:  # the epilogue reads the per-column bias a whole NR-wide vector at a time
        bias = np.zeros(-(-m // s.nr) * s.nr, np.float32)
        bias[:m] = np.asarray(graph.tensors[op.inputs[2]].data, np.float32).reshape(-1)
        bname = graph.unique_name(op.inputs[2] + f"__pad{s.nr}")
        graph.add_const(bname, bias)
        inputs.append(bname)
    else:
        inputs.append("")
    if residual:
        inputs.append(op.inputs[3])
    setup, act_pass = g.epilogue_setup(act, c_float)
    name = f"conv2d_1x1_rows_gemm{s.mr}x{s.nr}_f32{bias_tag}{activation_tag(act)}_{s.name}"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];  /* weights transposed: {s.nr}-column panels over the full K */
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};  /* padded to {s.nr} */
    const float *res = {"(const float *)in_ptrs[3]" if residual else "0"};
    float *y = (float *)out_ptrs[0];
    const int32_t K = C, S = OH * OW;
    /* workspace: the input transposed in {s.mr}-row panels (S x K), then the output transposed (S x OC) */
    float *ap = (float *)workspace, *ct = ap + (int64_t)S * K;
    int32_t b, i, kk, r, j, oc;
    megcc_{s.name}_epi e;
    {setup}
    e.bias_m = 0;
    e.bias_n = bias;
    e.finish = 1;
    e.accumulate = res != 0;
    for (b = 0; b < N; ++b) {{
        const float *xb = x + (int64_t)b * K * S;
        float *yb = y + (int64_t)b * OC * S, *p = ap;
        for (i = 0; i < S; i += {s.mr}) {{  /* panel i: mr positions per k, k-major */
            const int32_t mr = S - i < {s.mr} ? S - i : {s.mr};
            for (kk = 0; kk < K; ++kk)
                for (r = 0; r < mr; ++r) *p++ = xb[(int64_t)kk * S + i + r];
        }}
        if (res) {{
            const float *rb = res + (int64_t)b * OC * S;
            for (j = 0; j < S; ++j)
                for (oc = 0; oc < OC; ++oc) ct[(int64_t)j * OC + oc] = rb[(int64_t)oc * S + j];
        }}
        megcc_{s.name}_gemm_block_par(par, S, OC, K, 0, K, ap, w, (int64_t)K * {s.nr}, ct, OC, MC, &e);
        for (oc = 0; oc < OC; ++oc) {{
            for (j = 0; j < S; ++j) yb[(int64_t)oc * S + j] = ct[(int64_t)j * OC + oc];
        }}{scalar_activation_pass(act, "yb", "OC * S") if act_pass else ""}
    }}
"""
    kernel = make_kernel(name, body, PARAMS, ("math",), isa=s.isa)
    params = PARAMS.pack(**conv_head_values(geo, 1), MC=mc)
    ws = (sp * k + sp * m) * 4
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"{s.label} {s.mr}x{s.nr} packed GEMM with the {sp} output positions as "
                       f"rows (C^T = X^T W^T), weights pre-packed as {s.nr}-column panels "
                       f"(M={sp}, N={m}, K={k})")]


@implements("Conv", dtypes=F32, layout="nchw", requires="f32.gemm",
            applies=_applies, cost=_cost, label=_label)
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_pointwise_rows(op, graph, isa.vec("f32").gemm)
