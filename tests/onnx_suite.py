"""Selecting cases of ONNX's backend test suite without generating skipped tests.

`BackendTest.include()` marks every other case as skipped; a CI run must not report skips,
so we build test classes holding only the chosen cases instead.
"""
import re
import unittest

import onnx.backend.test


def suite_cases(backend, module_name: str, pattern: str):
    runner = onnx.backend.test.BackendTest(backend, module_name)
    classes = {}
    # _test_items is the runner's table of generated cases, by category
    for category, items in runner._test_items.items():
        chosen = {name: item.func for name, item in sorted(items.items())
                  if re.search(pattern, name)}
        if chosen:
            name = f"OnnxBackend{category}Test"
            classes[name] = type(name, (unittest.TestCase,), chosen)
    return classes
