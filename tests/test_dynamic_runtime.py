"""Dynamic plans (docs/dynamic-shapes.md) through the serialisation and the C runtime, on
hand-built plans over the fixture kernels (tests/runtime/dynamic_models.py): the runtime
at many sizes against numpy, every refusal (bounds, guards, inconsistent inputs, tampered
plans, malformed expressions, a too-small caller arena), and the Python reader agreeing
with the C loader. Built with ASan + UBSan like tests/test_runtime_loader.py."""
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from megcc_builder.emit.dynamic import CONST, MUL, SYM, evaluate, place_buffers
from megcc_builder.emit.fingerprints import blob_fingerprints
from megcc_builder.emit.model_blob import read_model

ROOT = Path(__file__).resolve().parents[1]
RT = ROOT / "runtime"
TESTS_C = Path(__file__).resolve().parent / "runtime"
sys.path.insert(0, str(TESTS_C))
import dynamic_models as dm  # noqa: E402
import fixture_kernels as fk  # noqa: E402

OK, INVALID_ARG, KERNEL_MISMATCH, CORRUPT = 0, 1, 8, 9
SAN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-O1",
       "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("dyn")
    blobs = {"dyn": dm.dyn_model(), **dm.faulty_models()}
    for name, b in blobs.items():
        (d / f"{name}.tiny").write_bytes(b)
    (d / "kernels.c").write_text(fk.kernels_c(list(blobs.values())))
    inc = ["-I", str(RT / "include")]
    lib = [str(s) for s in sorted((RT / "src").glob("*.c"))] + [str(d / "kernels.c")]
    for name, main in (("runner", RT / "tools" / "megcc_runner.c"),
                       ("load_harness", TESTS_C / "load_harness.c"),
                       ("api", TESTS_C / "dynamic_api_test.c")):
        subprocess.run(["gcc", *SAN, *inc, *lib, str(main), "-o", str(d / name), "-lm",
                        "-lpthread"], check=True, cwd=d)
    return d


def _run(args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def _run_at(build, tmp_path, model, n, z_rows=None, x_cols=3):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, x_cols)).astype(np.float32)
    z = rng.standard_normal((z_rows if z_rows is not None else n, 2)).astype(np.float32)
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "out").mkdir(exist_ok=True)
    x.tofile(tmp_path / "in" / "input_0.bin")
    z.tofile(tmp_path / "in" / "input_1.bin")
    r = _run([build / "runner", build / f"{model}.tiny", tmp_path / "in", tmp_path / "out",
              "-s", f"0:{n},{x_cols}", "-s", f"1:{z.shape[0]},2"])
    return r, x, z


def _statuses(build, blobs):
    path = build / f"cases_{random.getrandbits(32):08x}.bin"
    with open(path, "wb") as f:
        for b in blobs:
            f.write(struct.pack("<II", 0, len(b)) + bytes(b))
    r = _run([build / "load_harness", "cases", path])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return [int(line.split()[1]) for line in r.stdout.splitlines()]


def _fix_crc(b: bytearray) -> bytes:
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return bytes(b)


# ----------------------------------------------------------------------------- format

def test_static_models_stay_format_1_0_and_dynamic_ones_are_1_1():
    static = dm.model([dm._static_plan_n4()])
    m = read_model(static)
    assert m["version"] == (1, 0) and m["dynamic_offset"] == 0
    assert struct.unpack_from("<HI", static, 6)[0] == 0 and static[60:64] == bytes(4)
    assert blob_fingerprints([static]) == []
    a, b = dm.dyn_model(), dm.dyn_model()
    assert a == b                                   # deterministic
    m = read_model(a)
    assert m["version"] == (1, 1) and m["dynamic_offset"] > 0
    dyn = m["plans"][0]["dynamic"]
    want = dm.dynamic_plan().dynamic
    assert dyn.symbols == want.symbols and dyn.exprs == want.exprs
    assert dyn.dims == sorted(want.dims) and dyn.params == sorted(want.params)
    assert dyn.guards == want.guards and dyn.buffers == want.buffers
    assert m["plans"][1]["dynamic"] is None


def test_writer_refuses_duplicate_bindings():
    p = dm.dynamic_plan()
    p.dynamic.dims.append(p.dynamic.dims[0])
    with pytest.raises(ValueError, match="bound twice"):
        dm.model([p])


