/* MegEngine Lite's C API (subset) on top of megcc.h, so applications written for Lite or
 * MegCC compile and link unchanged.
 *
 * State outside the networks, documented in global_c.h: per thread, the last error
 * message and the objects default_config()/default_network_io() return pointers to
 * (Lite's API returns non-const pointers); process-wide, the configuration set by
 * LITE_set_log_level and LITE_megcc_set_hooks, which only those setters write. */
#include <string.h>

#include "internal.h"
#include "lite-c/global_c.h"

#define LITE_NET_MAGIC 0x4C4E4554u    /* "LNET" */
#define LITE_TENSOR_MAGIC 0x4C54534Eu /* "LTSN" */

static MEGCC_THREAD_LOCAL char g_error[MGC_ERROR_LEN];
static LiteLogLevel g_level = LITE_WARN;
static megcc_hooks g_hooks;
static int g_hooks_set;
static MEGCC_THREAD_LOCAL LiteConfig t_default_config;
static MEGCC_THREAD_LOCAL LiteNetworkIO t_default_network_io;

const LiteOptions default_option = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1,
                                    0, 0, 0, 0, 0, 0, 0};
const LiteIO default_io = {NULL, 1, LITE_IO_VALUE, {{0}, 0, LITE_FLOAT}};
const LiteLayout default_layout = {{0}, 0, LITE_FLOAT};
const LiteTensorDesc default_desc = {0, {{0}, 0, LITE_FLOAT}, LITE_CPU, 0};

/* Activation memory shared by a ring of networks (LITE_share_runtime_memroy). */
typedef struct lite_arena {
    void *ptr;
    size_t size;
    uint32_t refs;
} lite_arena;

struct lite_net;

typedef struct lite_tensor {
    uint32_t magic;
    struct lite_net *net;
    const char *name; /* points into the model */
    int output;
} lite_tensor;

typedef struct lite_net {
    uint32_t magic;
    LiteConfig config;
    megcc_hooks hooks;
    megcc_model *model;
    megcc_network *net;
    lite_arena *arena;
    struct lite_net *ring_next; /* circular list of networks sharing `arena` */
    lite_tensor *tensors;       /* handles given out by LITE_get_io_tensor */
    uint32_t n_tensors, cap_tensors;
} lite_net;

static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mgc_vformat(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    if (g_level <= LITE_ERROR) {
        megcc_hooks h;
        if (g_hooks_set)
            h = g_hooks;
        else if (megcc_default_hooks(&h) != MEGCC_OK)
            h.log = NULL;
        if (h.log) h.log(h.user, MEGCC_LOG_ERROR, g_error);
    }
    return -1;
}

static int hooks_for_new(megcc_hooks *h) {
    if (g_hooks_set) {
        *h = g_hooks;
        return 0;
    }
    if (megcc_default_hooks(h) != MEGCC_OK)
        return fail("no default hooks (MEGCC_NO_LIBC_HOOKS): call LITE_megcc_set_hooks first");
    return 0;
}

static lite_net *as_net(LiteNetwork n) {
    lite_net *ln = (lite_net *)n;
    return (ln && ln->magic == LITE_NET_MAGIC) ? ln : NULL;
}

static lite_net *loaded(LiteNetwork n, const char *fn) {
    lite_net *ln = as_net(n);
    if (!ln) {
        fail("%s: invalid network", fn);
        return NULL;
    }
    if (!ln->net) {
        fail("%s: no model loaded", fn);
        return NULL;
    }
    return ln;
}

/* -------------------------------------------------------------- global */

int LITE_get_version(int *major, int *minor, int *patch) {
    if (major) *major = MEGCC_VERSION_MAJOR;
    if (minor) *minor = MEGCC_VERSION_MINOR;
    if (patch) *patch = 0;
    return 0;
}

const char *LITE_get_last_error(void) { return g_error; }

int LITE_set_log_level(LiteLogLevel level) {
    if ((int)level < LITE_DEBUG || level > LITE_ERROR) return fail("bad log level %d", (int)level);
    g_level = level;
    return 0;
}

int LITE_get_log_level(LiteLogLevel *level) {
    if (!level) return fail("LITE_get_log_level: NULL");
    *level = g_level;
    return 0;
}

int LITE_megcc_set_hooks(const struct megcc_hooks *hooks) {
    if (!hooks || !hooks->alloc || !hooks->free) return fail("hooks need alloc and free");
    g_hooks = *hooks;
    g_hooks_set = 1;
    return 0;
}

