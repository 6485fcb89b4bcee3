"""Hostile and broken compiler inputs: truncated and bit-flipped .onnx/.mge files,
unsupported operators, inconsistent shapes, missing inputs, absurd sizes, malformed
JSON/YAML configs, unknown options.

Every case must end in exactly one stderr line `megcc: error: <file>: [node '<n>': ]<what>`
naming the file (and the node or field when there is one), a non-zero exit, no traceback
and no "internal error" (the CLI's safety net must not be what catches them), and leave
nothing in the output directory a build could take for a result; a failed compile over a
previous build must leave it byte-for-byte and timestamp intact. Bit flips may also yield
a model that still compiles; then the complete file set must be there.

The cases are generated here and run through tests/bad_inputs_driver.py, which forks one
child per command line (faithful fds, cheap startup).
"""
import json
import os
import random
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "fuzz"))
import make_seeds  # noqa: E402  (small real models shared with the fuzzer)

DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad_inputs_driver.py")
RESULT_FILES = {"kernels.c", "kernels.h", "manifest.json"}
vi = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "bad", inputs, outputs,
                              [numpy_helper.from_array(a, n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _flips(data: bytes, rng: random.Random, start: int = 0) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 3, 12))):
        i = rng.randrange(start, len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


class Corpus:
    """Writes the bad inputs into `d`; each case: (name, argv, must-mention, may-succeed)."""

    def __init__(self, d):
        self.d = d
        self.cases = []
        self.good = self.onnx("good.onnx", make_seeds.cnn())

    def path(self, name):
        return str(self.d / name)

    def raw(self, name, data: bytes):
        (self.d / name).write_bytes(data)
        return self.path(name)

    def onnx(self, name, model):
        onnx.save(model, self.path(name))
        return self.path(name)

    def add(self, name, argv, mention, may_succeed=False, tool="megcc", file=""):
        """file: the path the error must name; by default the first argument (the model, or
        the config after --json); None for usage errors that concern no file."""
        out = self.path(f"out_{name}")
        if file == "":
            file = argv[1] if argv[0] == "--json" else argv[0]
        if tool == "megcc":
            argv = ["compile", *argv, "-o", out]
        self.cases.append({"name": name, "argv": argv, "mention": mention, "tool": tool,
                           "file": file, "may_succeed": may_succeed, "out": out})


def build_corpus(d) -> Corpus:
    c = Corpus(d)
    good = open(c.good, "rb").read()
    rng = random.Random(20240611)
    # ---- damaged files
    for frac in (0.0, 0.1, 0.5, 0.9, 0.999):
        p = c.raw(f"trunc_{frac}.onnx", good[:int(len(good) * frac)])
        c.add(f"onnx_truncated_{frac}", [p], p)
    for k in range(16):
        p = c.raw(f"flip_{k}.onnx", _flips(good, rng))
        c.add(f"onnx_bitflip_{k}", [p], p, may_succeed=True)
    mge = open(DIGITS, "rb").read()
    for frac in (0.05, 0.5, 0.95):
        p = c.raw(f"trunc_{frac}.mge", mge[:int(len(mge) * frac)])
        c.add(f"mge_truncated_{frac}", [p], p)
    for k in range(3):
        p = c.raw(f"flip_{k}.mge", _flips(mge, rng))
        c.add(f"mge_bitflip_{k}", [p], p, may_succeed=True)
    p = c.raw("not_a_model.mge", b"this is not a MegEngine model\n")
    c.add("mge_garbage", [p], p)
    p = c.raw("model.txt", b"hello")
    c.add("unknown_extension", [p], p)
    c.add("missing_file", [c.path("absent.onnx")], c.path("absent.onnx"))
    c.add("directory_as_model", [str(d)], str(d))

    # ---- well-formed files describing bad models
    x22 = [vi("x", TP.FLOAT, [2, 2])]
    y22 = [vi("y", TP.FLOAT, [2, 2])]
    bad_models = {
        "custom_domain_op": (_model([helper.make_node("Frob", ["x"], ["y"], domain="com.acme")],
                                    x22, y22), "Frob"),
        "unregistered_op": (_model([helper.make_node("FrobnicateX", ["x"], ["y"])], x22, y22),
                            "node 'FrobnicateX_0'"),
        "string_op": (_model([helper.make_node("StringNormalizer", ["s"], ["t"])],
                             [vi("s", TP.STRING, [2])], [vi("t", TP.STRING, [2])]), "'s'"),
        "add_shapes": (_model([helper.make_node("Add", ["x", "z"], ["y"])],
                              [vi("x", TP.FLOAT, [2, 3]), vi("z", TP.FLOAT, [4, 5])],
                              [vi("y", TP.FLOAT, [2, 3])]), "node 'Add_0'"),
        "matmul_shapes": (_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                 [vi("x", TP.FLOAT, [2, 3])], [vi("y", TP.FLOAT, [2, 3])],
                                 [("w", np.ones((4, 3), np.float32))]), "node 'MatMul_0'"),
        "reshape_count": (_model([helper.make_node("Reshape", ["x", "s"], ["y"])],
                                 x22, [vi("y", TP.FLOAT, None)],
                                 [("s", np.array([3, 3], np.int64))]), "node 'Reshape_0'"),
        "node_input_missing": (_model([helper.make_node("Relu", ["nothere"], ["y"])], x22, y22),
                               "nothere"),
        "graph_output_missing": (_model([helper.make_node("Relu", ["x"], ["y"])], x22,
                                        [vi("zz", TP.FLOAT, [2, 2])]), "zz"),
        "no_outputs": (_model([helper.make_node("Relu", ["x"], ["y"])], x22, []), "outputs"),
        # a run-time dimension (kept dynamic since dynamic plans exist) that a node pins:
        # Reshape to a constant shape needs N's value at compile time
        "dynamic_input_pinned": (_model([helper.make_node("Reshape", ["x", "s"], ["y"])],
                                        [vi("x", TP.FLOAT, ["N", 2])], [vi("y", TP.FLOAT, [4])],
                                        [("s", np.array([4], np.int64))]),
                                 "cannot stay dynamic"),
        "opset_too_new": (_model([helper.make_node("Relu", ["x"], ["y"])], x22, y22, opset=999),
                          "opset"),
        # absurd sizes: 2^40 elements as an input, as an intermediate, as a folded constant
        "huge_input": (_model([helper.make_node("Relu", ["x"], ["y"])],
                              [vi("x", TP.FLOAT, [1 << 20, 1 << 20])],
                              [vi("y", TP.FLOAT, [1 << 20, 1 << 20])]), "'x'"),
        "huge_intermediate": (_model([helper.make_node("Expand", ["x", "s"], ["y"])],
                                     [vi("x", TP.FLOAT, [1, 1])], [vi("y", TP.FLOAT, None)],
                                     [("s", np.array([1 << 20, 1 << 20], np.int64))]),
                              "node 'Expand_0'"),
        "huge_constant": (_model([helper.make_node(
            "ConstantOfShape", ["s"], ["k"], value=numpy_helper.from_array(np.ones(1, np.float32))),
            helper.make_node("Add", ["x", "k"], ["y"])], [vi("x", TP.FLOAT, [1, 1])],
            [vi("y", TP.FLOAT, None)], [("s", np.array([1 << 20, 1 << 20], np.int64))]),
            "node 'ConstantOfShape_0'"),
    }
    for name, (model, mention) in bad_models.items():
        p = c.onnx(name + ".onnx", model)
        c.add(name, [p], mention)

    # ---- bad options on a good model
    g = c.good
    for name, shapes, mention in (("shape_syntax", "x=(1,2", "--input-shapes: "),
                                  ("shape_zero_dim", "x=(1,2,0,8)", "--input-shapes: "),
                                  ("shape_unknown_input", "nope=(1,2,8,8)", "nope"),
                                  ("shape_rank", "x=(1,2,8)", "rank"),
                                  ("shape_channels", "x=(1,3,8,8)", "node 'Conv_0'"),
                                  ("shape_huge", "x=(1024,1024,1024,1024)", "'x'")):
        # the option is the "file" of a malformed shape string
        c.add(name, [g, "--input-shapes", shapes], mention,
              file=None if mention.startswith("--") else "")
    c.add("unknown_flag", [g, "--frobnicate"], "--frobnicate", file=None)
    c.add("mgb_unknown_flag", [g, c.path("out_mgb_unknown_flag"), "--enable_warp_drive"],
          "--enable_warp_drive", tool="mgb-to-tinynn", file=None)
    c.add("mgb_pending_option", [g, c.path("out_mgb_pending_option"),
                                 "--add_nhwc2nchw_to_input"],
          "add_nhwc2nchw_to_input", tool="mgb-to-tinynn", file=None)
    # NCHW88 is the float16 layout: refused on the host's level (no float16 arithmetic)
    c.add("mgb_nchw88_without_fp16", [g, c.path("out_mgb_nchw88_without_fp16"),
                                      "--enable_nchw88"],
          "enable_nchw88", tool="mgb-to-tinynn")

    # ---- configs
    def cfg(name, text):
        return c.raw(name, text.encode() if isinstance(text, str) else text)

    def model_entry(**kw):
        return {"model_name": "m", "model_path": "good.onnx", **kw}

    configs = {
        "json_syntax": ("bad.json", '{"models": [ {"model_name": "a",', "bad.json"),
        "yaml_syntax": ("bad.yaml", "models:\n  - model_name: a\n   model_path: [\n", "bad.yaml"),
        "json_not_object": ("list.json", "[1, 2]", "list.json"),
        "json_not_utf8": ("latin.json", b'\xff\xfe{"models": []}', "latin.json"),
        "json_no_models": ("empty.json", "{}", "'models'"),
        "json_unknown_top_field": ("top.json", json.dumps({"models": [model_entry()],
                                                          "optimise": 3}), "'optimise'"),
        "json_unknown_model_field": ("mf.json", json.dumps({"models": [model_entry(turbo=1)]}),
                                     "models[0]: unknown field 'turbo'"),
        "json_wrong_type": ("ty.json", json.dumps({"models": [model_entry(model_name=3)]}),
                            "'model_name'"),
        "json_escaping_name": ("esc.json", json.dumps({"models": [
            model_entry(model_name="../escape")]}), "'model_name'"),
        # (names are symbolic dimensions now: "x=(a,b)" is valid syntax, refused later for
        # its rank; a malformed dimension is the config's own error)
        "json_bad_shapes": ("bs.json", json.dumps({"models": [
            model_entry(input_shape_str="x=(1,3,4.5,4)")]}), "bs.json"),
        "json_missing_model": ("mm.json", json.dumps({"models": [
            model_entry(model_path="absent.onnx")]}), "absent.onnx"),
        "json_pending_option": ("po.json", json.dumps({"models": [
            model_entry(add_nhwc2nchw_to_input=True)]}), "add_nhwc2nchw_to_input"),
        "json_nchw88_without_fp16": ("n88.json", json.dumps({"models": [
            model_entry(enable_nchw88=True)]}), "enable_nchw88"),
        "json_bad_option_value": ("bv.json", json.dumps({"models": [
            model_entry(enable_nchw44="yes")]}), "option 'enable_nchw44' must be true or false"),
        "json_duplicate_names": ("dup.json", json.dumps({"models": [model_entry()] * 2}),
                                 "models[1]: model_name 'm'"),
        "yaml_cv_section": ("cv.yaml", "models:\n  - model_name: m\n    model_path: good.onnx\n"
                            "cv:\n  - warp\n", "cv.yaml"),
    }
    for name, (fname, text, mention) in configs.items():
        p = cfg(fname, text)
        # (the model the entry names: its option refused for the build's ISA level)
        file = {"json_missing_model": c.path("absent.onnx"),
                "json_nchw88_without_fp16": c.good}.get(name, "")
        c.add(name, ["--json", p], mention, file=file)
    return c


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    corpus = build_corpus(d)
    # A previous good build in every output directory of these cases: it must survive.
    kept = {"onnx_truncated_0.5", "mge_truncated_0.5", "huge_constant", "shape_channels",
            "json_syntax", "graph_output_missing"}
    from megcc_builder.compiler import ModelSpec, compile_bundle

    snapshots = {}
    for case in corpus.cases:
        if case["name"] in kept:
            compile_bundle([ModelSpec("good", corpus.good)], case["out"])
            snapshots[case["name"]] = _snapshot(case["out"])
    (d / "cases.json").write_text(json.dumps(corpus.cases))
    subprocess.run([sys.executable, DRIVER, str(d / "cases.json"), str(d / "results.json")],
                   check=True, timeout=600, cwd=str(d))
    res = json.loads((d / "results.json").read_text())
    return corpus, {r["name"]: r for r in res}, snapshots


