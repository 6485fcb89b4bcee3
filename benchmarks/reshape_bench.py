"""Cost of a shape change on a dynamic plan (docs/dynamic-shapes.md): the runtime's
re-evaluation of every bound dimension, view offset and kernel parameter plus the arena
re-placement, in microseconds, for real models compiled once with run-time dimensions.

    python benchmarks/reshape_bench.py [--model ppocr_rec|ppocr_cls|ppocr_det|PATH.onnx]
                                       [--shapes "1,3,48,320;1,3,48,960"] [-n 2000]

The model is compiled without --input-shapes (its symbolic dimensions stay dynamic); a
small C program linked with the runtime and the generated kernels alternates the input
between two shapes (setting the same shape again is free) and times
megcc_network_set_input_shape + megcc_network_required_arena_size, which evaluates the
plan (thread CPU time, clock_gettime). It prints the plan's size (tensors, instructions,
expressions, bindings, buffers) and the median / minimum time of one change.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))

from megcc_builder.compiler import ModelSpec, compile_bundle  # noqa: E402
from megcc_builder.emit.model_blob import read_model  # noqa: E402

DEFAULT_SHAPES = {"ppocr_rec": "1,3,48,320;1,3,48,480", "ppocr_cls": "1,3,48,192;6,3,48,192",
                  "ppocr_det": "1,3,320,320;1,3,480,416"}

BENCH_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "megcc/megcc.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int parse(const char *s, int32_t *d) {
    int n = 0;
    while (*s && n < 8) { d[n++] = (int32_t)strtol(s, (char **)&s, 10); if (*s == ',') s++; }
    return n;
}
int main(int argc, char **argv) {
    megcc_model *m;
    megcc_network *net;
    int32_t a[8], b[8];
    int na = parse(argv[2], a), nb = parse(argv[3], b), iters = atoi(argv[4]), i;
    double *t = malloc(sizeof(double) * (size_t)iters);
    size_t need_a = 0, need_b = 0;
    if (megcc_model_load_from_path(argv[1], &m) || megcc_network_create(m, NULL, 0, &net)) {
        fprintf(stderr, "%s\n", megcc_last_error());
        return 1;
    }
    for (i = 0; i < iters; i++) {
        double t0 = now_us();
        size_t need;
        int st = megcc_network_set_input_shape(net, 0, i % 2 ? b : a, i % 2 ? nb : na) ||
                 megcc_network_required_arena_size(net, &need);
        t[i] = now_us() - t0;
        if (st) { fprintf(stderr, "%s\n", megcc_network_last_error(net)); return 1; }
        if (i % 2) need_b = need; else need_a = need;
    }
    qsort(t, (size_t)iters, sizeof(double), cmp);
    printf("%.2f %.2f %lu %lu\n", t[iters / 2], t[0], (unsigned long)need_a,
           (unsigned long)need_b);
    return 0;
}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ppocr_rec")
    ap.add_argument("--shapes")
    ap.add_argument("-n", "--iterations", type=int, default=2000)
    args = ap.parse_args()
    if os.path.isfile(args.model):
        path = args.model
    else:
        import pypi_models
        path = pypi_models.model_path(args.model)
    shapes = (args.shapes or DEFAULT_SHAPES.get(args.model, "")).split(";")
    if len(shapes) != 2:
        ap.error("--shapes needs two shapes: 'D0,D1,...;D0,D1,...'")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="megcc-reshape-") as tmp:
        bundle = compile_bundle([ModelSpec("model", path, [])], os.path.join(tmp, "out"),
                                save_c_array=False)
        blob_path = bundle.files["model.tiny"]
        with open(blob_path, "rb") as f:
            plan = read_model(f.read())["plans"][0]
        dyn = plan["dynamic"]
        if dyn is None:
            print(f"{path}: the compiled plan is static (no run-time dimensions)")
            return 1
        with open(os.path.join(tmp, "bench.c"), "w") as f:
            f.write(BENCH_C)
        rt = os.path.join(root, "runtime")
        srcs = sorted(os.path.join(rt, "src", s) for s in os.listdir(os.path.join(rt, "src"))
                      if s.endswith(".c"))
        exe = os.path.join(tmp, "bench")
        subprocess.run(["gcc", "-O2", "-std=c99", "-I", os.path.join(rt, "include"), *srcs,
                        bundle.files["kernels_c"], os.path.join(tmp, "bench.c"), "-o", exe,
                        "-lm", "-lpthread"], check=True)
        out = subprocess.run([exe, blob_path, shapes[0], shapes[1], str(args.iterations)],
                             capture_output=True, text=True)
        if out.returncode:
            print(out.stderr.strip())
            return 1
        median, best, need_a, need_b = out.stdout.split()
    print(f"model {os.path.basename(path)}: {len(plan['tensors'])} tensors, "
          f"{len(plan['instrs'])} instructions; dynamic plan: {len(dyn.symbols)} symbols, "
          f"{len(dyn.exprs)} expressions, {len(dyn.dims)} dims + {len(dyn.view_offsets)} view "
          f"offsets + {len(dyn.params)} params bound, {len(dyn.guards)} guards, "
          f"{len(dyn.buffers)} buffers")
    print(f"arena: {need_a} B at ({shapes[0]}), {need_b} B at ({shapes[1]})")
    print(f"shape change (set_input_shape + evaluation + placement), {args.iterations} "
          f"alternating changes: median {float(median):.2f} us, min {float(best):.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
