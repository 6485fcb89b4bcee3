/* MegEngine Lite's C tensors on the megcc runtime (lite-c/tensor_c.h): I/O tensors of a
 * network and host tensors (made, sliced, concatenated). Every operation works on a
 * `view`: element 0, layout and strides, whatever the kind of tensor. */
#if !defined(MEGCC_NO_THREADS) && !defined(MEGCC_NO_LIBC_HOOKS) && \
    (defined(__unix__) || defined(__APPLE__)) && defined(__GNUC__)
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200112L /* pthreads under -std=c99 */
#endif
#include <pthread.h>
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
#define LIVE_LOCK() pthread_mutex_lock(&g_live_lock)
#define LIVE_UNLOCK() pthread_mutex_unlock(&g_live_lock)
#else /* no threads (bare metal): nothing to lock */
#define LIVE_LOCK() ((void)0)
#define LIVE_UNLOCK() ((void)0)
#endif
#include "lite_c_internal.h"

typedef struct view {
    uint8_t *data;
    LiteLayout layout;
    size_t strides[LAYOUT_MAX_DIM]; /* elements */
    size_t elsize;
} view;

LiteDataType lite_dtype(megcc_dtype d) {
    switch (d) {
    case MEGCC_FLOAT32: return LITE_FLOAT;
    case MEGCC_FLOAT16: return LITE_HALF;
    case MEGCC_INT32: case MEGCC_QINT32: return LITE_INT;
    case MEGCC_INT16: return LITE_INT16;
    case MEGCC_INT8: case MEGCC_QINT8: return LITE_INT8;
    case MEGCC_UINT8: case MEGCC_QUINT8: case MEGCC_BOOL: return LITE_UINT8;
    case MEGCC_UINT32: return LITE_UINT;
    case MEGCC_UINT16: return LITE_UINT16;
    case MEGCC_INT64: return LITE_INT64;
    case MEGCC_FLOAT64: return LITE_MEGCC_FLOAT64;
    case MEGCC_UINT64: return LITE_MEGCC_UINT64;
    case MEGCC_BFLOAT16: case MEGCC_FLOAT8E4M3FN: case MEGCC_FLOAT8E4M3FNUZ:
    case MEGCC_FLOAT8E5M2: case MEGCC_FLOAT8E5M2FNUZ: case MEGCC_FLOAT8E8M0:
    case MEGCC_FLOAT4E2M1: case MEGCC_INT4: case MEGCC_UINT4: case MEGCC_INT2: case MEGCC_UINT2:
        return (LiteDataType)(LITE_MEGCC_BFLOAT16 + ((int)d - (int)MEGCC_BFLOAT16));
    }
    return LITE_FLOAT;
}

size_t lite_dtype_size(LiteDataType t) {
    switch (t) {
    case LITE_FLOAT: case LITE_INT: case LITE_UINT: return 4;
    case LITE_HALF: case LITE_INT16: case LITE_UINT16: case LITE_MEGCC_BFLOAT16: return 2;
    case LITE_INT8: case LITE_UINT8: return 1;
    case LITE_MEGCC_FLOAT8E4M3FN: case LITE_MEGCC_FLOAT8E4M3FNUZ: case LITE_MEGCC_FLOAT8E5M2:
    case LITE_MEGCC_FLOAT8E5M2FNUZ: case LITE_MEGCC_FLOAT8E8M0: case LITE_MEGCC_FLOAT4E2M1:
    case LITE_MEGCC_INT4: case LITE_MEGCC_UINT4: case LITE_MEGCC_INT2: case LITE_MEGCC_UINT2:
        return 1;  /* one element per byte, never packed */
    case LITE_INT64: case LITE_MEGCC_FLOAT64: case LITE_MEGCC_UINT64: return 8;
    }
    return 0;
}

int lite_layout_of(const megcc_tensor_info *info, LiteLayout *layout) {
    uint32_t k;
    if (info->ndim > LAYOUT_MAX_DIM)
        return lite_fail("tensor '%s' has %u dims, LiteLayout holds %d", info->name, info->ndim,
                         LAYOUT_MAX_DIM);
    memset(layout, 0, sizeof *layout);
    layout->ndim = info->ndim;
    for (k = 0; k < info->ndim; k++) layout->shapes[k] = (size_t)info->dims[k];
    layout->data_type = lite_dtype(info->dtype);
    return 0;
}

