#!/usr/bin/env python3
"""Generate docs/onnx-operators.md (and optionally tests/onnx_expected_failures.py) from a
run of ONNX's backend suite through our backend.

    scripts/gen_onnx_operator_table.py                 # run the suite (pytest -n 2), write the doc
    scripts/gen_onnx_operator_table.py --junit r.xml   # use an existing pytest --junitxml file
    scripts/gen_onnx_operator_table.py --update-expected   # also rewrite the expected failures

The table lists every operator ONNX defines (all domains, all opset versions), how the
compiler handles it (a C kernel, expansion of its ONNX function body, folding at compile
time, or not at all), the opsets and input dtypes of the suite cases that pass, and the
number of node-suite cases that pass and fail, with the most common failure reason.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import warnings
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import onnx  # noqa: E402
from onnx import TensorProto  # noqa: E402

DOC = os.path.join(ROOT, "docs", "onnx-operators.md")
EXPECTED = os.path.join(ROOT, "tests", "onnx_expected_failures.py")
SUITE_FILES = ["tests/test_onnx_conformance.py", "tests/test_onnx_real_models.py"]

# Reasons for cases that compile and run but whose numbers are outside ONNX's tolerance;
# every other reason is the compiler's own one-line error.
WRONG_VALUE_REASONS = {
    "test_attention_4d_causal_fp16_cpu":
        "float16 attention computed in float32 differs from the float16-rounded reference",
    "test_attention_4d_causal_fp16_expanded_cpu":
        "float16 attention computed in float32 differs from the float16-rounded reference",
}


def run_suite(junit: str) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
           "-W", "ignore", f"--junitxml={junit}", *SUITE_FILES]
    subprocess.run(cmd, cwd=ROOT)


def short_reason(message: str) -> str:
    """One line from a failure message: the compiler's error without paths and node names."""
    text = message.strip()
    first = text.splitlines()[0] if text else ""
    if "AssertionError" in first or first.startswith("Not equal") or "Mismatch" in text[:300] \
            or first.startswith("AssertionError") or not first:
        mism = re.search(r"Mismatched elements: (\d+) / (\d+)", text)
        if mism:
            return (f"results outside ONNX's tolerance ({mism.group(1)} of {mism.group(2)} "
                    "elements)")
        return "results differ from the reference"
    first = re.sub(r"^[\w.]+(Error|Value|Exception): ", "", first)
    first = re.sub(r"^(/\S+|<onnx model>): ", "", first)
    first = re.sub(r"^node '[^']*': ", "", first)
    first = re.sub(r"'[^']*?(?:_function_|__)([^'_][^']*)'", r"'\1'", first)
    first = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "<image>", first)
    first = re.sub(r"/tmp/\S+", "<tmp>", first)
    return first[:200]


def read_junit(path: str):
    """case name -> ('pass'|'fail'|'xfail'|'xpass', message)."""
    results = {}
    for tc in ET.parse(path).iter("testcase"):
        cls, name = tc.get("classname", ""), tc.get("name", "")
        if "OnnxBackend" not in cls:
            continue
        fail = tc.find("failure")
        err = tc.find("error")
        skip = tc.find("skipped")
        if fail is not None or err is not None:
            node = fail if fail is not None else err
            msg = (node.get("message") or "") + "\n" + (node.text or "")
            status = "xpass" if "Unexpected success" in msg else "fail"
            results[name] = (status, msg, cls)
        elif skip is not None and "xfail" in (skip.get("type") or ""):
            results[name] = ("xfail", (skip.get("message") or "") + "\n" + (skip.text or ""), cls)
        else:
            results[name] = ("pass", "", cls)
    return results


def node_models():
    from onnx.backend.test.loader import load_node_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {tc.name + "_cpu": tc.model for tc in load_node_model_tests()}


def main_op(case: str, model) -> str:
    ops = [n.op_type for n in model.graph.node]
    if len(set(ops)) == 1:
        return ops[0]
    key = case[len("test_"):].replace("_", "").lower()
    best = ""
    for op in set(ops) | set(_ALL_OPS):
        if key.startswith(op.lower()) and len(op) > len(best):
            best = op
    return best or (ops[0] if ops else "?")


_ALL_OPS = sorted({s.name for s in onnx.defs.get_all_schemas_with_history()})


def model_dtypes(model):
    inits = {t.name for t in model.graph.initializer}
    out = set()
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        out.add(TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower())
    return out


def handling(op: str, domain: str, lowerings, schemas) -> str:
    if domain not in ("", "ai.onnx"):
        return "not supported (domain)"
    if op in lowerings:
        return "kernel"
    s = schemas.get(op)
    if s is not None and (s.has_function or s.has_context_dependent_function):
        return "function expansion"
    if op in ("Shape", "Size", "Constant", "EyeLike", "ConstantOfShape"):
        return "folded"
    return "not supported"


def write_expected(results, old) -> None:
    failing = {n: r for n, r in results.items() if r[0] in ("fail", "xfail")
               and "RealModel" not in r[2]}
    lines = ['"""ONNX backend-suite cases that fail through our backend, each with a one-line',
             "reason (generated by scripts/gen_onnx_operator_table.py --update-expected; edit",
             'the reasons freely, the script keeps an existing reason while the case fails)."""',
             "", "EXPECTED_FAILURES = {"]
    for name in sorted(failing):
        status, msg, _ = failing[name]
        reason = old.get(name) if status == "xfail" and old.get(name) else None
        reason = reason or WRONG_VALUE_REASONS.get(name) or short_reason(msg)
        lines.append(f"    {name!r}: {reason!r},")
    lines += ["}", ""]
    with open(EXPECTED, "w") as f:
        f.write("\n".join(lines))