static LiteConfig make_default_config(void) {
    LiteConfig c;
    memset(&c, 0, sizeof c);
    c.device_type = LITE_CPU;
    c.backend = LITE_DEFAULT;
    c.options = default_option;
    return c;
}

static LiteNetworkIO make_default_network_io(void) {
    LiteNetworkIO io;
    memset(&io, 0, sizeof io);
    return io;
}

LiteConfig *default_config(void) {
    t_default_config = make_default_config();
    return &t_default_config;
}

LiteNetworkIO *default_network_io(void) {
    t_default_network_io = make_default_network_io();
    return &t_default_network_io;
}

/* -------------------------------------------------------------- network lifetime */

int LITE_make_network(LiteNetwork *network, const LiteConfig config,
                      const LiteNetworkIO network_io) {
    lite_net *ln;
    megcc_hooks h;
    (void)network_io; /* I/O is fixed by the compiled model */
    if (!network) return fail("LITE_make_network: NULL output");
    *network = NULL;
    if (config.device_type != LITE_CPU && config.device_type != LITE_DEVICE_DEFAULT)
        return fail("megcc runs on the CPU only (device_type %d)", (int)config.device_type);
    if (config.has_compression ||
        (config.bare_model_cryption_name && config.bare_model_cryption_name[0]))
        return fail("compressed/encrypted models are not supported");
    if (hooks_for_new(&h)) return -1;
    ln = (lite_net *)h.alloc(h.user, sizeof *ln, 16);
    if (!ln) return fail("out of memory");
    memset(ln, 0, sizeof *ln);
    ln->magic = LITE_NET_MAGIC;
    ln->config = config;
    ln->hooks = h;
    ln->ring_next = ln;
    *network = ln;
    return 0;
}

/* Defaults by value: making a network writes no state outside it. */
int LITE_make_network_config(LiteNetwork *network, const LiteConfig config) {
    return LITE_make_network(network, config, make_default_network_io());
}

int LITE_make_default_network(LiteNetwork *network) {
    return LITE_make_network(network, make_default_config(), make_default_network_io());
}

/* Make the ring's arena at least `need` bytes, moving every loaded member to the new
 * block. Nothing is preserved: activations are per-forward. */
static int ensure_arena(lite_net *ln, size_t need) {
    lite_arena *a = ln->arena;
    lite_net *it = ln;
    void *fresh;
    if (a->ptr && a->size >= need) return 0;
    fresh = ln->hooks.alloc(ln->hooks.user, need ? need : 1, MEGCC_ARENA_ALIGN);
    if (!fresh) return fail("out of memory for a %z-byte arena", need);
    do {
        if (it->net && megcc_network_set_arena(it->net, fresh, need) != MEGCC_OK) {
            ln->hooks.free(ln->hooks.user, fresh); /* cannot happen: need covers all plans */
            return fail("%s", megcc_network_last_error(it->net));
        }
        it = it->ring_next;
    } while (it != ln);
    if (a->ptr) ln->hooks.free(ln->hooks.user, a->ptr);
    a->ptr = fresh;
    a->size = need;
    return 0;
}

static int new_arena(lite_net *ln) {
    lite_arena *a = (lite_arena *)ln->hooks.alloc(ln->hooks.user, sizeof *a, 16);
    if (!a) return fail("out of memory");
    memset(a, 0, sizeof *a);
    a->refs = 1;
    ln->arena = a;
    ln->ring_next = ln;
    return 0;
}

/* Leave the sharing ring; free the arena with its last user. */
static void leave_ring(lite_net *ln) {
    lite_net *prev = ln;
    if (!ln->arena) return;
    while (prev->ring_next != ln) prev = prev->ring_next;
    prev->ring_next = ln->ring_next;
    ln->ring_next = ln;
    if (--ln->arena->refs == 0) {
        if (ln->arena->ptr) ln->hooks.free(ln->hooks.user, ln->arena->ptr);
        ln->hooks.free(ln->hooks.user, ln->arena);
    }
    ln->arena = NULL;
}