# ----------------------------------------------------------------------------- running

@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 33, 64])
def test_runs_at_every_size_against_numpy(build, tmp_path, n):
    r, x, z = _run_at(build, tmp_path, "dyn", n)
    assert r.returncode == 0, r.stderr
    outs = [np.fromfile(tmp_path / "out" / f"output_{i}.bin", np.float32) for i in range(3)]
    ref = dm.reference(x, z, n)               # N = 4: the static plan (scale 2.0) is chosen
    np.testing.assert_array_equal(outs[0].reshape(n, 3), ref[0])
    np.testing.assert_array_equal(outs[1], ref[1])
    np.testing.assert_array_equal(outs[2].reshape(n, 2), ref[2])
    assert f"output_shape 0 {n},3" in r.stdout and "output_shape 1 3\n" in r.stdout
    assert f"output_shape 2 {n},2" in r.stdout


@pytest.mark.parametrize("model, n, z_rows, x_cols, message", [
    ("dyn", 5, None, 3, "shape refused by guard 0: node Guarded: N must not be 5"),
    ("dyn", 65, None, 3, "input 0 (x) dimension 0: N = 65 is outside [1, 64]"),
    ("dyn", 0, None, 3, "N = 0 is outside [1, 64]"),
    ("dyn", 3, 4, 3, "input 1 (z): dimension 0 is 4, the other inputs make it 3"),
    ("dyn", 3, None, 4, "input 0 (x): dimension 1 is 4, the model's is 3"),
    ("overflow", 3, None, 3, "guard 1: expression 7 overflows 64 bits at these shapes"),
    ("divzero", 3, None, 3, "divides by a value <= 0"),
    ("negdiv", 3, None, 3, "divides by a value <= 0"),
    ("short_buffer", 3, None, 3, "buffer 0 is smaller than its tensor 0 at these shapes"),
])
def test_refusals_are_one_line_errors(build, tmp_path, model, n, z_rows, x_cols, message):
    r, _, _ = _run_at(build, tmp_path, model, n, z_rows, x_cols)
    assert r.returncode == 1 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not list((tmp_path / "out").iterdir())


def test_short_buffer_plan_still_runs_where_its_sizes_hold(build, tmp_path):
    r, x, z = _run_at(build, tmp_path, "short_buffer", 2)
    assert r.returncode == 0, r.stderr


def test_api_caller_arena_growth_lite(build):
    r = _run([build / "api", build / "dyn.tiny"])
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr
    plan = dm.dynamic_plan().dynamic
    for n in (40, 3):       # the C placement is the Python twin's, exactly
        sizes = [evaluate(plan.exprs[b.size], [n]) for b in plan.buffers]
        assert f"required {n} {place_buffers(sizes, plan.buffers)[1]}\n" in r.stdout


# ----------------------------------------------------------------------------- loading

class _Dyn:
    """Offsets inside the dyn model's DynPlan record, for surgical corruption."""

    def __init__(self, blob: bytes):
        self.b = blob
        table = struct.unpack_from("<I", blob, 60)[0]
        self.rec = struct.unpack_from("<I", blob, table)[0]
        self.f = struct.unpack_from("<16I", blob, self.rec)
        self.expr_at = [struct.unpack_from("<I", blob, self.f[3] + 4 * k)[0]
                        for k in range(self.f[2])]


def _put(fmt, off, *vals):
    def f(b):
        struct.pack_into(fmt, b, off, *vals)
        return _fix_crc(b)
    return f