def _snapshot(directory):
    return {f: ((os.path.join(directory, f)), open(os.path.join(directory, f), "rb").read(),
                os.stat(os.path.join(directory, f)).st_mtime_ns)
            for f in sorted(os.listdir(directory))}


def _is_complete_build(directory):
    files = set(os.listdir(directory))
    return RESULT_FILES <= files and any(f.endswith(".tiny") for f in files) \
        and not any(f.startswith(".megcc-") for f in files)


def test_bad_inputs_give_one_line_errors_and_no_outputs(results):
    """One test over the shared corpus (two would build it twice under pytest-xdist)."""
    _check_messages(*results)
    _check_outputs(*results)


def _check_messages(corpus, res, snapshots):
    failures, n_errors = [], 0
    for case in corpus.cases:
        r = res[case["name"]]
        lines = r["stderr"].splitlines()
        if case["may_succeed"] and r["rc"] == 0:
            if not _is_complete_build(case["out"]):
                failures.append(f"{case['name']}: exit 0 but incomplete output")
            continue
        n_errors += 1
        why = []
        if r["rc"] <= 0:
            why.append(f"exit status {r['rc']}")
        if len(lines) != 1 or not lines[0].startswith(("megcc: error: ",
                                                        "mgb-to-tinynn: error: ")):
            why.append("not exactly one error line")
        if "Traceback" in r["stderr"] or "internal error" in r["stderr"]:
            why.append("traceback / internal error")
        for must in (case["mention"], case["file"]):
            if must and must not in r["stderr"]:
                why.append(f"does not mention {must!r}")
        if why:
            failures.append(f"{case['name']}: {', '.join(why)}: {r['stderr'][-600:]!r}")
    assert not failures, "\n".join(failures)
    assert n_errors >= 60  # most cases are errors by construction (bit flips may compile)


