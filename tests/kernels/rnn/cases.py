"""LSTM / GRU / RNN cases against the NumPy reference written from the ONNX spec
(reference.py; test_rnn.py checks that reference against onnxruntime wherever onnxruntime
runs the case). Odd sizes (hidden 1, 3, 7, 9, 17, 33; batch 1, 3, 6, 7; sequence 1, 2, 3, 5), every
direction, layout 0 and 1, initial states, peepholes, input_forget, linear_before_reset,
clip, every activation with alpha/beta, sequence_lens (including a row of length 0),
weights given at run time, and trailing outputs omitted.
Floats: |ours - ref| / max(1, |ref|) <= 1e-4.
"""
from __future__ import annotations

import numpy as np

from kernels.harness import Book, Const, uniform_source
from kernels.rnn.reference import recurrent

rand = uniform_source(12)

BOOK = Book("rnn", exact=False)
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
OUTS = {"LSTM": 3, "GRU": 2, "RNN": 2}


def rnn_case(id_, op, S, B, I, H, *, direction="forward", layout=0, bias=True, seq=None,
             init=False, peep=False, const=True, n_out=None, opset=14, expect=None, **attrs):
    """One case; the reference reads the same attributes (hidden_size included)."""
    G, dirs = GATES[op], 2 if direction == "bidirectional" else 1
    wrap = Const if const else (lambda a: a)
    x = rand(S, B, I) if layout == 0 else rand(B, S, I)
    state = (dirs, B, H) if layout == 0 else (B, dirs, H)
    inputs = [x, wrap(rand(dirs, G * H, I, low=-0.7, high=0.7)),
              wrap(rand(dirs, G * H, H, low=-0.7, high=0.7)),
              wrap(rand(dirs, 2 * G * H, low=-0.5, high=0.5)) if bias else None,
              None if seq is None else np.asarray(seq, np.int32)]
    if init:
        inputs.append(rand(*state, low=-1, high=1))
        if op == "LSTM":
            inputs.append(rand(*state, low=-1, high=1))
    elif peep:
        inputs += [None, None]
    if peep:
        inputs.append(wrap(rand(dirs, 3 * H, low=-1, high=1)))
    while inputs[-1] is None:
        inputs.pop()
    attrs = dict(attrs, hidden_size=H)
    if direction != "forward":
        attrs["direction"] = direction
    if layout:
        attrs["layout"] = layout
    n_out = n_out or OUTS[op]
    BOOK.add(id_, op, inputs, attrs, opset=opset, n_out=n_out, expect=expect or {},
             ref=lambda *v, op=op, attrs=attrs, n=n_out:
             [a.astype(np.float64) for a in recurrent(op, attrs, *v)[:n]])


for op in ("LSTM", "GRU", "RNN"):
    o = op.lower()
    # sizes
    rnn_case(f"{o}_1x1x1x1", op, 1, 1, 1, 1)
    # the cost model takes the vector kernel wherever there is one
    rnn_case(f"{o}_s5_b3_i4_h7", op, 5, 3, 4, 7,
             expect={p: (f"{o}_fwd_l0_", f"_{tag}") for p, tag in
                     (("avx2", "avx2"), ("arm64", "neon64"), ("armv7", "neon"))})
    rnn_case(f"{o}_s5_b1_i2_h33", op, 5, 1, 2, 33)
    rnn_case(f"{o}_s1_b3_i5_h3_nobias", op, 1, 3, 5, 3, bias=False)
    # a batch over 4: the per-step product through the packed GEMM, not the GEMV
    # (a row of length 0 for LSTM/GRU only: onnxruntime's RNN leaves such a row's outputs
    # uninitialised, so the reference check against it would compare garbage)
    rnn_case(f"{o}_s3_b6_i5_h9_bidi_seq", op, 3, 6, 5, 9, direction="bidirectional",
             seq=[3, 1, 2, 3, 0 if op != "RNN" else 1, 3], init=op != "RNN")
    # directions, initial states, sequence lengths, layout
    rnn_case(f"{o}_reverse_init", op, 5, 3, 3, 7, direction="reverse", init=True)
    rnn_case(f"{o}_bidi_init", op, 5, 3, 3, 8, direction="bidirectional", init=True)
    rnn_case(f"{o}_seq_lens_fwd", op, 5, 3, 3, 7, seq=[5, 2, 3], init=True)
    rnn_case(f"{o}_seq_lens_bidi", op, 5, 3, 4, 33, direction="bidirectional",
             seq=[3, 5, 1], init=True)
    rnn_case(f"{o}_seq_len_zero", op, 5, 3, 2, 3, direction="reverse", seq=[0, 4, 5],
             init=op != "RNN")  # onnxruntime's RNN leaves Y_h of an empty row undefined
    rnn_case(f"{o}_layout1_bidi_seq", op, 5, 3, 4, 7, direction="bidirectional", layout=1,
             seq=[4, 5, 2], init=True)
    rnn_case(f"{o}_layout1_fwd", op, 1, 3, 2, 3, layout=1)
    rnn_case(f"{o}_clip", op, 5, 3, 4, 7, clip=0.4, direction="bidirectional")
    # weights given at run time (packed by the kernel)
    rnn_case(f"{o}_runtime_weights", op, 5, 3, 4, 7, const=False, init=True,
             direction="bidirectional", seq=[5, 3, 4])
    rnn_case(f"{o}_y_only", op, 5, 3, 4, 7, n_out=1)
    # opsets: 7 (no layout), 22
    rnn_case(f"{o}_opset7", op, 5, 3, 4, 7, opset=7, direction="reverse")
    rnn_case(f"{o}_opset22", op, 5, 3, 4, 7, opset=22, init=True)

