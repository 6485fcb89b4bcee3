#!/usr/bin/env bash
# Build the loader fuzzer: fuzz/build.sh KERNELS_C OUTPUT_BINARY
# (KERNELS_C: the kernels.c of the seed bundle, see fuzz/make_seeds.py; for a bundle
# compiled with MEGCC_ISA=x86_64-v3 pass FUZZ_CFLAGS="-mavx2 -mfma")
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CC="${FUZZ_CC:-clang}"
# -fno-sanitize-recover: the first UB report is fatal, so libFuzzer records it as a crash.
exec "$CC" -g -O1 -std=c99 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer -Wall -Wextra -Werror ${FUZZ_CFLAGS:-} -I "$ROOT/runtime/include" \
    "$ROOT"/runtime/src/*.c "$1" "$ROOT/fuzz/fuzz_loader.c" -lm -o "$2"
