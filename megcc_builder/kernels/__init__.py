"""The kernel library: one folder per operator family, one module per implementation
(`<family>/<algorithm>_<isa>_<dtype>.py`), each registering itself in registry.py.
Importing the package registers them all; registry.lower picks one per op."""
from . import conv, cv, data, elementwise, index, matmul, norm, pool, quant, reduce, rnn  # noqa: F401
from . import signal  # noqa: F401
from .registry import REGISTRY, has_kernel, lower  # noqa: F401
