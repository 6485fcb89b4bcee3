"""Runtime tests: the C runtime (loader, VM, Lite-C layer, runner) against blobs written by
megcc_builder.emit.model_blob, with a hand-written kernels.c fixture.

The test binaries are built once per session with gcc -fsanitize=address,undefined
-fno-sanitize-recover=all, so any out-of-bounds access or UB while loading a hostile blob
fails the test. Warning-freedom (-std=c99 -Wall -Wextra -Werror -pedantic) is checked with
gcc and clang, and the bare-metal build (-DMEGCC_NO_LIBC_HOOKS) is checked to need nothing
from libc but memcpy/memset.
"""
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from megcc_builder.emit.kernel_set import kernel_set_id
from megcc_builder.emit.model_blob import (BlobInstr, BlobPlan, BlobTensor, c_array_source,
                                           float_param, read_model, write_model)

ROOT = Path(__file__).resolve().parents[1]
RT = ROOT / "runtime"
TESTS_C = Path(__file__).resolve().parent / "runtime"
sys.path.insert(0, str(TESTS_C))
import fixture_kernels as fk  # noqa: E402

# megcc_status values (runtime/include/megcc/megcc.h)
OK, INVALID_ARG, NO_MEMORY, IO, BAD_MAGIC, BAD_VERSION, BAD_SIZE, BAD_CRC = range(8)
KERNEL_MISMATCH, CORRUPT, ALIGNMENT, ARENA_TOO_SMALL = 8, 9, 10, 11

RUNTIME_SRCS = sorted((RT / "src").glob("*.c"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SAN = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
       "-fno-omit-frame-pointer"]
K = {n: i for i, n in enumerate(fk.NAMES)}
W_A = np.arange(6, dtype=np.float32).reshape(2, 3)


# ----------------------------------------------------------------------------- models

def model_a() -> bytes:
    """o = relu(x + y) * 0.5 + w; outputs o, o_flat (view of o), xc = x + (omitted)."""
    T = BlobTensor
    tensors = [T("x", "float32", (2, 3), "arena", 0), T("y", "float32", (2, 3), "arena", 64),
               T("w", "float32", (2, 3), "weight", weight_index=0),
               T("s", "float32", (2, 3), "arena", 128), T("r", "float32", (2, 3), "arena", 192),
               T("ws", "float32", (6,), "arena", 256), T("q", "float32", (2, 3), "arena", 320),
               T("o", "float32", (2, 3), "arena", 384),
               T("o_flat", "float32", (6,), "view", 0, base=7),
               T("xc", "float32", (2, 3), "arena", 448)]
    instrs = [BlobInstr(K["add_f32"], [0, 1], [3], [6]),
              BlobInstr(K["relu_f32"], [3], [4], [6], workspace=5),
              BlobInstr(K["scale_f32"], [4], [6], [6, float_param(0.5)]),
              BlobInstr(K["add_f32"], [6, 2], [7], [6]),
              BlobInstr(K["add_f32"], [0, -1], [9], [6])]
    plan = BlobPlan("x=(2,3);y=(2,3)", 0, 512, tensors, instrs, [0, 1], [7, 8, 9])
    return write_model("modelA", fk.NAMES, fk.KERNEL_SET_ID, [plan], [W_A.tobytes()])


def model_b() -> bytes:
    """Two plans: x(1,4) -> relu(x); x(2,4) -> relu(2x) with a bigger arena."""
    T = BlobTensor
    p0 = BlobPlan("x=(1,4)", 0, 128,
                  [T("x", "float32", (1, 4), "arena", 0), T("out", "float32", (1, 4), "arena", 64)],
                  [BlobInstr(K["relu_f32"], [0], [1], [4])], [0], [1])
    p1 = BlobPlan("x=(2,4)", 0, 192,
                  [T("x", "float32", (2, 4), "arena", 0), T("t", "float32", (2, 4), "arena", 64),
                   T("out", "float32", (2, 4), "arena", 128)],
                  [BlobInstr(K["scale_f32"], [0], [1], [8, float_param(2.0)]),
                   BlobInstr(K["relu_f32"], [1], [2], [8])], [0], [2])
    return write_model("modelB", fk.NAMES, fk.KERNEL_SET_ID, [p0, p1], [])


def model_c() -> bytes:
    T = BlobTensor
    plan = BlobPlan("x=(4,)", 0, 64, [T("x", "float32", (4,), "arena", 0),
                                      T("y", "float32", (4,), "arena", 32)],
                    [BlobInstr(K["fail_i32"], [0], [1], [7])], [0], [1])
    return write_model("modelC", fk.NAMES, fk.KERNEL_SET_ID, [plan], [])


# ----------------------------------------------------------------------------- build

def _run_jobs(cmds, cwd):
    procs = [(c, subprocess.Popen(c, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)) for c in cmds]
    errors = []
    for c, p in procs:
        out, _ = p.communicate()
        if p.returncode:
            errors.append(f"$ {' '.join(map(str, c))}\n{out}")
    return errors


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("rt")
    (d / "kernels.c").write_text(fk.kernels_c([model_a(), model_b(), model_c()]))
    for name, data in (("a.tiny", model_a()), ("b.tiny", model_b()), ("c.tiny", model_c())):
        (d / name).write_bytes(data)
    inc = ["-I", str(RT / "include")]
    srcs = [*RUNTIME_SRCS, d / "kernels.c", RT / "tools" / "megcc_runner.c",
            TESTS_C / "load_harness.c", TESTS_C / "api_test.c", TESTS_C / "lite_test.c",
            TESTS_C / "lite_full_test.c", TESTS_C / "megcc_app_test.c"]
    objs = {s: d / (s.stem + ".o") for s in srcs}
    errors = _run_jobs([["gcc", *STRICT, *SAN, *inc, "-c", str(s), "-o", str(o)]
                        for s, o in objs.items()], d)
    assert not errors, "\n".join(errors)
    lib = [str(objs[s]) for s in [*RUNTIME_SRCS, d / "kernels.c"]]
    progs = {"megcc_runner": RT / "tools" / "megcc_runner.c",
             "load_harness": TESTS_C / "load_harness.c", "api_test": TESTS_C / "api_test.c",
             "lite_test": TESTS_C / "lite_test.c", "lite_full_test": TESTS_C / "lite_full_test.c",
             "megcc_app_test": TESTS_C / "megcc_app_test.c"}
    errors = _run_jobs([["gcc", *SAN, str(objs[src]), *lib, "-o", str(d / name)]
                        for name, src in progs.items()], d)
    assert not errors, "\n".join(errors)
    return d


def _env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


def _run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=_env(),
                          timeout=120, **kw)


