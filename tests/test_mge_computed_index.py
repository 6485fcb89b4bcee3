"""MegEngine indexing whose bounds or indices are computed at run time (issue 12, item 3).

`x[:, k:k + n]` with k, n computed from another input's values becomes a Slice with
run-time starts/ends (its sliced extents are value symbols); `x[idx]` and `x[a, b]` with
index tensors that are inputs or computed (argmax, topk) become Gather / GatherND reading
the index tensor at run time. The models are written with `megengine.functional`, traced
with `trace(symbolic=True, capture_as_const=True)` and dumped with and without
optimize_for_inference; the oracle is MegEngine's own graph executor running the same .mge
file (tests/mge_zoo.py `reference_output`) at several input values, empty results
included where MegEngine gives them. Each model is compiled once; the host runner runs
under ASan/UBSan, and one model also runs on arm64 under qemu.
"""
from __future__ import annotations

import numpy as np
import pytest

import mge_zoo
from dynamic_e2e import rel_err
from test_value_shapes import Build
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.frontend.mge import load_mge
from megcc_builder.ir import CompileError

import megengine as mge
import megengine.functional as F
from megengine.jit import trace

S8 = np.array([0.1, -1, 0.5, 2, -3, 0.2, -0.5, 0.3], np.float32)


def _dump(fn, example: dict, path, optimize: bool) -> str:
    traced = trace(symbolic=True, capture_as_const=True)(fn)
    traced(*[mge.tensor(v) for v in example.values()])
    traced.dump(str(path), arg_names=list(example), optimize_for_inference=optimize)
    return str(path)


def _compare(build, path, feeds):
    """Our outputs vs MegEngine's run of the same file; returns the output shapes."""
    order = load_mge(path).inputs  # the compiled graph's input order
    ours = build.run([feeds[n] for n in order])
    ref = mge_zoo.reference_output(path, feeds)
    assert len(ours) == len(ref)
    for o, r in zip(ours, ref):
        assert o.shape == r.shape, (o.shape, r.shape, feeds)
        if r.dtype.kind in "iu":
            np.testing.assert_array_equal(o, r)
        else:
            assert rel_err(o, r) <= 1e-5, feeds
    return [r.shape for r in ref]


# --- x[:, k:k + n] with k, n computed ------------------------------------------------

def window(x, s):
    """Columns k .. k+n of x, k = argmax(s), n = number of positive entries of s (the
    end is clamped to the axis as Python does); an empty window is a valid result."""
    k = F.argmax(s)
    n = F.sum(s > 0).astype("int32")
    return x[:, k:k + n]


def window_scaled(x, s):
    """Rows from argmin(s) on, every other column from argmax(s) backwards, then an
    element-wise op and a second slice of the computed-shape result."""
    k, m = F.argmax(s), F.argmin(s)
    y = x[m:, k::-1] * 2 + 1
    return y, F.exp(y[:, 1:])


def _window_values():
    """s vectors giving windows of many widths: clamped at the end, empty, full."""
    full = np.abs(S8) + 0.1; full[0] = 9.0  # k = 0, n = 8: every column
    out = [S8, -np.abs(S8) - 0.5, full]
    a = S8.copy(); a[7] = 9.0   # k = 7 with 5 positive entries: clamped to one column
    b = S8.copy(); b[0] = 9.0   # k = 0
    return out + [a, b]


@pytest.mark.parametrize("optimize", [False, True])
def test_slice_with_computed_bounds_matches_megengine(optimize, tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    path = _dump(window, {"x": x, "s": S8}, tmp_path / "w.mge", optimize)
    build = Build(path, tmp_path / "out")
    shapes = {tuple(_compare(build, path, {"x": x, "s": s})[0]) for s in _window_values()}
    assert (3, 0) in shapes and (3, 8) in shapes and len(shapes) >= 4, shapes


@pytest.mark.parametrize("optimize", [False, True])
def test_computed_slice_feeds_elementwise_ops(optimize, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 8)).astype(np.float32)
    path = _dump(window_scaled, {"x": x, "s": S8}, tmp_path / "w.mge", optimize)
    build = Build(path, tmp_path / "out")
    seen = set()
    for seed in range(5):
        s = np.random.default_rng(10 + seed).permutation(8).astype(np.float32) - 3.5
        if int(np.argmax(s)) < 2:  # keep y[:, 1:] non-empty: MegEngine's Exp refuses empty
            s = s[::-1].copy()
        seen.add(tuple(map(tuple, _compare(build, path, {"x": x, "s": s}))))
    assert len(seen) >= 3, seen


