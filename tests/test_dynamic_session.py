"""Dynamic plans from Python (docs/dynamic-shapes.md): the in-process session and the
runner process run a compiled directory at the shapes of the arrays they are fed, and
`megcc run DIR` does the same from the command line, recompiling nothing. The model is the
hand-built one of tests/runtime/dynamic_models.py over the fixture kernels."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from megcc_builder.emit.dynamic import bind_symbols, evaluate, place_buffers
from megcc_builder.emit.model_blob import read_model
from megcc_builder.session import InferenceSession, InvalidInput

TESTS_C = Path(__file__).resolve().parent / "runtime"
sys.path.insert(0, str(TESTS_C))
import dynamic_models as dm  # noqa: E402
import fixture_kernels as fk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("dyn_dir")
    blob = dm.dyn_model()
    (d / "dyn.tiny").write_bytes(blob)
    (d / "kernels.c").write_text(fk.kernels_c([blob]))
    return d


def _feeds(n, seed=0):
    rng = np.random.default_rng(seed + n)
    return {"x": rng.standard_normal((n, 3)).astype(np.float32),
            "z": rng.standard_normal((n, 2)).astype(np.float32)}


@pytest.mark.parametrize("subprocess_", [False, True])
def test_session_runs_every_size_without_recompiling(compiled, subprocess_):
    before = sorted(os.listdir(compiled))
    with InferenceSession(str(compiled), subprocess=subprocess_) as sess:
        # as onnxruntime: run-time dimensions are named
        assert [i.shape for i in sess.get_inputs()] == [["N", 3], ["N", 2]]
        assert [o.shape for o in sess.get_outputs()] == [["N", 3], [3], ["N", 2]]
        for n in (3, 7, 4, 64, 3, 1, 2):   # 4: the static plan; back and forth
            f = _feeds(n)
            outs = sess.run(None, f)
            for got, want in zip(outs, dm.reference(f["x"], f["z"], n)):
                assert got.shape == want.shape
                np.testing.assert_array_equal(got, want)
        with pytest.raises(InvalidInput, match="N must not be 5"):
            sess.run(None, _feeds(5))
        with pytest.raises(InvalidInput, match=r"outside \[1, 64\]"):
            sess.run(None, _feeds(65))
        bad = _feeds(6)
        bad["z"] = bad["z"][:5]
        with pytest.raises(InvalidInput, match="the other inputs make it"):
            sess.run(None, bad)
        f = _feeds(9)                       # usable again after a refusal
        np.testing.assert_array_equal(sess.run(["o"], f)[0], dm.reference(f["x"], f["z"], 9)[0])
    assert sorted(os.listdir(compiled)) == before


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.mark.parametrize("extra", [[], ["--subprocess"]])
def test_megcc_run_compiled_directory(compiled, tmp_path, extra):
    f = _feeds(11)
    np.save(tmp_path / "x.npy", f["x"])
    np.save(tmp_path / "z.npy", f["z"])
    out = tmp_path / "out"
    r = _cli("run", compiled, "--input", f"x={tmp_path / 'x.npy'}", "--input",
             f"z={tmp_path / 'z.npy'}", "--output-dir", out, *extra)
    assert r.returncode == 0, r.stderr
    got = np.load(out / "outputs.npz")
    for name, want in zip(("o", "o_last", "zo"), dm.reference(f["x"], f["z"], 11)):
        np.testing.assert_array_equal(got[name], want)
    assert "o: float32 [11, 3]" in r.stdout
    # a shape the plan refuses: one line, exit 1, nothing written
    np.save(tmp_path / "x5.npy", _feeds(5)["x"])
    np.save(tmp_path / "z5.npy", _feeds(5)["z"])
    out2 = tmp_path / "out2"
    r = _cli("run", compiled, "--input", f"x={tmp_path / 'x5.npy'}", "--input",
             f"z={tmp_path / 'z5.npy'}", "--output-dir", out2, *extra)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "N must not be 5" in r.stderr and "dyn.tiny" in r.stderr
    assert not out2.exists()


def test_real_model_compiled_once_run_at_many_shapes(tmp_path):
    """PP-OCR's direction classifier (x = (N, 3, H, W), all symbolic): `megcc compile`
    without shapes, then `megcc run DIR` and InferenceSession(DIR) at several sizes against
    onnxruntime; the compiled directory is not touched by the runs."""
    import onnxruntime as ort

    sys.path.insert(0, str(ROOT / "tests"))
    import pypi_models

    model = pypi_models.model_path("ppocr_cls")
    out = tmp_path / "cls"
    r = _cli("compile", model, "-o", out)
    assert r.returncode == 0, r.stderr
    files = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    shapes = [(1, 3, 48, 192), (3, 3, 48, 100), (2, 3, 64, 64)]
    for k, shape in enumerate(shapes):
        x = rng.standard_normal(shape).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        r = _cli("run", out, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir",
                 tmp_path / f"o{k}")
        assert r.returncode == 0, r.stderr
        npz = np.load(tmp_path / f"o{k}" / "outputs.npz")
        ours, want = npz[npz.files[0]], ref.run(None, {"x": x})[0]
        assert ours.shape == want.shape
        assert np.max(np.abs(ours - want) / np.maximum(1, np.abs(want))) < 1e-4
    blob = (out / "ch_ppocr_mobile_v2.0_cls_infer.tiny").read_bytes()
    dyn = read_model(blob)["plans"][0]["dynamic"]
    with InferenceSession(str(out)) as sess:
        for shape in reversed(shapes):
            x = rng.standard_normal(shape).astype(np.float32)
            ours, want = sess.run(None, {"x": x})[0], ref.run(None, {"x": x})[0]
            assert np.max(np.abs(ours - want) / np.maximum(1, np.abs(want))) < 1e-4
            # the runtime's placement is the Python twin's, exactly
            values = bind_symbols(dyn, [shape])
            sizes = [evaluate(dyn.exprs[b.size], values) for b in dyn.buffers]
            arena = place_buffers(sizes, dyn.buffers)[1]
            assert sess.native_network().required_arena_size() == arena
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == files


def test_session_on_an_emulated_target(compiled):
    """The runner built for arm64 and run under qemu sets the shapes the same way."""
    sys.path.insert(0, str(ROOT / "tests"))
    from build_support import require_target

    require_target("arm64")
    with InferenceSession(str(compiled), target="arm64") as sess:
        for n in (3, 4, 17):
            f = _feeds(n)
            for got, want in zip(sess.run(None, f), dm.reference(f["x"], f["z"], n)):
                np.testing.assert_array_equal(got, want)
        with pytest.raises(InvalidInput, match="N must not be 5"):
            sess.run(None, _feeds(5))