# ----------------------------------------------------------------------------- compile checks

@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_warning_free(cc, tmp_path):
    if not shutil.which(cc):
        pytest.skip(f"{cc} not installed")
    (tmp_path / "kernels.c").write_text(fk.kernels_c([model_a()]))
    srcs = [*RUNTIME_SRCS, RT / "tools" / "megcc_runner.c", tmp_path / "kernels.c",
            TESTS_C / "lite_test.c", TESTS_C / "api_test.c", TESTS_C / "load_harness.c"]
    cmds = [[cc, *STRICT, "-O2", "-I", str(RT / "include"), "-c", str(s), "-o",
             str(tmp_path / f"{s.stem}.o")] for s in srcs]
    cmds += [[cc, *STRICT, "-DMEGCC_NO_LIBC_HOOKS", "-I", str(RT / "include"), "-c", str(s),
              "-o", str(tmp_path / f"nolibc_{s.stem}.o")] for s in RUNTIME_SRCS]
    errors = _run_jobs(cmds, tmp_path)
    assert not errors, "\n".join(errors)


def test_warning_free_on_cortex_m(tmp_path):
    """The bare-metal build with the MCU toolchain (short enums, 32-bit size_t, picolibc)
    is warning-free too: its type ranges differ from the host's."""
    from build_support import require_tools

    require_tools("arm-none-eabi-gcc")
    cmds = [["arm-none-eabi-gcc", "--specs=picolibc.specs", "-mcpu=cortex-m4", "-mthumb",
             *STRICT, "-O2", "-DMEGCC_NO_LIBC_HOOKS", "-I", str(RT / "include"), "-c", str(s),
             "-o", str(tmp_path / f"m4_{s.stem}.o")] for s in RUNTIME_SRCS]
    errors = _run_jobs(cmds, tmp_path)
    assert not errors, "\n".join(errors)