# --- x[idx] with index tensors given or computed ---------------------------------------

def gather_rows(x, idx):
    return x[idx] + 1


def gather_topk_columns(x, s):
    """Columns of the 3 largest entries of s (topk's int32 indices), and the column of
    the largest (an integer index, Subtensor)."""
    _, idx = F.topk(s, 3, descending=True)
    return x[:, idx], x[:, F.argmax(s)]


def gather_pairs(x, a, b):
    """x[a, b]: both axes indexed by run-time index vectors of one length (GatherND)."""
    return x[a, b] * 3


def gather_leading_pairs(x, s):
    """x[i, j] on a 3-D tensor: the first two axes indexed by computed vectors."""
    _, order = F.topk(s, 6)  # positions of the 6 smallest entries, in order
    i = order[:4] % 3
    j = order[2:6]
    return x[i, j]


@pytest.mark.parametrize("optimize", [False, True])
def test_gather_with_index_input_matches_megengine(optimize, tmp_path):
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    idx = np.array([4, 0, -1, 2, 2, -5], np.int32)
    path = _dump(gather_rows, {"x": x, "idx": idx}, tmp_path / "g.mge", optimize)
    build = Build(path, tmp_path / "out")
    for seed in range(3):
        idx = np.random.default_rng(seed).integers(-5, 5, 6).astype(np.int32)
        _compare(build, path, {"x": x, "idx": idx})


@pytest.mark.parametrize("optimize", [False, True])
def test_gather_with_computed_indices_matches_megengine(optimize, tmp_path):
    x = np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)
    path = _dump(gather_topk_columns, {"x": x, "s": S8}, tmp_path / "t.mge", optimize)
    build = Build(path, tmp_path / "out")
    for seed in range(4):
        s = np.random.default_rng(20 + seed).standard_normal(8).astype(np.float32)
        _compare(build, path, {"x": x, "s": s})


@pytest.mark.parametrize("optimize", [False, True])
def test_multi_axis_index_with_run_time_vectors(optimize, tmp_path):
    x = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float32)
    feeds = {"x": x, "a": np.array([0, 2, 1], np.int32), "b": np.array([7, 0, 3], np.int32)}
    path = _dump(gather_pairs, feeds, tmp_path / "p.mge", optimize)
    build = Build(path, tmp_path / "out")
    for seed in range(4):
        rng = np.random.default_rng(30 + seed)
        feeds = {"x": x, "a": rng.integers(-3, 3, 3).astype(np.int32),
                 "b": rng.integers(-8, 8, 3).astype(np.int32)}
        _compare(build, path, feeds)


@pytest.mark.parametrize("optimize", [False, True])
def test_multi_axis_index_on_leading_axes_with_computed_vectors(optimize, tmp_path):
    x = np.random.default_rng(5).standard_normal((3, 8, 5)).astype(np.float32)
    path = _dump(gather_leading_pairs, {"x": x, "s": S8}, tmp_path / "l.mge", optimize)
    build = Build(path, tmp_path / "out")
    for seed in range(4):
        s = np.random.default_rng(40 + seed).standard_normal(8).astype(np.float32)
        _compare(build, path, {"x": x, "s": s})


def test_computed_index_models_on_arm64(tmp_path):
    from build_support import require_target

    require_target("arm64")
    x = np.random.default_rng(6).standard_normal((3, 8)).astype(np.float32)
    path = _dump(window, {"x": x, "s": S8}, tmp_path / "w.mge", True)
    build = Build(path, tmp_path / "out", isa="arm64-neon", target="arm64")
    for s in _window_values()[:3]:
        _compare(build, path, {"x": x, "s": s})
    feeds = {"x": x, "a": np.array([0, -1, 1], np.int32), "b": np.array([7, 0, -3], np.int32)}
    path = _dump(gather_pairs, feeds, tmp_path / "p.mge", False)
    build = Build(path, tmp_path / "out2", isa="arm64-neon", target="arm64")
    _compare(build, path, feeds)


# --- what stays refused: one line naming the opr -----------------------------------------

def transposed_window(x, s):
    return x[:, F.argmax(s):].transpose(1, 0)


