"""MegEngine models with run-time input dimensions: one dynamic plan (issue 12, gap 2).

`megcc compile model.mge --input-shapes "data=(N,3,H,W);..."` keeps N, H and W symbolic as
ONNX dim_params do. The models are traced and dumped the way users do it (tests/mge_zoo.py:
`trace(symbolic=True, capture_as_const=True)` + `dump`, with and without
optimize_for_inference); the oracle is MegEngine's own graph executor running the *same
.mge file* at each size (GraphInference re-infers the loaded graph for new input shapes).
Every model is compiled once and run at three sizes by the same runner, host and arm64
under qemu; nothing is recompiled.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mge_zoo
from dynamic_e2e import rel_err
from megcc_builder.compiler import ModelSpec, compile_bundle, compile_model
from megcc_builder.config import parse_input_shapes, parse_shape_hints
from megcc_builder.emit.model_blob import read_model
from megcc_builder.frontend.dims import SymbolSpec
from megcc_builder.host import build_runner, emulator_of, run_blob
from megcc_builder.ir import CompileError

import megengine as mge
import megengine.functional as F
import megengine.module as M
from megengine.jit import trace

TOL = 1e-4  # issue 12's measure: |ours - ref| / max(1, |ref|)

CLASSIFIER_SHAPES = "data=(N,3,H,W);N<=4;32<=H<=256;32<=W<=256"
CLASSIFIER_SIZES = [(1, 3, 64, 64), (2, 3, 96, 128), (3, 3, 72, 40)]
TEXT_SHAPES = "data=(N,3,32,W);N<=4;16<=W<=1024"
TEXT_SIZES = [(1, 3, 32, 100), (2, 3, 32, 320), (1, 3, 32, 57)]


class TextRecognizer(M.Module):
    """A CRNN-style line recognizer: a CNN that pools the height of a 32-pixel line to 1,
    the feature map reshaped to a sequence over the width (shape arithmetic on x.shape),
    a per-step classifier and a softmax over the classes."""

    def __init__(self, classes=37):
        super().__init__()
        self.c1 = mge_zoo.conv_bn(3, 16, 3)
        self.c2 = mge_zoo.conv_bn(16, 32, 3)
        self.c3 = mge_zoo.conv_bn(32, 48, 3)
        self.fc = M.Linear(48, classes)

    def forward(self, x):
        x = F.max_pool2d(self.c1(x), 2, 2)             # (n, 16, 16, W/2)
        x = F.max_pool2d(self.c2(x), (2, 2), (2, 2))   # (n, 32, 8, W/4)
        x = F.max_pool2d(self.c3(x), (8, 1), (8, 1))   # (n, 48, 1, W/4)
        n, c, h, w = x.shape
        seq = x.reshape(n, c * h, w).transpose(0, 2, 1)  # (n, W/4, 48)
        return F.softmax(self.fc(seq), axis=-1)


def _textrec():
    return mge_zoo.init_weights(TextRecognizer(), 11)


def _dump_textrec(path: str, optimize: bool, symbolic_shape: bool = True) -> str:
    if os.path.exists(path):
        return path
    net = _textrec()

    @trace(symbolic=True, capture_as_const=True, symbolic_shape=symbolic_shape)
    def infer(data):
        return net(data)

    infer(mge.tensor(np.zeros((1, 3, 32, 128), np.float32)))
    tmp = path + ".tmp"
    infer.dump(tmp, arg_names=["data"], optimize_for_inference=optimize)
    os.replace(tmp, path)
    return path


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    root = tmp_path_factory.mktemp("mge_dyn")

    def dump(name: str, optimize: bool) -> str:
        path = str(root / f"{name}_{'opt' if optimize else 'plain'}.mge")
        if name == "textrec":
            return _dump_textrec(path, optimize)
        return mge_zoo.dump_model(name, path, optimize)
    return dump


def _spec(path: str, shapes: str, hints: str = "", **kw) -> ModelSpec:
    symbols = SymbolSpec(hints=parse_shape_hints(hints) if hints else {})
    return ModelSpec("m", path, parse_input_shapes(shapes, "test", symbols.bounds),
                     symbols=symbols, **kw)


def _megengine(path: str, x: np.ndarray):
    return mge_zoo.reference_output(path, {"data": x})


def _compile_and_run_sizes(out_dir, path, shapes, sizes, target=None, isa="native"):
    bundle = compile_bundle([_spec(path, shapes)], str(out_dir), save_c_array=False, isa=isa)
    blob_path = os.path.join(str(out_dir), "m.tiny")
    info = read_model(open(blob_path, "rb").read())
    assert len(info["plans"]) == 1 and info["plans"][0]["dynamic"] is not None
    runner = build_runner(os.path.join(str(out_dir), "kernels.c"), target=target)
    files = {n: os.stat(os.path.join(str(out_dir), n)).st_mtime_ns
             for n in os.listdir(str(out_dir))}
    errors = []
    for k, size in enumerate(sizes):
        x = np.random.default_rng(k).standard_normal(size).astype(np.float32)
        ours = run_blob(runner, blob_path, [x], emulator=emulator_of(target), shapes=True)
        ref = _megengine(path, x)
        assert [o.shape for o in ours] == [r.shape for r in ref], size
        errors.append(max(rel_err(o, r) for o, r in zip(ours, ref)))
        assert errors[-1] <= TOL, (size, errors[-1])
    # one compile served every size: the generated files were not touched
    assert {n: os.stat(os.path.join(str(out_dir), n)).st_mtime_ns
            for n in os.listdir(str(out_dir))} == files
    return bundle, errors


MODELS = [("resnet18", CLASSIFIER_SHAPES, CLASSIFIER_SIZES),
          ("mobilenet_v2", CLASSIFIER_SHAPES, CLASSIFIER_SIZES),
          ("shufflenet_v2", CLASSIFIER_SHAPES, CLASSIFIER_SIZES),
          ("textrec", TEXT_SHAPES, TEXT_SIZES)]


@pytest.mark.parametrize("optimize", [False, True], ids=["plain", "optimized"])
@pytest.mark.parametrize("name,shapes,sizes", MODELS, ids=[m[0] for m in MODELS])
def test_mge_model_compiled_once_matches_megengine_at_three_sizes(tmp_path, dumps, name,
                                                                  shapes, sizes, optimize):
    path = dumps(name, optimize)
    bundle, errors = _compile_and_run_sizes(tmp_path / "out", path, shapes, sizes)
    plan = bundle.models[0].plans[0]
    want = {"N", "W"} if name == "textrec" else {"N", "H", "W"}
    assert set(plan.graph.symbols) == want
    print(name, optimize, errors)


@pytest.mark.parametrize("name,shapes,sizes", MODELS, ids=[m[0] for m in MODELS])
def test_mge_model_dynamic_plan_on_arm64_under_qemu(tmp_path, dumps, name, shapes, sizes):
    sys.path.insert(0, os.path.dirname(__file__))
    from build_support import require_target

    require_target("arm64")
    path = dumps(name, True)
    _compile_and_run_sizes(tmp_path / "out", path, shapes, sizes, target="arm64",
                           isa="arm64-neon")


def test_mge_symbolic_batch_keeps_other_dims_static(dumps):
    """Only the named dimension is a symbol; the others keep the dump's static values."""
    model = compile_model(_spec(dumps("resnet18", True), "data=(N,3,224,224);N<=8"))
    g = model.plans[0].graph
    assert set(g.symbols) == {"N"} and g.symbols["N"][:2] == (1, 8)
    assert g.tensors[g.inputs[0]].shape[1:] == (3, 224, 224)