def test_bare_metal_build_needs_only_memcpy_memset(tmp_path):
    if not shutil.which("nm") or not shutil.which("ld"):
        pytest.skip("binutils missing")
    objs = []
    cmds = []
    for s in RUNTIME_SRCS:
        o = tmp_path / f"{s.stem}.o"
        objs.append(str(o))
        cmds.append(["gcc", *STRICT, "-O2", "-ffreestanding", "-fno-stack-protector",
                     "-DMEGCC_NO_LIBC_HOOKS", "-I", str(RT / "include"), "-c", str(s), "-o",
                     str(o)])
    assert not _run_jobs(cmds, tmp_path)
    subprocess.run(["ld", "-r", *objs, "-o", str(tmp_path / "all.o")], check=True)
    undef = subprocess.run(["nm", "-u", str(tmp_path / "all.o")], capture_output=True,
                           text=True, check=True).stdout.split()
    undef = {u for u in undef if u != "U"}
    assert undef <= {"memcpy", "memset", "megcc_kernel_table", "megcc_kernel_count",
                     "megcc_kernel_set_id", "megcc_kernel_sigs", "megcc_kernel_sig_index",
                     "megcc_dynamic_plans", "megcc_dynamic_plan_index",
                     "megcc_dynamic_plan_count"}, undef


# ----------------------------------------------------------------------------- Python writer/reader

def test_writer_is_deterministic_and_roundtrips():
    a1, a2 = model_a(), model_a()
    assert a1 == a2
    m = read_model(a1)
    assert m["model_name"] == "modelA" and m["kernels"] == fk.NAMES
    assert m["kernel_set_id"] == fk.KERNEL_SET_ID and m["version"] == (1, 0)
    p = m["plans"][0]
    assert p["arena_size"] == 512 and p["inputs"] == [0, 1] and p["outputs"] == [7, 8, 9]
    assert p["tensors"][8]["storage"] == "view" and p["tensors"][8]["base"] == 7
    assert p["instrs"][2]["params"] == [6, float_param(0.5)]
    assert p["instrs"][4]["inputs"] == [0, -1] and p["instrs"][1]["workspace"] == 5
    w = p["tensors"][2]
    off = m["weights_offset"] + w["offset"]
    assert a1[off:off + w["nbytes"]] == W_A.tobytes()
    assert m["weights_offset"] % 64 == 0


def test_weights_are_deduplicated():
    T = BlobTensor
    w = np.ones(16, np.float32).tobytes()
    tensors = [T("a", "float32", (16,), "weight", weight_index=0),
               T("b", "float32", (16,), "weight", weight_index=1),
               T("c", "float32", (16,), "weight", weight_index=2),
               T("x", "float32", (16,), "arena", 0)]
    plan = BlobPlan("p", 0, 64, tensors, [BlobInstr(0, [0, 1], [3], [16])], [3], [3])
    blob = write_model("d", fk.NAMES, 1, [plan], [w, w, b"\x02" * 64])
    m = read_model(blob)
    t = m["plans"][0]["tensors"]
    assert t[0]["offset"] == t[1]["offset"] != t[2]["offset"]
    assert m["weights_size"] == 128


def test_writer_rejects_bad_input():
    T = BlobTensor

    def plan(tensors, instrs=(), inputs=(), outputs=()):
        return BlobPlan("p", 0, 64, list(tensors), list(instrs), list(inputs), list(outputs))
    bad = [
        ([plan([T("w", "float32", (4,), "weight", weight_index=0)])], [b"123"]),   # size
        ([plan([T("v", "float32", (4,), "view", base=0)])], []),                 # base
        ([plan([T("x", "float32", (32,), "arena", 0)])], []),                    # > arena
        ([plan([T("x", "nope", (4,), "arena", 0)])], []),
        ([plan([T("x", "float32", (4,), "arena", 0)], [BlobInstr(9, [0], [0])])], []),
        ([plan([T("x", "float32", (4,), "arena", 0)], [BlobInstr(0, [0], [5])])], []),
        ([plan([T("x", "float32", (4,), "arena", 0)], [BlobInstr(0, [0], [0], [2**31])])], []),
        ([plan([T("w", "float32", (1,), "weight", weight_index=0)], outputs=[0])],
         [b"1234"]),                                                             # weight output
        ([], []),
    ]
    for plans, weights in bad:
        with pytest.raises(ValueError):
            write_model("m", fk.NAMES, 1, plans, weights)


def test_float_param():
    assert float_param(1.0) == 0x3F800000
    assert float_param(-2.0) == struct.unpack("<i", struct.pack("<f", -2.0))[0] < 0


def test_kernel_set_id_order_independent_and_content_sensitive():
    a = [("k1", "int a;"), ("k2", "int b;")]
    assert kernel_set_id(a) == kernel_set_id(a[::-1])
    assert kernel_set_id(a) != kernel_set_id([("k1", "int a; "), ("k2", "int b;")])
    assert kernel_set_id([("ab", "c")]) != kernel_set_id([("a", "bc")])
    assert kernel_set_id([]) == 0xCBF29CE484222325
    with pytest.raises(ValueError):
        kernel_set_id([("k", "a"), ("k", "b")])


