#!/usr/bin/env bash
# Build a fuzzer: fuzz/build.sh KERNELS_C OUTPUT_BINARY [HARNESS_C]
# (HARNESS_C: fuzz/fuzz_loader.c, the default, or fuzz/fuzz_lite.c, the Lite-C API driver.
# KERNELS_C: the kernels.c of the seed bundle, see fuzz/make_seeds.py; for a bundle
# compiled with --isa x86_64-v3 pass FUZZ_CFLAGS="-mavx2 -mfma".)
# The instrumented kernels.c object is kept beside it (KERNELS_C.fuzz.o) and reused while
# it is newer than KERNELS_C: the all-families bundle takes minutes to compile, once.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CC="${FUZZ_CC:-clang}"
# -fno-sanitize-recover: the first UB report is fatal, so libFuzzer records it as a crash.
FLAGS=(-g -O1 -std=c99 -fsanitize=address,undefined -fno-sanitize-recover=all
       -fno-omit-frame-pointer -Wall -Wextra -Werror ${FUZZ_CFLAGS:-} -I "$ROOT/runtime/include"
       -DMEGCC_MAX_BACKWARD_JUMPS=100000)  # control flow: a mutated blob may loop forever
KOBJ="$1.fuzz.o"
if [ ! -f "$KOBJ" ] || [ "$1" -nt "$KOBJ" ]; then
    "$CC" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$1" -o "$KOBJ.tmp"
    mv "$KOBJ.tmp" "$KOBJ"
fi
exec "$CC" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT"/runtime/src/*.c "$KOBJ" \
    "${3:-$ROOT/fuzz/fuzz_loader.c}" -lm -o "$2"
