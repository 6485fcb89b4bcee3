"""Shared by the robustness tests: tools they need, and the sanitizer flags they build with.

In CI (CI=true) a missing tool fails the test instead of skipping it: a robustness check
that silently does not run is worse than none (scripts/setup.sh installs them all).
"""
import os
import shutil

import pytest

IN_CI = os.environ.get("CI") == "true"
ASAN_UBSAN = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
              "-fno-omit-frame-pointer"]


def need_tool(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        if IN_CI:
            pytest.fail(f"{tool} is required in CI (scripts/setup.sh installs it)")
        pytest.skip(f"{tool} not installed")
    return path