static int attach_model(lite_net *ln, megcc_model *model) {
    uint32_t p, cap = 0;
    megcc_status st;
    if (!ln->arena && new_arena(ln)) return -1;
    if (ensure_arena(ln, megcc_network_arena_size(model, -1))) return -1;
    for (p = 0; p < megcc_model_num_plans(model); p++)
        cap += megcc_model_plan_num_inputs(model, p) + megcc_model_plan_num_outputs(model, p);
    /* One handle per distinct (name, phase) at most: no allocation in get_io_tensor. */
    ln->tensors = (lite_tensor *)ln->hooks.alloc(ln->hooks.user,
                                                 (cap ? cap : 1) * sizeof(lite_tensor), 16);
    if (!ln->tensors) return fail("out of memory");
    ln->cap_tensors = cap;
    ln->n_tensors = 0;
    st = megcc_network_create(model, ln->arena->ptr, ln->arena->size, &ln->net);
    if (st) {
        ln->hooks.free(ln->hooks.user, ln->tensors);
        ln->tensors = NULL;
        return fail("%s", megcc_last_error());
    }
    ln->model = model;
    return 0;
}

static int load_common(LiteNetwork network, const void *mem, size_t size, int copy,
                       const char *path) {
    lite_net *ln = as_net(network);
    megcc_model *model;
    megcc_status st;
    if (!ln) return fail("invalid network");
    if (ln->model) return fail("a model is already loaded in this network");
    st = path ? megcc_model_load_from_path_ex(path, &ln->hooks, &model)
              : megcc_model_load_from_memory_ex(mem, size, copy, &ln->hooks, &model);
    if (st) return fail("%s", megcc_last_error());
    if (attach_model(ln, model)) {
        megcc_model_free(model);
        return -1;
    }
    return 0;
}

int LITE_load_model_from_mem(LiteNetwork network, void *model_mem, size_t size) {
    return load_common(network, model_mem, size, 1, NULL);
}

int LITE_load_model_with_shared_mem(LiteNetwork network, void *model_mem, size_t size) {
    return load_common(network, model_mem, size, 0, NULL);
}

int LITE_load_model_from_path(LiteNetwork network, const char *model_path) {
    if (!model_path) return fail("model_path is NULL");
    return load_common(network, NULL, 0, 0, model_path);
}

int LITE_destroy_network(LiteNetwork network) {
    lite_net *ln = as_net(network);
    megcc_hooks h;
    if (!ln) return fail("LITE_destroy_network: invalid network");
    h = ln->hooks;
    megcc_network_destroy(ln->net);
    megcc_model_free(ln->model);
    leave_ring(ln);
    if (ln->tensors) h.free(h.user, ln->tensors);
    ln->magic = 0;
    h.free(h.user, ln);
    return 0;
}

int LITE_share_runtime_memroy(LiteNetwork src_network, LiteNetwork dst_network) {
    lite_net *src = as_net(src_network), *dst = as_net(dst_network), *it;
    size_t need = 0;
    if (!src || !dst) return fail("LITE_share_runtime_memroy: invalid network");
    if (src == dst) return 0;
    if (!src->arena && new_arena(src)) return -1;
    if (dst->arena == src->arena) return 0;
    leave_ring(dst);
    /* Splice dst into src's ring. */
    dst->arena = src->arena;
    dst->arena->refs++;
    dst->ring_next = src->ring_next;
    src->ring_next = dst;
    it = src;
    do {
        if (it->model && megcc_network_arena_size(it->model, -1) > need)
            need = megcc_network_arena_size(it->model, -1);
        it = it->ring_next;
    } while (it != src);
    if (ensure_arena(src, need)) return -1;
    if (dst->net && megcc_network_set_arena(dst->net, src->arena->ptr, src->arena->size))
        return fail("%s", megcc_network_last_error(dst->net));
    return 0;
}

/* -------------------------------------------------------------- running */

int LITE_forward(const LiteNetwork network) {
    lite_net *ln = loaded(network, "LITE_forward");
    if (!ln) return -1;
    if (megcc_network_forward(ln->net) != MEGCC_OK)
        return fail("%s", megcc_network_last_error(ln->net));
    return 0;
}

int LITE_wait(const LiteNetwork network) {
    return loaded(network, "LITE_wait") ? 0 : -1;
}

static int io_name(const LiteNetwork network, size_t index, const char **name, int output) {
    lite_net *ln = loaded(network, "LITE_get_input/output_name");
    megcc_tensor_info info;
    megcc_status st;
    if (!ln) return -1;
    if (!name) return fail("name is NULL");
    if (index > 0xFFFFFFFFu) return fail("index %z out of range", index);
    st = output ? megcc_network_output_info(ln->net, (uint32_t)index, &info)
                : megcc_network_input_info(ln->net, (uint32_t)index, &info);
    if (st)
        return fail("%s index %z out of range", output ? "output" : "input", index);
    *name = info.name;
    return 0;
}