def test_c_array_source_roundtrip_and_loads(build, tmp_path):
    blob = model_a()
    src = c_array_source(blob, "model_a")
    assert src == c_array_source(blob, "model_a")
    body = src[src.index("= {") + 3:src.rindex("};")]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body)) == blob
    assert f"model_a_size = {len(blob)}u" in src
    (tmp_path / "blob.c").write_text(src)
    (tmp_path / "main.c").write_text(
        '#include "megcc/megcc.h"\n#include <stdint.h>\n'
        "extern const unsigned char model_a[]; extern const unsigned int model_a_size;\n"
        "int main(void) { megcc_model *m;\n"
        "  if ((uintptr_t)model_a % 64) return 3;\n"
        "  if (megcc_model_load_from_memory(model_a, model_a_size, 0, &m)) return 1;\n"
        "  megcc_model_free(m); return 0; }\n")
    lib = [str(build / f"{s.stem}.o") for s in RUNTIME_SRCS] + [str(build / "kernels.o")]
    subprocess.run(["gcc", *STRICT, *SAN, "-I", str(RT / "include"), str(tmp_path / "blob.c"),
                    str(tmp_path / "main.c"), *lib, "-o", str(tmp_path / "emb")], check=True)
    assert _run([tmp_path / "emb"]).returncode == 0


def test_c_array_source_is_fast_for_large_blobs():
    import time
    data = np.random.default_rng(0).integers(0, 256, 16 << 20, dtype=np.uint8).tobytes()
    t0 = time.process_time()  # CPU time: the cost, not the machine's load
    src = c_array_source(data, "big")
    assert time.process_time() - t0 < 5.0       # ~0.3 s/16 MB here; 100 MB stays seconds
    assert src.count("\n") > (16 << 20) // 16


# ----------------------------------------------------------------------------- running

def test_runner_matches_numpy(build, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y = rng.standard_normal((2, 3)).astype(np.float32)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    x.tofile(tmp_path / "in" / "input_0.bin")
    y.tofile(tmp_path / "in" / "input_1.bin")
    r = _run([build / "megcc_runner", build / "a.tiny", tmp_path / "in", tmp_path / "out",
              "-w", "2", "-t", "5", "--profile"])
    assert r.returncode == 0, r.stderr
    ref = np.maximum(x + y, 0) * np.float32(0.5) + W_A
    outs = [np.fromfile(tmp_path / "out" / f"output_{i}.bin", np.float32) for i in range(3)]
    np.testing.assert_allclose(outs[0].reshape(2, 3), ref, rtol=1e-6)
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2].reshape(2, 3), x)
    assert re.search(r"^latency_ms min=[\d.]+ median=[\d.]+$", r.stdout, re.M)
    prof = re.findall(r"^profile (\d+) (\w+) ([\d.]+)$", r.stdout, re.M)
    assert [(int(i), k) for i, k, _ in prof] == [
        (0, "add_f32"), (1, "relu_f32"), (2, "scale_f32"), (3, "add_f32"), (4, "add_f32")]


def test_runner_plans_and_errors(build, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    x = np.linspace(-2, 2, 8, dtype=np.float32)
    x.tofile(tmp_path / "in" / "input_0.bin")
    r = _run([build / "megcc_runner", build / "b.tiny", tmp_path / "in", tmp_path / "out",
              "-p", "1"])
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out" / "output_0.bin", np.float32),
                                  np.maximum(2 * x, 0))
    # plan 0 wants 16 bytes, the file has 32
    r = _run([build / "megcc_runner", build / "b.tiny", tmp_path / "in", tmp_path / "out"])
    assert r.returncode == 1 and "size mismatch" in r.stderr and r.stderr.count("\n") == 1
    r = _run([build / "megcc_runner", build / "b.tiny", tmp_path / "in", tmp_path / "out",
              "-p", "2"])
    assert r.returncode == 1 and "plan 2" in r.stderr
    x[:4].tofile(tmp_path / "in" / "input_0.bin")
    r = _run([build / "megcc_runner", build / "c.tiny", tmp_path / "in", tmp_path / "out"])
    assert r.returncode == 1 and "fail_i32" in r.stderr
    (tmp_path / "bad.tiny").write_bytes(b"MGCC" + bytes(100))
    r = _run([build / "megcc_runner", tmp_path / "bad.tiny", tmp_path / "in", tmp_path / "out"])
    assert r.returncode == 1 and r.stderr.startswith("megcc_runner: cannot load model")


