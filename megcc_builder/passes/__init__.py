"""Graph -> Graph rewrites, run in the order of `optimize`."""
from ..ir import Graph
from ..options import CompileOptions
from .canonicalize import canonicalize
from .dce import eliminate_dead_code
from .fold_batchnorm import fold_batchnorm
from .fuse import fuse_bias_and_activation, fuse_elementwise_chains
from .float16_regions import compute_float16_in_float32
from .transposes import eliminate_transposes, fold_nhwc_input_into_conv


def optimize(graph: Graph, options: CompileOptions = CompileOptions()) -> Graph:
    graph = canonicalize(graph)
    graph = compute_float16_in_float32(graph)
    graph = eliminate_transposes(graph)
    graph = eliminate_dead_code(graph)
    if options.fuse:
        graph = fold_batchnorm(graph)
        # (the NCHW44 convs read no fused residual; the NCHW88 ones, which take the region
        # first when both layouts are on, do)
        graph = fuse_bias_and_activation(
            graph, residual=not options.enable_nchw44 or options.enable_nchw88)
        graph = fuse_elementwise_chains(graph)
        graph = fold_nhwc_input_into_conv(graph)
        graph = eliminate_dead_code(graph)
    return graph
