"""Recurrent layers: ONNX LSTM, GRU and RNN, one kernel call per op (recurrent.py)."""
from . import recurrent_generic_f32, recurrent_simd_f32  # noqa: F401