def test_megcc_api(build):
    r = _run([build / "api_test", build / "a.tiny", build / "b.tiny", build / "c.tiny"])
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr


def test_lite_c_api(build):
    r = _run([build / "lite_test", build / "b.tiny"])
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr


def test_lite_c_api_complete(build, tmp_path):
    """Host tensors, error codes, threads, callbacks, allocator, shared weights, profiling,
    dumps, memory and I/O info, and the documented "not supported" calls
    (tests/runtime/lite_full_test.c), under ASan/UBSan with leak checks."""
    r = _run([build / "lite_full_test", build / "b.tiny", tmp_path])
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr


def test_megcc_application_startup(build):
    """MegCC's start-up calls: register_tinynn_cb's callbacks carry every allocation and
    error log; the extern-operator API refuses loaders (tests/runtime/megcc_app_test.c)."""
    r = _run([build / "megcc_app_test", build / "b.tiny"])
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr


# ----------------------------------------------------------------------------- robustness

def _fix_crc(b: bytearray) -> bytearray:
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return b


def _cases(build, blobs, forward=False):
    """Run load_harness over many blobs in one process; returns the statuses."""
    path = build / f"cases_{random.getrandbits(32):08x}.bin"
    with open(path, "wb") as f:
        for b in blobs:
            f.write(struct.pack("<II", int(forward), len(b)) + bytes(b))
    r = _run([build / "load_harness", "cases", path])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    statuses = [int(line.split()[1]) for line in r.stdout.splitlines()]
    assert len(statuses) == len(blobs)
    return statuses


@pytest.mark.parametrize("name", ["a.tiny", "b.tiny"])
def test_every_truncation_fails_cleanly(build, name):
    n = len((build / name).read_bytes())
    r = _run([build / "load_harness", "truncate", build / name])
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.split() == ["truncations", str(n), "failed", str(n), "full", "0"]


def test_bit_flips_without_crc_fix_are_rejected(build):
    blob = (build / "a.tiny").read_bytes()
    rng = random.Random(1234)
    blobs, where = [], []
    for _ in range(400):
        b = bytearray(blob)
        pos = rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
        blobs.append(b)
        where.append(pos)
    for pos, st in zip(where, _cases(build, blobs)):
        if pos < 4:
            assert st == BAD_MAGIC
        elif pos < 6:
            assert st == BAD_VERSION
        elif pos < 8:
            assert st == OK             # minor version: any value is accepted (format rule)
        elif pos < 12:
            assert st == BAD_SIZE
        else:
            assert st == BAD_CRC


def test_bit_flips_with_crc_fix_never_crash_and_agree_with_python(build):
    """Structural checks, not the CRC, must catch these. Python's reader applies the same
    rules (minus the linked kernel table, plus UTF-8), so the verdicts must agree."""
    blobs = []
    rng = random.Random(99)
    for src in ("a.tiny", "b.tiny"):
        blob = (build / src).read_bytes()
        for _ in range(700):
            b = bytearray(blob)
            for _ in range(rng.choice((1, 1, 2, 4))):
                pos = rng.randrange(16, len(b))
                b[pos] ^= 1 << rng.randrange(8)
            blobs.append(_fix_crc(b))
    statuses = _cases(build, blobs)
    n_ok = 0
    for b, st in zip(blobs, statuses):
        try:
            read_model(bytes(b))
            py_err = None
        except ValueError as e:
            py_err = str(e)
        if st == OK:
            n_ok += 1
            assert py_err is None or "UTF-8" in py_err, py_err
        elif py_err is None:
            assert st == KERNEL_MISMATCH, st
    assert 0 < n_ok < len(blobs)


class _Blob:
    """Offsets of model A's records, for surgical corruption."""

    def __init__(self, blob: bytes):
        self.b = blob
        (self.s_off, self.s_size, self.w_off, self.w_size, self.p_off, self.n_plans,
         self.k_off, self.n_k, self.name) = struct.unpack_from("<9I", blob, 24)
        self.plan = struct.unpack_from("<I", blob, self.p_off)[0]
        f = struct.unpack_from("<12I", blob, self.plan)
        self.t_off, self.i_off, self.i_size, self.in_off, self.out_off = f[4], f[6], f[7], f[9], f[11]

    def tensor(self, i):
        return self.t_off + 64 * i