static size_t numel(const LiteLayout *l) {
    size_t n = 1, k;
    for (k = 0; k < l->ndim; k++) n *= l->shapes[k];
    return n;
}

/* Element count of a layout, refusing overflow and unknown types; 0 on error (a real
 * zero-element layout gives *ok = 1). */
static size_t checked_bytes(const LiteLayout *l, int *ok) {
    size_t n = lite_dtype_size(l->data_type), k;
    *ok = 0;
    if (!n) {
        lite_fail("unknown LiteDataType %d", (int)l->data_type);
        return 0;
    }
    if (l->ndim > LAYOUT_MAX_DIM) {
        lite_fail("layout with %z dims (at most %d)", l->ndim, LAYOUT_MAX_DIM);
        return 0;
    }
    for (k = 0; k < l->ndim; k++) {
        if (l->shapes[k] && n > (size_t)-1 / l->shapes[k]) {
            lite_fail("layout too large");
            return 0;
        }
        n *= l->shapes[k];
    }
    *ok = 1;
    return n;
}

static void contiguous_strides(const LiteLayout *l, size_t *strides) {
    size_t s = 1, k = l->ndim;
    while (k-- > 0) {
        strides[k] = s;
        s *= l->shapes[k];
    }
}

static int is_contiguous(const LiteLayout *l, const size_t *strides) {
    size_t s = 1, k = l->ndim;
    while (k-- > 0) {
        if (l->shapes[k] != 1 && strides[k] != s) return 0;
        s *= l->shapes[k];
    }
    return 1;
}

static lite_tensor *as_tensor(const LiteTensor tensor, const char *fn) {
    lite_tensor *t = (lite_tensor *)tensor;
    if (!t || t->magic != LITE_TENSOR_MAGIC) {
        lite_fail("%s: invalid tensor", fn);
        return NULL;
    }
    return t;
}

/* Index of an I/O tensor in its network's *current* plan (handles name tensors, so they
 * stay valid across plan switches). */
static int io_index(const lite_tensor *t, uint32_t *index, megcc_tensor_info *info,
                    const char *fn) {
    megcc_network *net = t->net->net;
    megcc_status st;
    int idx = t->output ? megcc_network_find_output(net, t->name)
                        : megcc_network_find_input(net, t->name);
    if (idx < 0) return lite_fail("%s: tensor '%s' is not in the current plan", fn, t->name);
    *index = (uint32_t)idx;
    st = t->output ? megcc_network_output_info(net, *index, info)
                   : megcc_network_input_info(net, *index, info);
    if (st == MEGCC_OK) return 0;
    /* input shapes that no plan accepts (dynamic plans): setting a layout again is how to
     * recover, so it gets the compiled description; everything else reports the refusal */
    if (!mgc_streq(fn, "LITE_set_tensor_layout"))
        return lite_fail("%s: %s", fn, megcc_network_last_error(net));
    if (t->output)
        st = megcc_model_plan_output_info(t->net->model, megcc_network_plan(net), *index, info);
    else
        st = megcc_model_plan_input_info(t->net->model, megcc_network_plan(net), *index, info);
    return st ? lite_fail("%s: %s", fn, megcc_network_last_error(net)) : 0;
}

static void *io_data(const lite_tensor *t, uint32_t index) {
    return t->output ? megcc_network_output_buffer(t->net->net, index)
                     : megcc_network_input_data(t->net->net, index);
}

/* Host memory on first use. */
static int host_memory(lite_tensor *t) {
    int ok;
    size_t bytes;
    if (t->data) return 0;
    bytes = checked_bytes(&t->layout, &ok);
    if (!ok) return -1;
    t->owned = t->hooks.alloc(t->hooks.user, bytes ? bytes : 1, 64);
    if (!t->owned) return lite_fail("out of memory for a %z-byte tensor", bytes);
    t->capacity = bytes;
    t->data = (uint8_t *)t->owned;
    return 0;
}