def write_doc(results) -> None:
    from megcc_builder.kernels import REGISTRY as LOWERINGS
    from onnx_expected_failures import EXPECTED_FAILURES

    models = node_models()
    schemas = {}
    versions = collections.defaultdict(set)
    for s in onnx.defs.get_all_schemas_with_history():
        versions[(s.domain, s.name)].add(s.since_version)
        if s.domain in ("", "ai.onnx"):
            cur = schemas.get(s.name)
            if cur is None or s.since_version > cur.since_version:
                schemas[s.name] = s
    per_op = collections.defaultdict(lambda: {"pass": 0, "fail": 0, "opsets": set(),
                                              "dtypes": set(), "reasons": collections.Counter()})
    categories = collections.defaultdict(lambda: [0, 0])
    for name, (status, msg, cls) in results.items():
        cat = cls.split("OnnxBackend")[-1].replace("Test", "")
        ok = status in ("pass", "xpass")
        categories[cat][0 if ok else 1] += 1
        if cat != "NodeModel" or name not in models:
            continue
        model = models[name]
        op = main_op(name, model)
        entry = per_op[op]
        if ok:
            entry["pass"] += 1
            entry["opsets"].update(i.version for i in model.opset_import
                                   if i.domain in ("", "ai.onnx"))
            entry["dtypes"].update(model_dtypes(model))
        else:
            entry["fail"] += 1
            entry["reasons"][EXPECTED_FAILURES.get(name) or short_reason(msg)] += 1

    out = ["# ONNX operators", "",
           "Generated by `scripts/gen_onnx_operator_table.py` from a run of ONNX "
           f"{onnx.__version__}'s backend test suite through `megcc_builder.onnx_backend` "
           "(every case compiled to C, built and run on the host, checked with ONNX's "
           "tolerances). Do not edit by hand.", "",
           "How an operator runs: **kernel** (a generated C kernel), **function expansion** "
           "(the operator's ONNX function body is inlined and its operators are compiled), "
           "**folded** (computed at compile time; its result is a constant). Shapes are static: "
           "inputs that set an output shape (a Reshape's shape, Reduce axes, TopK's K, ...) must "
           "be constants for `megcc compile`; the ONNX backend compiles a plan specialised on "
           "their values at run time and recompiles when they change.", "",
           "## Suite results", "", "| Category | Passed | Failed | Total |", "|---|---:|---:|---:|"]
    for cat, (p, f) in sorted(categories.items()):
        out.append(f"| {cat} | {p} | {f} | {p + f} |")
    out += ["", "Node cases are attributed to the operator they test (an `_expanded` case to "
            "the operator whose function it expands). Opsets and dtypes are those of passing "
            "cases.", ""]
    for domain in sorted({d for d, _ in versions}, key=lambda d: (d not in ("", "ai.onnx"), d)):
        out += [f"## Domain `{domain or 'ai.onnx'}`", "",
                "| Operator | Opset versions | Runs as | Passing opsets | Passing input dtypes "
                "| Cases passed | Cases failed | Main failure reason |",
                "|---|---|---|---|---|---:|---:|---|"]
        for (d, op) in sorted(k for k in versions if k[0] == domain):
            e = per_op.get(op) if d in ("", "ai.onnx") else None
            vs = ", ".join(str(v) for v in sorted(versions[(d, op)]))
            how = handling(op, d, LOWERINGS, schemas)
            if e is None:
                out.append(f"| {op} | {vs} | {how} | | | 0 | 0 | |")
                continue
            reason = e["reasons"].most_common(1)[0][0] if e["reasons"] else ""
            reason = reason.replace("|", "\\|")
            out.append(f"| {op} | {vs} | {how} | {', '.join(map(str, sorted(e['opsets'])))} | "
                       f"{', '.join(sorted(e['dtypes']))} | {e['pass']} | {e['fail']} | "
                       f"{reason} |")
        out.append("")
    with open(DOC, "w") as f:
        f.write("\n".join(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--junit", action="append",
                    help="an existing pytest --junitxml result of the suite files (repeatable: "
                         "later files override earlier ones case by case)")
    ap.add_argument("--update-expected", action="store_true",
                    help="rewrite tests/onnx_expected_failures.py from the results")
    args = ap.parse_args()
    junits = args.junit
    if not junits:
        junits = [os.path.join(tempfile.mkdtemp(prefix="megcc-onnx-suite-"), "suite.xml")]
        run_suite(junits[0])
    results = {}
    for junit in junits:
        results.update(read_junit(junit))
    if args.update_expected:
        from onnx_expected_failures import EXPECTED_FAILURES

        write_expected(results, EXPECTED_FAILURES)
    write_doc(results)
    passed = sum(1 for n, r in results.items()
                 if r[0] in ("pass", "xpass") and "NodeModel" in r[2])
    total = sum(1 for n, r in results.items() if "NodeModel" in r[2])
    print(f"node cases: {passed} of {total} pass; wrote {os.path.relpath(DOC, ROOT)}")


if __name__ == "__main__":
    main()