def _crafted():
    A = _Blob(model_a())

    def put(fmt, off, *vals, crc=True):
        def f(b):
            struct.pack_into(fmt, b, off, *vals)
            return _fix_crc(b) if crc else b
        return f

    def kname(b):
        rel = struct.unpack_from("<I", b, A.k_off)[0]
        b[A.s_off + rel + 6] = ord("3")               # add_f32 -> add_f33
        return _fix_crc(b)
    pl, t, i0 = A.plan, A.tensor, A.i_off
    i1 = i0 + 32                                      # instr 0 is 16 + 4*(3 operands + 1 param)
    cases = [
        ("magic", put("<4s", 0, b"XGCC"), BAD_MAGIC),
        ("version 2", put("<H", 4, 2), BAD_VERSION),
        ("file_size", put("<I", 8, len(A.b) + 1), BAD_SIZE),
        ("appended byte", lambda b: _fix_crc(b + b"\0"), BAD_SIZE),
        ("crc", put("<I", 12, 0x12345678, crc=False), BAD_CRC),
        ("kernel_set_id", put("<Q", 16, fk.KERNEL_SET_ID ^ 1), KERNEL_MISMATCH),
        ("n_kernels", put("<I", 52, 3), KERNEL_MISMATCH),
        ("kernel name", kname, KERNEL_MISMATCH),
        ("header reserved", put("<I", 60, 1), CORRUPT),
        ("strings_size", put("<I", 28, 1 << 30), CORRUPT),
        ("weights misaligned", put("<I", 32, A.w_off - 4), CORRUPT),
        ("weights_size", put("<I", 36, 1 << 20), CORRUPT),
        ("n_plans 0", put("<I", 44, 0), CORRUPT),
        ("n_plans huge", put("<I", 44, 0x40000000), CORRUPT),
        ("plans_offset", put("<I", 40, 0xFFFFFFFC), CORRUPT),
        ("kernels_offset", put("<I", 48, 0xFFFFFFF0), CORRUPT),
        ("model name", put("<I", 56, A.s_size), CORRUPT),
        ("unterminated strings", put("<I", 28, A.s_size - 1), CORRUPT),
        ("plan record misaligned", put("<I", A.p_off, pl + 2), CORRUPT),
        ("plan record outside", put("<I", A.p_off, len(A.b) - 8), CORRUPT),
        ("arena_size too small", put("<I", pl + 8, 400), CORRUPT),
        ("n_tensors huge", put("<I", pl + 12, 0xFFFFFFFF), CORRUPT),
        ("n_tensors short", put("<I", pl + 12, 5), CORRUPT),   # outputs/instrs index past it
        ("tensors_offset", put("<I", pl + 16, 0xFFFFFF00), CORRUPT),
        ("n_instrs +1", put("<I", pl + 20, 6), CORRUPT),
        ("n_instrs -1", put("<I", pl + 20, 4), CORRUPT),
        ("instrs_size -4", put("<I", pl + 28, A.i_size - 4), CORRUPT),
        ("instrs_size huge", put("<I", pl + 28, 0xFFFFFFF0), CORRUPT),
        ("n_inputs huge", put("<I", pl + 32, 0x40000001), CORRUPT),
        ("input is weight", put("<I", A.in_off, 2), CORRUPT),
        ("input out of range", put("<I", A.in_off, 10), CORRUPT),
        ("output index", put("<I", A.out_off + 8, 0xFFFFFFFF), CORRUPT),
        ("arena tensor past arena", put("<I", t(3) + 40, 600), CORRUPT),
        ("arena offset overflow", put("<I", t(3) + 40, 0xFFFFFFF0), CORRUPT),
        ("arena offset misaligned", put("<I", t(3) + 40, 130), CORRUPT),
        ("weight past section", put("<I", t(2) + 40, 64), CORRUPT),
        ("weight misaligned", put("<I", t(2) + 40, 4), CORRUPT),
        ("view base self", put("<I", t(8) + 48, 8), CORRUPT),
        ("view base later", put("<I", t(8) + 48, 9), CORRUPT),
        ("view past base", put("<I", t(8) + 40, 4), CORRUPT),
        ("view of weight as output", put("<I", t(8) + 48, 2), CORRUPT),
        ("non-view with base", put("<I", t(3) + 48, 0), CORRUPT),
        ("negative dim", put("<i", t(0) + 8, -2), CORRUPT),
        ("unused dim set", put("<i", t(0) + 8 + 4 * 5, 1), CORRUPT),
        ("nbytes mismatch", put("<I", t(0) + 44, 28), CORRUPT),
        ("dims overflow", put("<BB8i", t(0) + 4, 1, 8, *[0x7FFFFFFF] * 8), CORRUPT),
        ("ndim 9", put("<B", t(0) + 5, 9), CORRUPT),
        ("dtype 0", put("<B", t(0) + 4, 0), CORRUPT),
        ("dtype 16", put("<B", t(0) + 4, 16), CORRUPT),
        ("storage 3", put("<B", t(0) + 6, 3), CORRUPT),
        ("layout 3", put("<B", t(0) + 7, 3), CORRUPT),
        ("tensor reserved", put("<I", t(0) + 60, 1), CORRUPT),
        ("tensor name", put("<I", t(0), 0xFFFF), CORRUPT),
        ("kernel index", put("<I", i0, 4), CORRUPT),
        ("operand index", put("<I", i0 + 16, 10), CORRUPT),
        ("output is weight", put("<I", i0 + 24, 2), CORRUPT),
        ("output omitted", put("<I", i0 + 24, 0xFFFFFFFF), CORRUPT),
        ("n_params huge", put("<I", i0 + 8, 0xFFFFFFFF), CORRUPT),
        ("n_in huge", put("<H", i0 + 4, 0xFFFF), CORRUPT),
        ("workspace is weight", put("<I", i1 + 12, 2), CORRUPT),
        ("workspace is view", put("<I", i1 + 12, 8), CORRUPT),
        ("workspace out of range", put("<I", i1 + 12, 50), CORRUPT),
        ("workspace misaligned", put("<I", t(5) + 40, 260), CORRUPT),
        # what an instruction writes must not overlap its other operands, except exactly
        # in place where the compiler did so (found by the fuzzer: memcpy overlap)
        ("output partly over input", put("<I", t(3) + 40, 72), CORRUPT),
        ("workspace over input", put("<I", t(5) + 40, 128), CORRUPT),
        ("output in place, not compiled so", put("<I", t(3) + 40, 64), KERNEL_MISMATCH),
        # Structurally valid, but not an instruction kernels.c was generated for
        # (instruction signatures): kernels trust params, so these must not load.
        ("element count > tensor", put("<i", i0 + 28, 1000), KERNEL_MISMATCH),
        ("float param changed", put("<f", i0 + 88, 3.0), KERNEL_MISMATCH),
        ("input dtype changed", put("<B", t(1) + 4, 3), KERNEL_MISMATCH),  # f32 -> i32
        ("workspace dropped", put("<I", i1 + 12, 0xFFFFFFFF), KERNEL_MISMATCH),
    ]
    return A.b, cases