# LSTM specifics
rnn_case("lstm_peepholes", "LSTM", 5, 3, 4, 7, peep=True, init=True)
rnn_case("lstm_peepholes_bidi_seq", "LSTM", 5, 3, 4, 33, peep=True, direction="bidirectional",
         seq=[5, 1, 3], init=True)
rnn_case("lstm_peepholes_runtime", "LSTM", 5, 1, 4, 9, peep=True, const=False)
rnn_case("lstm_input_forget", "LSTM", 5, 3, 4, 7, input_forget=1, init=True)
rnn_case("lstm_y_yh", "LSTM", 5, 3, 4, 7, n_out=2)
# GRU specifics
rnn_case("gru_linear_before_reset", "GRU", 5, 3, 4, 7, linear_before_reset=1, init=True)
rnn_case("gru_lbr_bidi_seq", "GRU", 5, 3, 4, 33, linear_before_reset=1,
         direction="bidirectional", seq=[2, 5, 4], init=True)
rnn_case("gru_lbr_runtime", "GRU", 5, 3, 4, 7, linear_before_reset=1, const=False)
rnn_case("gru_lbr_b7", "GRU", 2, 7, 3, 17, linear_before_reset=1, init=True)

# activations, with alpha / beta consumed in order by the activations that take them
ALL_ACTS = ["Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
            "HardSigmoid", "Elu", "Softsign", "Softplus"]
for act in ALL_ACTS:
    rnn_case(f"rnn_act_{act.lower()}", "RNN", 5, 3, 4, 11, activations=[act],
             activation_alpha=[0.7], activation_beta=[0.3])
rnn_case("rnn_act_defaults", "RNN", 5, 3, 4, 7, direction="bidirectional",
         activations=["LeakyRelu", "HardSigmoid"])
# (onnxruntime's RNN, unlike its LSTM and GRU, reads alpha/beta by activation position,
# not in order of use: these lists mean the same either way)
rnn_case("rnn_act_bidi_two", "RNN", 5, 3, 4, 7, direction="bidirectional",
         activations=["ScaledTanh", "Elu"], activation_alpha=[0.8, 0.5],
         activation_beta=[1.5, 0.7])
rnn_case("lstm_acts", "LSTM", 5, 3, 4, 7, activations=["HardSigmoid", "Affine", "Softsign"],
         activation_alpha=[0.3, 0.5], activation_beta=[0.6, 0.2], init=True)
rnn_case("lstm_acts_bidi", "LSTM", 5, 3, 4, 9, direction="bidirectional", peep=True,
         activations=["Sigmoid", "LeakyRelu", "Tanh", "HardSigmoid", "Softplus", "Relu"],
         activation_alpha=[0.2, 0.25], activation_beta=[0.55], clip=2.5)
rnn_case("gru_acts", "GRU", 5, 3, 4, 7, activations=["Sigmoid", "Elu"],
         activation_alpha=[0.9], init=True)
rnn_case("gru_acts_bidi", "GRU", 5, 3, 4, 9, direction="bidirectional",
         activations=["HardSigmoid", "ThresholdedRelu", "Sigmoid", "ScaledTanh"],
         activation_alpha=[0.3, 0.1, 0.9], activation_beta=[0.4, 1.2])