static void drop_memory(lite_tensor *t) {
    if (t->owned) t->hooks.free(t->hooks.user, t->owned);
    t->owned = NULL;
    t->data = NULL;
    t->capacity = 0;
}

static int view_of(const LiteTensor tensor, view *v, const char *fn) {
    lite_tensor *t = as_tensor(tensor, fn);
    if (!t) return -1;
    memset(v, 0, sizeof *v);
    if (t->net) {
        megcc_tensor_info info;
        uint32_t index;
        if (io_index(t, &index, &info, fn) || lite_layout_of(&info, &v->layout)) return -1;
        v->data = (uint8_t *)io_data(t, index);
        if (!v->data) return lite_fail("%s: tensor '%s' has no memory", fn, t->name);
        contiguous_strides(&v->layout, v->strides);
    } else {
        /* a host tensor without a layout (default_desc) is empty in Lite: nothing to read,
         * share or fill (an I/O tensor of 0 dims is a scalar: the network's) */
        if (t->layout.ndim == 0) return lite_fail("%s: the tensor is empty (no layout)", fn);
        if (host_memory(t)) return -1;
        v->data = t->data;
        v->layout = t->layout;
        memcpy(v->strides, t->strides, sizeof v->strides);
    }
    v->elsize = lite_dtype_size(v->layout.data_type);
    return 0;
}

/* dst[i] = src[i] for every element of `shape` (both strided; same element size). */
static void strided_copy(uint8_t *dst, const size_t *dst_strides, const uint8_t *src,
                         const size_t *src_strides, const LiteLayout *shape, size_t elsize) {
    size_t idx[LAYOUT_MAX_DIM] = {0}, n = numel(shape), i, k;
    for (i = 0; i < n; i++) {
        size_t d = 0, s = 0;
        for (k = 0; k < shape->ndim; k++) {
            d += idx[k] * dst_strides[k];
            s += idx[k] * src_strides[k];
        }
        memcpy(dst + d * elsize, src + s * elsize, elsize);
        for (k = shape->ndim; k-- > 0;) {
            if (++idx[k] < shape->shapes[k]) break;
            idx[k] = 0;
        }
    }
}

/* -------------------------------------------------------------- making and destroying */

/* Every host tensor the API made, until destroyed. Lite keeps such a holder too, and its
 * clients rely on it: destroying a handle twice (or one it never made) is a no-op that
 * returns 0, where a magic-number check would read freed memory. Guarded by a mutex:
 * tensors are made and destroyed on any thread. */
static lite_tensor *g_live;

static void live_add(lite_tensor *t) {
    LIVE_LOCK();
    t->live_prev = NULL;
    t->live_next = g_live;
    if (g_live) g_live->live_prev = t;
    g_live = t;
    LIVE_UNLOCK();
}

/* Unlink t if it is a live host tensor: 1 if it was, 0 otherwise (t is not read then). */
static int live_remove(const void *t) {
    lite_tensor *p;
    LIVE_LOCK();
    for (p = g_live; p && p != (const lite_tensor *)t; p = p->live_next) {
    }
    if (p) {
        if (p->live_prev) p->live_prev->live_next = p->live_next;
        else g_live = p->live_next;
        if (p->live_next) p->live_next->live_prev = p->live_prev;
    }
    LIVE_UNLOCK();
    return p != NULL;
}

static int new_host_tensor(const LiteLayout *layout, lite_tensor **out) {
    megcc_hooks h;
    lite_tensor *t;
    int ok;
    checked_bytes(layout, &ok);
    if (!ok || lite_hooks_for_new(&h)) return -1;
    t = (lite_tensor *)h.alloc(h.user, sizeof *t, 16);
    if (!t) return lite_fail("out of memory");
    memset(t, 0, sizeof *t);
    t->magic = LITE_TENSOR_MAGIC;
    t->layout = *layout;
    contiguous_strides(layout, t->strides);
    t->hooks = h;
    live_add(t);
    *out = t;
    return 0;
}