def test_crafted_corruptions_are_named_errors(build):
    valid, cases = _crafted()
    blobs = [valid] + [f(bytearray(valid)) for _, f, _ in cases]
    statuses = _cases(build, blobs)
    assert statuses[0] == OK
    got = {name: st for (name, _, _), st in zip(cases, statuses[1:])}
    want = {name: st for name, _, st in cases}
    assert got == want
    for (name, _, st), b in zip(cases, blobs[1:]):
        if st != KERNEL_MISMATCH:
            with pytest.raises(ValueError):
                read_model(bytes(b))


def test_valid_blobs_forward_under_sanitizers(build):
    assert _cases(build, [model_a(), model_b()], forward=True) == [OK, OK]


# ----------------------------------------------------------------------------- load cost

def _name_bomb(n_names: int, name_len: int, repeat: int = 1, relist: bool = True) -> bytes:
    """A valid-looking model whose n_names tensors all name one name_len-byte string, its
    plan listed `repeat` times in the plan table (issue 17: validation cost used to be
    names x string length x repeats)."""
    T = BlobTensor
    name = "n" * name_len
    tensors = [T(name, "float32", (1,), "arena", 4 * i) for i in range(n_names)]
    big = BlobPlan("big", 0, 4 * n_names, tensors, [], [0], [1])
    tiny = BlobPlan("tiny", 0, 4, [T("t", "float32", (1,), "arena", 0)], [], [0], [0])
    b = bytearray(write_model("bomb", fk.NAMES, fk.KERNEL_SET_ID, [big] + [tiny] * (repeat - 1),
                              []))
    p_off = struct.unpack_from("<I", b, 40)[0]
    first = struct.unpack_from("<I", b, p_off)[0]
    for k in range(1, repeat if relist else 1):
        struct.pack_into("<I", b, p_off + 4 * k, first)      # the big plan, listed again
    return bytes(_fix_crc(b))


