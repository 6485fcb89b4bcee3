"""Helpers the families' cases.py share: random data, activations as ONNX epilogues."""
from __future__ import annotations

import numpy as np

from kernels.harness import Const

ACTS = {  # activation -> NumPy (Clip bounds are given per case)
    None: lambda v, lo=None, hi=None: v,
    "Relu": lambda v, lo=None, hi=None: np.maximum(v, 0),
    "Clip": lambda v, lo=-0.5, hi=1.5: np.clip(v, lo, hi),
    "Sigmoid": lambda v, lo=None, hi=None: 1 / (1 + np.exp(-v)),
    "LeakyRelu": lambda v, lo=None, hi=None: np.where(v >= 0, v, 0.01 * v),
}


def act_post(act, clip=(-0.5, 1.5)):
    """The activation as an epilogue node (opset >= 11: Clip's bounds are inputs)."""
    if act is None:
        return ()
    if act == "Clip":
        return (("Clip", [Const(np.array(clip[0], np.float32)),
                          Const(np.array(clip[1], np.float32))], {}),)
    return ((act, [], {}),)


def act_ref(act, v, clip=(-0.5, 1.5)):
    return ACTS[act](v, *clip) if act == "Clip" else ACTS[act](v)