int LITE_make_tensor(const LiteTensorDesc tensor_describe, LiteTensor *tensor) {
    lite_tensor *t;
    if (!tensor) return lite_fail("LITE_make_tensor: NULL output");
    *tensor = NULL;
    if (tensor_describe.device_type != LITE_CPU &&
        tensor_describe.device_type != LITE_DEVICE_DEFAULT)
        return lite_fail("megcc tensors live on the CPU (device_type %d)",
                         (int)tensor_describe.device_type);
    if (new_host_tensor(&tensor_describe.layout, &t)) return -1;
    t->pinned_host = tensor_describe.is_pinned_host != 0;
    *tensor = t;
    return 0;
}

int LITE_destroy_tensor(LiteTensor tensor) {
    lite_tensor *t = (lite_tensor *)tensor;
    megcc_hooks h;
    if (!tensor) return lite_fail("LITE_destroy_tensor: NULL tensor");
    /* not a live host tensor: destroyed already, or a network's I/O tensor (which the
     * network owns): nothing to do, as in Lite */
    if (!live_remove(tensor)) return 0;
    h = t->hooks;
    drop_memory(t);
    t->magic = 0;
    h.free(h.user, t);
    return 0;
}

/* -------------------------------------------------------------- layout */

int LITE_get_tensor_layout(const LiteTensor tensor, LiteLayout *layout) {
    lite_tensor *t = as_tensor(tensor, "LITE_get_tensor_layout");
    if (!t) return -1;
    if (!layout) return lite_fail("LITE_get_tensor_layout: NULL layout");
    if (t->net) {
        megcc_tensor_info info;
        uint32_t index;
        if (io_index(t, &index, &info, "LITE_get_tensor_layout")) return -1;
        return lite_layout_of(&info, layout);
    }
    *layout = t->layout;
    return 0;
}

static int layout_matches(const megcc_tensor_info *info, const LiteLayout *l) {
    uint32_t k;
    if (l->ndim != info->ndim || l->data_type != lite_dtype(info->dtype)) return 0;
    for (k = 0; k < info->ndim; k++)
        if (l->shapes[k] != (size_t)info->dims[k]) return 0;
    return 1;
}

/* Find the plan whose input `name` has `layout`, preferring one whose other inputs keep
 * their current shapes (a multi-input model switched one input at a time). */
static int find_plan(lite_net *ln, const char *name, const LiteLayout *layout) {
    const megcc_model *m = ln->model;
    uint32_t cur = megcc_network_plan(ln->net), p, i, j, k;
    int fallback = -1;
    for (p = 0; p < megcc_model_num_plans(m); p++) {
        int has = 0, others_same = 1;
        if (!megcc_model_plan_is_runnable(m, p)) continue; /* another architecture's */
        for (i = 0; i < megcc_model_plan_num_inputs(m, p); i++) {
            megcc_tensor_info info, now;
            megcc_model_plan_input_info(m, p, i, &info);
            if (mgc_streq(info.name, name)) {
                has = layout_matches(&info, layout);
                continue;
            }
            for (j = 0; j < megcc_model_plan_num_inputs(m, cur); j++) {
                megcc_model_plan_input_info(m, cur, j, &now);
                if (mgc_streq(now.name, info.name)) break;
            }
            if (j == megcc_model_plan_num_inputs(m, cur) || now.ndim != info.ndim) {
                others_same = 0;
                continue;
            }
            for (k = 0; k < info.ndim; k++)
                if (now.dims[k] != info.dims[k]) others_same = 0;
        }
        if (has && others_same) return (int)p;
        if (has && fallback < 0) fallback = (int)p;
    }
    return fallback;
}

static int any_dynamic_plan(const megcc_model *m) {
    uint32_t p;
    for (p = 0; p < megcc_model_num_plans(m); p++)
        if (megcc_model_plan_is_dynamic(m, p)) return 1;
    return 0;
}

/* No static plan has the layout: a dynamic plan computes it (docs/dynamic-shapes.md). With
 * one input the shape is checked now; with several, once they have all been set (the
 * next call needing tensors reports a refusal), since they may share dimensions. */
