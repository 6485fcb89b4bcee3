#!/usr/bin/env bash
# Fuzz the runtime: fuzz/run.sh SECONDS [WORK_DIR] [loader|lite]
#   1. compiles the seed models, every kernel family included (fuzz/make_seeds.py
#      --families) -> WORK_DIR/kernels.c, seeds/*.tiny, lite_seeds/*.bin
#   2. builds the libFuzzer target against that kernels.c (fuzz/build.sh):
#      loader = fuzz_loader.c (megcc API), lite = fuzz_lite.c (Lite-C API)
#   3. fuzzes for SECONDS, starting from the seeds and the committed corpus
#      (fuzz/corpus, fuzz/corpus_lite)
#   4. merges what it found into a minimised corpus in WORK_DIR/min-HARNESS (copy it over
#      the committed corpus to commit it).
# Crashes, leaks, UB and timeouts land in WORK_DIR/artifacts and make this exit non-zero.
# The compiler-side fuzzer is Python: python fuzz/fuzz_compiler.py (see its docstring).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_TO_RUN="${1:?usage: fuzz/run.sh SECONDS [WORK_DIR] [loader|lite]}"
WORK="${2:-$ROOT/build/fuzz}"
HARNESS="${3:-loader}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
case "$HARNESS" in
    loader) SEEDS="$WORK/seeds"; CORPUS="$ROOT/fuzz/corpus" ;;
    lite) SEEDS="$WORK/lite_seeds"; CORPUS="$ROOT/fuzz/corpus_lite" ;;
    *) echo "harness must be loader or lite" >&2; exit 2 ;;
esac
mkdir -p "$WORK/corpus-$HARNESS" "$WORK/artifacts" "$WORK/min-$HARNESS" "$CORPUS"
[ -f "$WORK/kernels.c" ] || "$PY" "$ROOT/fuzz/make_seeds.py" --families "$WORK" >/dev/null
"$ROOT/fuzz/build.sh" "$WORK/kernels.c" "$WORK/fuzz_$HARNESS" "$ROOT/fuzz/fuzz_$HARNESS.c"
# -max_len: the largest seed is ~8 MB (the MatMul cases' weights); real models fit too.
"$WORK/fuzz_$HARNESS" -max_total_time="$SECONDS_TO_RUN" -timeout=30 -rss_limit_mb=3072 \
    -max_len=16777216 -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$WORK/artifacts/" "$WORK/corpus-$HARNESS" "$SEEDS" "$CORPUS"
"$WORK/fuzz_$HARNESS" -merge=1 -max_len=16777216 "$WORK/min-$HARNESS" "$SEEDS" "$CORPUS" \
    "$WORK/corpus-$HARNESS"
