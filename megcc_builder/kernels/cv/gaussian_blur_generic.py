"""cv2.GaussianBlur with BORDER_CONSTANT (0) / REPLICATE / REFLECT / REFLECT_101, portable C,
1..4 channels, odd kernel sizes up to TINYCV_GAUSSIAN_MAX_KSIZE (a size <= 0 is derived
from sigma as OpenCV does; sigma_y <= 0 means sigma_x).

The kernel is OpenCV's getGaussianKernelBitExact (the fixed 3/5/7/9 tables when sigma <= 0,
else exp(-x^2 / (8 sigma^2)) normalised; sigma <= 0 gives 0.15 n + 0.35). ui8 follows
OpenCV's fixed-point GaussianBlur: the kernel in 8 fractional bits with error diffusion,
every product and sum exact, one rounding at the end ((sum + 2^15) >> 16). The sum is exact,
so we may take the vertical pass first (a row of column sums per output row, on the stack)
and still match OpenCV bit for bit. f32: the float kernel, vertical then horizontal.
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import BORDER, ROUND, function, ir_dtypes, op_types, request_of

KERNEL = ("tinycv_gaussian_kernel", r"""
#define TINYCV_GAUSSIAN_MAX_KSIZE 63
#ifndef TINYCV_GAUSSIAN_STRIP /* columns per pass: stack use is about 40 bytes per column */
#define TINYCV_GAUSSIAN_STRIP 128
#endif

/* OpenCV's getGaussianKernelBitExact (its softdouble arithmetic is IEEE double's). */
static void tinycv_gaussian_kernel(int n, double sigma, double* k)
{
    static const double k3[3] = {0.25, 0.5, 0.25};
    static const double k5[5] = {0.0625, 0.25, 0.375, 0.25, 0.0625};
    static const double k7[7] = {0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375,
                                 0.03125};
    static const double k9[9] = {4 / 256., 13 / 256., 30 / 256., 51 / 256., 60 / 256.,
                                 51 / 256., 30 / 256., 13 / 256., 4 / 256.};
    const double* fixed = n == 3 ? k3 : n == 5 ? k5 : n == 7 ? k7 : n == 9 ? k9 : NULL;
    int i, x, n2 = (n - 1) / 2;
    double sig, scale2x, sum = 0, mul;
    if (sigma <= 0 && (n == 1 || fixed)) {
        for (i = 0; i < n; ++i) k[i] = n == 1 ? 1.0 : fixed[i];
        return;
    }
    sig = sigma > 0 ? sigma : fma((double)n, 0.15, 0.35);
    scale2x = -0.125 / (sig * sig);
    for (i = 0, x = 1 - n; i < n2; ++i, x += 2) {
        k[i] = exp((double)(x * x) * scale2x);
        sum += k[i];
    }
    sum = sum * 2 + 1;
    mul = 1.0 / sum;
    for (i = 0; i < n2; ++i) k[i] = k[n - 1 - i] = k[i] * mul;
    k[n2] = mul;
}

/* OpenCV's createGaussianKernels: sizes from sigma when <= 0, sigma_y defaults to sigma_x.
   Returns 0 when the sizes are not odd or too large. */
static int tinycv_gaussian_sizes(int* kh, int* kw, double* sx, double* sy, int factor)
{
    if (*sy <= 0) *sy = *sx;
    if (*kw <= 0 && *sx > 0) *kw = tinycv_round(*sx * factor * 2 + 1) | 1;
    if (*kh <= 0 && *sy > 0) *kh = tinycv_round(*sy * factor * 2 + 1) | 1;
    if (*kw <= 0 || *kh <= 0 || *kw % 2 == 0 || *kh % 2 == 0 ||
        *kw > TINYCV_GAUSSIAN_MAX_KSIZE || *kh > TINYCV_GAUSSIAN_MAX_KSIZE)
        return 0;
    if (*sx < 0) *sx = 0;
    if (*sy < 0) *sy = 0;
    return 1;
}
""")

KERNEL_Q8 = ("tinycv_gaussian_kernel_q8", r"""
/* OpenCV's getGaussianKernelFixedPoint_ED: 8 fractional bits, rounding errors diffused
   along the kernel, the centre takes what makes the sum exactly 256. */
