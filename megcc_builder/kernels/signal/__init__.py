"""Signal processing: discrete Fourier transforms (DFT, STFT)."""
from . import dft_generic, stft_generic  # noqa: F401