static int set_dynamic_shape(lite_net *ln, uint32_t index, const megcc_tensor_info *info,
                             const LiteLayout *layout) {
    int32_t dims[MEGCC_MAX_DIMS];
    size_t bytes;
    uint32_t k;
    if (layout->ndim > LAYOUT_MAX_DIM)
        return lite_fail("input '%s': %u dims, at most %d", info->name, (uint32_t)layout->ndim,
                         LAYOUT_MAX_DIM);
    for (k = 0; k < layout->ndim; k++) {
        if (layout->shapes[k] > 0x7FFFFFFF)
            return lite_fail("input '%s': dimension %u too large", info->name, k);
        dims[k] = (int32_t)layout->shapes[k];
    }
    if (megcc_network_set_input_shape(ln->net, index, dims, (uint32_t)layout->ndim) != MEGCC_OK)
        return lite_fail("%s", megcc_network_last_error(ln->net));
    if (megcc_network_required_arena_size(ln->net, &bytes) != MEGCC_OK) {
        if (megcc_network_num_inputs(ln->net) == 1)
            return lite_fail("%s", megcc_network_last_error(ln->net));
        return 0; /* maybe consistent once the other inputs are set */
    }
    /* the networks sharing this arena grow with it (they all fit a bigger block) */
    return lite_ensure_arena(ln, bytes);
}

static int set_io_layout(lite_tensor *t, const LiteLayout *layout) {
    megcc_tensor_info info;
    uint32_t index;
    int plan;
    if (io_index(t, &index, &info, "LITE_set_tensor_layout")) return -1;
    if (layout_matches(&info, layout)) return 0;
    if (t->output) return lite_fail("output '%s': layout is fixed by the compiled plan", info.name);
    plan = find_plan(t->net, info.name, layout);
    if (plan < 0 && any_dynamic_plan(t->net->model) && layout->data_type == lite_dtype(info.dtype))
        return set_dynamic_shape(t->net, index, &info, layout);
    if (plan < 0)
        return lite_fail("no compiled plan has input '%s' with the requested shape/dtype",
                         info.name);
    if (megcc_network_select_plan(t->net->net, (uint32_t)plan) != MEGCC_OK)
        return lite_fail("%s", megcc_network_last_error(t->net->net));
    return 0;
}

static int set_host_layout(lite_tensor *t, const LiteLayout *layout) {
    int ok;
    size_t bytes = checked_bytes(layout, &ok);
    if (!ok) return -1;
    t->layout = *layout;
    contiguous_strides(layout, t->strides);
    if (t->data && bytes > t->capacity) drop_memory(t); /* reallocated on next use */
    return 0;
}

int LITE_set_tensor_layout(LiteTensor tensor, const LiteLayout layout) {
    lite_tensor *t = as_tensor(tensor, "LITE_set_tensor_layout");
    if (!t) return -1;
    return t->net ? set_io_layout(t, &layout) : set_host_layout(t, &layout);
}

int LITE_tensor_reshape(LiteTensor tensor, const int *shape, int size) {
    lite_tensor *t = as_tensor(tensor, "LITE_tensor_reshape");
    LiteLayout now, want;
    size_t known = 1, total;
    int k, deduce = -1;
    if (!t) return -1;
    if (!shape || size < 0 || size > LAYOUT_MAX_DIM)
        return lite_fail("LITE_tensor_reshape: bad shape (%d dims)", size);
    if (LITE_get_tensor_layout(tensor, &now)) return -1;
    if (!t->net && !is_contiguous(&t->layout, t->strides))
        return lite_fail("LITE_tensor_reshape: the tensor is not contiguous (a slice)");
    want = now;
    want.ndim = (size_t)size;
    for (k = 0; k < size; k++) {
        if (shape[k] == -1 && deduce < 0) {
            deduce = k;
            continue;
        }
        if (shape[k] < 0) return lite_fail("LITE_tensor_reshape: bad dimension %d", shape[k]);
        want.shapes[k] = (size_t)shape[k];
        known *= (size_t)shape[k];
    }
    total = numel(&now);
    if (deduce >= 0) {
        if (!known || total % known) return lite_fail("LITE_tensor_reshape: cannot deduce -1");
        want.shapes[deduce] = total / known;
        known = total;
    }
    if (known != total)
        return lite_fail("LITE_tensor_reshape: %z elements cannot become %z", total, known);
    if (t->net) return set_io_layout(t, &want);
    t->layout = want;
    contiguous_strides(&want, t->strides);
    return 0;
}

