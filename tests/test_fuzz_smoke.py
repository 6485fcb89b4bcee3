"""60-second smoke run of the runtime loader/VM fuzzer (fuzz/fuzz_loader.c): builds it with
clang -fsanitize=fuzzer,address,undefined against the seed bundle's kernels.c, checks that
every seed loads and runs (so fuzzing starts deep), then fuzzes from the seeds and the
committed minimised corpus (fuzz/corpus) and requires a clean exit: no crash, leak, UB
report or timeout. The long runs are fuzz/run.sh (see fuzz/README.md).
"""
import os
import re
import subprocess
import sys

from tool_support import need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")
sys.path.insert(0, FUZZ)
import make_seeds  # noqa: E402

SMOKE_SECONDS = 60


def test_fuzzer_smoke(tmp_path, summary):
    need_tool("clang")
    seeds = make_seeds.build(str(tmp_path))
    exe = str(tmp_path / "fuzz_loader")
    r = subprocess.run([os.path.join(FUZZ, "build.sh"), str(tmp_path / "kernels.c"), exe],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]  # e.g. libclang-rt-14-dev (libFuzzer) missing

    # every seed loads (status 0) and runs at least one plan
    r = subprocess.run([exe, *seeds], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, MEGCC_FUZZ_VERBOSE="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    verdicts = re.findall(r"megcc-fuzz: status (\d+) forwards (\d+)", r.stderr)
    assert len(verdicts) == len(seeds) and all(s == "0" and int(f) >= 1 for s, f in verdicts), \
        r.stderr[-3000:]

    work = tmp_path / "corpus"
    work.mkdir()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    corpus_dirs = [str(tmp_path / "seeds")]
    if os.path.isdir(os.path.join(FUZZ, "corpus")):
        corpus_dirs.append(os.path.join(FUZZ, "corpus"))
    r = subprocess.run([exe, f"-max_total_time={SMOKE_SECONDS}", "-timeout=10", "-seed=1",
                        "-rss_limit_mb=2048", "-max_len=131072", "-print_final_stats=1",
                        f"-artifact_prefix={artifacts}/", str(work), *corpus_dirs],
                       capture_output=True, text=True, timeout=SMOKE_SECONDS + 240)
    tail = r.stderr[-4000:]
    assert r.returncode == 0, tail
    assert not os.listdir(artifacts), tail
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                "ERROR: libFuzzer", "SUMMARY:"):
        assert bad not in r.stderr, tail
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
    assert runs and int(runs.group(1)) > 100, tail
    cov, ft = (re.findall(r"cov: (\d+) ft: (\d+)", r.stderr) or [("?", "?")])[-1]
    summary(f"fuzz smoke ({SMOKE_SECONDS} s): {runs.group(1)} executions, coverage {cov} "
            f"edges / {ft} features, no findings")
