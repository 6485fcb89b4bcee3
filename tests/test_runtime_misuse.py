"""Runtime misuse through the native and the Lite-C API (wrong input size/dtype/shape,
output read before forward, a model of another kernel set, too small or misaligned arenas,
NULL pointers): a clear status and message, no crash — tests/runtime/misuse_test.c built
with ASan + UBSan over real compiled models. Two networks (one model shared, and two
models) run concurrently from two threads and must give the single-threaded results;
that program is also built with ThreadSanitizer, which reports any hidden shared mutable
state the two threads touch.
"""
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
def models(tmp_path_factory):
    from megcc_builder.compiler import ModelSpec, compile_bundle

    d = tmp_path_factory.mktemp("misuse")
    make_seeds.build(str(d), digits=False)
    # the same model alone: another kernel set (fewer kernels), so the bundle's runtime
    # must refuse it
    other = compile_bundle([ModelSpec("other", str(d / "src" / "eltwise.onnx"))],
                           str(d / "other"), save_c_array=False)
    seeds = d / "seeds"
    return d, [str(seeds / "cnn.tiny"), str(seeds / "eltwise.tiny"),
               str(seeds / "movement.tiny"), other.files["other.tiny"]]


def build_misuse_test(d, cc, flags, name):
    """tests/runtime/misuse_test.c + the runtime + d/kernels.c (also used under valgrind)."""
    srcs = sorted(os.path.join(RT, "src", f) for f in os.listdir(os.path.join(RT, "src"))
                  if f.endswith(".c"))
    exe = str(d / name)
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", *flags, "-I",
                    os.path.join(RT, "include"), *srcs, str(d / "kernels.c"),
                    os.path.join(ROOT, "tests", "runtime", "misuse_test.c"), "-o", exe, "-lm",
                    "-lpthread"], check=True, capture_output=True)
    return exe


def test_misuse_gives_status_codes_and_threads_agree(models):
    need_tool("gcc")
    d, blobs = models
    exe = build_misuse_test(d, "gcc", ASAN_UBSAN, "misuse_asan")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    r = subprocess.run([exe, *blobs], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout[-4000:] + r.stderr[-4000:]


def test_two_threads_under_thread_sanitizer(models):
    need_tool("clang")
    d, blobs = models
    exe = build_misuse_test(d, "clang", ["-g", "-O1", "-fsanitize=thread"], "misuse_tsan")
    env = dict(os.environ, MISUSE_THREADS_ONLY="1", TSAN_OPTIONS="halt_on_error=1")
    r = subprocess.run([exe, *blobs], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout[-4000:] + r.stderr[-4000:]
    assert "ThreadSanitizer" not in r.stderr