def _check_outputs(corpus, res, snapshots):
    """Nothing that looks like a result after a failure; a previous build stays intact."""
    for case in corpus.cases:
        if res[case["name"]]["rc"] == 0:
            continue
        out = case["out"]
        if case["name"] in snapshots:
            # the previous build is intact: same files, bytes and timestamps
            assert _snapshot(out) == snapshots[case["name"]], case["name"]
        else:
            assert not os.path.exists(out) or os.listdir(out) == [], \
                (case["name"], os.listdir(out))


def test_console_scripts_give_one_line_too(tmp_path):
    """The real entry points (not only cli.main): argparse and file errors, one line."""
    bin_dir = os.path.dirname(sys.executable)
    (tmp_path / "t.onnx").write_bytes(b"\x08\x07\x12")
    for argv in (["megcc", "compile", str(tmp_path / "t.onnx"), "-o", str(tmp_path / "o")],
                 ["megcc", "compile", "--no-such-flag"], ["megcc", "frobnicate"],
                 ["mgb-to-tinynn", str(tmp_path / "t.onnx"), str(tmp_path / "o"), "--bogus"]):
        r = subprocess.run([os.path.join(bin_dir, argv[0]), *argv[1:]], capture_output=True,
                           text=True)
        assert r.returncode != 0 and len(r.stderr.splitlines()) == 1, (argv, r.stderr)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