def test_mge_hints_set_the_compiled_instance(dumps):
    model = compile_model(_spec(dumps("textrec", True), TEXT_SHAPES, "W=320;N=2"))
    g = model.plans[0].graph
    assert g.symbols["W"] == (16, 1024, 320) and g.symbols["N"] == (1, 4, 2)


def test_mge_shapes_traced_as_constants_cannot_stay_dynamic(tmp_path):
    """trace(symbolic_shape=False) writes the reshape's target as a constant: the dumped
    graph only runs at the traced width (MegEngine refuses other widths too), so the
    compile refuses W with a one-line error naming the opr."""
    path = _dump_textrec(str(tmp_path / "const_shape.mge"), True, symbolic_shape=False)
    with pytest.raises(CompileError, match=r"dimension N, W cannot stay dynamic: MegEngine opr "
                                           r"'reshape\(Pooling\[2\]\)\[\d+\]' reshapes to the "
                                           r"constant shape \(1, 48, 32\)"):
        compile_model(_spec(path, TEXT_SHAPES))
    # the constant target fixes the batch too; the traced shape itself compiles
    with pytest.raises(CompileError, match=r"dimension N cannot stay dynamic: node "
                                           r"'reshape\(Pooling\[2\]\)\[\d+\]' \(Reshape\)"):
        compile_model(_spec(path, "data=(N,3,32,128);N<=4"))
    assert not compile_model(_spec(path, "data=(1,3,32,128)")).plans[0].graph.symbols


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", *args],
                          capture_output=True, text=True, timeout=900)


