#!/usr/bin/env bash
# The main job, end to end: set up the machine (idempotent), compile the digits sample
# model, build the app on this machine with SCons, run it: prints every prediction and the
# accuracy on 100 real held-out images.
#   scripts/run_sample.sh [target]      e.g. arm64 or cortex-m4 (runs under qemu)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-x86_64}"
scripts/setup.sh
exec .venv/bin/python -m SCons -Q "target=$target" run-digits
