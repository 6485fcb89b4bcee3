"""The NCHW44 layout pass (`enable_nchw44`): run the convolution region of a float32 graph
in MegCC's NC4HW4 layout.

An NCHW44 tensor of logical shape (N, C, H, W) is stored as (N, C/4, H, W, 4): channel c
is lane c % 4 of block c // 4, so a 4-wide vector holds four channels of one pixel and the
conv kernels load inputs and weights as whole vectors. In the IR such a tensor carries
`layout="nchw44"` and its 5-D physical shape, so byte sizes, the planner and the model
file see the real storage.

The pass runs after fusion and before lowering, in one walk over the ops in order:
- anchors always run in NCHW44: Conv dense (IC % 4 == 0, OC % 4 == 0), channel-wise
  (C % 4 == 0, multiplier 1) and "hybrid" first convs (group 1, IC < 4, OC % 4 == 0),
  which read the NCHW input directly and write NCHW44 (their input relayout is fused);
- followers run in NCHW44 when one of their runtime operands already is: element-wise ops
  (constants are re-laid out at compile time), Max/AveragePool, GlobalAverage/MaxPool and
  channel Concat, when every operand's channels are a multiple of 4;
- shape-preserving views (Identity, Dropout, a Reshape to the same shape) pass NCHW44
  through;
- every other op sees NCHW.
Relayouts are created lazily where a tensor is needed in the other layout, and each tensor
gets at most one copy per layout, so a region boundary costs exactly one relayout and two
inverse relayouts are never chained (the back-and-forth pair cancels by construction). A
relayout whose tensor has one pixel per channel (after a global pool) moves no bytes and
becomes a view when lowered.

The same walk, with blocks of 8, is the float16 NCHW88 layout (`enable_nchw88`, MegCC's
fp16 layout: one block is one 8-lane float16 NEON register). It runs after passes/ioc16.py
on the float16 region that pass made (`layout_nchw88`), so casts stay at the float16
region's edges and relayouts at the NCHW88 region's. Differences from NCHW44:
- channel counts that are not a multiple of 8 are padded to whole blocks (zero weights,
  zero bias; constants zero-padded), so 12- or 116-channel convs stay in NCHW88;
  only a channel Concat needs every input whole-block (the lanes do not shift), and a Div
  by a re-laid-out constant is left in NCHW (its padding would divide by zero);
- a fused residual (Conv input 3, passes/fuse.py) is read in NCHW88 by the conv kernels;
- the hybrid first conv takes IC < 8; grouped convs whose groups are whole blocks (C/G and
  OC/G multiples of 8) are dense convs per group;
- ShuffleNetV2's channel shuffle and split (Reshape, Transpose, Reshape, two Gathers) of an
  NCHW88 tensor with C % 16 == 0 is one ChannelUnzipNCHW88 (even and odd channels: NEON
  uzp1/uzp2 of block pairs), so a ShuffleNet block stays in the region;
- a spatial mean taken one axis at a time (ReduceMean over W, Squeeze, ReduceMean over H,
  Squeeze: MegEngine's) of an NCHW88 tensor is one GlobalPoolNCHW88 mean (float32 sums, one
  rounding), its (N, C) result a view of the pooled block.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from ..ir import Graph, Op, Tensor
from ..ir.expr import is_elementwise
from ..ir.opdefs import OPDEFS, create
from ..ir.opdefs.nchw44 import BLOCK_OF, NCHW44, NCHW88, nchw44_shape
from .nchw88_patterns import match_spatial_mean, match_unzip

# ops that only reinterpret bytes: when they keep the shape, they keep the layout too
VIEW_OPS = ("Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze")


def _pad_axis(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    """`a` zero-padded at the end of `axis` to `size`."""
    if a.shape[axis] == size:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, size - a.shape[axis])
    return np.pad(a, widths)


def _blocks(c: int, lanes: int) -> int:
    return -(-c // lanes)


def relayout_const(data: np.ndarray, channels: int, lanes: int = 4) -> np.ndarray:
    """A constant broadcast against an (N, C, H, W) tensor, as the matching 5-D array
    broadcast against (N, ceil(C/L), H, W, L) (padded channels zero)."""
    a = np.asarray(data).reshape((1,) * (4 - np.ndim(data)) + np.shape(data))
    n, c, h, w = a.shape
    if c == 1:
        return np.ascontiguousarray(a.reshape(n, 1, h, w, 1))
    assert c == channels
    a = _pad_axis(a, 1, _blocks(c, lanes) * lanes)
    return np.ascontiguousarray(a.reshape(n, -1, lanes, h, w).transpose(0, 1, 3, 4, 2))


def pack_conv_weights(w: np.ndarray, kind: str, lanes: int = 4) -> np.ndarray:
    """Conv weights in the order the blocked kernels read them (L = lanes per block).
    dense (OC, IC, KH, KW) -> (OC/L, IC/L, KH, KW, Lic, Loc); hybrid: the same with one input
    lane, (OC/L, IC, KH, KW, 1, Loc); channel-wise (C, 1, KH, KW) -> (C/L, KH, KW, L).
    Channel counts are zero-padded to whole blocks."""
    oc, icg, kh, kw = w.shape
    w = _pad_axis(w, 0, _blocks(oc, lanes) * lanes)
    if kind == "depthwise":
        return np.ascontiguousarray(w.reshape(-1, lanes, kh, kw).transpose(0, 2, 3, 1))
    lane_in = 1 if kind == "hybrid" else lanes
    w = _pad_axis(w, 1, _blocks(icg, lane_in) * lane_in)
    return np.ascontiguousarray(w.reshape(-1, lanes, w.shape[1] // lane_in, lane_in, kh, kw)
                                .transpose(0, 2, 4, 5, 3, 1))


def _is_4d(t: Tensor, dtype: str = "float32") -> bool:
    return t.dtype == dtype and len(t.shape) == 4 and t.layout == "nchw"


def conv_kind(op: Op, graph: Graph, layout: str = NCHW44) -> Optional[str]:
    """'dense', 'depthwise', 'hybrid' or None (the conv stays NCHW)."""
    fp16 = layout == NCHW88
    dtype, lanes = ("float16" if fp16 else "float32"), BLOCK_OF[layout]
    if (op.type != "Conv" or len(op.inputs) < 2 or op.attrs.get("input_nhwc")
            or op.attrs.get("prelu") and fp16):  # (an NHWC input: the NCHW im2col kernels)
        return None
    if op.attrs.get("residual") and not fp16:
        return None  # (a fused residual is only read by the NCHW and NCHW88 conv kernels)
    x, w, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if not (_is_4d(x, dtype) and _is_4d(y, dtype) and w.is_const and w.dtype == dtype
            and len(w.shape) == 4):
        return None
    if len(op.inputs) > 2 and op.inputs[2] and not graph.tensors[op.inputs[2]].is_const:
        return None
    if op.attrs.get("residual") and (len(op.inputs) < 4 or not _is_4d(
            graph.tensors[op.inputs[3]], dtype) or graph.tensors[op.inputs[3]].shape != y.shape):
        return None
    if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") and "pads" not in op.attrs:
        return None
    if fp16 and not _fp16_epilogue(op):
        return None
    if fp16 and not all(isinstance(d, int) for d in (*x.shape, *y.shape)):
        return None  # (the NCHW88 kernels are specialised on static shapes)
    c, oc, group = x.shape[1], y.shape[1], int(op.attrs.get("group", 1))
    if (oc % lanes and not fp16) or w.shape[0] != oc:
        return None
    if group == 1 and w.shape[1] == c:
        if c < lanes:
            return "hybrid"
        return "dense" if c % lanes == 0 or fp16 else None
    if group == c == oc and w.shape[1] == 1:
        return "depthwise"
    if (fp16 and group > 1 and c % group == 0 and oc % group == 0 and w.shape[1] == c // group
            and (c // group) % lanes == 0 and (oc // group) % lanes == 0):
        return "dense"  # grouped, whole blocks per group: each group a dense conv
    return None


def _fp16_epilogue(op: Op) -> bool:
    """Whether the NCHW88 float16 conv kernels apply the op's fused activation in registers."""
    from ..kernels.elementwise.f16_clamp import f16_clamp  # (kernels import passes' helpers)

    return f16_clamp(op.attrs.get("activation")) is not False


