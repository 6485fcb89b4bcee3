"""Normalisation cases against onnxruntime (or NumPy where onnxruntime lacks a form):
BatchNormalization, InstanceNormalization, LayerNormalization, LRN, LpNormalization.
Floats: |ours - ref| / max(1, |ref|) <= 1e-4.

Moved here from test_kernels_nn.py (LpNormalization: new cases).
"""
from __future__ import annotations

import numpy as np

from kernels.harness import Book, Const, uniform_source

rand = uniform_source(5)


BOOK = Book("norm", exact=False)
case = BOOK.add


# --- normalisations -----------------------------------------------------------------------
for opset in (9, 15):
    for shape in [(2, 3, 4, 5), (3, 4), (1, 7, 3)]:
        c = shape[1]
        stats = [Const(rand(c)), Const(rand(c)), Const(rand(c)), Const(rand(c, low=0.1, high=2))]
        case(f"batchnorm_v{opset}_{shape}", "BatchNormalization", [rand(*shape)] + stats,
             {"epsilon": 1e-3}, opset=opset)
case("batchnorm_runtime_stats", "BatchNormalization",
     [rand(2, 3, 5), rand(3), rand(3), rand(3), rand(3, low=0.1, high=2)], opset=15)

for shape in [(2, 3, 5, 4), (1, 4, 7), (3, 1, 1, 9)]:
    case(f"instancenorm_{shape}", "InstanceNormalization",
         [rand(*shape, low=-5, high=9), Const(rand(shape[1])), Const(rand(shape[1]))],
         {"epsilon": 1e-4})

for axis, shape in [(-1, (2, 3, 7)), (1, (2, 3, 7)), (0, (3, 5)), (-2, (1, 4, 3, 2)),
                    (2, (2, 1, 7, 5))]:
    norm = shape[axis:]
    x = rand(*shape, low=-4, high=7)
    case(f"layernorm_axis{axis}_{shape}", "LayerNormalization",
         [x, Const(rand(*norm)), Const(rand(*norm))], {"axis": axis, "epsilon": 1e-3})
    case(f"layernorm_axis{axis}_nobias", "LayerNormalization", [x, Const(rand(*norm))],
         {"axis": axis})
case("layernorm_stats_outputs", "LayerNormalization",
     [rand(3, 7), Const(rand(7)), Const(rand(7))], {}, n_out=3)
case("layernorm_runtime_scale", "LayerNormalization", [rand(3, 7), rand(7), rand(7)], {})



def lrn_ref(size, alpha=1e-4, beta=0.75, bias=1.0):
    """ONNX LRN: window [c - floor((size-1)/2), c + ceil((size-1)/2)] over channels."""
    def ref(x):
        sq = np.zeros(x.shape, np.float64)
        for c in range(x.shape[1]):
            lo, hi = max(0, c - (size - 1) // 2), min(x.shape[1] - 1, c + size // 2)
            sq[:, c] = (x[:, lo:hi + 1].astype(np.float64) ** 2).sum(axis=1)
        return [(x / (bias + alpha / size * sq) ** beta).astype(np.float32)]
    return ref


for size in (1, 2, 3, 4, 5):  # onnxruntime only implements odd sizes
    case(f"lrn_size{size}", "LRN", [rand(2, 7, 3, 4)],
         {"size": size, "alpha": 0.02, "beta": 0.6, "bias": 1.5}, opset=13,
         ref=lrn_ref(size, 0.02, 0.6, 1.5))
case("lrn_3d", "LRN", [rand(1, 3, 5)], {"size": 3}, opset=13, ref=lrn_ref(3))
case("lrn_defaults_ort", "LRN", [rand(1, 3, 5, 2)], {"size": 3}, opset=13)
case("lrn_size5_ort", "LRN", [rand(2, 7, 3, 4)], {"size": 5, "alpha": 0.1, "beta": 0.5},
     opset=13)


# LpNormalization (p = 1, 2; every axis; odd sizes)
for p in (1, 2):
    for axis, shape in [(-1, (3, 7)), (1, (2, 3, 5)), (0, (4, 3))]:
        case(f"lpnorm_p{p}_axis{axis}_{shape}", "LpNormalization", [rand(*shape)],
             {"p": p, "axis": axis}, opset=13)