static void tinycv_gaussian_kernel_q8(int n, double sigma, uint16_t* q)
{
    double k[TINYCV_GAUSSIAN_MAX_KSIZE], err = 0;
    int i, sum = 0;
    tinycv_gaussian_kernel(n, sigma, k);
    for (i = 0; i < n / 2; ++i) {
        double adj = k[i] * 256.0 + err;
        int v = tinycv_round(adj);
        err = adj - v;
        q[i] = q[n - 1 - i] = (uint16_t)v;
        sum += v;
    }
    q[n / 2] = (uint16_t)(256 - 2 * sum);
}
""")

# The shared body: T = element type, ACC = column-sum type, WT = weight type, HACC =
# horizontal-sum type, FINISH(acc). Loops run over contiguous elements with the taps
# outside, so compilers vectorise them.
_CORE = r"""
static void NAME(const TinyMat* src, const TinyMat* dst, int kh, int kw, double sx,
                 double sy, int border, const char* fn)
{
    WT wy[TINYCV_GAUSSIAN_MAX_KSIZE], wx[TINYCV_GAUSSIAN_MAX_KSIZE];
    ACC col[(TINYCV_GAUSSIAN_STRIP + TINYCV_GAUSSIAN_MAX_KSIZE - 1) * 4];
    HACC acc[TINYCV_GAUSSIAN_STRIP * 4];
    int cols[TINYCV_GAUSSIAN_STRIP + TINYCV_GAUSSIAN_MAX_KSIZE - 1];
    int H, W, cn, rx, ry, x0, y, j, k, c, e, e0;
    const T* s;
    T* d;
    (void)fn;
    TINYCV_CHECK(fn, tinycv_valid(src, 4) && tinycv_valid(dst, 4));
    TINYCV_CHECK(fn, dst->rows == src->rows && dst->cols == src->cols &&
                     dst->channels == src->channels);
    TINYCV_CHECK(fn, tinycv_gaussian_sizes(&kh, &kw, &sx, &sy, FACTOR));
    KERNELS
    H = (int)src->rows; W = (int)src->cols; cn = (int)src->channels;
    rx = kw / 2; ry = kh / 2;
    s = (const T*)src->data;
    d = (T*)dst->data;
    for (x0 = 0; x0 < W; x0 += TINYCV_GAUSSIAN_STRIP) {
        const int n = W - x0 < TINYCV_GAUSSIAN_STRIP ? W - x0 : TINYCV_GAUSSIAN_STRIP;
        const int m = n + kw - 1;  /* columns of the strip with its halo */
        /* halo columns [j_lo, j_hi) are inside the image: one contiguous span; the few
           outside it go through the border */
        const int j_lo = rx - x0 > 0 ? rx - x0 : 0;
        const int j_hi = W - (x0 - rx) < m ? W - (x0 - rx) : m;
        const int L = (j_hi - j_lo) * cn;
        for (j = 0; j < m; ++j) cols[j] = tinycv_border(x0 - rx + j, W, border);
        for (y = 0; y < H; ++y) {
            T* o = d + ((size_t)y * W + x0) * cn;
            for (e = 0; e < m * cn; ++e) col[e] = 0;
            for (k = 0; k < kh; ++k) {
                const int r = tinycv_border(y - ry + k, H, border);
                const WT w = wy[k];
                const T* p;
                const T* q;
                ACC* colq = col + j_lo * cn;
                if (r < 0) continue;
                p = s + (size_t)r * W * cn;
                q = p + (size_t)(x0 - rx + j_lo) * cn;
                e = 0;
VERT_SIMD
                for (; e < L; ++e) colq[e] += (ACC)(w * q[e]);
                for (j = 0; j < m; ++j) {
                    if (j == j_lo) j = j_hi;  /* the inside span is done */
                    if (j < m && cols[j] >= 0)
                        for (c = 0; c < cn; ++c)
                            col[j * cn + c] += (ACC)(w * p[(size_t)cols[j] * cn + c]);
                }
            }
            e = 0;
HORIZ_SIMD
            e0 = e;
            for (j = e0; j < n * cn; ++j) acc[j] = 0;
            for (k = 0; k < kw; ++k) {
                const HACC w = (HACC)wx[k];
                const ACC* q = col + k * cn;
                for (j = e0; j < n * cn; ++j) acc[j] += w * (HACC)q[j];
            }
            for (e = e0; e < n * cn; ++e) o[e] = FINISH;
        }
    }
}
"""

def core_ui8(suffix: str = "", vert: str = "", horiz: str = ""):
    """The ui8 blur; a vector implementation passes loops that advance `e` over whole
    vectors (vert: col[e..] += w * q[e..]; horiz: o[e..] from col), the scalar code does the
    rest, so every output is computed by the same integer arithmetic."""
    name = "tinycv_gaussian_ui8" + suffix
    return (name, _CORE.replace("NAME", name).replace("VERT_SIMD", vert)
            .replace("HORIZ_SIMD", horiz)
            .replace("HACC", "uint32_t").replace("WT", "uint16_t").replace("ACC", "uint16_t")
            .replace("FACTOR", "3").replace("T*", "uint8_t*")
            .replace("KERNELS", "tinycv_gaussian_kernel_q8(kh, sy, wy);\n"
                                "    tinycv_gaussian_kernel_q8(kw, sx, wx);")
            .replace("FINISH", "(uint8_t)((acc[e] + (1u << 15)) >> 16)"))


CORE_UI8 = core_ui8()

def core_f32(suffix: str = "", vert: str = "", horiz: str = ""):
    """The f32 blur; vector loops as in core_ui8, each element's products summed in the
    same order as the scalar code (no fused multiply-add), so the results are the same."""
    name = "tinycv_gaussian_f32" + suffix
    return (name, _CORE.replace("NAME", name).replace("VERT_SIMD", vert)
            .replace("HORIZ_SIMD", horiz)
            .replace("HACC", "float").replace("WT", "float").replace("ACC", "float")
            .replace("FACTOR", "4").replace("T*", "float*")
            .replace("KERNELS", """{
        double ky[TINYCV_GAUSSIAN_MAX_KSIZE], kx[TINYCV_GAUSSIAN_MAX_KSIZE];
        tinycv_gaussian_kernel(kh, sy, ky);
        tinycv_gaussian_kernel(kw, sx, kx);
        for (k = 0; k < kh; ++k) wy[k] = (float)ky[k];
        for (k = 0; k < kw; ++k) wx[k] = (float)kx[k];
    }""")
            .replace("FINISH", "acc[e]"))


CORE_F32 = core_f32()

_BORDERS = {"constant": "TINYCV_BORDER_CONSTANT", "replicate": "TINYCV_BORDER_REPLICATE",
            "reflect": "TINYCV_BORDER_REFLECT", "reflect_101": "TINYCV_BORDER_REFLECT_101"}


BLUR_OPS = op_types(*(f"gaussian_blur_{b}" for b in _BORDERS))


def blur_function(op: Op, graph: Graph, core, isa: str = ""):
    """The public function: a call of the shared `core` with its border."""
    cv_op, dtype = request_of(op, graph)
    border = _BORDERS[cv_op.name[len("gaussian_blur_"):]]
    helpers = (ROUND, BORDER, KERNEL) + ((KERNEL_Q8,) if dtype == "ui8" else ()) + (core,)
    return function(op, graph, f"    {core[0]}(src, dst, kernel_h, kernel_w, sigma_x, sigma_y, "
                                f"{border}, FN);\n", helpers, isa)


def portable_cost(op, graph, isa) -> float:
    return 1.0  # relative: CV images have no compile-time size


@implements(*BLUR_OPS, dtypes=ir_dtypes("ui8", "f32"), cost=portable_cost)
def emit(op: Op, graph: Graph):
    _, dtype = request_of(op, graph)
    return blur_function(op, graph, CORE_UI8 if dtype == "ui8" else CORE_F32)