class _Rewriter:
    def __init__(self, graph: Graph, layout: str = NCHW44):
        self.graph = graph
        self.layout, self.lanes = layout, BLOCK_OF[layout]
        self.dtype = "float16" if layout == NCHW88 else "float32"
        self.ops: List[Op] = []
        self.in44: Dict[str, str] = {}  # logical tensor -> its NCHW44 copy
        self.missing_nchw: set = set()  # logical tensors that only exist in NCHW44 so far
        self.packed: Dict[tuple, str] = {}  # (weights, kind) -> packed constant (shared)

    # -- tensors in either layout -------------------------------------------------------
    def _relayout(self, src: str, dst: str, to: str, channels=None) -> None:
        # (the Relayout's definition declares dst when it is new)
        attrs = {"to": to} if channels is None else {"to": to, "channels": channels}
        self.ops.append(create(self.graph, "Relayout", [src], [dst], attrs,
                               name=f"relayout_{dst}"))

    def _name44(self, name: str) -> str:
        """A fresh name for the blocked copy of `name`, not declared yet."""
        n44 = self.graph.unique_name(f"{name}_{self.layout}")
        self.in44[name] = n44
        return n44

    def new44(self, name: str) -> str:
        """Declare the blocked copy of `name`: the same logical tensor, re-laid out."""
        t = self.graph.tensors[name]
        n44 = self._name44(name)
        self.graph.add_tensor(Tensor(n44, nchw44_shape(t.shape, self.layout), t.dtype,
                                     layout=self.layout))
        return n44

    def as44(self, name: str) -> str:
        if name not in self.in44:
            self._relayout(name, self._name44(name), self.layout)
        return self.in44[name]

    def as_nchw(self, name: str) -> str:
        if name in self.missing_nchw:
            c = self.graph.tensors[name].shape[1]
            self._relayout(self.in44[name], name, "nchw", c if c % self.lanes else None)
            self.missing_nchw.discard(name)
        return name

    def outputs44(self, op: Op) -> List[str]:
        outs = []
        for o in op.outputs:
            outs.append(self.new44(o))
            self.missing_nchw.add(o)
        return outs

    # -- eligibility --------------------------------------------------------------------
    def _operand_ok(self, name: str, out: Tensor) -> bool:
        """Runtime operands must have the output's shape; constants any broadcast shape
        (re-laid out at compile time)."""
        t = self.graph.tensors[name]
        if t.dtype != self.dtype:
            return False
        if not t.is_const:
            return t.shape == out.shape and (name in self.in44 or t.layout == "nchw")
        shape = (1,) * (4 - len(t.shape)) + tuple(t.shape)
        return len(t.shape) <= 4 and shape[1] in (1, out.shape[1]) and all(
            s in (1, o) for s, o in zip(shape, out.shape))

    def _follows(self, op: Op) -> bool:
        return any(i in self.in44 for i in op.inputs if i)

    def follower_ok(self, op: Op) -> bool:
        g = self.graph
        if not self._follows(op) or len(op.outputs) != 1:
            return False
        out = g.tensors[op.outputs[0]]
        padded = out.shape[1] % self.lanes if _is_4d(out, self.dtype) else True
        if not _is_4d(out, self.dtype) or (padded and self.layout == NCHW44):
            return False
        if is_elementwise(op) or op.type == "FusedElementwise":
            if padded and "Div" in repr(op.attrs.get("expr", op.type)):
                return False  # (a padded lane of a re-laid-out divisor is zero)
            return all(self._operand_ok(i, out) for i in op.inputs if i)
        if op.type in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
            return len(op.inputs) == 1
        if op.type == "Concat":
            axis = int(op.attrs.get("axis", 0))
            return axis in (1, -3) and all(
                _is_4d(g.tensors[i], self.dtype) and g.tensors[i].shape[1] % self.lanes == 0
                and (not g.tensors[i].is_const) for i in op.inputs if i)
        return False

    # -- rewrites -----------------------------------------------------------------------
    def conv(self, op: Op, kind: str) -> None:
        g = self.graph
        key = (op.inputs[1], kind)
        if key not in self.packed:
            self.packed[key] = g.unique_name(f"{op.inputs[1]}_{self.layout}_{kind}")
            w = np.asarray(g.tensors[op.inputs[1]].data)
            g.add_const(self.packed[key], pack_conv_weights(w, kind, self.lanes))
        wname = self.packed[key]
        x = op.inputs[0]
        x = self.as_nchw(x) if kind == "hybrid" else self.as44(x)
        bias = op.inputs[2] if len(op.inputs) > 2 else ""
        oc = g.tensors[op.outputs[0]].shape[1]
        if bias and oc % self.lanes:  # the kernels read whole blocks of bias
            b = np.asarray(g.tensors[bias].data).reshape(-1)
            bias_name = g.unique_name(f"{bias}_{self.layout}")
            g.add_const(bias_name, _pad_axis(b, 0, _blocks(oc, self.lanes) * self.lanes))
            bias = bias_name
        attrs = dict(op.attrs, kind=kind)
        # outputs44 declares the blocked image of the conv's output; create checks that the
        # op's definition infers the same
        inputs = [x, wname, bias]
        if op.attrs.get("prelu"):  # the slope moves from Conv input 4 to input 3
            inputs.append(op.inputs[4])
        if op.attrs.get("residual"):  # NCHW88: the residual stays input 3, re-laid out
            inputs.append(self.as44(op.inputs[3]))
        op_type = "ConvNCHW88" if self.layout == NCHW88 else "ConvNCHW44"
        self.ops.append(create(g, op_type, inputs, self.outputs44(op), attrs, op.name))

    def follower(self, op: Op) -> None:
        g = self.graph
        out = g.tensors[op.outputs[0]]
        inputs = []
        for i in op.inputs:
            if i and g.tensors[i].is_const:
                t = g.tensors[i]
                if np.ndim(t.data) == 0:  # a scalar broadcasts the same in any layout
                    inputs.append(i)
                    continue
                cname = g.unique_name(f"{i}_{self.layout}")
                g.add_const(cname, relayout_const(t.data, out.shape[1], self.lanes)
                            .astype(t.data.dtype))
                inputs.append(cname)
            else:
                inputs.append(self.as44(i) if i else i)
        b = "88" if self.layout == NCHW88 else "44"
        kind = {"MaxPool": f"PoolNCHW{b}", "AveragePool": f"PoolNCHW{b}",
                "GlobalAveragePool": f"GlobalPoolNCHW{b}", "GlobalMaxPool": f"GlobalPoolNCHW{b}"}
        new_type = kind.get(op.type, op.type)
        attrs = dict(op.attrs, mode=op.type) if new_type != op.type else dict(op.attrs)
        if op.type == "Concat":
            attrs["axis"] = 1
        outputs = self.outputs44(op)
        if new_type in OPDEFS:  # our own ops (pools, FusedElementwise): checked by their opdef
            self.ops.append(create(g, new_type, inputs, outputs, attrs, op.name))
        else:
            self.ops.append(Op(new_type, inputs, outputs, attrs, op.name))

    def passthrough_ok(self, op: Op) -> bool:
        """A shape-preserving view of an NCHW44 tensor stays in NCHW44 (otherwise it would
        cost an inverse relayout pair around it)."""
        outs = [o for o in op.outputs if o]
        return (op.type in VIEW_OPS and bool(op.inputs) and op.inputs[0] in self.in44
                and len(outs) == 1 and outs[0] == op.outputs[0]
                and self.graph.tensors[outs[0]].shape == self.graph.tensors[op.inputs[0]].shape)

    def passthrough(self, op: Op) -> None:
        out = self.new44(op.outputs[0])
        self.missing_nchw.add(op.outputs[0])
        self.ops.append(Op("Identity", [self.in44[op.inputs[0]]], [out], {}, op.name))

    def spatial_mean(self, x: str, result: str) -> None:
        """`result` (N, C) = GlobalPoolNCHW88 mean of x, re-laid out (a view: one pixel) and
        reshaped."""
        g = self.graph
        n, c = g.tensors[result].shape
        pooled = g.unique_name(f"{result}_pooled")
        g.add_tensor(Tensor(pooled, (n, c, 1, 1), g.tensors[result].dtype))
        out = self.new44(pooled)
        self.missing_nchw.add(pooled)
        self.ops.append(create(g, "GlobalPoolNCHW88", [self.in44[x]], [out],
                               {"mode": "GlobalAveragePool"}, f"mean_{result}"))
        shape = g.unique_name(f"{result}_shape")
        g.add_const(shape, np.array([n, c], np.int64))
        self.ops.append(Op("Reshape", [self.as_nchw(pooled), shape], [result], {},
                           f"reshape_{result}"))

    def unzip(self, x: str, even: str, odd: str) -> None:
        outs = []
        for o in (even, odd):
            outs.append(self.new44(o))
            self.missing_nchw.add(o)
        self.ops.append(create(self.graph, "ChannelUnzipNCHW88", [self.in44[x]], outs, {},
                               f"unzip_{x}"))

    def plain(self, op: Op) -> None:
        op.inputs = [self.as_nchw(i) if i else i for i in op.inputs]
        self.ops.append(op)