/* -------------------------------------------------------------- memory */

int LITE_get_tensor_memory(const LiteTensor tensor, void **data) {
    view v;
    if (!data) return lite_fail("LITE_get_tensor_memory: NULL data");
    if (view_of(tensor, &v, "LITE_get_tensor_memory")) return -1;
    *data = v.data;
    return 0;
}

int LITE_get_tensor_memory_with_index(const LiteTensor tensor, const size_t *index, size_t size,
                                      void **data) {
    view v;
    size_t k, off = 0;
    if (!data || (size && !index)) return lite_fail("LITE_get_tensor_memory_with_index: NULL");
    if (view_of(tensor, &v, "LITE_get_tensor_memory_with_index")) return -1;
    if (size > v.layout.ndim)
        return lite_fail("LITE_get_tensor_memory_with_index: %z coordinates for %z dims", size,
                         v.layout.ndim);
    for (k = 0; k < size; k++) {
        if (index[k] >= v.layout.shapes[k])
            return lite_fail("LITE_get_tensor_memory_with_index: index %z of axis %z is out of "
                             "range (%z)", index[k], k, v.layout.shapes[k]);
        off += index[k] * v.strides[k];
    }
    *data = v.data + off * v.elsize;
    return 0;
}

int LITE_reset_tensor_memory(LiteTensor tensor, void *prepared_data, size_t data_length_in_byte) {
    lite_tensor *t = as_tensor(tensor, "LITE_reset_tensor_memory");
    int ok;
    size_t need;
    if (!t) return -1;
    if (!prepared_data) return lite_fail("LITE_reset_tensor_memory: NULL data");
    if (t->net) {
        megcc_tensor_info info;
        uint32_t index;
        megcc_status st;
        if (io_index(t, &index, &info, "LITE_reset_tensor_memory")) return -1;
        st = t->output ? megcc_network_set_output_memory(t->net->net, index, prepared_data,
                                                         data_length_in_byte)
                       : megcc_network_set_input_memory(t->net->net, index, prepared_data,
                                                        data_length_in_byte);
        if (st) return lite_fail("%s", megcc_network_last_error(t->net->net));
        return 0;
    }
    need = checked_bytes(&t->layout, &ok);
    if (!ok) return -1;
    if (data_length_in_byte < need)
        return lite_fail("LITE_reset_tensor_memory: %z bytes, the layout needs %z",
                         data_length_in_byte, need);
    drop_memory(t);
    contiguous_strides(&t->layout, t->strides);
    t->data = (uint8_t *)prepared_data;
    t->capacity = data_length_in_byte;
    return 0;
}

int LITE_reset_tensor(LiteTensor tensor, const LiteLayout layout, void *prepared_data) {
    int ok;
    size_t bytes = checked_bytes(&layout, &ok);
    if (!ok) return -1;
    if (LITE_set_tensor_layout(tensor, layout)) return -1;
    return LITE_reset_tensor_memory(tensor, prepared_data, bytes);
}

int LITE_get_tensor_total_size_in_byte(const LiteTensor tensor, size_t *size) {
    LiteLayout l;
    int ok;
    if (!size) return lite_fail("LITE_get_tensor_total_size_in_byte: NULL size");
    if (LITE_get_tensor_layout(tensor, &l)) return -1;
    *size = checked_bytes(&l, &ok);
    if (l.ndim == 0 && !((const lite_tensor *)tensor)->net) *size = 0; /* empty, as in Lite */
    return ok ? 0 : -1;
}

