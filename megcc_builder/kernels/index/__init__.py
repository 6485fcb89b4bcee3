"""Index-driven operations: gathers, scatters, one-hot, cumulative sums, top-k."""
from . import generic  # noqa: F401
