"""RoiAlign (NCHW, float32): for each region of interest (x1, y1, x2, y2, scaled by
spatial_scale, shifted by half a pixel in half_pixel mode), an output_height x
output_width grid of bins, each averaging (or, mode max, taking the largest of) bilinear
samples on a sampling_ratio x sampling_ratio grid (adaptive: ceil(bin size) when 0).
Sampling follows onnxruntime and onnx.reference exactly: samples beyond one pixel outside
the map are 0, others clamp to the border; in max mode each sample is the largest of its
four weighted corners. Regions and batch indices are read at run time."""
from __future__ import annotations

from ...codegen.kernel import Instr, f32_bits, make_kernel
from ...codegen.params import f32, i32, schema
from ...ir import Graph, Op, c_type
from ..registry import F32, implements

PARAMS = schema(i32("R", "regions"), i32("C", "channels"), i32("H", "input height"),
                i32("W", "input width"), i32("OH", "output height"), i32("OW", "output width"),
                i32("SR", "sampling ratio (0: adaptive)"), f32("scale", "spatial scale"))


@implements("RoiAlign", dtypes=F32)
def emit(op: Op, graph: Graph):
    x, rois, idx = (graph.tensors[n] for n in op.inputs[:3])
    y = graph.tensors[op.outputs[0]]
    mode = op.attrs.get("mode", "avg")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    coord = op.attrs.get("coordinate_transformation_mode",
                         "half_pixel" if graph.opset >= 16 else "output_half_pixel")
    coord = coord.decode() if isinstance(coord, bytes) else coord
    if mode not in ("avg", "max") or coord not in ("half_pixel", "output_half_pixel"):
        raise graph.error(f"mode '{mode}' / coordinate_transformation_mode '{coord}' is not "
                          "supported", op)
    if len(x.shape) != 4 or tuple(rois.shape[1:]) != (4,) or rois.dtype != "float32":
        raise graph.error(f"input {list(x.shape)} and rois {list(rois.shape)} are not NCHW "
                          "and [R, 4] float32", op)
    half = coord == "half_pixel"
    it = c_type(idx.dtype)
    if mode == "avg":
        sample = "acc += w1 * xc[p1] + w2 * xc[p2] + w3 * xc[p3] + w4 * xc[p4];"
        finish = "acc / (float)count"
    else:
        sample = """{ const float v = megcc_maxf(megcc_maxf(w1 * xc[p1], w2 * xc[p2]),
                                                megcc_maxf(w3 * xc[p3], w4 * xc[p4]));
                            acc = first ? v : megcc_maxf(acc, v); first = 0; }"""
        finish = "acc"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *rois = (const float *)in_ptrs[1];
    const {it} *bi = (const {it} *)in_ptrs[2];
    float *y = (float *)out_ptrs[0];
    const float off = {"0.5f" if half else "0.0f"};
    int32_t r, c, ph, pw, iy, ix;
    for (r = 0; r < R; ++r) {{
        const float *roi = rois + (int64_t)r * 4;
        const int64_t b = (int64_t)bi[r];
        const float sw = roi[0] * scale - off, sh = roi[1] * scale - off;
        float rw = roi[2] * scale - off - sw, rh = roi[3] * scale - off - sh;
        float bw, bh;
        int32_t gh, gw, count;
{"" if half else "        if (rw < 1.0f) rw = 1.0f;  /* malformed regions become 1x1 */" + chr(10) + "        if (rh < 1.0f) rh = 1.0f;" + chr(10)}\
        bh = rh / (float)OH;
        bw = rw / (float)OW;
        gh = SR > 0 ? SR : (int32_t)ceilf(rh / (float)OH);
        gw = SR > 0 ? SR : (int32_t)ceilf(rw / (float)OW);
        count = gh * gw > 1 ? gh * gw : 1;
        (void)count;  /* max mode does not divide */
        for (c = 0; c < C; ++c) {{
            const float *xc = x + (b * C + c) * H * W;
            for (ph = 0; ph < OH; ++ph)
                for (pw = 0; pw < OW; ++pw) {{
                    float acc = 0.0f;
                    int first = 1;
                    (void)first;
                    for (iy = 0; iy < gh; ++iy) {{
                        float yy = sh + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)gh;
                        for (ix = 0; ix < gw; ++ix) {{
                            float xx = sw + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)gw;
                            float w1 = 0.0f, w2 = 0.0f, w3 = 0.0f, w4 = 0.0f, ly, lx;
                            int32_t yl, xl, yh, xh;
                            int64_t p1 = 0, p2 = 0, p3 = 0, p4 = 0;
                            float yv = yy, xv = xx;
                            if (!(yv < -1.0f || yv > (float)H || xv < -1.0f || xv > (float)W)) {{
                                if (yv < 0.0f) yv = 0.0f;
                                if (xv < 0.0f) xv = 0.0f;
                                yl = (int32_t)yv;
                                xl = (int32_t)xv;
                                if (yl >= H - 1) {{ yh = yl = H - 1; yv = (float)yl; }} else yh = yl + 1;
                                if (xl >= W - 1) {{ xh = xl = W - 1; xv = (float)xl; }} else xh = xl + 1;
                                ly = yv - (float)yl;
                                lx = xv - (float)xl;
                                w1 = (1.0f - ly) * (1.0f - lx);
                                w2 = (1.0f - ly) * lx;
                                w3 = ly * (1.0f - lx);
                                w4 = ly * lx;
                                p1 = (int64_t)yl * W + xl;
                                p2 = (int64_t)yl * W + xh;
                                p3 = (int64_t)yh * W + xl;
                                p4 = (int64_t)yh * W + xh;
                            }}
                            {sample}
                        }}
                    }}
                    y[(((int64_t)r * C + c) * OH + ph) * OW + pw] = {finish};
                }}
        }}
    }}
"""
    name = f"roi_align_{mode}_{coord}_f32_{idx.dtype}"
    kernel = make_kernel(name, body, PARAMS, ("math",))
    params = PARAMS.pack(R=y.shape[0], C=x.shape[1], H=x.shape[2], W=x.shape[3], OH=y.shape[2],
                         OW=y.shape[3], SR=int(op.attrs.get("sampling_ratio", 0)),
                         scale=f32_bits(float(op.attrs.get("spatial_scale", 1.0))))
    return [Instr(kernel, list(op.inputs[:3]), [op.outputs[0]], params,
                  note=f"{mode}, {coord}")]
