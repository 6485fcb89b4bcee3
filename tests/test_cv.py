"""MegCC's CV operators (tinycv) against OpenCV, on every platform.

All cases of tests/cv_cases.py compile into ONE C program per platform (generated
tinycv.c + the cases), run on the host (with AddressSanitizer/UBSan: refused or not, no
call may touch memory outside its images), on arm64 and armv7 under qemu-user and on a
Cortex-M4 under qemu-system-arm (MPS2-AN386): every ui8 output bit-exact with cv2, f32
within 1e-4, every invalid call refused without writing."""
from __future__ import annotations

import functools
import os
import subprocess

import pytest

from build_support import require_target, require_tools, run
from cv_cases import CASES, cases_c_source, requested
from cv_compare import problems
from megcc_builder.cv import generate, select
from megcc_builder.isa import host_level, spec

# Count refusals instead of asserting, so one program can check many of them.
ON_ERROR = "-DTINYCV_ON_ERROR(f,c)=do{extern int tinycv_test_errors;++tinycv_test_errors;}while(0)"
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]


@functools.lru_cache(maxsize=None)
def expected_ok() -> bool:
    # Computing every oracle once up front keeps per-platform failures about our code.
    for c in CASES:
        if not c.refused and c.check is None:
            c.expected()
    return True


# The implementations each platform's level must choose (the rest: portable C).
NEON_COLOR = {f"cv.color_neon_ui8.emit_{op}_neon" for op in ("rgb2bgr", "rgb2gray", "rgb2yuv",
                                                                "yuv2bgr_nv21")}
NEON = {"cv.gaussian_blur_neon_ui8", "cv.gaussian_blur_neon_f32", "cv.resize_linear_neon_ui8",
        "cv.resize_linear_neon_f32", "cv.resize_boxes_simd.emit_crop_and_resize_neon",
        "cv.resize_boxes_simd.emit_letterbox_neon", *NEON_COLOR,
        "cv.normalize_simd_ui8.emit_normalize_neon", "cv.warp_affine_neon_ui8.emit_replicate",
        "cv.warp_affine_neon_ui8.emit_constant", "cv.resize_area_simd.emit_neon",
        "cv.warp_perspective_neon_ui8.emit_replicate", "cv.warp_perspective_neon_ui8.emit_constant"}
VECTOR_IMPLS = {"generic": set(), "x86_64-v3": {"cv.gaussian_blur_avx2_ui8",
                                                "cv.gaussian_blur_avx2_f32",
                                                "cv.warp_affine_avx2_ui8.emit_replicate",
                                                "cv.warp_affine_avx2_ui8.emit_constant",
                                                "cv.resize_linear_avx2_ui8",
                                                "cv.resize_linear_avx2_f32",
                                                "cv.resize_area_simd.emit_avx2",
                                                "cv.warp_perspective_avx2_ui8.emit_replicate",
                                                "cv.warp_perspective_avx2_ui8.emit_constant",
                                                "cv.resize_boxes_simd.emit_crop_and_resize_avx2",
                                                "cv.resize_boxes_simd.emit_letterbox_avx2",
                                                "cv.color_avx2_ui8.emit_rgb2bgr_avx2",
                                                "cv.color_avx2_ui8.emit_rgb2gray_avx2",
                                                "cv.color_avx2_ui8.emit_rgb2yuv_avx2",
                                                "cv.color_avx2_ui8.emit_yuv2bgr_nv21_avx2",
                                                "cv.normalize_simd_ui8.emit_normalize_avx2"},
                "arm64-neon": NEON, "armv7-neon": NEON,
                # Cortex-M levels have no CV vector kernels: the portable ones
                "cortex-m-dsp": set(), "cortex-m-mve": set()}


def check_choice(level: str) -> None:
    chosen = {f.impl for f in select(tuple(requested()), level)}
    vector = {i for i in chosen if not registry_impl(i).requires == ""}
    assert vector == VECTOR_IMPLS[level], (level, vector)


def registry_impl(name: str):
    from megcc_builder.kernels.registry import REGISTRY

    return next(i for impls in REGISTRY.values() for i in impls if i.name == name)


def write_program(out_dir: str, isa: str) -> list:
    os.makedirs(out_dir, exist_ok=True)
    check_choice(isa)
    files = generate(tuple(requested()), isa)
    for name, text in files.items():
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)
    with open(os.path.join(out_dir, "cases.c"), "w") as f:
        f.write(cases_c_source())
    return [os.path.join(out_dir, "cases.c"), os.path.join(out_dir, "tinycv.c")]


