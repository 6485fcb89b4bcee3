/* MegEngine Lite's C API on top of megcc.h: global state and networks (tensors are in
 * lite_c_tensor.c; profiling, dumps and info in lite_c_debug.c), so applications written
 * for Lite or MegCC compile and link unchanged.
 *
 * State outside the networks, documented in global_c.h: per thread, the last error
 * message and code and the objects default_config()/default_network_io() return pointers
 * to (Lite's API returns non-const pointers); process-wide, the configuration set by
 * LITE_set_log_level and LITE_megcc_set_hooks, which only those setters write. */
#include "lite_c_internal.h"

static MEGCC_THREAD_LOCAL char g_error[MGC_ERROR_LEN];
static MEGCC_THREAD_LOCAL ErrorCode g_error_code = OK;
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

static int fail_code(ErrorCode code, const char *fmt, va_list ap) {
    mgc_vformat(g_error, sizeof g_error, fmt, ap);
    g_error_code = code;
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

int lite_fail(const char *fmt, ...) {
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = fail_code(LITE_INTERNAL_ERROR, fmt, ap);
    va_end(ap);
    return rc;
}

static int unsupported_v(const char *fmt, ...) {
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = fail_code(LITE_MEGCC_NOT_SUPPORTED, fmt, ap);
    va_end(ap);
    return rc;
}

int lite_unsupported(const char *what, const char *why) {
    return unsupported_v("%s is not supported by the megcc runtime: %s", what, why);
}

int lite_hooks_for_new(megcc_hooks *h) {
    if (g_hooks_set) {
        *h = g_hooks;
        return 0;
    }
    if (megcc_default_hooks(h) != MEGCC_OK)
        return lite_fail("no default hooks (MEGCC_NO_LIBC_HOOKS): call LITE_megcc_set_hooks first");
    return 0;
}

lite_net *lite_as_net(LiteNetwork n) {
    lite_net *ln = (lite_net *)n;
    return (ln && ln->magic == LITE_NET_MAGIC) ? ln : NULL;
}

lite_net *lite_loaded(LiteNetwork n, const char *fn) {
    lite_net *ln = lite_as_net(n);
    if (!ln) {
        lite_fail("%s: invalid network", fn);
        return NULL;
    }
    if (!ln->net) {
        lite_fail("%s: no model loaded", fn);
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

ErrorCode LITE_get_last_error_code(void) { return g_error_code; }

void LITE_clear_last_error(void) {
    g_error[0] = '\0';
    g_error_code = OK;
}

int LITE_set_log_level(LiteLogLevel level) {
    /* through an int: with short enums (arm-none-eabi) the enum itself cannot be negative */
    const int value = (int)level;
    if (value < (int)LITE_DEBUG || value > (int)LITE_ERROR)
        return lite_fail("bad log level %d", value);
    g_level = level;
    return 0;
}

int LITE_get_log_level(LiteLogLevel *level) {
    if (!level) return lite_fail("LITE_get_log_level: NULL");
    *level = g_level;
    return 0;
}

int LITE_megcc_set_hooks(const struct megcc_hooks *hooks) {
    if (!hooks || !hooks->alloc || !hooks->free) return lite_fail("hooks need alloc and free");
    g_hooks = *hooks;
    g_hooks_set = 1;
    return 0;
}

int LITE_get_device_count(LiteDeviceType device_type, size_t *count) {
    if (!count) return lite_fail("LITE_get_device_count: NULL count");
    *count = (device_type == LITE_CPU || device_type == LITE_DEVICE_DEFAULT) ? 1 : 0;
    return 0;
}

int LITE_try_coalesce_all_free_memory(void) { return 0; }

int LITE_register_decryption_and_key(const char *decrypt_name, const LiteDecryptionFunc func,
                                     const uint8_t *key_data, size_t key_size) {
    (void)decrypt_name, (void)func, (void)key_data, (void)key_size;
    return lite_unsupported("LITE_register_decryption_and_key", "compiled models are not encrypted");
}

int LITE_update_decryption_or_key(const char *decrypt_name, const LiteDecryptionFunc func,
                                  const uint8_t *key_data, size_t key_size) {
    (void)decrypt_name, (void)func, (void)key_data, (void)key_size;
    return lite_unsupported("LITE_update_decryption_or_key", "compiled models are not encrypted");
}

int LITE_register_parse_info_func(const char *info_type, const LiteParseInfoFunc parse_func) {
    (void)info_type, (void)parse_func;
    return lite_unsupported("LITE_register_parse_info_func", "models carry no packed info");
}

int LITE_set_loader_lib_path(const char *loader_path) {
    (void)loader_path;
    return lite_unsupported("LITE_set_loader_lib_path", "there are no extern operators to load");
}

int LITE_set_persistent_cache(const char *cache_path, int always_sync) {
    (void)cache_path, (void)always_sync;
    return lite_unsupported("LITE_set_persistent_cache",
                            "kernels are chosen at compile time, there is no algorithm cache");
}

int LITE_dump_persistent_cache(const char *cache_path) {
    (void)cache_path;
    return lite_unsupported("LITE_dump_persistent_cache",
                            "kernels are chosen at compile time, there is no algorithm cache");
}

int LITE_set_tensor_rt_cache(const char *cache_path) {
    (void)cache_path;
    return lite_unsupported("LITE_set_tensor_rt_cache", "no TensorRT");
}

int LITE_dump_tensor_rt_cache(void) {
    return lite_unsupported("LITE_dump_tensor_rt_cache", "no TensorRT");
}

int LITE_register_memory_pair(void *vir_ptr, void *phy_ptr, size_t length, LiteDeviceType device,
                              LiteBackend backend) {
    (void)vir_ptr, (void)phy_ptr, (void)length, (void)device, (void)backend;
    return lite_unsupported("LITE_register_memory_pair", "no device memory");
}

int LITE_clear_memory_pair(void *vir_ptr, void *phy_ptr, LiteDeviceType device,
                           LiteBackend backend) {
    (void)vir_ptr, (void)phy_ptr, (void)device, (void)backend;
    return lite_unsupported("LITE_clear_memory_pair", "no device memory");
}

int LITE_lookup_physic_ptr(void *vir_ptr, void **phy_ptr, LiteDeviceType device,
                           LiteBackend backend) {
    (void)vir_ptr, (void)phy_ptr, (void)device, (void)backend;
    return lite_unsupported("LITE_lookup_physic_ptr", "no device memory");
}

static LiteConfig make_default_config(void) {
    LiteConfig c;
    memset(&c, 0, sizeof c);
    c.device_id = -1;
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

/* -------------------------------------------------------------- user allocators */

static void *user_alloc_hook(void *user, size_t size, size_t align) {
    lite_allocator *a = (lite_allocator *)user;
    return a->allocate(LITE_CPU, 0, size, align);
}

static void user_free_hook(void *user, void *ptr) {
    lite_allocator *a = (lite_allocator *)user;
    if (ptr) a->free(LITE_CPU, 0, ptr);
}

/* One more / one less object allocated through `h` (no-op for other hooks). */
static void allocator_retain(const megcc_hooks *h) {
    if (h->alloc == user_alloc_hook) ((lite_allocator *)h->user)->refs++;
}

static void allocator_release(const megcc_hooks *h) {
    lite_allocator *a;
    if (h->alloc != user_alloc_hook) return;
    a = (lite_allocator *)h->user;
    if (--a->refs == 0) a->free(LITE_CPU, 0, a);
}

/* -------------------------------------------------------------- network lifetime */

int LITE_make_network(LiteNetwork *network, const LiteConfig config,
                      const LiteNetworkIO network_io) {
    lite_net *ln;
    megcc_hooks h;
    (void)network_io; /* I/O is fixed by the compiled model */
    if (!network) return lite_fail("LITE_make_network: NULL output");
    *network = NULL;
    if (config.device_type != LITE_CPU && config.device_type != LITE_DEVICE_DEFAULT)
        return lite_fail("megcc runs on the CPU only (device_type %d)", (int)config.device_type);
    if (config.has_compression ||
        (config.bare_model_cryption_name && config.bare_model_cryption_name[0]))
        return lite_fail("compressed/encrypted models are not supported");
    if (config.discrete_input_name && config.discrete_input_name[0])
        return lite_unsupported("LiteConfig.discrete_input_name", "no discrete inputs");
    if (lite_hooks_for_new(&h)) return -1;
    ln = (lite_net *)h.alloc(h.user, sizeof *ln, 16);
    if (!ln) return lite_fail("out of memory");
    memset(ln, 0, sizeof *ln);
    ln->magic = LITE_NET_MAGIC;
    ln->config = config;
    ln->hooks = h;
    ln->record_hooks = h;
    ln->ring_next = ln;
    ln->threads = 1;
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
int lite_ensure_arena(lite_net *ln, size_t need) {
    lite_arena *a = ln->arena;
    lite_net *it = ln;
    void *fresh;
    if (a->ptr && a->size >= need) return 0;
    fresh = a->hooks.alloc(a->hooks.user, need ? need : 1, MEGCC_ARENA_ALIGN);
    if (!fresh) return lite_fail("out of memory for a %z-byte arena", need);
    do {
        if (it->net && megcc_network_set_arena(it->net, fresh, need) != MEGCC_OK) {
            a->hooks.free(a->hooks.user, fresh); /* cannot happen: need covers all plans */
            return lite_fail("%s", megcc_network_last_error(it->net));
        }
        it = it->ring_next;
    } while (it != ln);
    if (a->ptr) a->hooks.free(a->hooks.user, a->ptr);
    a->ptr = fresh;
    a->size = need;
    return 0;
}

static int new_arena(lite_net *ln) {
    lite_arena *a = (lite_arena *)ln->hooks.alloc(ln->hooks.user, sizeof *a, 16);
    if (!a) return lite_fail("out of memory");
    memset(a, 0, sizeof *a);
    a->refs = 1;
    a->hooks = ln->hooks;
    allocator_retain(&a->hooks);
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
        megcc_hooks h = ln->arena->hooks;
        if (ln->arena->ptr) h.free(h.user, ln->arena->ptr);
        h.free(h.user, ln->arena);
        allocator_release(&h);
    }
    ln->arena = NULL;
}

static void release_model(lite_net *ln) {
    lite_model *s = ln->shared;
    if (!s) return;
    if (--s->refs == 0) {
        megcc_hooks h = s->hooks;
        megcc_model_free(s->model);
        h.free(h.user, s);
        allocator_release(&h);
    }
    ln->shared = NULL;
    ln->model = NULL;
}

static void free_io_tables(lite_net *ln) {
    if (ln->tensors) ln->hooks.free(ln->hooks.user, ln->tensors);
    if (ln->cb_io) ln->hooks.free(ln->hooks.user, ln->cb_io);
    if (ln->cb_tensors) ln->hooks.free(ln->hooks.user, ln->cb_tensors);
    ln->tensors = NULL;
    ln->cb_io = NULL;
    ln->cb_tensors = NULL;
}

static int apply_threads(lite_net *ln) {
    megcc_status st;
    if (!ln->net) return 0;
    st = megcc_network_set_threads(ln->net, (uint32_t)ln->threads);
    if (st) return lite_fail("%s", megcc_network_last_error(ln->net));
    return 0;
}

/* Make the network on `shared`'s model (the caller holds one reference for it). */
static int attach_model(lite_net *ln, lite_model *shared) {
    megcc_model *model = shared->model;
    uint32_t p, cap = 0, io_max = 0;
    megcc_status st;
    if (!ln->arena && new_arena(ln)) return -1;
    if (lite_ensure_arena(ln, megcc_network_arena_size(model, -1))) return -1;
    for (p = 0; p < megcc_model_num_plans(model); p++) {
        uint32_t n = megcc_model_plan_num_inputs(model, p) + megcc_model_plan_num_outputs(model, p);
        cap += n;
        if (n > io_max) io_max = n;
    }
    /* One handle per distinct (name, phase) at most, and the callbacks' arrays: no
     * allocation in get_io_tensor or forward. */
    ln->tensors = (lite_tensor *)ln->hooks.alloc(ln->hooks.user,
                                                 (cap ? cap : 1) * sizeof(lite_tensor), 16);
    ln->cb_io = (LiteIO *)ln->hooks.alloc(ln->hooks.user, (io_max ? io_max : 1) * sizeof(LiteIO),
                                          16);
    ln->cb_tensors = (LiteTensor *)ln->hooks.alloc(
            ln->hooks.user, (io_max ? io_max : 1) * sizeof(LiteTensor), 16);
    if (!ln->tensors || !ln->cb_io || !ln->cb_tensors) {
        free_io_tables(ln);
        return lite_fail("out of memory");
    }
    ln->cap_tensors = cap;
    ln->n_tensors = 0;
    st = megcc_network_create(model, ln->arena->ptr, ln->arena->size, &ln->net);
    if (st) {
        free_io_tables(ln);
        return lite_fail("%s", megcc_last_error());
    }
    ln->shared = shared;
    ln->model = model;
    if (ln->threads > 1 && apply_threads(ln)) return -1;
    return 0;
}

/* Undo a failed attach_model: the network, its tables and the reference on `shared`. */
static void detach_model(lite_net *ln, lite_model *shared) {
    megcc_network_destroy(ln->net);
    ln->net = NULL;
    free_io_tables(ln);
    ln->shared = shared;
    release_model(ln);
}

static int load_common(LiteNetwork network, const void *mem, size_t size, int copy,
                       const char *path) {
    lite_net *ln = lite_as_net(network);
    lite_model *shared;
    megcc_model *model;
    megcc_status st;
    if (!ln) return lite_fail("invalid network");
    if (ln->model) return lite_fail("a model is already loaded in this network");
    st = path ? megcc_model_load_from_path_ex(path, &ln->hooks, &model)
              : megcc_model_load_from_memory_ex(mem, size, copy, &ln->hooks, &model);
    if (st == MEGCC_ERR_BAD_MAGIC)
        return lite_fail("%s (a MegEngine .mge or ONNX model must be compiled first: "
                         "megcc compile MODEL -o DIR, then load DIR/<name>.tiny)",
                         megcc_last_error());
    if (st) return lite_fail("%s", megcc_last_error());
    shared = (lite_model *)ln->hooks.alloc(ln->hooks.user, sizeof *shared, 16);
    if (!shared) {
        megcc_model_free(model);
        return lite_fail("out of memory");
    }
    shared->model = model;
    shared->refs = 1;
    shared->hooks = ln->hooks;
    allocator_retain(&shared->hooks);
    if (attach_model(ln, shared)) {
        detach_model(ln, shared);
        return -1;
    }
    return 0;
}

int LITE_load_model_from_mem(LiteNetwork network, void *model_mem, size_t size) {
    if (!model_mem) return lite_fail("LITE_load_model_from_mem: NULL model memory");
    return load_common(network, model_mem, size, 1, NULL);
}

int LITE_load_model_with_shared_mem(LiteNetwork network, void *model_mem, size_t size) {
    if (!model_mem) return lite_fail("LITE_load_model_with_shared_mem: NULL model memory");
    return load_common(network, model_mem, size, 0, NULL);
}

int LITE_load_model_from_path(LiteNetwork network, const char *model_path) {
    if (!model_path) return lite_fail("model_path is NULL");
    return load_common(network, NULL, 0, 0, model_path);
}

int LITE_shared_weight_with_network(LiteNetwork dst_network, const LiteNetwork src_network) {
    lite_net *dst = lite_as_net(dst_network), *src = lite_loaded(src_network,
                                                                 "LITE_shared_weight_with_network");
    if (!src) return -1;
    if (!dst) return lite_fail("LITE_shared_weight_with_network: invalid dst network");
    if (dst->model) return lite_fail("a model is already loaded in the dst network");
    src->shared->refs++;
    if (attach_model(dst, src->shared)) {
        detach_model(dst, src->shared);
        return -1;
    }
    return 0;
}

int LITE_destroy_network(LiteNetwork network) {
    lite_net *ln = lite_as_net(network);
    megcc_hooks h;
    if (!ln) return lite_fail("LITE_destroy_network: invalid network");
    lite_debug_destroy(ln);
    megcc_network_destroy(ln->net);
    release_model(ln);
    leave_ring(ln);
    free_io_tables(ln);
    allocator_release(&ln->hooks); /* the network's own reference */
    h = ln->record_hooks;
    ln->magic = 0;
    h.free(h.user, ln);
    return 0;
}

int LITE_share_runtime_memroy(LiteNetwork src_network, LiteNetwork dst_network) {
    lite_net *src = lite_as_net(src_network), *dst = lite_as_net(dst_network), *it;
    size_t need = 0;
    if (!src || !dst) return lite_fail("LITE_share_runtime_memroy: invalid network");
    if (src == dst) return 0;
    if (src->hooks.alloc != dst->hooks.alloc || src->hooks.user != dst->hooks.user)
        return lite_fail("LITE_share_runtime_memroy: the networks have different memory "
                         "allocators");
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
    if (lite_ensure_arena(src, need)) return -1;
    if (dst->net && megcc_network_set_arena(dst->net, src->arena->ptr, src->arena->size))
        return lite_fail("%s", megcc_network_last_error(dst->net));
    return 0;
}

/* -------------------------------------------------------------- configuration */

int LITE_set_memory_allocator(LiteNetwork network, const LiteAllocate allocate_fun,
                              const LiteFree free_fun) {
    lite_net *ln = lite_as_net(network);
    lite_allocator *a;
    if (!ln) return lite_fail("LITE_set_memory_allocator: invalid network");
    if (!allocate_fun || !free_fun)
        return lite_fail("LITE_set_memory_allocator: NULL allocate or free function");
    if (ln->model || ln->arena)
        return lite_fail("LITE_set_memory_allocator: set the allocator before loading a model "
                         "or sharing memory");
    a = (lite_allocator *)allocate_fun(LITE_CPU, 0, sizeof *a, 16);
    if (!a) return lite_fail("LITE_set_memory_allocator: the allocator returned NULL");
    a->allocate = allocate_fun;
    a->free = free_fun;
    a->refs = 1; /* the network's */
    allocator_release(&ln->hooks);
    ln->hooks.alloc = user_alloc_hook;
    ln->hooks.free = user_free_hook;
    ln->hooks.user = a; /* log and time_ns keep the defaults */
    return 0;
}

int LITE_set_cpu_threads_number(LiteNetwork network, size_t nr_threads) {
    lite_net *ln = lite_as_net(network);
    if (!ln) return lite_fail("LITE_set_cpu_threads_number: invalid network");
    if (nr_threads < 1 || nr_threads > 1024)
        return lite_fail("LITE_set_cpu_threads_number: %z threads (1..1024)", nr_threads);
    ln->threads = nr_threads;
    return apply_threads(ln);
}

int LITE_get_cpu_threads_number(const LiteNetwork network, size_t *nr_threads) {
    lite_net *ln = lite_as_net(network);
    if (!ln || !nr_threads) return lite_fail("LITE_get_cpu_threads_number: invalid argument");
    *nr_threads = ln->threads;
    return 0;
}

int LITE_set_cpu_inplace_mode(LiteNetwork network) {
    lite_net *ln = lite_as_net(network);
    if (!ln) return lite_fail("LITE_set_cpu_inplace_mode: invalid network");
    ln->threads = 1;
    return apply_threads(ln);
}

int LITE_is_cpu_inplace_mode(const LiteNetwork network, int *is_cpu_inplace_mode) {
    lite_net *ln = lite_as_net(network);
    if (!ln || !is_cpu_inplace_mode) return lite_fail("LITE_is_cpu_inplace_mode: invalid argument");
    *is_cpu_inplace_mode = ln->threads == 1;
    return 0;
}

static int set_cpu_id(LiteNetwork network, int id, const char *fn) {
    if (!lite_as_net(network)) return lite_fail("%s: invalid network", fn);
    if (id != 0 && id != -1) return lite_unsupported(fn, "the CPU is the only device and stream (0)");
    return 0;
}

static int get_cpu_id(const LiteNetwork network, int *id, const char *fn) {
    if (!lite_as_net(network) || !id) return lite_fail("%s: invalid argument", fn);
    *id = 0;
    return 0;
}

int LITE_set_device_id(LiteNetwork network, int device_id) {
    return set_cpu_id(network, device_id, "LITE_set_device_id");
}

int LITE_get_device_id(const LiteNetwork network, int *device_id) {
    return get_cpu_id(network, device_id, "LITE_get_device_id");
}

int LITE_set_stream_id(LiteNetwork network, int stream_id) {
    return set_cpu_id(network, stream_id, "LITE_set_stream_id");
}

int LITE_get_stream_id(const LiteNetwork network, int *stream_id) {
    return get_cpu_id(network, stream_id, "LITE_get_stream_id");
}

int LITE_get_device_type(const LiteNetwork network, LiteDeviceType *device_type) {
    if (!lite_as_net(network) || !device_type) return lite_fail("LITE_get_device_type: invalid argument");
    *device_type = LITE_CPU;
    return 0;
}

int LITE_get_model_extra_info(const LiteNetwork network, const char **info, int *info_size) {
    if (!lite_loaded(network, "LITE_get_model_extra_info")) return -1;
    if (!info || !info_size) return lite_fail("LITE_get_model_extra_info: NULL argument");
    *info = "";
    *info_size = 0;
    return 0;
}

int LITE_use_tensorrt(LiteNetwork network) {
    (void)network;
    return lite_unsupported("LITE_use_tensorrt", "no TensorRT");
}

int LITE_set_network_algo_policy(LiteNetwork network, LiteAlgoSelectStrategy strategy) {
    (void)strategy;
    return lite_as_net(network) ? 0 : lite_fail("LITE_set_network_algo_policy: invalid network");
}

int LITE_set_network_algo_fastrun_config(LiteNetwork network, unsigned int shared_batch_size,
                                         int binary_equal_between_batch) {
    (void)shared_batch_size, (void)binary_equal_between_batch;
    return lite_as_net(network) ? 0
                                : lite_fail("LITE_set_network_algo_fastrun_config: invalid network");
}

int LITE_set_network_algo_workspace_limit(LiteNetwork network, size_t workspace_limit) {
    (void)workspace_limit;
    return lite_as_net(network) ? 0
                                : lite_fail("LITE_set_network_algo_workspace_limit: invalid network");
}

int LITE_extra_configure(LiteNetwork network, LiteExtraConfig extra_config) {
    (void)extra_config;
    return lite_as_net(network) ? 0 : lite_fail("LITE_extra_configure: invalid network");
}

int LITE_set_runtime_thread_affinity(LiteNetwork network,
                                     const LiteThreadAffinityCallback thread_affinity_callback) {
    (void)network, (void)thread_affinity_callback;
    return lite_unsupported("LITE_set_runtime_thread_affinity",
                            "the thread pool has no affinity hook");
}

int LITE_enable_global_layout_transform(LiteNetwork network) {
    (void)network;
    return lite_unsupported("LITE_enable_global_layout_transform",
                            "layouts are chosen at compile time (megcc compile --enable-nchw44)");
}

int LITE_dump_layout_transform_model(LiteNetwork network, const char *dump_file_path) {
    (void)network, (void)dump_file_path;
    return lite_unsupported("LITE_dump_layout_transform_model",
                            "layouts are chosen at compile time (megcc compile --enable-nchw44)");
}

int LITE_get_discrete_tensor(LiteNetwork network, const char *io_name, size_t n_idx,
                             LiteTensorPhase phase, LiteTensor *tensor) {
    (void)network, (void)io_name, (void)n_idx, (void)phase, (void)tensor;
    return lite_unsupported("LITE_get_discrete_tensor", "no discrete inputs");
}

#define SET_CALLBACK(field, value)                                         \
    do {                                                                   \
        lite_net *ln_ = lite_as_net(network);                              \
        if (!ln_) return lite_fail("%s: invalid network", __func__);       \
        ln_->field = value;                                                \
    } while (0)

int LITE_set_async_callback(LiteNetwork network, const LiteAsyncCallback async_callback) {
    SET_CALLBACK(async_cb, async_callback);
    ((lite_net *)network)->async_cb_data = NULL;
    return 0;
}

int LITE_set_async_callback_with_userdata(LiteNetwork network,
                                          const LiteAsyncCallbackWithData async_callback,
                                          void *user_data) {
    SET_CALLBACK(async_cb_data, async_callback);
    ((lite_net *)network)->async_cb = NULL;
    ((lite_net *)network)->async_user = user_data;
    return 0;
}

int LITE_set_start_callback(LiteNetwork network, const LiteStartCallback start_callback) {
    SET_CALLBACK(start_cb, start_callback);
    ((lite_net *)network)->start_cb_data = NULL;
    return 0;
}

int LITE_set_start_callback_with_userdata(LiteNetwork network,
                                          const LiteStartCallbackWithData start_callback,
                                          void *user_data) {
    SET_CALLBACK(start_cb_data, start_callback);
    ((lite_net *)network)->start_cb = NULL;
    ((lite_net *)network)->start_user = user_data;
    return 0;
}

int LITE_set_finish_callback(LiteNetwork network, const LiteFinishCallback finish_callback) {
    SET_CALLBACK(finish_cb, finish_callback);
    ((lite_net *)network)->finish_cb_data = NULL;
    return 0;
}

int LITE_set_finish_callback_with_userdata(LiteNetwork network,
                                           const LiteFinishCallbackWithData finish_callback,
                                           void *user_data) {
    SET_CALLBACK(finish_cb_data, finish_callback);
    ((lite_net *)network)->finish_cb = NULL;
    ((lite_net *)network)->finish_user = user_data;
    return 0;
}

/* -------------------------------------------------------------- running */

/* Fill the callbacks' arrays with the inputs (output = 0) or outputs of the current plan. */
static int callback_io(lite_net *ln, int output, size_t *count) {
    uint32_t i, n = output ? megcc_network_num_outputs(ln->net) : megcc_network_num_inputs(ln->net);
    for (i = 0; i < n; i++) {
        megcc_tensor_info info;
        if (output)
            megcc_network_output_info(ln->net, i, &info);
        else
            megcc_network_input_info(ln->net, i, &info);
        ln->cb_io[i] = default_io;
        ln->cb_io[i].name = info.name;
        lite_layout_of(&info, &ln->cb_io[i].config_layout);
        if (lite_io_handle(ln, info.name, output, &ln->cb_tensors[i])) return -1;
    }
    *count = n;
    return 0;
}

int LITE_forward(const LiteNetwork network) {
    lite_net *ln = lite_loaded(network, "LITE_forward");
    size_t n;
    if (!ln) return -1;
    if (ln->start_cb || ln->start_cb_data) {
        int rc;
        if (callback_io(ln, 0, &n)) return -1;
        rc = ln->start_cb ? ln->start_cb(ln->cb_io, ln->cb_tensors, n)
                          : ln->start_cb_data(ln->cb_io, ln->cb_tensors, n, ln->start_user);
        if (rc) return lite_fail("LITE_forward: the start callback returned %d", rc);
    }
    if (megcc_network_forward(ln->net) != MEGCC_OK)
        return lite_fail("%s", megcc_network_last_error(ln->net));
    if (ln->debug && lite_debug_after_forward(ln)) return -1;
    if (ln->finish_cb || ln->finish_cb_data) {
        int rc;
        if (callback_io(ln, 1, &n)) return -1;
        rc = ln->finish_cb ? ln->finish_cb(ln->cb_io, ln->cb_tensors, n)
                           : ln->finish_cb_data(ln->cb_io, ln->cb_tensors, n, ln->finish_user);
        if (rc) return lite_fail("LITE_forward: the finish callback returned %d", rc);
    }
    /* "async" completion: forward is synchronous here */
    if (ln->async_cb) ln->async_cb();
    if (ln->async_cb_data) ln->async_cb_data(ln->async_user);
    return 0;
}

int LITE_wait(const LiteNetwork network) {
    return lite_loaded(network, "LITE_wait") ? 0 : -1;
}

static int io_name(const LiteNetwork network, size_t index, const char **name, int output) {
    lite_net *ln = lite_loaded(network, "LITE_get_input/output_name");
    megcc_tensor_info info;
    megcc_status st;
    if (!ln) return -1;
    if (!name) return lite_fail("name is NULL");
    if (index > 0xFFFFFFFFu) return lite_fail("index %z out of range", index);
    st = output ? megcc_network_output_info(ln->net, (uint32_t)index, &info)
                : megcc_network_input_info(ln->net, (uint32_t)index, &info);
    if (st)
        return lite_fail("%s index %z out of range", output ? "output" : "input", index);
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
    lite_net *ln = lite_loaded(network, "LITE_get_all_input/output_name");
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

int lite_io_handle(lite_net *ln, const char *name, int output, LiteTensor *out) {
    uint32_t i;
    for (i = 0; i < ln->n_tensors; i++)
        if (ln->tensors[i].output == output && mgc_streq(ln->tensors[i].name, name)) {
            *out = &ln->tensors[i];
            return 0;
        }
    if (ln->n_tensors == ln->cap_tensors) return lite_fail("too many tensor handles");
    memset(&ln->tensors[ln->n_tensors], 0, sizeof ln->tensors[0]);
    ln->tensors[ln->n_tensors].magic = LITE_TENSOR_MAGIC;
    ln->tensors[ln->n_tensors].net = ln;
    ln->tensors[ln->n_tensors].name = name; /* lives as long as the model */
    ln->tensors[ln->n_tensors].output = output;
    *out = &ln->tensors[ln->n_tensors++];
    return 0;
}

int LITE_get_io_tensor(LiteNetwork network, const char *io_name_, LiteTensorPhase phase,
                       LiteTensor *tensor) {
    lite_net *ln = lite_loaded(network, "LITE_get_io_tensor");
    int output, idx = -1;
    megcc_tensor_info info;
    if (!ln) return -1;
    if (!io_name_ || !tensor) return lite_fail("LITE_get_io_tensor: NULL argument");
    if (phase != LITE_OUTPUT) idx = megcc_network_find_input(ln->net, io_name_);
    output = idx < 0;
    if (output && phase != LITE_INPUT) idx = megcc_network_find_output(ln->net, io_name_);
    if (idx < 0) return lite_fail("no %s tensor named '%s'", phase == LITE_INPUT ? "input" :
                                  phase == LITE_OUTPUT ? "output" : "I/O", io_name_);
    if (output)
        megcc_network_output_info(ln->net, (uint32_t)idx, &info);
    else
        megcc_network_input_info(ln->net, (uint32_t)idx, &info);
    return lite_io_handle(ln, info.name, output, tensor);
}