int LITE_get_input_name(const LiteNetwork network, size_t index, const char **name) {
    return io_name(network, index, name, 0);
}

int LITE_get_output_name(const LiteNetwork network, size_t index, const char **name) {
    return io_name(network, index, name, 1);
}

static int all_names(const LiteNetwork network, size_t *size, const char **name, int output) {
    lite_net *ln = loaded(network, "LITE_get_all_input/output_name");
    uint32_t i, n;
    if (!ln) return -1;
    n = output ? megcc_network_num_outputs(ln->net) : megcc_network_num_inputs(ln->net);
    if (size) *size = n;
    for (i = 0; name && i < n; i++)
        if (io_name(network, i, &name[i], output)) return -1;
    return 0;
}

int LITE_get_all_input_name(const LiteNetwork network, size_t *size, const char **name) {
    return all_names(network, size, name, 0);
}

int LITE_get_all_output_name(const LiteNetwork network, size_t *size, const char **name) {
    return all_names(network, size, name, 1);
}

int LITE_get_io_tensor(LiteNetwork network, const char *io_name_, LiteTensorPhase phase,
                       LiteTensor *tensor) {
    lite_net *ln = loaded(network, "LITE_get_io_tensor");
    int output, idx = -1;
    uint32_t i;
    megcc_tensor_info info;
    if (!ln) return -1;
    if (!io_name_ || !tensor) return fail("LITE_get_io_tensor: NULL argument");
    if (phase != LITE_OUTPUT) idx = megcc_network_find_input(ln->net, io_name_);
    output = idx < 0;
    if (output && phase != LITE_INPUT) idx = megcc_network_find_output(ln->net, io_name_);
    if (idx < 0) return fail("no %s tensor named '%s'", phase == LITE_INPUT ? "input" :
                             phase == LITE_OUTPUT ? "output" : "I/O", io_name_);
    for (i = 0; i < ln->n_tensors; i++)
        if (ln->tensors[i].output == output && mgc_streq(ln->tensors[i].name, io_name_)) {
            *tensor = &ln->tensors[i];
            return 0;
        }
    if (ln->n_tensors == ln->cap_tensors) return fail("too many tensor handles");
    if (output)
        megcc_network_output_info(ln->net, (uint32_t)idx, &info);
    else
        megcc_network_input_info(ln->net, (uint32_t)idx, &info);
    ln->tensors[ln->n_tensors].magic = LITE_TENSOR_MAGIC;
    ln->tensors[ln->n_tensors].net = ln;
    ln->tensors[ln->n_tensors].name = info.name; /* lives as long as the model */
    ln->tensors[ln->n_tensors].output = output;
    *tensor = &ln->tensors[ln->n_tensors++];
    return 0;
}

/* -------------------------------------------------------------- tensors */

/* Resolve a handle to its index in the network's *current* plan (handles name tensors, so
 * they stay valid across plan switches). */
static lite_net *tensor_index(const LiteTensor tensor, uint32_t *index, int *output,
                              const char *fn) {
    const lite_tensor *t = (const lite_tensor *)tensor;
    int idx;
    if (!t || t->magic != LITE_TENSOR_MAGIC) {
        fail("%s: invalid tensor", fn);
        return NULL;
    }
    idx = t->output ? megcc_network_find_output(t->net->net, t->name)
                    : megcc_network_find_input(t->net->net, t->name);
    if (idx < 0) {
        fail("%s: tensor '%s' is not in the current plan", fn, t->name);
        return NULL;
    }
    *index = (uint32_t)idx;
    *output = t->output;
    return t->net;
}

static int tensor_info(const LiteTensor tensor, megcc_tensor_info *info, lite_net **ln_out,
                       uint32_t *index, int *output, const char *fn) {
    lite_net *ln = tensor_index(tensor, index, output, fn);
    if (!ln) return -1;
    if (*output)
        megcc_network_output_info(ln->net, *index, info);
    else
        megcc_network_input_info(ln->net, *index, info);
    if (ln_out) *ln_out = ln;
    return 0;
}

