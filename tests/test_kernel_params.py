"""Typed kernel params (codegen/params.py): the schema's generated C, its pack order, and
generated kernels free of unused locals (every param is unpacked only where a body uses
it; no `(void)x;` silencers in the templates)."""
import os
import re
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.codegen.kernel import kernel_source
from megcc_builder.codegen.params import f32, i32, i64, int_constants, schema, table
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import RUNTIME_DIR

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


# --- the schema ---------------------------------------------------------------------------

POOL = schema(i32("N", "batch"), i32("H", "height"), f32("eps", "epsilon"),
              i64("nbytes", "bytes"))
TABLES = schema(i32("rank", "rank"), table("dims", "rank", "extents"),
                table("st", "rank", "strides"), i32("n", "elements"), table("v", 2, "value"))


def test_unpack_names_and_comments_only_the_used_params():
    text = POOL.unpack("for (i = 0; i < N; ++i) y[i] = x[i] + eps;")
    assert text == ("    const int32_t N = p[0];  /* batch */\n"
                    "    const float eps = megcc_f32_from_bits(p[2]);  /* epsilon */\n")


def test_unpack_word_boundaries():
    # "NH" and "x.N" style substrings are not uses of N or H
    assert POOL.unpack("int32_t NH = 0; (void)NH;") == ""
    assert "int64_t nbytes = p[3]" in POOL.unpack("memcpy(y, x, (size_t)nbytes);")


def test_tables_after_variable_tables_get_symbolic_offsets_and_their_lengths():
    text = TABLES.unpack("y[0] = st[0] + n + v[1];")
    # st and n need rank (their offsets), dims is unused
    assert text == ("    const int32_t rank = p[0];  /* rank */\n"
                    "    const int32_t *st = p + 1 + rank;  /* strides */\n"
                    "    const int32_t n = p[1 + 2 * rank];  /* elements */\n"
                    "    const int32_t *v = p + 2 + 2 * rank;  /* value */\n")


def test_pack_orders_by_schema_and_checks_every_param():
    assert POOL.pack(eps=7, nbytes=9, H=3, N=1) == [1, 3, 7, 9]
    assert TABLES.pack(rank=2, dims=[4, 5], st=[5, 1], n=20, v=[0, 0]) == \
        [2, 4, 5, 5, 1, 20, 0, 0]
    with pytest.raises(ValueError, match="missing"):
        POOL.pack(N=1, H=3, eps=7)
    with pytest.raises(ValueError, match="unknown"):
        POOL.pack(N=1, H=3, eps=7, nbytes=9, W=4)
    with pytest.raises(ValueError, match="table dims"):
        TABLES.pack(rank=3, dims=[4, 5], st=[5, 1, 1], n=20, v=[0, 0])


def test_describe_names_packed_params():
    words = TABLES.pack(rank=2, dims=[4, 5], st=[5, 1], n=20, v=[0, 0])
    assert TABLES.describe(words) == "rank=2 dims=[4,5] st=[5,1] n=20 v=[0,0]"
    assert POOL.describe([1, 3, 0x3F800000, 9]) == "N=1 H=3 eps=1 nbytes=9"
    assert POOL.describe([1, 3]) == ""  # not this schema's params


def test_schema_refuses_unknown_length_names_and_duplicates():
    with pytest.raises(ValueError):
        schema(table("t", "rank", "x"))
    with pytest.raises(ValueError):
        schema(i32("a", "x"), i32("a", "y"))


def test_kernel_source_silences_only_unused_arguments():
    src = kernel_source("k", "    float *y = (float *)out_ptrs[0];\n    y[0] = (float)N;\n",
                        params=POOL)
    assert "(void)workspace; (void)in_ptrs;" not in src
    assert re.search(r"\(void\)in_ptrs; \(void\)workspace;", src)
    assert "(void)p;" not in src and "(void)out_ptrs;" not in src
    assert src.index("out_ptrs[0];") < src.index("const int32_t N = p[0]")


def test_unpacking_goes_before_the_first_top_level_use_not_into_a_loop():
    body = ("    float *y = (float *)out_ptrs[0];\n    int32_t i;\n"
            "    for (i = 0; i < 4; ++i)\n        y[i] = (float)H;\n")
    src = kernel_source("k", body, params=POOL)
    assert src.index("const int32_t H") < src.index("for (i = 0")


def test_int_constants_only_the_used_ones():
    assert int_constants("x = KH * 2;", KH=3, KW=4) == "    const int32_t KH = 3;\n"


# --- generated kernels: no unused locals ----------------------------------------------------

STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Werror=unused-variable", "-Werror=unused-but-set-variable"]


