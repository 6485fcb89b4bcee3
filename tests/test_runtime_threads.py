"""Thread safety of the runtime's and Lite-C layer's state (issue 17.5): four threads each
make default networks and fail loads (from memory with a size and from a path that name
the thread), and must read back exactly their own message from LITE_get_last_error and
megcc_last_error -- before, 8 of 80,000 messages were torn and LITE_make_default_network
wrote process-wide defaults. Built with ThreadSanitizer (halt_on_error) and with
ASan+UBSan (tests/runtime/thread_errors_test.c)."""
import os
import subprocess
import sys

import pytest

from tool_support import ASAN_UBSAN, need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RT = os.path.join(ROOT, "runtime")
sys.path.insert(0, os.path.join(ROOT, "fuzz"))
import make_seeds  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("threads")
    make_seeds.build(str(d), digits=False)
    return d


def _build(d, cc, flags, name):
    srcs = sorted(os.path.join(RT, "src", f) for f in os.listdir(os.path.join(RT, "src"))
                  if f.endswith(".c"))
    exe = str(d / name)
    r = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", *flags,
                        "-I", os.path.join(RT, "include"), *srcs, str(d / "kernels.c"),
                        os.path.join(ROOT, "tests", "runtime", "thread_errors_test.c"), "-o",
                        exe, "-lm", "-lpthread"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return exe


@pytest.mark.parametrize("cc, flags, env", [
    ("clang", ["-g", "-O1", "-fsanitize=thread"], {"TSAN_OPTIONS": "halt_on_error=1"}),
    ("gcc", ASAN_UBSAN, {"ASAN_OPTIONS": "detect_leaks=1"})], ids=["tsan", "asan"])
def test_concurrent_default_networks_and_failing_loads(bundle, cc, flags, env):
    need_tool(cc)
    exe = _build(bundle, cc, flags, f"thread_errors_{cc}")
    r = subprocess.run([exe, str(bundle / "seeds" / "cnn.tiny")], capture_output=True,
                       text=True, timeout=600, env=dict(os.environ, **env))
    assert r.returncode == 0 and r.stdout.startswith("PASSED 3200"), \
        r.stdout[-3000:] + r.stderr[-5000:]
    assert "ThreadSanitizer" not in r.stderr and "Sanitizer" not in r.stderr