def _one_dynamic_plan(out_dir, model_name):
    info = read_model(open(os.path.join(out_dir, model_name + ".tiny"), "rb").read())
    assert len(info["plans"]) == 1
    dyn = info["plans"][0]["dynamic"]
    assert dyn is not None
    return {s.name: (s.min, s.max) for s in dyn.symbols}


def test_cli_json_and_mgb_to_tinynn_take_symbolic_mge_shapes(tmp_path, dumps):
    path = dumps("textrec", True)
    out = tmp_path / "cli"
    r = _cli("compile", path, "-o", str(out), "--name", "rec",
             "--input-shapes", "data=(N,3,32,W);16<=W<=512", "--shape-hints", "W=128")
    assert r.returncode == 0, r.stderr
    assert "dynamic: N in [1," in r.stdout and "W in [16, 512] (compiled for 128)" in r.stdout
    assert _one_dynamic_plan(str(out), "rec")["W"] == (16, 512)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "W" in json.dumps(manifest)

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"dump_dir": str(tmp_path / "json"), "models": [
        {"model_name": "rec", "model_path": path,
         "input_shape_str": "data=(1,3,32,W);W<=640", "shape_hints": "W=256"}]}))
    r = _cli("compile", "--json", str(cfg))
    assert r.returncode == 0, r.stderr
    assert _one_dynamic_plan(str(tmp_path / "json"), "rec") == {"W": (1, 640)}

    r = subprocess.run([sys.executable, "-c", "import sys; from megcc_builder.cli import "
                        "mgb_to_tinynn_main as m; sys.exit(m(sys.argv[1:]))", path,
                        str(tmp_path / "mgb"), "--input-shapes", "data=(N,3,32,W);N<=2"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    syms = _one_dynamic_plan(str(tmp_path / "mgb"), "textrec_opt")
    assert syms["N"] == (1, 2) and set(syms) == {"N", "W"}


@pytest.mark.parametrize("args,message", [
    (["--input-shapes", "data=(N,3,32,W)", "--shape-hints", "Q=3"],
     "name dimension 'Q', which no input has"),
    (["--input-shapes", "data=(N,3,32,W);W<=8"], "outside the bounds|no value|W"),
    (["--input-shapes", "data=(N,3,W)"], "does not accept shape"),
    (["--input-shapes", "image=(N,3,32,W)"], "names 'image'"),
])
def test_cli_refuses_bad_symbolic_mge_shapes_in_one_line(tmp_path, dumps, args, message):
    out = tmp_path / "bad"
    r = _cli("compile", dumps("textrec", True), "-o", str(out), *args)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not out.exists() or not any(out.iterdir())


class _AdaptivePool(M.Module):
    def forward(self, x):
        return F.adaptive_avg_pool2d(x, (3, 2)) * 2.0


def test_mge_opr_converted_with_a_dimension_value_is_refused_naming_it(tmp_path):
    """Adaptive pooling to (3, 2) becomes a pooling whose window is computed from the input
    size at conversion: its translation differs at another size, so H and W cannot stay
    dynamic (the check converts the model at two sizes and compares)."""
    net = _AdaptivePool()

    @trace(symbolic=True, capture_as_const=True)
    def infer(data):
        return net(data)

    infer(mge.tensor(np.zeros((1, 4, 12, 12), np.float32)))
    path = str(tmp_path / "apool.mge")
    infer.dump(path, arg_names=["data"], optimize_for_inference=True)
    with pytest.raises(CompileError, match=r"dimension H, W cannot stay dynamic: MegEngine opr "
                                           r"'.*' \(\w+\) becomes a different .* at H=\d+, W=\d+"):
        compile_model(_spec(path, "data=(1,4,H,W)"))
    # a symbolic batch leaves the window alone
    model = compile_model(_spec(path, "data=(N,4,12,12);N<=4"))
    assert set(model.plans[0].graph.symbols) == {"N"}


def test_mge_symbol_pinned_by_its_bounds_beside_a_free_one(dumps):
    """H with bounds 32<=H<=32 has one value; W still varies (and is checked at others)."""
    model = compile_model(_spec(dumps("resnet18", True),
                                "data=(1,3,H,W);32<=H<=32;32<=W<=128"))
    assert model.plans[0].graph.symbols["H"] == (32, 32, 32)
    assert model.plans[0].graph.symbols["W"][:2] == (32, 128)