def _node_model(path, op_type, inputs, attrs=None, consts=(), n_out=1, opset=18):
    """A one-node model: inputs as (name, shape, elem type); consts as (name, array)."""
    graph = helper.make_graph(
        [helper.make_node(op_type, [n for n, *_ in inputs] + [n for n, _ in consts],
                          [f"y{k}" for k in range(n_out)], **(attrs or {}))],
        op_type, [helper.make_tensor_value_info(n, t, s) for n, s, t in inputs],
        [helper.make_tensor_value_info(f"y{k}", TensorProto.UNDEFINED, None)
         for k in range(n_out)],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in consts])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)
    return path


F, I64 = TensorProto.FLOAT, TensorProto.INT64
X4 = [("x", [1, 4, 6, 6], F)]


def _op_models(d):
    """Models for the kernel families the light models do not reach."""
    m = lambda name, *a, **k: ModelSpec(name, _node_model(os.path.join(d, name + ".onnx"),  # noqa: E731
                                                          *a, **k))
    return [
        m("pad_reflect", "Pad", X4, {"mode": "reflect"}, [("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1]))]),
        m("pad_constant", "Pad", X4, {}, [("pads", np.array([0, 1, 1, 2, 0, 0, 2, 1])),
                                          ("value", np.array(1.5, np.float32))]),
        m("resize_linear", "Resize", X4, {"mode": "linear"},
          [("roi", np.array([], np.float32)), ("scales", np.array([1, 1, 2, 1.5], np.float32))]),
        m("resize_nearest", "Resize", X4, {"mode": "nearest"},
          [("roi", np.array([], np.float32)), ("scales", np.array([1, 1, 2, 2], np.float32))]),
        m("topk", "TopK", X4, {"axis": 1}, [("k", np.array([2]))], n_out=2),
        m("scatter_elements", "ScatterElements",
          X4 + [("i", [1, 4, 6, 6], I64), ("u", [1, 4, 6, 6], F)], {"axis": 2, "reduction": "max"}),
        m("gather_elements", "GatherElements", X4 + [("i", [1, 4, 6, 6], I64)], {"axis": 3}),
        m("gather_nd", "GatherND", X4 + [("i", [1, 2, 2], I64)], {"batch_dims": 1}),
        m("scatter_nd", "ScatterND", X4 + [("i", [2, 2], I64), ("u", [2, 6, 6], F)],
          {"reduction": "add"}),
        m("maxpool_idx", "MaxPool", X4, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, n_out=2),
        m("avgpool3d", "AveragePool", [("x", [1, 2, 4, 4, 4], F)], {"kernel_shape": [2, 2, 2]}),
        m("avgpool_incpad", "AveragePool", X4, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                                 "count_include_pad": 1}),
        m("lppool", "LpPool", X4, {"kernel_shape": [2, 2]}),
        m("hardmax", "Hardmax", X4, {"axis": 1}),
        m("hardmax_last", "Hardmax", X4, {"axis": -1}),
        m("softmax_strided", "Softmax", X4, {"axis": 1}),
        m("logsoftmax", "LogSoftmax", X4, {"axis": -1}),
        m("layernorm", "LayerNormalization", X4 + [("g", [6], F)], {"axis": -1}, n_out=3),
        m("gemm_c", "Gemm", [("a", [4, 6], F), ("b", [6, 5], F), ("c", [5], F)],
          {"alpha": 0.5, "beta": 2.0}),
        m("gemm_tt", "Gemm", [("a", [6, 4], F), ("b", [5, 6], F)], {"transA": 1, "transB": 1}),
        m("matmul", "MatMul", [("a", [2, 3, 4, 6], F), ("b", [3, 6, 5], F)]),
        m("lrn", "LRN", X4, {"size": 3}),
        m("cumsum", "CumSum", X4, {"exclusive": 1, "reverse": 1}, [("axis", np.array(2))]),
        m("onehot", "OneHot", [("i", [3, 2], I64)], {"axis": 1},
          [("depth", np.array(5)), ("values", np.array([0.0, 1.0], np.float32))]),
        m("trilu", "Trilu", X4, {"upper": 0}),
        m("reverse_sequence", "ReverseSequence", [("x", [4, 3, 2], F), ("l", [3], I64)],
          {"batch_axis": 1, "time_axis": 0}),
        m("cast_f16", "Cast", X4, {"to": TensorProto.FLOAT16}),
        m("argmax", "ArgMax", X4, {"axis": 1}),
        m("reduce_lse", "ReduceLogSumExp", X4, {}, [("axes", np.array([1, 3]))]),
        m("reduce_mean", "ReduceMean", X4, {"keepdims": 0}, [("axes", np.array([2]))]),
        m("instancenorm", "InstanceNormalization", X4 + [("s", [4], F), ("b", [4], F)]),
        m("batchnorm", "BatchNormalization", X4 + [(n, [4], F) for n in "sbmv"]),
        m("convtranspose", "ConvTranspose", X4 + [("w", [4, 2, 3, 3], F)], {"strides": [2, 2]}),
        m("lpnorm", "LpNormalization", X4, {"axis": 1, "p": 1}),
        m("unpool", "MaxUnpool", [("x", [1, 4, 3, 3], F), ("i", [1, 4, 3, 3], I64)],
          {"kernel_shape": [2, 2], "strides": [2, 2]}),
        m("split", "Split", X4, {"axis": 1, "num_outputs": 2}, n_out=2),
        m("concat", "Concat", X4 + [("z", [1, 2, 6, 6], F)], {"axis": 1}),
        m("tile", "Tile", X4, {}, [("r", np.array([1, 2, 1, 2]))]),
        m("prelu", "PRelu", X4 + [("s", [4, 1, 1], F)]),
        m("where", "Where", [("c", [6], TensorProto.BOOL), ("a", [4, 1], F), ("b", [6], F)]),
        m("dropout_mask", "Dropout", X4, n_out=2),
        m("global_maxpool", "GlobalMaxPool", X4),
        m("conv_dw", "Conv", X4, {"group": 4, "pads": [1, 1, 1, 1]},
          [("w", np.ones((4, 1, 3, 3), np.float32))]),
        m("conv_3x3", "Conv", [("x", [1, 8, 16, 16], F)], {"pads": [1, 1, 1, 1]},
          [("w", np.ones((16, 8, 3, 3), np.float32)), ("b", np.ones(16, np.float32))]),
        m("conv_s2", "Conv", X4, {"strides": [2, 2], "pads": [0, 0, 1, 1]},
          [("w", np.ones((8, 4, 3, 3), np.float32))]),
        m("maxpool_plane", "MaxPool", [("x", [1, 4, 16, 16], F)], {"kernel_shape": [3, 3],
                                                                  "strides": [2, 2]}),
        m("avgpool_plane", "AveragePool", [("x", [1, 4, 16, 16], F)], {"kernel_shape": [3, 3],
                                                                      "pads": [1, 1, 1, 1]}),
    ]


def _strict_compile(kernels_c: str, cc: str, flags=()) -> None:
    r = subprocess.run([cc, *STRICT, *flags, "-I", os.path.join(RUNTIME_DIR, "include"), "-c",
                        kernels_c, "-o", kernels_c + ".o"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]


def _kernel_bodies(source: str):
    """(name, body) of every kernel function (`static int name(void *const *in_ptrs, ...`)."""
    for m in re.finditer(r"static int (\w+)\(void \*const \*in_ptrs.*?\n\}\n", source, re.S):
        yield m.group(1), m.group(0)


@pytest.fixture(scope="module", params=["generic", "x86_64-v3"])
def bundle(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"params-{request.param}")
    specs = [ModelSpec(m, os.path.join(LIGHT, f"light_{m}.onnx"))
             for m in ("squeezenet", "inception_v2", "shufflenet")]
    specs += _op_models(str(out))
    compile_bundle(specs, str(out / "build"), save_c_array=False, isa=request.param)
    return request.param, str(out / "build" / "kernels.c")


def test_generated_kernels_have_no_unused_locals(bundle):
    level, kernels_c = bundle
    _strict_compile(kernels_c, "gcc", ["-march=x86-64-v3"] if level == "x86_64-v3" else [])


def test_kernels_read_params_only_through_the_schema(bundle):
    _, kernels_c = bundle
    with open(kernels_c) as f:
        source = f.read()
    bodies = dict(_kernel_bodies(source))
    assert len(bodies) > 40
    for name, body in bodies.items():
        # the only silencers left are kernel_source's, for unused kernel arguments
        silenced = set(re.findall(r"\(void\)\s*(\w+)\s*;", body))
        assert silenced <= {"in_ptrs", "out_ptrs", "p", "workspace", "par"}, (name, silenced)
        # p is read only by the named unpacking lines (a kernel split by the parallel-for
        # hands p on to its job, whose function unpacks it the same way)
        for line in body.splitlines()[1:]:  # after the signature
            if re.search(r"\bp\b", line) and "(void)p;" not in line and \
                    line.strip() != "job.p = p;":
                assert re.match(r"    const (int32_t|int64_t|float) \*?\w+ = "
                                r"(p\b|megcc_f32_from_bits\(p\[)", line), (name, line)