static LiteDataType lite_dtype(megcc_dtype d) {
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

static int layout_matches(const megcc_tensor_info *info, const LiteLayout *l) {
    uint32_t k;
    if (l->ndim != info->ndim || l->data_type != lite_dtype(info->dtype)) return 0;
    for (k = 0; k < info->ndim; k++)
        if (l->shapes[k] != (size_t)info->dims[k]) return 0;
    return 1;
}

int LITE_get_tensor_layout(const LiteTensor tensor, LiteLayout *layout) {
    megcc_tensor_info info;
    uint32_t index, k;
    int output;
    if (tensor_info(tensor, &info, NULL, &index, &output, "LITE_get_tensor_layout")) return -1;
    if (!layout) return fail("LITE_get_tensor_layout: NULL layout");
    if (info.ndim > LAYOUT_MAX_DIM)
        return fail("tensor '%s' has %u dims, LiteLayout holds %d", info.name, info.ndim,
                    LAYOUT_MAX_DIM);
    memset(layout, 0, sizeof *layout);
    layout->ndim = info.ndim;
    for (k = 0; k < info.ndim; k++) layout->shapes[k] = (size_t)info.dims[k];
    layout->data_type = lite_dtype(info.dtype);
    return 0;
}

/* Find the plan whose input `name` has `layout`, preferring one whose other inputs keep
 * their current shapes (a multi-input model switched one input at a time). */
static int find_plan(lite_net *ln, const char *name, const LiteLayout *layout) {
    const megcc_model *m = ln->model;
    uint32_t cur = megcc_network_plan(ln->net), p, i, j, k;
    int fallback = -1;
    for (p = 0; p < megcc_model_num_plans(m); p++) {
        int has = 0, others_same = 1;
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

int LITE_set_tensor_layout(LiteTensor tensor, const LiteLayout layout) {
    megcc_tensor_info info;
    lite_net *ln;
    uint32_t index;
    int output, plan;
    if (tensor_info(tensor, &info, &ln, &index, &output, "LITE_set_tensor_layout")) return -1;
    if (layout_matches(&info, &layout)) return 0;
    if (output) return fail("output '%s': layout is fixed by the compiled plan", info.name);
    plan = find_plan(ln, info.name, &layout);
    if (plan < 0)
        return fail("no compiled plan has input '%s' with the requested shape/dtype", info.name);
    if (megcc_network_select_plan(ln->net, (uint32_t)plan) != MEGCC_OK)
        return fail("%s", megcc_network_last_error(ln->net));
    return 0;
}

int LITE_get_tensor_memory(const LiteTensor tensor, void **data) {
    lite_net *ln;
    uint32_t index;
    int output;
    if (!data) return fail("LITE_get_tensor_memory: NULL data");
    if (!(ln = tensor_index(tensor, &index, &output, "LITE_get_tensor_memory"))) return -1;
    *data = output ? megcc_network_output_data(ln->net, index)
                   : megcc_network_input_data(ln->net, index);
    if (!*data) return fail("LITE_get_tensor_memory: %s", megcc_network_last_error(ln->net));
    return 0;
}

int LITE_reset_tensor_memory(LiteTensor tensor, void *prepared_data,
                             size_t data_length_in_byte) {
    lite_net *ln;
    uint32_t index;
    int output;
    megcc_status st;
    if (!prepared_data) return fail("LITE_reset_tensor_memory: NULL data");
    if (!(ln = tensor_index(tensor, &index, &output, "LITE_reset_tensor_memory"))) return -1;
    st = output ? megcc_network_set_output_memory(ln->net, index, prepared_data,
                                                  data_length_in_byte)
                : megcc_network_set_input_memory(ln->net, index, prepared_data,
                                                 data_length_in_byte);
    if (st) return fail("%s", megcc_network_last_error(ln->net));
    return 0;
}

int LITE_get_tensor_total_size_in_byte(const LiteTensor tensor, size_t *size) {
    megcc_tensor_info info;
    uint32_t index;
    int output;
    if (!size) return fail("LITE_get_tensor_total_size_in_byte: NULL size");
    if (tensor_info(tensor, &info, NULL, &index, &output, "LITE_get_tensor_total_size_in_byte"))
        return -1;
    *size = info.nbytes;
    return 0;
}

int LITE_destroy_tensor(LiteTensor tensor) {
    const lite_tensor *t = (const lite_tensor *)tensor;
    if (!t || t->magic != LITE_TENSOR_MAGIC) return fail("LITE_destroy_tensor: invalid tensor");
    return 0; /* owned by the network */
}
