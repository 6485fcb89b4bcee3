"""What an ONNX LSTM / GRU / RNN node asks for, read once from the op: the cell, the
directions, the sizes, the activations (with their alpha/beta resolved), which optional
operands are present, and the weights as matrices when they are constants.

Gate order and weight layout are ONNX's: LSTM [i, o, f, c], GRU [z, r, h], RNN [i];
W is [dirs, G*H, I], R [dirs, G*H, H], B [dirs, 2*G*H] (Wb then Rb), P [dirs, 3*H] (i, o, f).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ...ir import Graph, Op

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTIVATIONS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"),
                       "RNN": ("Tanh",)}
# Which activations take alpha / beta: (alpha, beta) when the node gives none, None = the
# activation takes no such value. ONNX does not say; onnxruntime (rnn_helpers.cc) takes 0
# for both, not the defaults of the stand-alone operators (LeakyRelu's 0.01, ...): so do we.
ACTIVATION_DEFAULTS = {
    "Relu": (None, None), "Tanh": (None, None), "Sigmoid": (None, None),
    "Affine": (0.0, 0.0), "LeakyRelu": (0.0, None), "ThresholdedRelu": (0.0, None),
    "ScaledTanh": (0.0, 0.0), "HardSigmoid": (0.0, 0.0), "Elu": (0.0, None),
    "Softsign": (None, None), "Softplus": (None, None),
}
_BY_LOWER = {k.lower(): k for k in ACTIVATION_DEFAULTS}

# input positions of the ONNX node
X_, W_, R_, B_, SEQ_, H0_, C0_, P_ = range(8)


@dataclass(frozen=True)
class Activation:
    name: str
    alpha: float = 0.0
    beta: float = 0.0


@dataclass(frozen=True)
class RnnProblem:
    cell: str                 # "LSTM", "GRU", "RNN"
    dirs: int                 # 1 or 2
    reverse: bool             # the single direction runs backwards
    layout: int               # 0: X [S, B, I]; 1: X [B, S, I]
    S: int                    # sequence length
    B: int                    # batch
    I: int                    # input size
    H: int                    # hidden size
    acts: Tuple[Tuple[Activation, ...], ...]  # per direction: (f, g, h) / (f, g) / (f,)
    clip: Optional[float]
    linear_before_reset: bool
    input_forget: bool
    # present optional operands / outputs
    has_bias: bool
    has_seq: bool
    has_h0: bool
    has_c0: bool
    has_p: bool
    outs: Tuple[bool, bool, bool]  # Y, Y_h, Y_c
    const_w: bool
    const_r: bool

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def N(self) -> int:
        return self.gates * self.H

    def direction_reversed(self, d: int) -> bool:
        return self.reverse or d == 1

    def key(self) -> str:
        """Everything the generated C is specialised on (sizes are params)."""
        acts = ";".join(",".join(f"{a.name}:{a.alpha!r}:{a.beta!r}" for a in per)
                        for per in self.acts)
        return (f"{self.cell}|d{self.dirs}|r{int(self.reverse)}|l{self.layout}|{acts}|"
                f"c{self.clip!r}|lbr{int(self.linear_before_reset)}|"
                f"if{int(self.input_forget)}|b{int(self.has_bias)}|s{int(self.has_seq)}|"
                f"h{int(self.has_h0)}|c{int(self.has_c0)}|p{int(self.has_p)}|"
                f"o{''.join(str(int(o)) for o in self.outs)}|w{int(self.const_w)}"
                f"r{int(self.const_r)}")


def _present(names, k: int) -> bool:
    return len(names) > k and bool(names[k])


def _activations(op: Op, graph: Graph, dirs: int):
    per = len(DEFAULT_ACTIVATIONS[op.type])
    names = list(op.attrs.get("activations") or [])
    if not names:
        names = list(DEFAULT_ACTIVATIONS[op.type]) * dirs
    elif len(names) == per and dirs == 2:
        names = names * 2
    if len(names) != per * dirs:
        raise graph.error(f"activations: {len(names)} given, {per * dirs} expected "
                          f"({per} per direction)", op)
    alphas = list(op.attrs.get("activation_alpha") or [])
    betas = list(op.attrs.get("activation_beta") or [])
    out, ia, ib = [], 0, 0
    for n in names:
        canon = _BY_LOWER.get(str(n).lower())
        if canon is None:
            raise graph.error(f"activation {n!r} is not supported "
                              f"({', '.join(sorted(ACTIVATION_DEFAULTS))} are)", op)
        da, db = ACTIVATION_DEFAULTS[canon]
        # alpha and beta are consumed in order by the activations that take them
        a = b = 0.0
        if da is not None:
            a = float(alphas[ia]) if ia < len(alphas) else da
            ia += 1
        if db is not None:
            b = float(betas[ib]) if ib < len(betas) else db
            ib += 1
        out.append(Activation(canon, a, b))
    return tuple(tuple(out[d * per:(d + 1) * per]) for d in range(dirs))


def rnn_problem(op: Op, graph: Graph) -> RnnProblem:
    """The problem of an LSTM/GRU/RNN op; a CompileError naming the node if it is malformed."""
    ins, outs = op.inputs, op.outputs
    x = graph.tensors[ins[X_]]
    w = graph.tensors[ins[W_]]
    r = graph.tensors[ins[R_]]
    direction = op.attrs.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise graph.error(f"direction {direction!r} is not forward, reverse or bidirectional", op)
    dirs = 2 if direction == "bidirectional" else 1
    layout = int(op.attrs.get("layout", 0))
    if len(x.shape) != 3 or len(w.shape) != 3 or len(r.shape) != 3:
        raise graph.error("X, W and R must be 3-D", op)
    S, B = (x.shape[0], x.shape[1]) if layout == 0 else (x.shape[1], x.shape[0])
    I = x.shape[2]
    H = int(op.attrs.get("hidden_size", r.shape[2]))
    G = GATES[op.type]
    if w.shape != (dirs, G * H, I) or r.shape != (dirs, G * H, H):
        raise graph.error(f"W {w.shape} / R {r.shape} do not fit {dirs} direction(s) of "
                          f"{G} gates x hidden {H} over input {I}", op)
    clip = op.attrs.get("clip")
    return RnnProblem(
        cell=op.type, dirs=dirs, reverse=direction == "reverse", layout=layout,
        S=S, B=B, I=I, H=H, acts=_activations(op, graph, dirs),
        clip=None if clip is None else float(clip),
        linear_before_reset=bool(int(op.attrs.get("linear_before_reset", 0))),
        input_forget=bool(int(op.attrs.get("input_forget", 0))),
        has_bias=_present(ins, B_), has_seq=_present(ins, SEQ_), has_h0=_present(ins, H0_),
        has_c0=op.type == "LSTM" and _present(ins, C0_),
        has_p=op.type == "LSTM" and _present(ins, P_),
        outs=(_present(outs, 0), _present(outs, 1), op.type == "LSTM" and _present(outs, 2)),
        const_w=w.is_const and w.dtype == "float32",
        const_r=r.is_const and r.dtype == "float32")


def applies(op: Op, graph: Graph) -> Optional[str]:
    """None if the kernels can compute the op, else why not (float32 everywhere)."""
    for k in (X_, W_, R_, B_, H0_, C0_, P_):
        if _present(op.inputs, k) and graph.tensors[op.inputs[k]].dtype != "float32":
            return "operands not all float32"
    if _present(op.inputs, SEQ_) and graph.tensors[op.inputs[SEQ_]].dtype != "int32":
        return "sequence_lens not int32"
    return None
