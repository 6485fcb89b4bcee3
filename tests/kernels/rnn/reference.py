"""ONNX LSTM / GRU / RNN in NumPy (float64), written from the operator spec, with
onnxruntime's readings where the spec is silent (checked against onnxruntime in
test_rnn.py wherever onnxruntime runs the case):

- sequence_lens: a row does nothing past its length (Y zero there, Y_h/Y_c the state after
  its last valid step); a reversed direction starts at the row's own last valid step; a row
  of length 0 gives Y_h = Y_c = 0;
- clip bounds the gate pre-activations (not the cell state fed to h());
- activation_alpha / activation_beta are consumed in order by the activations that take
  them; missing ones are 0, as onnxruntime takes them (ONNX gives no defaults);
- LSTM input_forget: f = 1 - i.
"""
from __future__ import annotations

import numpy as np

# which activations take alpha/beta, and their values when not given (onnxruntime: 0)
DEFAULTS = {"Affine": (0.0, 0.0), "LeakyRelu": (0.0, None), "ThresholdedRelu": (0.0, None),
            "ScaledTanh": (0.0, 0.0), "HardSigmoid": (0.0, 0.0), "Elu": (0.0, None)}
PER = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}


def act_fn(name, alpha, beta):
    f = {
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "Tanh": np.tanh,
        "Relu": lambda x: np.maximum(x, 0),
        "Affine": lambda x: alpha * x + beta,
        "LeakyRelu": lambda x: np.where(x >= 0, x, alpha * x),
        "ThresholdedRelu": lambda x: np.where(x > alpha, x, 0.0),
        "ScaledTanh": lambda x: alpha * np.tanh(beta * x),
        "HardSigmoid": lambda x: np.clip(alpha * x + beta, 0, 1),
        "Elu": lambda x: np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1)),
        "Softsign": lambda x: x / (1 + np.abs(x)),
        "Softplus": lambda x: np.logaddexp(0, x),
    }[name]
    return f


def activations(op, attrs, dirs):
    names = list(attrs.get("activations") or PER[op] * dirs)
    if len(names) == len(PER[op]) and dirs == 2:
        names = names * 2
    alphas = list(attrs.get("activation_alpha") or [])
    betas = list(attrs.get("activation_beta") or [])
    out = []
    for n in names:
        da, db = DEFAULTS.get(n, (None, None))
        a = b = 0.0
        if da is not None:
            a = alphas.pop(0) if alphas else da
        if db is not None:
            b = betas.pop(0) if betas else db
        out.append(act_fn(n, a, b))
    k = len(PER[op])
    return [out[d * k:(d + 1) * k] for d in range(dirs)]


def recurrent(op, attrs, X, W, R, B=None, seq=None, h0=None, c0=None, P=None):
    """(Y, Y_h[, Y_c]) in float64, for the ONNX node `op` with `attrs`."""
    direction = attrs.get("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    layout = int(attrs.get("layout", 0))
    X = np.asarray(X, np.float64)
    if layout:
        X = X.transpose(1, 0, 2)
        h0 = None if h0 is None else np.asarray(h0).transpose(1, 0, 2)
        c0 = None if c0 is None else np.asarray(c0).transpose(1, 0, 2)
    S, Bt, _ = X.shape
    H = R.shape[-1]
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    lens = np.full(Bt, S) if seq is None else np.clip(np.asarray(seq), 0, S)
    clip = attrs.get("clip")
    lbr = int(attrs.get("linear_before_reset", 0))
    input_forget = int(attrs.get("input_forget", 0))
    acts = activations(op, attrs, dirs)
    Y = np.zeros((S, dirs, Bt, H))
    Yh = np.zeros((dirs, Bt, H))
    Yc = np.zeros((dirs, Bt, H))

    def cl(x):
        return x if clip is None else np.clip(x, -clip, clip)

    for d in range(dirs):
        w, r = np.asarray(W[d], np.float64), np.asarray(R[d], np.float64)
        b = np.zeros(2 * G * H) if B is None else np.asarray(B[d], np.float64)
        wb, rb = b[:G * H], b[G * H:]
        p = np.zeros(3 * H) if P is None else np.asarray(P[d], np.float64)
        rev = direction == "reverse" or d == 1
        for n in range(Bt):
            h = np.zeros(H) if h0 is None else np.asarray(h0[d, n], np.float64)
            c = np.zeros(H) if c0 is None else np.asarray(c0[d, n], np.float64)
            L = int(lens[n])
            for s in range(L):
                t = L - 1 - s if rev else s
                x = X[t, n]
                if op == "LSTM":
                    f, g, hh = acts[d]
                    z = x @ w.T + wb + h @ r.T + rb
                    zi, zo, zf, zc = np.split(z, 4)
                    i = f(cl(zi + p[:H] * c))
                    fg = 1 - i if input_forget else f(cl(zf + p[2 * H:] * c))
                    c = fg * c + i * g(cl(zc))
                    o = f(cl(zo + p[H:2 * H] * c))
                    h = o * hh(c)
                elif op == "GRU":
                    f, g = acts[d]
                    xz = x @ w.T + wb
                    rz = h @ r[:2 * H].T + rb[:2 * H]
                    zg = f(cl(xz[:H] + rz[:H]))
                    rg = f(cl(xz[H:2 * H] + rz[H:]))
                    if lbr:
                        ht = g(cl(xz[2 * H:] + rg * (h @ r[2 * H:].T + rb[2 * H:])))
                    else:
                        ht = g(cl(xz[2 * H:] + (rg * h) @ r[2 * H:].T + rb[2 * H:]))
                    h = (1 - zg) * ht + zg * h
                else:
                    h = acts[d][0](cl(x @ w.T + wb + h @ r.T + rb))
                Y[t, d, n] = h
            if L > 0:
                Yh[d, n], Yc[d, n] = h, c
    if layout:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return (Y, Yh, Yc) if op == "LSTM" else (Y, Yh)
