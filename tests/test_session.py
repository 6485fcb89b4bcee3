"""megcc_builder.InferenceSession: onnxruntime's interface, run in this process, against
onnxruntime itself as the oracle; its errors; the zero-copy I/O leaving the caller's arrays
alone; several plans; compiled directories; the runner-process mode giving the same bytes."""
import os
import subprocess
import sys
import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import megcc_builder
from megcc_builder.native import MegccRuntimeError
from megcc_builder.session import InferenceSession, InvalidInput
from tool_support import need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(7)


def small_cnn(batch=1, size=12, dim_param=False) -> onnx.ModelProto:
    """Conv+Relu -> in-place Relu/Add chain -> global pool -> Gemm: two outputs."""
    w1 = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = RNG.standard_normal(8).astype(np.float32)
    w2 = RNG.standard_normal((5, 8)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Add", ["r", "c"], ["feat"]),
             helper.make_node("GlobalAveragePool", ["feat"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w2"], ["logits"], transB=1)]
    shape = ["N", 3, "H", "W"] if dim_param else [batch, 3, size, size]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("feat", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def ort_session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def cnn():
    need_tool("gcc")
    model = small_cnn()
    return model, InferenceSession(model), ort_session(model)


def test_outputs_match_onnxruntime_and_describe_io_like_it(cnn):
    model, sess, ref = cnn
    assert isinstance(sess, megcc_builder.InferenceSession)
    for ours, theirs in ((sess.get_inputs(), ref.get_inputs()),
                         (sess.get_outputs(), ref.get_outputs())):
        assert [a.name for a in ours] == [b.name for b in theirs]
        assert [a.type for a in ours] == [b.type for b in theirs]
    assert sess.get_inputs()[0].shape == [1, 3, 12, 12]
    assert sess.get_outputs()[0].shape == [1, 5]
    for _ in range(3):
        x = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
        got = sess.run(None, {"x": x})
        want = ref.run(None, {"x": x})
        assert len(got) == 2
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    # named outputs, in the asked order
    feat, logits = sess.run(["feat", "logits"], {"x": x})
    np.testing.assert_allclose(logits, want[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feat, want[1], rtol=1e-4, atol=1e-4)


def test_inputs_are_read_in_place_but_never_changed_and_outputs_are_fresh(cnn):
    _, sess, ref = cnn
    x1 = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
    x2 = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
    keep1, keep2 = x1.copy(), x2.copy()
    out1 = sess.run(None, {"x": x1})
    out2 = sess.run(None, {"x": x2})
    assert np.array_equal(x1, keep1) and np.array_equal(x2, keep2)
    # the second run wrote new arrays: the first results are still the first input's
    for got, want in zip(out1, ref.run(None, {"x": keep1})):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert not np.shares_memory(out1[0], out2[0])
    # non-contiguous, read-only and misaligned inputs take the copy path: the same bytes
    big = np.zeros((1, 3, 12, 24), np.float32)
    big[..., ::2] = x2
    strided = big[..., ::2]
    assert not strided.flags.c_contiguous
    readonly = x2.copy()
    readonly.flags.writeable = False
    raw = bytearray(x2.nbytes + 1)  # a float array at an odd address
    misaligned = np.frombuffer(raw, np.float32, count=x2.size, offset=1).reshape(x2.shape)
    misaligned[...] = x2
    assert not misaligned.flags.aligned
    for variant in (strided, readonly, misaligned, x2):
        for a, b in zip(sess.run(None, {"x": variant}), out2):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("size", [12, 6])
def test_the_same_array_again_is_read_again_and_small_outputs_stay_fresh(cnn, size):
    """run() keeps the address of the array bound last and copies small outputs out of a
    view kept from run to run: an array changed in place is read with its new values, a new
    array is read, results of earlier runs are never overwritten, and the timing and
    profiling calls in between leave run() right. Size 12: one output written in place
    (feat, 4608 bytes), one copied (logits); size 6: both copied (run()'s shortest path)."""
    if size == 12:
        _, sess, ref = cnn
    else:
        model = small_cnn(size=size)
        sess, ref = InferenceSession(model), ort_session(model)
    small = megcc_builder.native.SMALL_OUTPUT
    assert 5 * 4 <= small and (8 * size * size * 4 <= small) == (size == 6)
    shape = (1, 3, size, size)
    x = RNG.standard_normal(shape).astype(np.float32)
    results, wants = [], []
    for step in range(4):
        if step == 2:
            x = RNG.standard_normal(shape).astype(np.float32)  # another array
        else:
            x[...] = RNG.standard_normal(shape)  # the same array, new values
        results.append(sess.run(None, {"x": x}))
        wants.append(ref.run(None, {"x": x}))
        if step == 1:
            net = sess.native_network()
            net.time_forward([x * 2], 0, 2)
            net.profile([x * 3])
    for got, want in zip(results, wants):  # every earlier result is still its own
        for g, w in zip(got, want):
            assert g.flags.owndata and g.flags.writeable
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    for a, b in zip(results[0], results[1]):
        assert not np.shares_memory(a, b)


def test_feeds_that_do_not_fit_raise_clear_errors(cnn):
    _, sess, _ = cnn
    x = np.zeros((1, 3, 12, 12), np.float32)
    with pytest.raises(InvalidInput, match=r"input 'x': expected float32.*got float64"):
        sess.run(None, {"x": x.astype(np.float64)})
    with pytest.raises(InvalidInput, match=r"input 'x': shape \(1, 3, 12, 11\) was not "
                                           r"compiled \(compiled: \(1, 3, 12, 12\)\)"):
        sess.run(None, {"x": x[..., :11]})
    with pytest.raises(InvalidInput, match="missing input 'x'"):
        sess.run(None, {})
    with pytest.raises(InvalidInput, match="'y' is not an input of the model"):
        sess.run(None, {"x": x, "y": x})
    with pytest.raises(InvalidInput, match="'nope' is not an output of the model"):
        sess.run(["nope"], {"x": x})
    # and the session still works after each refusal
    assert sess.run(["logits"], {"x": x})[0].shape == (1, 5)


def test_one_plan_per_input_shape_chosen_by_the_feeds(tmp_path):
    need_tool("gcc")
    model = small_cnn(dim_param=True)
    shapes = [{"x": (1, 3, 12, 12)}, {"x": (2, 3, 9, 7)}]
    sess = InferenceSession(model, input_shapes=shapes)
    ref = ort_session(model)
    for shape in ((2, 3, 9, 7), (1, 3, 12, 12), (2, 3, 9, 7)):
        x = RNG.standard_normal(shape).astype(np.float32)
        for g, w in zip(sess.run(None, {"x": x}), ref.run(None, {"x": x})):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
        assert sess.get_inputs()[0].shape == list(shape)
    with pytest.raises(InvalidInput, match=r"compiled: \(1, 3, 12, 12\) or \(2, 3, 9, 7\)"):
        sess.run(None, {"x": np.zeros((1, 3, 5, 5), np.float32)})


def test_compiled_directory_and_the_runner_process_give_the_same_bytes(tmp_path):
    need_tool("gcc")
    model = small_cnn()
    onnx.save(model, str(tmp_path / "cnn.onnx"))
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile",
                    str(tmp_path / "cnn.onnx"), "-o", str(out), "--isa", "native"], cwd=ROOT,
                   check=True, capture_output=True)
    x = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
    in_process = InferenceSession(str(out)).run(None, {"x": x})
    with InferenceSession(str(out), subprocess=True) as runner:
        assert runner.subprocess
        by_runner = runner.run(None, {"x": x})
    for a, b in zip(in_process, by_runner):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    with pytest.raises(Exception, match="no model 'other'"):
        InferenceSession(str(out), model_name="other")


def test_runtime_errors_carry_the_runtime_message(tmp_path):
    """A corrupted model: the runtime's own validation message, as a Python exception."""
    need_tool("gcc")
    out = tmp_path / "out"
    from megcc_builder.compiler import ModelSpec, compile_bundle

    onnx.save(small_cnn(), str(tmp_path / "cnn.onnx"))
    compile_bundle([ModelSpec("cnn", str(tmp_path / "cnn.onnx"), [])], str(out),
                   save_c_array=False)
    blob = bytearray((out / "cnn.tiny").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (out / "cnn.tiny").write_bytes(bytes(blob))
    with pytest.raises(MegccRuntimeError, match=r"cannot load the model: .*CRC"):
        InferenceSession(str(out))


def test_two_sessions_run_concurrently_from_python_threads(cnn):
    """ctypes releases the GIL in the forward: two sessions in two threads, right results."""
    model, sess_a, ref = cnn
    sess_b = InferenceSession(model)
    xs = [RNG.standard_normal((1, 3, 12, 12)).astype(np.float32) for _ in range(2)]
    wants = [ref.run(None, {"x": x}) for x in xs]
    errors = []

    def loop(sess, x, want):
        try:
            for _ in range(50):
                for g, w in zip(sess.run(None, {"x": x}), want):
                    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(s, x, w))
               for s, x, w in zip((sess_a, sess_b), xs, wants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_an_input_passed_straight_through_is_copied_out(tmp_path):
    """Identity-like graphs: an output that is the input tensor (or two outputs that are
    one tensor) cannot be written in place; the results are still right."""
    need_tool("gcc")
    nodes = [helper.make_node("Identity", ["x"], ["y"]),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Identity", ["r"], ["r2"])]
    vi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "r", "r2")]
    model = helper.make_model(helper.make_graph(nodes, "id", [vi], outs),
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    sess = InferenceSession(model)
    assert [o.name for o in sess.get_outputs()] == ["y", "r", "r2"]
    x = RNG.standard_normal((2, 5)).astype(np.float32)
    y, r, r2 = sess.run(None, {"x": x})
    assert np.array_equal(y, x) and np.array_equal(r, np.maximum(x, 0))
    assert np.array_equal(r2, r) and not np.shares_memory(y, x)
    # again, with the same array changed in place and with another array
    for feed in (x.__imul__(-1), RNG.standard_normal((2, 5)).astype(np.float32)):
        y2, r_2, r2_2 = sess.run(None, {"x": feed})
        assert np.array_equal(y2, feed) and np.array_equal(r_2, np.maximum(feed, 0))
        assert np.array_equal(r2_2, r_2) and not np.shares_memory(y2, y)
    y, r, r2 = sess.run(None, {"x": x})
    # the same from a compiled directory: the manifest keeps the names the blob merges
    onnx.save(model, str(tmp_path / "id.onnx"))
    subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile",
                    str(tmp_path / "id.onnx"), "-o", str(tmp_path / "out"), "--isa", "native"],
                   cwd=ROOT, check=True, capture_output=True)
    compiled = InferenceSession(str(tmp_path / "out"))
    assert [o.name for o in compiled.get_outputs()] == ["y", "r", "r2"]
    assert [a.tobytes() for a in compiled.run(None, {"x": x})] == [y.tobytes(), r.tobytes(),
                                                                   r2.tobytes()]


def test_an_input_read_in_place_and_passed_through_follows_each_run():
    """An output equal to the input, which is read in place from each new caller array:
    every result is its own run's input, kept after later runs."""
    need_tool("gcc")
    vi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "id", [vi],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
        opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    sess = InferenceSession(model)
    assert sess.native_network()._zero_copy == [True]
    kept = []
    for _ in range(3):
        x = RNG.standard_normal((3, 4)).astype(np.float32)
        [y] = sess.run(None, {"x": x})
        assert np.array_equal(y, x) and not np.shares_memory(y, x)
        kept.append((x, y))
    for x, y in kept:
        assert np.array_equal(y, x)


def test_sanitizer_builds_fall_back_to_the_runner_process(monkeypatch):
    need_tool("gcc")
    model = small_cnn(size=6)
    monkeypatch.setenv("MEGCC_SANITIZE", "1")
    sess = InferenceSession(model)
    assert sess.subprocess
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    for g, w in zip(sess.run(None, {"x": x}), ort_session(model).run(None, {"x": x})):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_model_options_reach_the_compiler(cnn):
    """enable_compress_fp16 (like every `megcc compile` model option) is honoured: the
    weights are rounded to float16 -- the outputs equal onnxruntime run on the model with
    float16-rounded weights, and differ from the float32 session's."""
    model, sess, _ = cnn
    rounded = onnx.ModelProto()
    rounded.CopyFrom(model)
    for init in rounded.graph.initializer:
        if init.name in ("w1", "w2"):  # the conv and FC weights; biases stay float32
            w = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    compressed = InferenceSession(model, enable_compress_fp16=True)
    x = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
    got = compressed.run(None, {"x": x})
    want = ort_session(rounded).run(None, {"x": x})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    assert not np.array_equal(got[0], sess.run(None, {"x": x})[0])
