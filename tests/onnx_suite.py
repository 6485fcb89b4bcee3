"""Selecting cases of ONNX's backend test suite without generating skipped tests.

`BackendTest.include()` marks every other case as skipped; a CI run must not report skips,
so we build test classes holding only the chosen cases instead. Cases listed as expected
failures are wrapped in `unittest.expectedFailure`, which pytest reports as xfail while
they fail and as a *failure* ("unexpected success") once they pass, so both a regression
and a newly passing case show up.
"""
import re
import unittest
import warnings
from typing import Dict, Optional

import ml_dtypes
import numpy as np
import onnx.backend.test

_RUNNERS = {}

# ml_dtypes' narrow types that NumPy 1.26 cannot promote with a Python float (bfloat16 the
# ONNX runner handles itself)
_NARROW = {np.dtype(t) for t in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
                                 ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz,
                                 ml_dtypes.float8_e8m0fnu, ml_dtypes.float4_e2m1fn,
                                 ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.int2,
                                 ml_dtypes.uint2)}


class _BackendTest(onnx.backend.test.BackendTest):
    """ONNX's runner, comparing outputs of the narrow types as float32.

    Its comparison (np.testing.assert_allclose) promotes the outputs with a Python float,
    which NumPy 1.26 (pinned by MegEngine) cannot do for float8/float4/int4/int2: the
    comparison itself raises, whatever the backend computed. Converted to float32 every
    value (NaN included) stays exactly what it was, so the same tolerances decide; the
    dtypes must still match exactly."""

    @classmethod
    def assert_similar_outputs(cls, ref_outputs, outputs, rtol, atol, model_dir=None):
        if len(ref_outputs) == len(outputs):
            pairs = []
            for ref, out in zip(ref_outputs, outputs):
                if isinstance(ref, np.ndarray) and isinstance(out, np.ndarray) \
                        and ref.dtype in _NARROW:
                    np.testing.assert_equal(out.dtype, ref.dtype)
                    ref, out = ref.astype(np.float32), out.astype(np.float32)
                pairs.append((ref, out))
            ref_outputs, outputs = [r for r, _ in pairs], [o for _, o in pairs]
        super().assert_similar_outputs(ref_outputs, outputs, rtol, atol, model_dir=model_dir)


def backend_test(backend):
    """ONNX's BackendTest for `backend`, built once per process (generating the ~2,000
    node cases with their reference outputs takes seconds)."""
    key = id(backend)
    if key not in _RUNNERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the case generators divide by zero on purpose
            _RUNNERS[key] = _BackendTest(backend, __name__)
    return _RUNNERS[key]


def all_cases(backend, pattern: str = r"_cpu$") -> Dict[str, Dict[str, object]]:
    """category -> {case name: test function} for cases whose name matches `pattern`."""
    runner = backend_test(backend)
    # _test_items is the runner's table of generated cases, by category
    return {category: {name: item.func for name, item in sorted(items.items())
                       if re.search(pattern, name)}
            for category, items in runner._test_items.items()}


def _fresh(func):
    """A new function object calling `func` (expectedFailure marks the function it gets,
    and the generated functions are shared by every module using the runner)."""
    def case(self):
        return func(self)

    case.__name__, case.__qualname__, case.__doc__ = func.__name__, func.__name__, func.__doc__
    return case


def suite_cases(backend, module_name: str, pattern: str,
                expected_failures: Optional[Dict[str, str]] = None,
                categories=None):
    expected_failures = expected_failures or {}
    classes = {}
    for category, chosen in all_cases(backend, pattern).items():
        if categories is not None and category not in categories:
            continue
        chosen = {name: (unittest.expectedFailure(_fresh(func)) if name in expected_failures
                         else func)
                  for name, func in chosen.items()}
        if chosen:
            name = f"OnnxBackend{category}Test"
            classes[name] = type(name, (unittest.TestCase,), dict(chosen, __module__=module_name))
    return classes
