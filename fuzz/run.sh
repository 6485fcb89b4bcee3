#!/usr/bin/env bash
# Fuzz the runtime loader/VM: fuzz/run.sh SECONDS [WORK_DIR]
#   1. compiles the seed models (fuzz/make_seeds.py) -> WORK_DIR/kernels.c + seeds/*.tiny
#   2. builds the libFuzzer target against that kernels.c (fuzz/build.sh)
#   3. fuzzes for SECONDS, starting from the seeds and the committed corpus (fuzz/corpus)
#   4. merges what it found into a minimised corpus in WORK_DIR/min (copy it over
#      fuzz/corpus to commit it).
# Crashes, leaks, UB and timeouts land in WORK_DIR/artifacts and make this exit non-zero.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_TO_RUN="${1:?usage: fuzz/run.sh SECONDS [WORK_DIR]}"
WORK="${2:-$ROOT/build/fuzz}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$WORK/corpus" "$WORK/artifacts" "$WORK/min"
"$PY" "$ROOT/fuzz/make_seeds.py" "$WORK" >/dev/null
"$ROOT/fuzz/build.sh" "$WORK/kernels.c" "$WORK/fuzz_loader"
"$WORK/fuzz_loader" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 \
    -max_len=131072 -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$WORK/artifacts/" "$WORK/corpus" "$WORK/seeds" "$ROOT/fuzz/corpus"
"$WORK/fuzz_loader" -merge=1 "$WORK/min" "$WORK/seeds" "$ROOT/fuzz/corpus" "$WORK/corpus"