# host: portable C (with sanitizers); host-avx2: the x86_64-v3 level's choices; arm64 and
# armv7: their levels' (NEON); cortex-m4: portable C on bare metal.
PLATFORMS = ["host", "host-avx2", "arm64", "armv7", "cortex-m4"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_cv_matches_opencv(platform, tmp_path):
    out = str(tmp_path)
    if platform.startswith("host"):
        require_tools("gcc")
        level = "x86_64-v3" if platform == "host-avx2" else "generic"
        if level != "generic" and host_level() not in ("x86_64-v3", "x86_64-v4", "x86_64-vnni"):
            require_tools(f"a CPU with {level}")  # skips locally, fails in CI
        sources = write_program(out, level)
        exe = os.path.join(out, "cases")
        run(["gcc", "-std=c99", "-O1", "-g", *spec(level).cflags, *WARNINGS,
             "-fsanitize=address,undefined", "-fno-sanitize-recover=all", ON_ERROR, "-I", out,
             *sources, "-lm", "-o", exe])
        cmd = [exe]
    else:
        t = require_target(platform)
        cmd = target_command(t, out, t.isa)
    proc = run(cmd, timeout=300)
    assert expected_ok()
    bad = problems(proc.stdout)
    assert not bad, f"{len(bad)} cases disagree with OpenCV on {platform}:\n" + "\n".join(bad[:20])
    if platform == "host-avx2":
        # the vector kernels compute what the portable ones do, f32 included, bit for bit
        # (same machine and libm: the Gaussian kernel's exp is the same)
        assert_same_output(proc.stdout, portable_host_output(str(tmp_path / "portable")))
    elif platform in ("arm64", "armv7"):
        # the NEON kernels against the portable C on the same target, byte for byte
        portable = run(target_command(t, str(tmp_path / "portable"), "generic"), timeout=300)
        assert_same_output(proc.stdout, portable.stdout)


def target_command(t, out: str, isa: str) -> list:
    """Builds the cases for target `t` at ISA level `isa`; the command that runs them."""
    sources = write_program(out, isa)
    exe = os.path.join(out, "cases.elf")
    link = t.link_flags("board") if t.baremetal else t.link_flags()
    objects = []
    for src in sources:  # compile, then link: the machine flags must not repeat
        objects.append(src[:-2] + ".o")
        run([t.cc, *t.compile_flags(), *WARNINGS, ON_ERROR, "-I", out, "-c", src, "-o",
             objects[-1]])
    run([t.cc, *objects, *link, *t.link_libs(), "-lm", "-o", exe])
    return t.run_command(exe)


def assert_same_output(vector: str, portable: str) -> None:
    """Every case's bytes equal (names of the cases that differ, not megabytes of hex)."""
    a = {line.split()[1]: line for line in vector.splitlines() if line.split()[:1] == ["case"]}
    b = {line.split()[1]: line for line in portable.splitlines() if line.split()[:1] == ["case"]}
    assert a.keys() == b.keys()
    differ = sorted(k for k in a if a[k] != b[k])
    assert not differ, f"vector output differs from the portable code in {differ}"
    assert vector == portable


def portable_host_output(out: str) -> str:
    sources = write_program(out, "generic")
    exe = os.path.join(out, "cases")
    run(["gcc", "-std=c99", "-O2", *WARNINGS, ON_ERROR, "-I", out, *sources, "-lm", "-o", exe])
    return run([exe]).stdout


def test_debug_build_stops_at_invalid_argument(tmp_path):
    """Without TINYCV_ON_ERROR, a debug build asserts; an NDEBUG build returns untouched."""
    require_tools("gcc")
    out = str(tmp_path)
    files = generate((("resize_linear", "ui8"),))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "main.c").write_text(r"""
#include <stdio.h>
#include "tinycv_c.h"
int main(void) {
    unsigned char s[5 * 7 * 3], d[9 * 9] = {0};
    TinyMat src = {5, 7, 3, s}, dst = {9, 9, 1, d};  /* channels differ */
    int i;
    tinycv_resize_linear_ui8(&src, &dst);
    for (i = 0; i < 81; ++i) if (d[i]) { puts("written"); return 2; }
    puts("untouched");
    return 0;
}
""")
    srcs = [str(tmp_path / "main.c"), str(tmp_path / "tinycv.c")]
    run(["gcc", "-std=c99", "-I", out, *srcs, "-lm", "-o", str(tmp_path / "debug")])
    proc = subprocess.run([str(tmp_path / "debug")], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode != 0 and "tinycv: invalid argument" in proc.stderr
    run(["gcc", "-std=c99", "-DNDEBUG", "-I", out, *srcs, "-lm", "-o", str(tmp_path / "rel")])
    assert run([str(tmp_path / "rel")]).stdout.strip() == "untouched"
