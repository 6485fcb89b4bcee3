"""Every registered implementation is exercised by at least one case of tests/kernels/
(adding an implementation without cases fails here), and every case runs somewhere."""
from kernels.conv.cases import BOOK as CONV
from kernels.data.cases import BOOK as DATA
from kernels.elementwise.cases import BOOK as ELEMENTWISE
from kernels.harness import every_impl_name
from kernels.index.cases import BOOK as INDEX
from kernels.matmul.cases import BOOK as MATMUL
from kernels.norm.cases import BOOK as NORM
from kernels.pool.cases import BOOK as POOL
from kernels.quant.cases import BOOK as QUANT
from kernels.reduce.cases import BOOK as REDUCE
from kernels.rnn.cases import BOOK as RNN
from kernels.signal.cases import BOOK as SIGNAL

BOOKS = [CONV, MATMUL, POOL, ELEMENTWISE, REDUCE, NORM, DATA, INDEX, QUANT, SIGNAL, RNN]

# Explicit exceptions: ops no one-node case produces. Graph passes create them from several
# nodes (the NCHW44 layout pass: relayouts and pools following an NCHW44 conv); they are
# exercised by the tests named here.
PASS_MADE = {
    "data.relayout_generic_f32.lower_relayout": "test_layout_nchw44.py",
    "data.relayout_neon_f32.lower_relayout": "test_layout_nchw44.py",
    "data.relayout_nchw88_f16.lower_relayout": "test_fp16_nchw88.py and the relayouts around "
                                               "every NCHW88 kernel case (n88_*)",
    "data.unzip_nchw88_f16": "test_fp16_nchw88.py (ShuffleNetV2 shuffle + split, "
                                  "against the NCHW float16 build, bit-exact)",
    "pool.nchw44_generic_f32.lower_pool_nchw44": "test_layout_nchw44.py (followers)",
    "pool.nchw44_generic_f32.lower_global_pool_nchw44": "test_layout_nchw44.py (followers)",
    # MegEngine's WarpPerspective opr (no ONNX node makes it): against MegEngine itself, every
    # border mode
    "data.warp_perspective_generic_f32.lower_warp_perspective": "test_mge_vision_oprs.py",
}
# Ops whose output size a kernel computes at run time (value symbols, docs/dynamic-shapes.md):
# the harness reads output shapes from the compiled plan, which holds their caps; they are
# checked against onnxruntime at several input values (host ASan/UBSan, arm64 under qemu)
# in test_value_shapes.py and by the ONNX conformance cases of their operators.
VALUE_SHAPED = {
    "index.count_generic.lower_nonzero": "test_value_shapes.py, test_nonzero_example",
    "index.count_generic.lower_range": "test_value_shapes.py, test_range_*, *window_expanded",
    "index.count_generic.lower_compress": "test_value_shapes.py, test_compress_*",
    "index.count_generic.lower_nms": "test_value_shapes.py, test_nonmaxsuppression_*",
    "data.computed_shape_generic.lower_constant_of_shape":
        "test_computed_shapes.py, test_constantofshape_*",
}
EXCEPTIONS = {**PASS_MADE, **VALUE_SHAPED}


def cv_exercised():
    """CV operators (tinycv) are tested against OpenCV by tests/test_cv.py: every
    implementation the requests of its cases select."""
    from cv_cases import requested
    from megcc_builder.cv import select

    levels = ("generic", "x86_64-v3", "arm64-neon", "armv7-neon")  # test_cv's platforms
    return {f.impl for level in levels for f in select(tuple(requested()), level)}


def exercised():
    return {name for book in BOOKS for name, _, _ in book.runs()} | cv_exercised()


def test_every_implementation_has_cases():
    missing = sorted(set(every_impl_name()) - exercised() - set(EXCEPTIONS))
    assert not missing, f"implementations no case in tests/kernels/ exercises: {missing}"


def test_exceptions_are_current():
    """An exception must name a registered implementation that has no case here yet."""
    stale = sorted(n for n in EXCEPTIONS if n not in every_impl_name() or n in exercised())
    assert not stale, f"remove from the exceptions: {stale}"


def test_every_case_runs():
    for book in BOOKS:
        ran = {cid for _, _, cid in book.runs()}
        assert ran == {c.id for c in book.cases}, book.family
