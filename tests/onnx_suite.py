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

import onnx.backend.test

_RUNNERS = {}


def backend_test(backend):
    """ONNX's BackendTest for `backend`, built once per process (generating the ~2,000
    node cases with their reference outputs takes seconds)."""
    key = id(backend)
    if key not in _RUNNERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the case generators divide by zero on purpose
            _RUNNERS[key] = onnx.backend.test.BackendTest(backend, __name__)
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