def test_opr_needing_a_static_shape_after_a_computed_slice_is_refused(tmp_path):
    x = np.random.default_rng(7).standard_normal((3, 8)).astype(np.float32)
    path = _dump(transposed_window, {"x": x, "s": S8}, tmp_path / "r.mge", False)
    with pytest.raises(CompileError) as err:
        compile_bundle([ModelSpec(path=path, name="m")], str(tmp_path / "out"),
                       save_c_array=False)
    msg = str(err.value)
    assert "\n" not in msg and "Dimshuffle" in msg and "computed at run time" in msg, msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- the constant fast paths stay as they were ------------------------------------------

def constant_indices(x):
    """Constant index vectors whose other axis order would index out of range (the axis
    match must skip that order), constant slices, a constant column list."""
    return x[[0, 2], [1, 7]] * 2, x[:, 1:5], x[1, ::-2], x[:, [3, 1]]


@pytest.mark.parametrize("optimize", [False, True])
def test_constant_indices_and_bounds_match_megengine(optimize, tmp_path):
    x = np.random.default_rng(8).standard_normal((3, 8)).astype(np.float32)
    path = _dump(constant_indices, {"x": x}, tmp_path / "c.mge", optimize)
    build = Build(path, tmp_path / "out")
    for seed in range(2):
        _compare(build, path, {"x": np.random.default_rng(seed).standard_normal((3, 8))
                               .astype(np.float32)})


# --- an index outside the axis: MegEngine asserts, the runtime refuses ---------------------

@pytest.mark.parametrize("model", ["rows", "pairs"])
def test_index_outside_the_axis_is_refused_at_run_time(model, tmp_path):
    x = np.random.default_rng(9).standard_normal((3, 8)).astype(np.float32)
    if model == "rows":
        fn, feeds, bad = gather_rows, {"x": x, "idx": np.array([1, 2], np.int32)}, \
            {"x": x, "idx": np.array([1, 3], np.int32)}
    else:
        fn, feeds = gather_pairs, {"x": x, "a": np.array([0, 2], np.int32),
                                   "b": np.array([1, 7], np.int32)}
        bad = {"x": x, "a": np.array([0, 2], np.int32), "b": np.array([1, 8], np.int32)}
    path = _dump(fn, feeds, tmp_path / "m.mge", False)
    build = Build(path, tmp_path / "out")
    _compare(build, path, feeds)
    with pytest.raises(Exception):
        mge_zoo.reference_output(path, bad)
    with pytest.raises(RuntimeError) as err:
        build.run([bad[n] for n in load_mge(path).inputs])
    msg = str(err.value)
    assert "forward failed" in msg and "Gather" in msg.replace("gather", "Gather"), msg
    assert "AddressSanitizer" not in msg and "runtime error" not in msg, msg


# --- a symbolic input dimension beside a computed slice ---------------------------------

class _SymbolicBuild(Build):
    """Build of the model with `x=(N,8)` symbolic (several inputs: the symbolic shape must
    land on the input it names, whatever order MegEngine lists its inputs in)."""

    def __init__(self, path, out_dir, shapes):
        from megcc_builder.config import parse_input_shapes
        from megcc_builder.frontend.dims import SymbolSpec
        from megcc_builder.host import DEFAULT_CFLAGS, build_runner
        from test_value_shapes import SAN
        import os

        symbols = SymbolSpec()
        spec = ModelSpec("m", path, parse_input_shapes(shapes, "test", symbols.bounds),
                         symbols=symbols)
        compile_bundle([spec], str(out_dir), save_c_array=False)
        self.blob = os.path.join(str(out_dir), "m.tiny")
        self.target = None
        self.runner = build_runner(os.path.join(str(out_dir), "kernels.c"),
                                   cflags=[*DEFAULT_CFLAGS, *SAN])


def test_computed_slice_with_a_symbolic_batch(tmp_path):
    x = np.random.default_rng(10).standard_normal((3, 8)).astype(np.float32)
    path = _dump(window, {"x": x, "s": S8}, tmp_path / "w.mge", True)
    build = _SymbolicBuild(path, tmp_path / "out", "x=(N,8);s=(8);N<=16")
    shapes = set()
    for n in (1, 5, 16):
        x = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
        for s in _window_values()[:3]:
            shapes.add(tuple(_compare(build, path, {"x": x, "s": s})[0]))
    assert {(1, 0), (5, 5), (16, 8)} <= shapes, shapes
