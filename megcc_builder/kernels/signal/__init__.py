"""Signal processing: discrete Fourier transforms."""
from . import dft_generic  # noqa: F401
