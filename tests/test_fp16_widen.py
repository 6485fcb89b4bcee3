"""megcc_widen_f16 (codegen/half.py), the conversion every kernel reading compressed
weights uses: all 65536 half bit patterns against numpy's float16 -> float32, bit for bit
(signed zeros, subnormals, infinities; NaN stays NaN, payload kept by the portable code), on every code path: portable C
(host generic), F16C (host x86-64-v3), NEON fcvtl (arm64) and vcvt.f32.f16 (armv7), under
qemu for the Arm ones; odd offsets and lengths exercise the scalar tails. The assembly of
each vector build is checked for the conversion instruction, so a silently portable build
cannot pass as vectorised."""
import os
import subprocess

import numpy as np
import pytest

from build_support import in_ci, require_target
from megcc_builder.codegen.helpers import HELPERS
from megcc_builder.isa import host_level, spec

MAIN = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
%s
static uint16_t h[65536 + 8];
static float f[65536 + 8];
int main(void) {
    int32_t i;
    for (i = 0; i < 65536; ++i) h[i + 3] = (uint16_t)i;
    /* odd start, odd length: the vector loop's tail; then one single element */
    megcc_widen_f16(h + 3, f + 1, 65535);
    megcc_widen_f16(h + 3 + 65535, f + 1 + 65535, 1);
    fwrite(f + 1, sizeof(float), 65536, stdout);
    return 0;
}
"""

HOST_V3 = spec("x86_64-v3").features <= spec(host_level()).features
PLATFORMS = [
    pytest.param(None, ["-O2"], None, id="generic"),
    pytest.param(None, ["-O2", "-march=x86-64-v3"], "vcvtph2ps", id="x86_64-v3",
                 marks=[] if HOST_V3 or in_ci() else [pytest.mark.skip("host has no AVX2")]),
    pytest.param("arm64", ["-O2"], "fcvtl", id="arm64"),
    pytest.param("armv7", ["-O2"], "vcvt.f32.f16", id="armv7"),
]


@pytest.mark.parametrize("target,flags,instruction", PLATFORMS)
def test_widen_f16_is_exact_for_every_half(tmp_path, target, flags, instruction):
    src = tmp_path / "widen.c"
    used = ("megcc_f16_to_f32", "megcc_widen_f16")
    src.write_text(MAIN % "".join(code for name, code in HELPERS if name in used))
    exe = str(tmp_path / "widen")
    if target is None:
        cc, cflags, run = "cc", [], []
    else:
        t = require_target(target)
        cc, cflags, run = t.cc, t.compile_flags(), t.emulator()
    cmd = [cc, *cflags, *flags, "-std=c99", "-Wall", "-Werror", str(src), "-o", exe]
    subprocess.run(cmd, check=True)
    if instruction:
        asm = subprocess.run([cc, *cflags, *flags, "-std=c99", "-S", str(src), "-o", "-"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        assert instruction in asm, f"{instruction} not used"
    out = subprocess.run([*run, exe], check=True, stdout=subprocess.PIPE).stdout
    got = np.frombuffer(out, np.uint32)
    want = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
    # NaN halves: the hardware conversions quiet signalling NaNs (and may not keep the
    # payload); any NaN is right there. Everything else: the same bits.
    nan = np.isnan(want.view(np.float32))
    assert np.isnan(got.view(np.float32)[nan]).all()
    if instruction is None:  # the portable conversion keeps NaN payloads too
        nan[:] = False
    bad = np.nonzero((got != want) & ~nan)[0]
    assert bad.size == 0, [(hex(i), hex(got[i]), hex(want[i])) for i in bad[:5]]
