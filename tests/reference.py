"""Plain numpy reference implementations used as test oracles, and the comparison rule."""
import numpy as np


def assert_close(ours, ref, tol=1e-4, what=""):
    """|ours - ref| / max(1, |ref|) <= tol everywhere (DESIGN.md's float32 rule)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    err = np.abs(ours.astype(np.float64) - ref.astype(np.float64)) / np.maximum(
        1.0, np.abs(ref.astype(np.float64)))
    worst = float(np.nanmax(err)) if err.size else 0.0
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), f"{what}: NaN positions differ"
    assert worst <= tol, f"{what}: max normalised error {worst:.3g} > {tol}"
    return worst


def conv2d(x, w, b=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1):
    """NCHW convolution; pads = (top, left, bottom, right) like ONNX."""
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilations
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pads[1] + pads[3] - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, oc, oh, ow))
    ocg = oc // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * ocg:(g + 1) * ocg].astype(np.float64)
        for ky in range(kh):
            for kx in range(kw):
                patch = xs[:, :, ky * dh: ky * dh + (oh - 1) * sh + 1: sh,
                           kx * dw: kx * dw + (ow - 1) * sw + 1: sw]
                out[:, g * ocg:(g + 1) * ocg] += np.einsum("nchw,oc->nohw", patch, ws[:, :, ky, kx])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def pool2d(x, kernel, strides, pads, mode, count_include_pad=False, ceil_mode=False,
           dilations=(1, 1)):
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations

    def out_size(size, k, s, p0, p1, d):
        span = size + p0 + p1 - (k - 1) * d - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= size + p0:  # last window must start inside
            o -= 1
        return o

    oh = out_size(h, kh, sh, pads[0], pads[2], dh)
    ow = out_size(w, kw, sw, pads[1], pads[3], dw)
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            vals, npad = [], 0
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - pads[0] + ky * dh, ox * sw - pads[1] + kx * dw
                    if iy >= h + pads[2] or ix >= w + pads[3]:
                        continue
                    npad += 1
                    if 0 <= iy < h and 0 <= ix < w:
                        vals.append(x[:, :, iy, ix].astype(np.float64))
            stack = np.stack(vals)
            if mode == "max":
                out[:, :, oy, ox] = stack.max(0)
            else:
                out[:, :, oy, ox] = stack.sum(0) / (npad if count_include_pad else len(vals))
    return out
