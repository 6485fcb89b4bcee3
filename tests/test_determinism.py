"""Deterministic and interrupted builds.

Deterministic: the same model (.mge; a JSON bundle of .onnx + .mge with two shape
instances) compiled twice, from different directories and with different PYTHONHASHSEED,
gives byte-identical outputs (tests/test_cli.py covers a single .onnx).

Interrupted: the compiler killed while writing its outputs (SIGTERM, as a build tool
cancelling it, and SIGKILL) leaves the previous build intact, and the next compile — or,
through the SCons tool, the next `scons` — produces exactly what an uninterrupted build
does. The kill is placed deterministically with a sitecustomize.py on PYTHONPATH that
makes the compiler signal itself when it creates its Nth output temporary file
(emit.files.write_all_if_changed), so it also reaches megcc as started by SCons.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from build_support import conv_onnx, require_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
BIN = os.path.dirname(sys.executable)
TEMP_PREFIX = ".megcc-"

# MEGCC_TEST_KILL_AT=N: signal ourselves when creating the Nth output temporary file, or,
# with MEGCC_TEST_KILL_ON=replace, right after the Nth rename of one into place.
KILL_HOOK = """
import os, signal, tempfile
_at = int(os.environ.get("MEGCC_TEST_KILL_AT", "0"))
_sig = getattr(signal, os.environ.get("MEGCC_TEST_KILL_SIGNAL", "SIGKILL"))
_n = [0]
def _count():
    _n[0] += 1
    if _n[0] == _at:
        os.kill(os.getpid(), _sig)
if _at and os.environ.get("MEGCC_TEST_KILL_ON") == "replace":
    _real_replace = os.replace
    def _replace(src, dst, *a, **k):
        _real_replace(src, dst, *a, **k)
        if os.path.basename(str(src)).startswith({prefix!r}):
            _count()
    os.replace = _replace
elif _at:
    _real_mkstemp = tempfile.mkstemp
    def _mkstemp(*a, **k):
        if k.get("prefix") == {prefix!r}:
            _count()
        return _real_mkstemp(*a, **k)
    tempfile.mkstemp = _mkstemp
