"""Writing C: kernels and instructions (kernel.py), shared helpers (helpers.py), vector
vocabularies (vector.py) and the generators written against them (packed_gemm.py,
vmath.py, window.py)."""