def layout_nchw44(graph: Graph, layout: str = NCHW44) -> Graph:
    """Rewrite the eligible region of `graph` into NCHW44 (see the module docstring); with
    layout NCHW88, its float16 region into NCHW88."""
    rw = _Rewriter(graph, layout)
    consumers = graph.consumers() if layout == NCHW88 else {}
    done: set = set()  # ops a rewrite consumed (ids)
    for op in list(graph.ops):
        if id(op) in done:
            continue
        region = rw.in44 if layout == NCHW88 else {}
        chain = match_unzip(graph, op, consumers, region)
        means = match_spatial_mean(graph, op, consumers, region)
        kind = conv_kind(op, graph, layout)
        if chain is not None:
            ops, x, even, odd = chain
            done.update(id(o) for o in ops)
            rw.unzip(x, even, odd)
        elif means is not None:
            ops, x, result = means
            done.update(id(o) for o in ops)
            rw.spatial_mean(x, result)
        elif kind is not None:
            rw.conv(op, kind)
        elif rw.follower_ok(op):
            rw.follower(op)
        elif rw.passthrough_ok(op):
            rw.passthrough(op)
        else:
            rw.plain(op)
    for out in graph.outputs:  # the caller sees NCHW
        rw.as_nchw(out)
    graph.ops = rw.ops
    return graph


def layout_nchw88(graph: Graph) -> Graph:
    """The float16 region (passes/ioc16.py's) into NCHW88 (enable_nchw88)."""
    return layout_nchw44(graph, NCHW88)
