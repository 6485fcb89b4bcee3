"""The kernel registry's own invariants (kernels/registry.py), checked over every
registered implementation, so that a new module that breaks one fails here by name."""
import pytest

from megcc_builder.kernels import REGISTRY, registry
from megcc_builder.isa import LEVELS, spec

ALL = sorted({impl for impls in REGISTRY.values() for impl in impls}, key=lambda i: i.name)


def test_names_are_unique():
    names = [impl.name for impl in ALL]
    assert len(names) == len(set(names))


# Ops that only the NCHW88 layout pass creates, and only for a level with float16
# arithmetic (options.nchw88_refusal): they have no portable implementation to fall back on.
NCHW88_ONLY_OPS = {"ConvNCHW88", "PoolNCHW88", "GlobalPoolNCHW88", "ChannelUnzipNCHW88"}


def test_every_op_has_exactly_one_portable_implementation():
    """The generic level (and every level, as a fallback) can compute every op, and never
    has two portable candidates to tell apart without a cost model."""
    bad = {op: [i.name for i in impls if not i.requires]
           for op, impls in REGISTRY.items()
           if op not in NCHW88_ONLY_OPS and sum(1 for i in impls if not i.requires) != 1}
    assert not bad, bad


def test_nchw88_only_ops_are_made_only_where_their_kernels_run():
    from megcc_builder.options import nchw88_refusal

    assert NCHW88_ONLY_OPS <= set(REGISTRY)
    levels_with_kernels = {level for level in LEVELS
                           if all(any(registry.provides(spec(level), i.requires)
                                      for i in REGISTRY[op]) for op in NCHW88_ONLY_OPS)}
    assert "arm64-fp16" in levels_with_kernels
    for level in LEVELS:
        allowed = not nchw88_refusal(level, True)
        assert allowed == (level in levels_with_kernels), level


def test_every_requirement_is_offered_by_some_level():
    for impl in ALL:
        assert any(registry.provides(spec(level), impl.requires) for level in LEVELS), impl.name


def test_competing_implementations_have_costs():
    """Wherever a level lets two implementations of an op apply, both need an estimate."""
    for op, impls in REGISTRY.items():
        for level in LEVELS:
            isa = spec(level)
            usable = [i for i in impls if registry.provides(isa, i.requires)]
            if len(usable) > 1:
                missing = [i.name for i in usable if i.cost is None]
                assert not missing, (op, level, missing)
                assert isa.core is not None, level


def test_only_restricts_and_refuses_unknown_names():
    with pytest.raises(KeyError, match="no implementation named"):
        with registry.only("conv.no_such_thing"):
            pass
    assert not registry._ONLY
