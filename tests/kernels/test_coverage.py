"""Every registered implementation is exercised by at least one case of tests/kernels/
(adding an implementation without cases fails here), and every case runs somewhere."""
from kernels.conv.cases import BOOK as CONV
from kernels.elementwise.cases import BOOK as ELEMENTWISE
from kernels.harness import every_impl_name
from kernels.matmul.cases import BOOK as MATMUL
from kernels.pool.cases import BOOK as POOL
from kernels.reduce.cases import BOOK as REDUCE

BOOKS = [CONV, MATMUL, POOL, ELEMENTWISE, REDUCE]

# Explicit exceptions: implementations whose cases have not moved into tests/kernels/ yet.
# They are still tested, one implementation each (portable C), by the CaseBook files named
# here; moving those cases into norm/, data/, index/ (and the ConvTranspose/Resize/PRelu/
# unpool ones into conv/, data/, elementwise/, pool/) removes the entries.
NOT_YET_MOVED = {
    "norm.generic_f32.lower_batchnorm": "test_kernels_nn.py",
    "norm.generic_f32.lower_instancenorm": "test_kernels_nn.py",
    "norm.generic_f32.lower_layernorm": "test_kernels_nn.py",
    "norm.generic_f32.lower_lrn": "test_kernels_nn.py",
    "norm.lp_generic_f32.lower_lp_normalization": "test_kernels_nn.py",
    "conv.transpose_generic_f32.lower_conv_transpose": "test_kernels_nn.py",
    "elementwise.prelu_generic_f32.lower_prelu": "test_kernels_nn.py",
    "data.resize_generic.lower_resize": "test_kernels_nn.py",
    "pool.direct_generic_f32.lower_lp_pool": "test_kernels_nn.py",
    "pool.direct_generic_f32.lower_global_lp_pool": "test_kernels_nn.py",
    "pool.unpool_generic.lower_max_unpool": "test_kernels_nn.py",
    "data.views.lower_view": "test_kernels_data.py",
    "data.copy_generic.lower_transpose": "test_kernels_data.py",
    "data.copy_generic.lower_slice": "test_kernels_data.py",
    "data.copy_generic.lower_expand": "test_kernels_data.py",
    "data.copy_generic.lower_tile": "test_kernels_data.py",
    "data.copy_generic.lower_space_depth": "test_kernels_data.py",
    "data.copy_generic.lower_concat": "test_kernels_data.py",
    "data.copy_generic.lower_split": "test_kernels_data.py",
    "data.copy_generic.lower_gather": "test_kernels_data.py",
    "data.copy_generic.lower_pad": "test_kernels_data.py",
    "data.copy_generic.lower_cast": "test_kernels_data.py",
    "index.generic.lower_gather_elements": "test_kernels_data.py",
    "index.generic.lower_scatter_elements": "test_kernels_data.py",
    "index.generic.lower_gather_nd": "test_kernels_data.py",
    "index.generic.lower_scatter_nd": "test_kernels_data.py",
    "index.generic.lower_one_hot": "test_kernels_data.py",
    "index.generic.lower_cumsum": "test_kernels_data.py",
    "index.generic.lower_topk": "test_kernels_data.py",
    "index.generic.lower_trilu": "test_kernels_data.py",
    "index.generic.lower_reverse_sequence": "test_kernels_data.py",
}

# Explicit exceptions: ops no one-node case produces. Graph passes create them from several
# nodes (the NCHW44 layout pass: relayouts and pools following an NCHW44 conv; fusion:
# FusedElementwise chains); they are exercised by the tests named here.
PASS_MADE = {
    "data.relayout_generic_f32.lower_relayout": "test_layout_nchw44.py",
    "data.relayout_neon_f32.lower_relayout": "test_layout_nchw44.py",
    "pool.nchw44_generic_f32.lower_pool_nchw44": "test_layout_nchw44.py (followers)",
    "pool.nchw44_generic_f32.lower_global_pool_nchw44": "test_layout_nchw44.py (followers)",
    "elementwise.generic.lower_fused": "test_kernels_core.py (fused chains)",
}
EXCEPTIONS = {**NOT_YET_MOVED, **PASS_MADE}


def exercised():
    return {name for book in BOOKS for name, _, _ in book.runs()}


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