def _load_time(build, blob: bytes, tag: str):
    path = build / f"cost_{tag}.tiny"
    path.write_bytes(blob)
    r = _run([build / "load_harness", "time", path])
    assert r.returncode == 0, r.stderr[-2000:]
    st, secs = r.stdout.split()
    return int(st), float(secs)


def _py_time(blob: bytes):
    import time
    best, verdict = 1e9, None
    for _ in range(5):
        t0 = time.process_time()  # CPU time: the cost, not the machine's load
        try:
            read_model(blob)
            verdict = "ok"
        except ValueError as e:
            verdict = str(e)
        best = min(best, time.process_time() - t0)
    return verdict, best


def test_repeated_plan_of_long_names_is_refused_fast(build):
    """The issue's 1 MB file (1,000 names -> one 1 MB string, plan listed 10 times) loaded
    in 3.3 s (Python reader: 28.8 s). A plan listed twice is now refused, everywhere."""
    blob = _name_bomb(1000, 1 << 20, repeat=10)
    st, secs = _load_time(build, blob, "bomb10")
    assert st == CORRUPT and secs < 0.1, (st, secs)
    verdict, py_secs = _py_time(blob)
    assert "not after plan 0's" in verdict and py_secs < 1.0, (verdict, py_secs)


def test_load_cost_is_linear_in_file_size(build):
    """Names sharing one long string are legal (the writer deduplicates strings); their
    cost must grow with the file, not with names x length. Scaling both by 8 scales the
    file by 8; the old loader's work grew 64-fold. (Sizes stay within the caches: beyond
    them memory bandwidth, not the algorithm, dominates the ratio.)"""
    small, large = _name_bomb(125, 1 << 17), _name_bomb(1000, 1 << 20)
    st_s, t_s = _load_time(build, small, "lin_s")
    st_l, t_l = _load_time(build, large, "lin_l")
    assert st_s == st_l == OK
    # linear: ~8x (measured 8-10x idle); quadratic: 64x. Generous for a loaded machine.
    assert t_l < 1.0 and t_l < 32 * max(t_s, 1e-4), (t_s, t_l)
    (v_s, p_s), (v_l, p_l) = _py_time(small), _py_time(large)
    assert v_s == v_l == "ok"
    assert p_l < 5.0 and p_l < 32 * max(p_s, 1e-3), (p_s, p_l)


def test_shared_plan_arrays_and_mid_string_names_are_refused(build):
    """Plans pointing at one tensor table (distinct records, so the order rule passes) and
    names pointing into the middle of a string would both multiply validation work."""
    blob = bytearray(_name_bomb(8, 64, repeat=3, relist=False))
    p_off = struct.unpack_from("<I", blob, 40)[0]
    recs = struct.unpack_from("<3I", blob, p_off)
    t_off_big = struct.unpack_from("<12I", blob, recs[0])
    shared = bytearray(blob)
    for r_off in recs[1:]:       # tiny plans -> the big plan's arrays
        struct.pack_into("<12I", shared, r_off, *t_off_big)
    mid = bytearray(blob)
    first_tensor = t_off_big[4]
    rel = struct.unpack_from("<I", mid, first_tensor)[0]
    struct.pack_into("<I", mid, first_tensor, rel + 1)
    blobs = [bytes(_fix_crc(shared)), bytes(_fix_crc(mid))]
    assert _cases(build, [bytes(blob)] + blobs) == [OK, CORRUPT, CORRUPT]
    with pytest.raises(ValueError, match="exceed the file size"):
        read_model(blobs[0])
    with pytest.raises(ValueError, match="inside another string"):
        read_model(blobs[1])


def test_python_reader_overlap_check_is_not_quadratic():
    """An instruction may list 65,535 operands; pairwise overlap checks in read_model made
    a ~300 KB file cost billions of steps. The C loader matches operand counts against
    kernels.c's signatures first, so only the Python reader was exposed."""
    import time
    n = 20000
    T = BlobTensor
    tensors = [T(f"t{i}", "float32", (1,), "arena", 16 * i) for i in range(n + 1)]
    ins = BlobInstr(K["add_f32"], [0], list(range(1, n + 1)), [1])
    blob = write_model("wide", fk.NAMES, fk.KERNEL_SET_ID,
                       [BlobPlan("p", 0, 16 * (n + 1), tensors, [ins], [0], [n])], [])
    t0 = time.perf_counter()
    read_model(blob)
    assert time.perf_counter() - t0 < 5.0