int LITE_tensor_fill_zero(LiteTensor tensor) {
    view v;
    if (view_of(tensor, &v, "LITE_tensor_fill_zero")) return -1;
    if (is_contiguous(&v.layout, v.strides)) {
        memset(v.data, 0, numel(&v.layout) * v.elsize);
    } else {
        static const uint8_t zeros[8] = {0};
        size_t zero_strides[LAYOUT_MAX_DIM] = {0};
        strided_copy(v.data, v.strides, zeros, zero_strides, &v.layout, v.elsize);
    }
    return 0;
}

int LITE_tensor_copy(LiteTensor dst_tensor, const LiteTensor src_tensor) {
    lite_tensor *d = as_tensor(dst_tensor, "LITE_tensor_copy");
    view s, dv;
    if (!d || view_of(src_tensor, &s, "LITE_tensor_copy")) return -1;
    if (!d->net && d->layout.ndim == 0 && s.layout.ndim != 0 && set_host_layout(d, &s.layout))
        return -1;
    if (view_of(dst_tensor, &dv, "LITE_tensor_copy")) return -1;
    if (dv.layout.data_type != s.layout.data_type)
        return lite_fail("LITE_tensor_copy: data types differ (%d, %d)",
                         (int)dv.layout.data_type, (int)s.layout.data_type);
    if (numel(&dv.layout) != numel(&s.layout))
        return lite_fail("LITE_tensor_copy: %z elements into %z", numel(&s.layout),
                         numel(&dv.layout));
    if (is_contiguous(&dv.layout, dv.strides) && is_contiguous(&s.layout, s.strides)) {
        if (dv.data != s.data) memcpy(dv.data, s.data, numel(&s.layout) * s.elsize);
    } else if (dv.layout.ndim == s.layout.ndim) {
        strided_copy(dv.data, dv.strides, s.data, s.strides, &s.layout, s.elsize);
    } else { /* same count, other shape: walk src, write dst in its own element order */
        size_t flat[LAYOUT_MAX_DIM];
        LiteLayout one = s.layout;
        contiguous_strides(&s.layout, flat);
        if (!is_contiguous(&dv.layout, dv.strides))
            return lite_fail("LITE_tensor_copy: shapes differ and dst is not contiguous");
        strided_copy(dv.data, flat, s.data, s.strides, &one, s.elsize);
    }
    return 0;
}

int LITE_tensor_share_memory_with(LiteTensor dst_tensor, const LiteTensor src_tensor) {
    lite_tensor *d = as_tensor(dst_tensor, "LITE_tensor_share_memory_with");
    view s;
    if (!d || view_of(src_tensor, &s, "LITE_tensor_share_memory_with")) return -1;
    if (d->net) {
        if (!is_contiguous(&s.layout, s.strides))
            return lite_fail("LITE_tensor_share_memory_with: an I/O tensor cannot use a "
                             "non-contiguous slice's memory");
        return LITE_reset_tensor(dst_tensor, s.layout, s.data);
    }
    drop_memory(d);
    d->layout = s.layout;
    memcpy(d->strides, s.strides, sizeof d->strides);
    d->data = s.data;
    d->capacity = numel(&s.layout) * s.elsize;
    return 0;
}

/* -------------------------------------------------------------- slices and concatenation */

int LITE_tensor_slice(const LiteTensor tensor, const size_t *start, const size_t *end,
                      const size_t *step, size_t size, LiteTensor *slice_tensor) {
    view v;
    lite_tensor *t;
    size_t k, off = 0;
    LiteLayout l;
    if (!slice_tensor || !start || !end) return lite_fail("LITE_tensor_slice: NULL argument");
    *slice_tensor = NULL;
    if (view_of(tensor, &v, "LITE_tensor_slice")) return -1;
    if (size > v.layout.ndim)
        return lite_fail("LITE_tensor_slice: %z axes for %z dims", size, v.layout.ndim);
    l = v.layout;
    for (k = 0; k < size; k++) {
        size_t st = step ? step[k] : 1;
        if (!st || start[k] > end[k] || end[k] > v.layout.shapes[k])
            return lite_fail("LITE_tensor_slice: axis %z: [%z, %z) step %z of %z", k, start[k],
                             end[k], st, v.layout.shapes[k]);
        l.shapes[k] = (end[k] - start[k] + st - 1) / st;
        off += start[k] * v.strides[k];
    }
    if (new_host_tensor(&l, &t)) return -1;
    for (k = 0; k < v.layout.ndim; k++)
        t->strides[k] = v.strides[k] * (k < size && step ? step[k] : 1);
    t->data = v.data + off * v.elsize; /* borrowed: the source owns it */
    t->capacity = 0;
    *slice_tensor = t;
    return 0;
}