""".format(prefix=TEMP_PREFIX)


def _files(d):
    """name -> bytes of every file in d (non-recursive)."""
    return {f: open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))
            if os.path.isfile(os.path.join(d, f))}


def _megcc(args, cwd, env=None, tool="megcc"):
    return subprocess.run([os.path.join(BIN, tool), *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)


# ----------------------------------------------------------------------------- determinism

def _compile_twice(tmp_path, make_args):
    """Compile in two directories (model files copied there) with two hash seeds."""
    outs = []
    for k, seed in enumerate(("0", "12345")):
        work = tmp_path / f"dir{k}" / ("nested" * k)
        work.mkdir(parents=True)
        args = make_args(work)
        r = _megcc(args, cwd=str(work), env=dict(os.environ, PYTHONHASHSEED=seed))
        assert r.returncode == 0, r.stderr
        outs.append(_files(str(work / "out")))
        # written through temporaries, yet ordinary files (umask), like any compiler output
        umask = os.umask(0)
        os.umask(umask)
        for f in outs[-1]:
            assert os.stat(work / "out" / f).st_mode & 0o777 == 0o666 & ~umask, f
    return outs


def test_mge_compile_is_byte_identical(tmp_path):
    def args(work):
        shutil.copy(DIGITS, work / "digits.mge")
        return ["compile", "digits.mge", "-o", "out", "--input-shapes",
                "data=(1,1,8,8):data=(3,1,8,8)"]

    a, b = _compile_twice(tmp_path, args)
    assert set(a) == {"kernels.c", "kernels.h", "manifest.json", "digits.tiny",
                      "digits.tiny.c", "digits.tiny.txt"}
    assert a == b


def test_json_bundle_compile_is_byte_identical(tmp_path):
    def args(work):
        shutil.copy(DIGITS, work / "digits.mge")
        conv_onnx(str(work / "conv.onnx"), seed=4)
        cfg = {"dump_dir": "unused", "models": [
            {"model_name": "digits", "model_path": "digits.mge",
             "input_shape_str": "data=(1,1,8,8):data=(2,1,8,8)"},
            {"model_name": "conv", "model_path": "conv.onnx",
             "input_shape_str": "data=(1,1,6,6)"}]}
        (work / "bundle.json").write_text(json.dumps(cfg))
        return ["compile", "--json", "bundle.json", "-o", "out"]

    a, b = _compile_twice(tmp_path, args)
    assert {"digits.tiny", "conv.tiny", "kernels.c"} <= set(a)
    assert a == b


# ----------------------------------------------------------------------------- interrupted

@pytest.fixture
def kill_env(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_HOOK)

    def env(at, sig="SIGKILL", on="mkstemp"):
        e = dict(os.environ)
        e["PYTHONPATH"] = str(hook) + os.pathsep + e.get("PYTHONPATH", "")
        e["MEGCC_TEST_KILL_AT"] = str(at)
        e["MEGCC_TEST_KILL_SIGNAL"] = sig
        e["MEGCC_TEST_KILL_ON"] = on
        return e
    return env


def _versions(tmp_path):
    """Two versions of a model whose every output file differs (weights and shape)."""
    conv_onnx(str(tmp_path / "v1.onnx"), seed=1)
    conv_onnx(str(tmp_path / "v2.onnx"), seed=2, channels=6)
    ref = tmp_path / "ref_v2"
    r = _megcc(["compile", "v2.onnx", "--name", "net", "-o", str(ref), "--input-shapes",
                "data=(1,1,9,9)"], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    return _files(str(ref))


@pytest.mark.parametrize("sig, at", [("SIGTERM", 1), ("SIGTERM", 4), ("SIGKILL", 1),
                                     ("SIGKILL", 5)])
def test_killed_compile_keeps_previous_outputs(tmp_path, kill_env, sig, at):
    v2 = _versions(tmp_path)
    out = tmp_path / "out"
    v1_args = ["compile", "v1.onnx", "--name", "net", "-o", str(out)]
    v2_args = ["compile", "v2.onnx", "--name", "net", "-o", str(out), "--input-shapes",
               "data=(1,1,9,9)"]
    assert _megcc(v1_args, cwd=str(tmp_path)).returncode == 0
    before = _files(str(out))
    stamps = {f: os.stat(out / f).st_mtime_ns for f in before}
    assert all(before[f] != v2[f] for f in before)  # every file would change

    r = _megcc(v2_args, cwd=str(tmp_path), env=kill_env(at, sig))
    assert r.returncode != 0
    if sig == "SIGTERM":  # unwinds: one-line message, temporaries removed
        assert r.stderr.strip() == "megcc: error: interrupted", r.stderr
        assert not [f for f in os.listdir(out) if f.startswith(TEMP_PREFIX)]
    else:
        assert r.returncode == -signal.SIGKILL
    visible = {f: d for f, d in _files(str(out)).items() if not f.startswith(TEMP_PREFIX)}
    assert visible == before
    assert {f: os.stat(out / f).st_mtime_ns for f in before} == stamps

    # the next compile is correct: exactly what a clean build writes
    r = _megcc(v2_args, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert {f: d for f, d in _files(str(out)).items() if not f.startswith(TEMP_PREFIX)} == v2


def test_kill_between_renames_is_rolled_forward_by_the_next_run(tmp_path, kill_env):
    """Killed between renames (the 1st replace is the journal's commit, the 2nd puts
    kernels.c in place), the directory mixes the two builds until the next run: every
    file is whole (old or new), the mix is refused by the runtime (the v1 blob's
    instructions are not in v2's kernels.c), and the journal beside it is rolled forward
    by the next compile into the directory -- even one that fails (emit/files.py)."""
    v2 = _versions(tmp_path)
    out = tmp_path / "out"
    assert _megcc(["compile", "v1.onnx", "--name", "net", "-o", str(out), "--no-c-array"],
                  cwd=str(tmp_path)).returncode == 0
    v1 = _files(str(out))
    v2_args = ["compile", "v2.onnx", "--name", "net", "-o", str(out), "--input-shapes",
               "data=(1,1,9,9)", "--no-c-array"]
    r = _megcc(v2_args, cwd=str(tmp_path), env=kill_env(2, on="replace"))  # kernels.c only
    assert r.returncode == -signal.SIGKILL
    mixed = {f: d for f, d in _files(str(out)).items() if not f.startswith(TEMP_PREFIX)}
    assert all(mixed[f] in (v1[f], v2.get(f)) for f in v1)
    assert mixed["kernels.c"] == v2["kernels.c"] and mixed["net.tiny"] == v1["net.tiny"]
    assert os.path.exists(out / ".megcc-journal")

    from megcc_builder.host import build_runner, run_blob
    import numpy as np

    runner = build_runner(str(out / "kernels.c"))
    with pytest.raises(RuntimeError, match="kernel"):
        run_blob(runner, str(out / "net.tiny"), [np.zeros((1, 1, 6, 6), np.float32)])
    r = _megcc(["compile", "absent.onnx", "-o", str(out)], cwd=str(tmp_path))
    assert r.returncode == 1
    assert _files(str(out)) == {f: v2[f] for f in v1}     # complete v2, no temporaries
    r = _megcc(v2_args, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert _files(str(out)) == {f: v2[f] for f in v1}


SCONSTRUCT = """
import os
env = Environment(tools=["default", "megcc"], toolpath=[{toolpath!r}], ENV=os.environ)
net = env.MegccModel("net", ARGUMENTS.get("model", "v1.onnx"),
                     INPUT_SHAPES=ARGUMENTS.get("shape", "data=(1,1,6,6)"))
env.Program("app", ["app.c"], CPPDEFINES=["MODEL=net"], LIBS=[net, "m"])
"""


def test_scons_rebuilds_correctly_after_a_killed_compile(tmp_path, kill_env):
    require_target("x86_64")
    from build_support import SCONS, hex_floats, max_rel_err, run, scons_env
    from megcc_builder.host import compile_and_run
    from test_build_scons import APP_C, pattern_input

    _versions(tmp_path)
    (tmp_path / "app.c").write_text(APP_C)
    (tmp_path / "SConstruct").write_text(SCONSTRUCT.format(
        toolpath=os.path.join(ROOT, "site_scons", "site_tools")))
    v2 = ["model=v2.onnx", "shape=data=(1,1,9,9)"]

    def scons(*args, env=None, check=True):
        e = scons_env()
        e.update(env or {})
        return run([*SCONS, "-C", str(tmp_path), *args], env=e, check=check)

    scons()
    killed = scons(*v2, env=kill_env(3), check=False)
    assert killed.returncode != 0, killed.stdout[-3000:]
    scons(*v2)
    assert scons(*v2, "-q", check=False).returncode == 0  # now up to date
    ref = compile_and_run(str(tmp_path / "v2.onnx"), {"data": pattern_input((1, 1, 9, 9))})
    out = hex_floats(run([str(tmp_path / "app")]).stdout.split())
    assert max_rel_err(out, ref["out"].ravel()) <= 1e-4
