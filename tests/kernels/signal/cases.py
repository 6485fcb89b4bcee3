"""DFT cases against onnxruntime (opset 17: axis attribute; opset 20: axis input) and, for
float64 and the one-sided inverse, numpy.fft: real and complex inputs, forward, inverse,
one-sided, dft_length padding and truncating, inner axes. Within the float tolerance
(sums of up to 16 terms of magnitude <= 3)."""
from __future__ import annotations

import numpy as np

from kernels.harness import Book, Const

RNG = np.random.default_rng(31)
BOOK = Book("signal", exact=False)
I64 = np.int64


def rand(*shape, dtype=np.float32):
    return RNG.uniform(-3, 3, shape).astype(dtype)


def length(n):
    return Const(np.array(n, I64))


# opset 17 (axis attribute) and 20 (axis input, which counts the complex axis too)
for c in (1, 2):
    for inverse in (0, 1):
        BOOK.add(f"dft_v17_c{c}_inv{inverse}", "DFT", [rand(2, 7, 3, c)],
                 {"axis": 1, "inverse": inverse}, opset=17)
        BOOK.add(f"dft_v20_c{c}_inv{inverse}_axis2", "DFT",
                 [rand(2, 3, 5, c), None, Const(np.array(2, I64))], {"inverse": inverse},
                 opset=20)
BOOK.add("dft_v17_pad_to_12", "DFT", [rand(1, 9, 2), length(12)], {"axis": 1}, opset=17)
BOOK.add("dft_v17_truncate_to_5", "DFT", [rand(2, 9, 2), length(5)], {"axis": 1}, opset=17)
BOOK.add("dft_v17_rfft_even", "DFT", [rand(3, 10, 1)], {"axis": 1, "onesided": 1}, opset=17)
BOOK.add("dft_v17_rfft_odd_len", "DFT", [rand(3, 10, 1), length(7)],
         {"axis": 1, "onesided": 1}, opset=17)
BOOK.add("dft_v20_default_axis", "DFT", [rand(2, 4, 6, 2)], {}, opset=20)


def irfft_ref(n, axis):
    def ref(x, *_):
        spec = x[..., 0].astype(np.float64) + 1j * x[..., 1]
        return [np.fft.irfft(spec, n=n, axis=axis)[..., np.newaxis].astype(np.float32)]
    return ref


def c2(z):
    return np.stack([z.real, z.imag], -1).astype(np.float32)


# irfft: a one-sided spectrum of a real signal (default length 2 (m - 1)), then an odd
# dft_length, then a spectrum with non-zero DC/Nyquist imaginary parts (ignored)
_spec = c2(np.fft.rfft(rand(2, 10, 3), axis=1))
BOOK.add("dft_v17_irfft", "DFT", [_spec], {"axis": 1, "inverse": 1, "onesided": 1},
         opset=17, ref=irfft_ref(10, 1))
BOOK.add("dft_v17_irfft_len7", "DFT", [_spec, length(7)],
         {"axis": 1, "inverse": 1, "onesided": 1}, opset=17, ref=irfft_ref(7, 1))
BOOK.add("dft_v17_irfft_len13", "DFT", [rand(1, 6, 2), length(13)],
         {"axis": 1, "inverse": 1, "onesided": 1}, opset=17, ref=irfft_ref(13, 1))
BOOK.add("dft_v17_irfft_raw", "DFT", [rand(1, 6, 2)],
         {"axis": 1, "inverse": 1, "onesided": 1}, opset=17, ref=irfft_ref(10, 1))
BOOK.add("dft_v17_f64", "DFT", [rand(2, 8, 2, dtype=np.float64)], {"axis": 1}, opset=17,
         tol=1e-12, ref=lambda x: [np.stack([(f := np.fft.fft(x[..., 0] + 1j * x[..., 1],
                                                                axis=1)).real, f.imag], -1)])


# STFT (opset 17) against onnxruntime: real and complex signals, a window, frame_length
# given or taken from the window, onesided set explicitly (onnx.reference, which infers
# shapes here, ignores the attribute's default of 1)
_sig = rand(2, 40, 1)
BOOK.add("stft_onesided_window", "STFT", [_sig, Const(np.array(6, I64)),
                                          Const(np.hanning(16).astype(np.float32))],
         {"onesided": 1}, opset=17)
BOOK.add("stft_full_no_window", "STFT", [_sig, Const(np.array(5, I64)), None,
                                         Const(np.array(12, I64))], {"onesided": 0}, opset=17)
# complex signals: onnx's reference (equal to numpy.fft here; onnxruntime 1.23 is not)
BOOK.add("stft_complex_window", "STFT", [rand(1, 30, 2), Const(np.array(4, I64)),
                                         Const(rand(8)), Const(np.array(8, I64))],
         {"onesided": 0}, opset=17, ref="onnx")