int LITE_tensor_concat(LiteTensor *tensors, int nr_tensor, int dim, LiteDeviceType dst_device,
                       int device_id, LiteTensor *result_tensor) {
    view first, v;
    LiteLayout l;
    lite_tensor *r;
    size_t along = 0, k, offset = 0;
    int i;
    (void)device_id;
    if (!result_tensor || !tensors || nr_tensor < 1)
        return lite_fail("LITE_tensor_concat: no tensors");
    *result_tensor = NULL;
    if (dst_device != LITE_CPU && dst_device != LITE_DEVICE_DEFAULT)
        return lite_fail("megcc tensors live on the CPU (device_type %d)", (int)dst_device);
    if (view_of(tensors[0], &first, "LITE_tensor_concat")) return -1;
    if (dim < 0 || (size_t)dim >= first.layout.ndim)
        return lite_fail("LITE_tensor_concat: dim %d of %z dims", dim, first.layout.ndim);
    for (i = 0; i < nr_tensor; i++) {
        if (view_of(tensors[i], &v, "LITE_tensor_concat")) return -1;
        if (v.layout.data_type != first.layout.data_type || v.layout.ndim != first.layout.ndim)
            return lite_fail("LITE_tensor_concat: tensor %d differs in type or rank", i);
        for (k = 0; k < v.layout.ndim; k++)
            if (k != (size_t)dim && v.layout.shapes[k] != first.layout.shapes[k])
                return lite_fail("LITE_tensor_concat: tensor %d differs in axis %z", i, k);
        along += v.layout.shapes[dim];
    }
    l = first.layout;
    l.shapes[dim] = along;
    if (new_host_tensor(&l, &r)) return -1;
    if (host_memory(r)) {
        LITE_destroy_tensor(r);
        return -1;
    }
    for (i = 0; i < nr_tensor; i++) {
        view_of(tensors[i], &v, "LITE_tensor_concat");
        strided_copy(r->data + offset * r->strides[dim] * v.elsize, r->strides, v.data, v.strides,
                     &v.layout, v.elsize);
        offset += v.layout.shapes[dim];
    }
    *result_tensor = r;
    return 0;
}

/* -------------------------------------------------------------- device facts */

int LITE_get_tensor_device_type(const LiteTensor tensor, LiteDeviceType *device_type) {
    if (!as_tensor(tensor, "LITE_get_tensor_device_type")) return -1;
    if (!device_type) return lite_fail("LITE_get_tensor_device_type: NULL");
    *device_type = LITE_CPU;
    return 0;
}

int LITE_get_tensor_device_id(const LiteTensor tensor, int *device_id) {
    if (!as_tensor(tensor, "LITE_get_tensor_device_id")) return -1;
    if (!device_id) return lite_fail("LITE_get_tensor_device_id: NULL");
    *device_id = 0;
    return 0;
}

int LITE_is_pinned_host(const LiteTensor tensor, int *is_pinned_host) {
    const lite_tensor *t = as_tensor(tensor, "LITE_is_pinned_host");
    if (!t) return -1;
    if (!is_pinned_host) return lite_fail("LITE_is_pinned_host: NULL");
    /* pinning is a device-transfer notion: on this CPU-only runtime the flag is what the
     * tensor was made with (Lite reports it back the same way) */
    *is_pinned_host = t->pinned_host;
    return 0;
}

int LITE_is_memory_continue(const LiteTensor tensor, int *is_continue) {
    lite_tensor *t = as_tensor(tensor, "LITE_is_memory_continue");
    if (!t) return -1;
    if (!is_continue) return lite_fail("LITE_is_memory_continue: NULL");
    *is_continue = t->net ? 1 : is_contiguous(&t->layout, t->strides);
    return 0;
}
