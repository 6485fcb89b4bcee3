"""Drop ops whose outputs nothing needs, and tensors nothing references."""
from ..ir import Graph


def eliminate_dead_code(graph: Graph) -> Graph:
    needed = set(graph.outputs)
    kept = []
    for op in reversed(graph.ops):
        if any(o in needed for o in op.outputs if o):
            kept.append(op)
            needed.update(i for i in op.inputs if i)
    graph.ops = kept[::-1]
    live = needed | set(graph.inputs) | {o for op in graph.ops for o in op.outputs if o}
    graph.tensors = {n: t for n, t in graph.tensors.items() if n in live}
    return graph