def _corruptions():
    blob = dm.dyn_model()
    D = _Dyn(blob)
    e3 = D.expr_at[1]           # "3N": n_words, SYM 0 CONST 3 MUL
    sym0, dims, params, bufs = D.f[1], D.f[5], D.f[9], D.f[13]
    table = struct.unpack_from("<I", blob, 60)[0]
    structural = [
        ("dynamic table misaligned", _put("<I", 60, table + 2)),
        ("dynamic table outside", _put("<I", 60, len(blob) - 4)),
        ("record outside", _put("<I", table, len(blob) - 8)),
        ("record reserved", _put("<I", D.rec + 56, 1)),
        ("n_symbols huge", _put("<I", D.rec, 0x10000000)),
        ("symbol min > max", _put("<ii", sym0 + 4, 9, 3)),
        ("symbol min < 0", _put("<i", sym0 + 4, -1)),
        ("symbol input", _put("<I", sym0 + 12, 2)),
        ("symbol axis", _put("<I", sym0 + 16, 2)),
        ("symbol name", _put("<I", sym0, 0xFFFFFF)),
        ("symbol defined by another axis", _put("<I", sym0 + 16, 1)),
        ("expression words 0", _put("<I", e3, 0)),
        ("expression words 257", _put("<I", e3, 257)),
        ("unknown opcode", _put("<I", e3 + 20, 99)),
        ("stack underflow", _put("<I", e3 + 4, 3)),          # SYM -> ADD
        ("SYM out of range", _put("<I", e3 + 8, 1)),
        ("leaves two values", _put("<I", e3 + 20, SYM)),
        ("expression index", _put("<I", dims + 8, 99)),
        ("dims on a weight-less axis", _put("<I", dims + 4, 5)),
        ("dims unsorted", _put("<I", dims + 12, 0)),          # (0,0) twice
        ("params instr", _put("<I", params, 9)),
        ("params param index", _put("<I", params + 4, 5)),
        ("params unsorted", _put("<I", params + 12, 0)),
        ("buffer interval", _put("<i", bufs + 4, -2)),
        ("buffer last > n_instrs", _put("<I", bufs + 8, 5)),
        ("buffer first > last", _put("<iI", bufs + 4, 3, 1)),
        ("member twice", _put("<I", struct.unpack_from("<I", blob, bufs + 20 + 16)[0], 0)),
        ("member a view", _put("<I", struct.unpack_from("<I", blob, bufs + 16)[0], 6)),
        ("guard message", _put("<I", D.f[11] + 4, 0xFFFFFF)),
    ]
    # structurally valid, but not a plan this kernels.c was generated for
    tampered = [
        ("3N becomes 4N", _put("<I", e3 + 4 * 3 + 4, 4)),
        ("bound param moved to the 2N expression", _put("<I", params + 8, 2)),
        ("bounds widened", _put("<i", sym0 + 8, 1 << 20)),
        ("guard dropped", _put("<I", D.rec + 40, 0)),
        ("buffer lives shorter", _put("<I", bufs + 8 + 2 * 20, 0)),
    ]
    return blob, structural, tampered


def test_structural_corruptions_refused_by_both_readers(build):
    blob, structural, _ = _corruptions()
    blobs = [blob] + [f(bytearray(blob)) for _, f in structural]
    st = _statuses(build, blobs)
    assert st[0] == OK
    got = {name: s for (name, _), s in zip(structural, st[1:])}
    assert got == {name: CORRUPT for name, _ in structural}
    for (name, _), b in zip(structural, blobs[1:]):
        with pytest.raises(ValueError):
            read_model(b)


def test_tampered_plans_fail_the_fingerprint(build):
    blob, _, tampered = _corruptions()
    blobs = [f(bytearray(blob)) for _, f in tampered]
    assert _statuses(build, blobs) == [KERNEL_MISMATCH] * len(tampered)
    for b in blobs:
        read_model(b)           # structurally fine: only kernels.c can tell


def test_bit_flips_in_the_dynamic_section_agree_with_python(build):
    blob = dm.dyn_model()
    D = _Dyn(blob)
    lo = struct.unpack_from("<I", blob, 60)[0]
    hi = struct.unpack_from("<I", blob, 24)[0]          # strings follow the section
    rng = random.Random(7)
    blobs = []
    for _ in range(600):
        b = bytearray(blob)
        for _ in range(rng.choice((1, 2))):
            pos = rng.randrange(lo, hi)
            b[pos] ^= 1 << rng.randrange(8)
        blobs.append(_fix_crc(b))
    n_ok = 0
    for b, st in zip(blobs, _statuses(build, blobs)):
        try:
            read_model(b)
            py_ok = True
        except ValueError:
            py_ok = False
        if st == OK:
            n_ok += 1
            assert py_ok
        else:
            assert st == KERNEL_MISMATCH if py_ok else st == CORRUPT, st
    assert n_ok < len(blobs)
    assert D.rec >= lo
