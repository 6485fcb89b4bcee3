"""Index-driven operations: gathers, scatters, one-hot, cumulative sums, top-k."""
from . import count_generic  # noqa: F401
from . import generic  # noqa: F401
from . import tensor_scatter_generic  # noqa: F401
