"""60-second smoke runs of the three fuzzers (fuzz/README.md):

- fuzz_loader.c: the runtime loader and VM (megcc API), from a blob;
- fuzz_lite.c: the Lite-C API driven by a script in front of the blob (make, load from
  memory / in place / from a path, set layouts, caller input and output memory, forward,
  read outputs, a second network sharing the arena);
- fuzz_compiler.py (atheris): the ONNX / MegEngine / JSON / YAML readers and the compile
  pipeline behind them.

The C harnesses are built with clang -fsanitize=fuzzer,address,undefined against the
kernels.c of a seed bundle holding a model per kernel-test case group, so every kernel
family the compiler emits is linked and seeded (make_seeds.py --families); each run first
checks that every seed loads and runs, so fuzzing starts deep, then fuzzes from the seeds
and the committed corpus with a -max_len that fits the largest seed (real-model sized),
and requires a clean exit: no crash, leak, UB report or timeout. The long campaigns are
fuzz/run.sh (see fuzz/README.md).
"""
import os
import re
import subprocess
import sys

import pytest

from tool_support import need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")
sys.path.insert(0, FUZZ)
import make_seeds  # noqa: E402

SMOKE_SECONDS = 60
MAX_LEN = 16 << 20   # above the largest family seed (the MatMul cases' weights, ~8 MB)
BAD = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ERROR: libFuzzer",
       "SUMMARY:", "Uncaught Python exception")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    need_tool("clang")
    d = tmp_path_factory.mktemp("fuzz")
    blobs = make_seeds.build(str(d), families=True)
    lite = make_seeds.lite_seeds(blobs, str(d / "lite_seeds"))
    assert max(os.path.getsize(p) for p in lite) < MAX_LEN
    families = {os.path.basename(p).split("_")[1] for p in blobs
                if os.path.basename(p).startswith("family_")}
    kernel_tests = os.path.join(ROOT, "tests", "kernels")
    assert families == {f for f in os.listdir(kernel_tests)
                        if os.path.isfile(os.path.join(kernel_tests, f, "cases.py"))}
    return d, blobs, lite


# libFuzzer's RSS limit reads the process's peak RSS (ru_maxrss), which Linux carries over
# from the parent across fork and exec: started from a pytest worker that has grown large,
# a fuzzer would stop at once with "out-of-memory". So no RSS limit; the malloc limit still
# catches any single huge allocation.
MEMORY_LIMITS = ["-rss_limit_mb=0", "-malloc_limit_mb=3072"]


def _fuzz(cmd, artifacts, summary, label, env=None, timeout=30):
    r = subprocess.run([*cmd, f"-max_total_time={SMOKE_SECONDS}", f"-timeout={timeout}", "-seed=1",
                        *MEMORY_LIMITS, f"-max_len={MAX_LEN}", "-print_final_stats=1",
                        f"-artifact_prefix={artifacts}/"],
                       capture_output=True, text=True, timeout=SMOKE_SECONDS + 600, env=env)
    tail = r.stderr[-4000:]
    assert r.returncode == 0, tail
    assert not os.listdir(artifacts), tail
    for bad in BAD:
        assert bad not in r.stderr, tail
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
    assert runs and int(runs.group(1)) > 20, tail
    cov, ft = (re.findall(r"cov: (\d+) ft: (\d+)", r.stderr) or [("?", "?")])[-1]
    summary(f"fuzz smoke {label} ({SMOKE_SECONDS} s): {runs.group(1)} executions, coverage "
            f"{cov} edges / {ft} features, no findings")


def _build(d, harness, exe):
    r = subprocess.run([os.path.join(FUZZ, "build.sh"), str(d / "kernels.c"), str(exe),
                        os.path.join(FUZZ, harness)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]  # e.g. libclang-rt-14-dev (libFuzzer) missing


@pytest.mark.parametrize("harness, tag", [("fuzz_loader.c", "megcc-fuzz"),
                                          ("fuzz_lite.c", "megcc-fuzz-lite")])
def test_c_fuzzer_smoke(bundle, tmp_path, summary, harness, tag):
    d, blobs, lite = bundle
    exe = tmp_path / harness[:-2]
    _build(d, harness, exe)
    seeds = blobs if harness == "fuzz_loader.c" else lite
    # every seed loads (status 0) and runs at least one plan
    r = subprocess.run([str(exe), *MEMORY_LIMITS, *seeds], capture_output=True, text=True,
                       timeout=600,
                       env=dict(os.environ, MEGCC_FUZZ_VERBOSE="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    verdicts = re.findall(rf"{tag}: status (\d+) forwards (\d+)", r.stderr)
    assert len(verdicts) == len(seeds), r.stderr[-3000:]
    bad = [(s, v) for s, v in zip(seeds, verdicts) if v[0] != "0" or int(v[1]) < 1]
    assert not bad, bad[:5]

    work, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    work.mkdir()
    artifacts.mkdir()
    dirs = [os.path.dirname(seeds[0])]
    committed = os.path.join(FUZZ, "corpus" if harness == "fuzz_loader.c" else "corpus_lite")
    if os.path.isdir(committed):
        dirs.append(committed)
    _fuzz([str(exe), str(work), *dirs], artifacts, summary, harness)


def test_compiler_fuzzer_smoke(tmp_path, summary):
    if os.environ.get("CI") == "true":
        import atheris  # noqa: F401  (pinned in requirements.txt: required in CI)
    else:
        pytest.importorskip("atheris")
    seeds = tmp_path / "seeds"
    r = subprocess.run([sys.executable, os.path.join(FUZZ, "fuzz_compiler.py"), "--make-seeds",
                        str(seeds)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    work, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    work.mkdir()
    artifacts.mkdir()
    dirs = [str(seeds)]
    committed = os.path.join(FUZZ, "corpus_compiler")
    if os.path.isdir(committed):
        dirs.append(committed)
    _fuzz([sys.executable, os.path.join(FUZZ, "fuzz_compiler.py"), str(work), *dirs],
          artifacts, summary, "fuzz_compiler.py",
          env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)  # compiles take seconds
