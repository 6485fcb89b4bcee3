#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for megcc-builder: system packages (C compilers) and
# the Python 3.10 virtual environment .venv/ with pinned dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Host compilers, plus the cross toolchains and emulators of toolchains/*.json (their
# "packages" fields): Arm64/ArmV7/RISC-V Linux under qemu-user, Cortex-M with picolibc under
# qemu-system-arm; cmake + ninja for the CMake package; libFuzzer (libclang-rt-14-dev) and
# valgrind for the robustness tests (tests/test_fuzz_smoke.py, tests/test_sanitizers.py).
APT_PACKAGES="gcc clang make cmake ninja-build gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
gcc-riscv64-linux-gnu gcc-arm-none-eabi picolibc-arm-none-eabi qemu-user qemu-system-arm
libc6-dev-arm64-cross libc6-dev-armhf-cross libc6-dev-riscv64-cross libclang-rt-14-dev valgrind time"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# MegEngine 1.13 wheels exist only for CPython <= 3.10.
PY=""
for cand in /root/.pyenv/versions/3.10.*/bin/python3.10 "$(command -v python3.10 || true)"; do
    if [ -n "$cand" ] && [ -x "$cand" ]; then PY="$cand"; break; fi
done
[ -n "$PY" ] || { echo "setup: Python 3.10 is required (MegEngine 1.13 has no newer wheels)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import megengine, onnx, onnxruntime, numpy, megcc_builder" 2>/dev/null \
    || { echo "setup: the virtual environment is incomplete" >&2; exit 1; }
