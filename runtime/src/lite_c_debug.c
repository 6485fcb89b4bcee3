/* Lite-C debugging and information calls: per-kernel profiles, I/O dumps, the static
 * memory plan (all need stdio: "not supported" under MEGCC_NO_LIBC_HOOKS) and a model's
 * I/O description without a network. */
#include "lite_c_internal.h"

/* ---------------------------------------------------------------- model I/O info */

/* The arrays and names the last call returned, per thread (global_c.h documents their
 * lifetime: until the thread's next call). */
static MEGCC_THREAD_LOCAL void *t_info_block;
static MEGCC_THREAD_LOCAL megcc_hooks t_info_hooks;

static int fill_io_info(megcc_model *model, LiteNetworkIO *ios) {
    uint32_t n_in = megcc_model_plan_num_inputs(model, 0);
    uint32_t n_out = megcc_model_plan_num_outputs(model, 0), i;
    size_t names = 0, bytes;
    megcc_tensor_info info;
    uint8_t *block;
    char *text;
    LiteIO *io;
    for (i = 0; i < n_in + n_out; i++) {
        if (i < n_in)
            megcc_model_plan_input_info(model, 0, i, &info);
        else
            megcc_model_plan_output_info(model, 0, i - n_in, &info);
        names += mgc_strlen(info.name) + 1;
    }
    bytes = (n_in + n_out) * sizeof(LiteIO) + names;
    if (t_info_block) t_info_hooks.free(t_info_hooks.user, t_info_block);
    t_info_block = NULL;
    if (lite_hooks_for_new(&t_info_hooks)) return -1;
    block = (uint8_t *)t_info_hooks.alloc(t_info_hooks.user, bytes ? bytes : 1, 16);
    if (!block) return lite_fail("out of memory");
    t_info_block = block;
    io = (LiteIO *)(void *)block;
    text = (char *)(block + (n_in + n_out) * sizeof(LiteIO));
    for (i = 0; i < n_in + n_out; i++) {
        size_t len;
        if (i < n_in)
            megcc_model_plan_input_info(model, 0, i, &info);
        else
            megcc_model_plan_output_info(model, 0, i - n_in, &info);
        len = mgc_strlen(info.name) + 1;
        memcpy(text, info.name, len);
        io[i] = default_io;
        io[i].name = text;
        text += len;
        if (lite_layout_of(&info, &io[i].config_layout)) return -1;
    }
    ios->inputs = io;
    ios->input_size = n_in;
    ios->outputs = io + n_in;
    ios->output_size = n_out;
    return 0;
}

static int io_info_from(megcc_status st, megcc_model *model, LiteNetworkIO *ios) {
    int rc;
    if (st == MEGCC_ERR_BAD_MAGIC)
        return lite_fail("%s (compile the model with megcc first)", megcc_last_error());
    if (st) return lite_fail("%s", megcc_last_error());
    rc = fill_io_info(model, ios);
    megcc_model_free(model);
    return rc;
}

int LITE_get_model_io_info_by_path(const char *model_path, const LiteConfig config,
                                   LiteNetworkIO *ios) {
    megcc_hooks h;
    megcc_model *model = NULL;
    megcc_status st;
    (void)config;
    if (!model_path || !ios) return lite_fail("LITE_get_model_io_info_by_path: NULL argument");
    if (lite_hooks_for_new(&h)) return -1;
    st = megcc_model_load_from_path_ex(model_path, &h, &model);
    return io_info_from(st, model, ios);
}

int LITE_get_model_io_info_by_memory(const void *model_mem, size_t size, const LiteConfig config,
                                     LiteNetworkIO *ios) {
    megcc_hooks h;
    megcc_model *model = NULL;
    megcc_status st;
    (void)config;
    if (!model_mem || !ios) return lite_fail("LITE_get_model_io_info_by_memory: NULL argument");
    if (lite_hooks_for_new(&h)) return -1;
    st = megcc_model_load_from_memory_ex(model_mem, size, 1, &h, &model);
    return io_info_from(st, model, ios);
}

#ifdef MEGCC_NO_LIBC_HOOKS

int lite_debug_after_forward(lite_net *ln) {
    (void)ln;
    return 0;
}

void lite_debug_destroy(lite_net *ln) { (void)ln; }

int LITE_enable_profile_performance(LiteNetwork network, const char *profile_json_file_path) {
    (void)network, (void)profile_json_file_path;
    return lite_unsupported("LITE_enable_profile_performance", "built without stdio");
}

int LITE_enable_io_txt_dump(LiteNetwork network, const char *io_txt_out_file) {
    (void)network, (void)io_txt_out_file;
    return lite_unsupported("LITE_enable_io_txt_dump", "built without stdio");
}

int LITE_enable_io_bin_dump(LiteNetwork network, const char *io_bin_out_dir) {
    (void)network, (void)io_bin_out_dir;
    return lite_unsupported("LITE_enable_io_bin_dump", "built without stdio");
}

int LITE_get_static_memory_alloc_info(LiteNetwork network, const char *log_dir) {
    (void)network, (void)log_dir;
    return lite_unsupported("LITE_get_static_memory_alloc_info", "built without stdio");
}

#else

#include <math.h> /* NAN, HUGE_VAL: macros only, no libm */
#include <stdio.h>

#define MAX_PATH_LEN 1024

typedef struct lite_debug {
    char profile_path[MAX_PATH_LEN];
    char txt_path[MAX_PATH_LEN];
    char bin_dir[MAX_PATH_LEN];
    uint64_t *ns;         /* per instruction of the largest plan */
    uint32_t *calls;
    const char **kernels;
    uint32_t n_instrs;
    uint32_t forwards;
} lite_debug;

static int copy_path(char *dst, const char *src, const char *fn) {
    size_t n = src ? mgc_strlen(src) : 0;
    if (!src || !n) return lite_fail("%s: empty path", fn);
    if (n >= MAX_PATH_LEN) return lite_fail("%s: path longer than %d bytes", fn, MAX_PATH_LEN - 1);
    memcpy(dst, src, n + 1);
    return 0;
}

static lite_debug *debug_of(lite_net *ln) {
    if (!ln->debug) {
        ln->debug = (lite_debug *)ln->hooks.alloc(ln->hooks.user, sizeof(lite_debug), 16);
        if (!ln->debug) {
            lite_fail("out of memory");
            return NULL;
        }
        memset(ln->debug, 0, sizeof(lite_debug));
    }
    return ln->debug;
}

static void on_instruction(void *user, uint32_t instr, const char *kernel, uint64_t ns) {
    lite_debug *d = (lite_debug *)user;
    if (instr >= d->n_instrs) return;
    d->ns[instr] += ns;
    d->calls[instr]++;
    d->kernels[instr] = kernel;
}

int LITE_enable_profile_performance(LiteNetwork network, const char *profile_json_file_path) {
    lite_net *ln = lite_loaded(network, "LITE_enable_profile_performance");
    lite_debug *d;
    uint32_t p, n = 0;
    megcc_status st;
    if (!ln || !(d = debug_of(ln))) return -1;
    if (copy_path(d->profile_path, profile_json_file_path, "LITE_enable_profile_performance"))
        return -1;
    if (!d->ns) {
        for (p = 0; p < ln->model->n_plans; p++)
            if (ln->model->plans[p].n_instrs > n) n = ln->model->plans[p].n_instrs;
        d->ns = (uint64_t *)ln->hooks.alloc(ln->hooks.user, (n ? n : 1) * sizeof(uint64_t), 16);
        d->calls = (uint32_t *)ln->hooks.alloc(ln->hooks.user, (n ? n : 1) * sizeof(uint32_t), 16);
        d->kernels = (const char **)ln->hooks.alloc(ln->hooks.user,
                                                    (n ? n : 1) * sizeof(const char *), 16);
        if (!d->ns || !d->calls || !d->kernels) return lite_fail("out of memory");
        memset(d->ns, 0, (n ? n : 1) * sizeof(uint64_t));
        memset(d->calls, 0, (n ? n : 1) * sizeof(uint32_t));
        memset((void *)d->kernels, 0, (n ? n : 1) * sizeof(const char *));
        d->n_instrs = n;
    }
    st = megcc_network_set_profiler(ln->net, on_instruction, d);
    if (st) return lite_fail("%s", megcc_network_last_error(ln->net));
    return 0;
}

int LITE_enable_io_txt_dump(LiteNetwork network, const char *io_txt_out_file) {
    lite_net *ln = lite_as_net(network);
    lite_debug *d;
    FILE *f;
    if (!ln) return lite_fail("LITE_enable_io_txt_dump: invalid network");
    if (!(d = debug_of(ln)) || copy_path(d->txt_path, io_txt_out_file, "LITE_enable_io_txt_dump"))
        return -1;
    f = fopen(d->txt_path, "w"); /* start a fresh dump, as Lite does */
    if (!f) return lite_fail("LITE_enable_io_txt_dump: cannot write '%s'", d->txt_path);
    fclose(f);
    return 0;
}

int LITE_enable_io_bin_dump(LiteNetwork network, const char *io_bin_out_dir) {
    lite_net *ln = lite_as_net(network);
    lite_debug *d;
    if (!ln) return lite_fail("LITE_enable_io_bin_dump: invalid network");
    if (!(d = debug_of(ln))) return -1;
    return copy_path(d->bin_dir, io_bin_out_dir, "LITE_enable_io_bin_dump");
}

static const char *type_name(LiteDataType t) {
    switch (t) {
    case LITE_FLOAT: return "float32";
    case LITE_HALF: return "float16";
    case LITE_INT: return "int32";
    case LITE_INT16: return "int16";
    case LITE_INT8: return "int8";
    case LITE_UINT8: return "uint8";
    case LITE_UINT: return "uint32";
    case LITE_UINT16: return "uint16";
    case LITE_INT64: return "int64";
    case LITE_MEGCC_FLOAT64: return "float64";
    case LITE_MEGCC_UINT64: return "uint64";
    case LITE_MEGCC_BFLOAT16: return "bfloat16";
    case LITE_MEGCC_FLOAT8E4M3FN: return "float8e4m3fn";
    case LITE_MEGCC_FLOAT8E4M3FNUZ: return "float8e4m3fnuz";
    case LITE_MEGCC_FLOAT8E5M2: return "float8e5m2";
    case LITE_MEGCC_FLOAT8E5M2FNUZ: return "float8e5m2fnuz";
    case LITE_MEGCC_FLOAT8E8M0: return "float8e8m0";
    case LITE_MEGCC_FLOAT4E2M1: return "float4e2m1";
    case LITE_MEGCC_INT4: return "int4";
    case LITE_MEGCC_UINT4: return "uint4";
    case LITE_MEGCC_INT2: return "int2";
    case LITE_MEGCC_UINT2: return "uint2";
    }
    return "?";
}

static double element(const uint8_t *p, LiteDataType t) {
    union { float f; double d; int32_t i32; uint32_t u32; int16_t i16; uint16_t u16;
            int64_t i64; uint64_t u64; } u;
    memcpy(&u, p, lite_dtype_size(t));
    switch (t) {
    case LITE_FLOAT: return u.f;
    case LITE_INT: return u.i32;
    case LITE_UINT: return u.u32;
    case LITE_INT16: return u.i16;
    case LITE_UINT16: return u.u16;
    case LITE_INT8: return (int8_t)p[0];
    case LITE_UINT8: return p[0];
    case LITE_INT64: return (double)u.i64;
    case LITE_MEGCC_UINT64: return (double)u.u64;
    case LITE_MEGCC_FLOAT64: return u.d;
    case LITE_HALF: { /* IEEE binary16 */
        uint32_t h = u.u16, e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? m / 16777216.0 : e == 31 ? (m ? NAN : HUGE_VAL)
                                                      : (1024 + m) * (double)(1u << e) / 33554432.0;
        return (h & 0x8000) ? -v : v;
    }
    case LITE_MEGCC_BFLOAT16: { /* the top half of a float32 */
        uint32_t bits = (uint32_t)u.u16 << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    case LITE_MEGCC_INT4: case LITE_MEGCC_INT2: return (int8_t)p[0]; /* one per byte */
    case LITE_MEGCC_UINT4: case LITE_MEGCC_UINT2: return p[0];
    /* float8 / float4 codes: dumped as their raw byte (the text dump is for debugging) */
    case LITE_MEGCC_FLOAT8E4M3FN: case LITE_MEGCC_FLOAT8E4M3FNUZ: case LITE_MEGCC_FLOAT8E5M2:
    case LITE_MEGCC_FLOAT8E5M2FNUZ: case LITE_MEGCC_FLOAT8E8M0: case LITE_MEGCC_FLOAT4E2M1:
        return p[0];
    }
    return 0;
}

static void safe_file_name(char *out, size_t cap, const char *name) {
    size_t i;
    for (i = 0; name[i] && i + 1 < cap; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
}

/* One I/O tensor into the text dump / a binary file. */
static int dump_tensor(lite_debug *d, const char *kind, const megcc_tensor_info *info,
                       const uint8_t *data) {
    LiteLayout l;
    size_t n = 1, i, es;
    uint32_t k;
    if (lite_layout_of(info, &l)) return -1;
    es = lite_dtype_size(l.data_type);
    for (k = 0; k < info->ndim; k++) n *= (size_t)info->dims[k];
    if (d->txt_path[0]) {
        FILE *f = fopen(d->txt_path, "a");
        double lo = 0, hi = 0, sum = 0;
        if (!f) return lite_fail("I/O dump: cannot append to '%s'", d->txt_path);
        for (i = 0; i < n; i++) {
            double v = element(data + i * es, l.data_type);
            lo = (i == 0 || v < lo) ? v : lo;
            hi = (i == 0 || v > hi) ? v : hi;
            sum += v;
        }
        fprintf(f, "forward %u %s '%s' %s (", (unsigned)d->forwards, kind, info->name,
                type_name(l.data_type));
        for (k = 0; k < info->ndim; k++) fprintf(f, k ? ",%d" : "%d", (int)info->dims[k]);
        fprintf(f, ") min %.9g max %.9g mean %.9g\n", lo, hi, n ? sum / (double)n : 0.0);
        for (i = 0; i < n; i++)
            fprintf(f, i + 1 == n || i % 8 == 7 ? "%.9g\n" : "%.9g ", element(data + i * es,
                                                                             l.data_type));
        fclose(f);
    }
    if (d->bin_dir[0]) {
        char path[MAX_PATH_LEN + 300], file[256];
        FILE *f;
        safe_file_name(file, sizeof file, info->name);
        mgc_format(path, sizeof path, "%s/%s_%s.bin", d->bin_dir, kind, file);
        f = fopen(path, "wb");
        if (!f) return lite_fail("I/O dump: cannot write '%s'", path);
        if (fwrite(data, 1, n * es, f) != n * es) {
            fclose(f);
            return lite_fail("I/O dump: cannot write '%s'", path);
        }
        fclose(f);
    }
    return 0;
}

int lite_debug_after_forward(lite_net *ln) {
    lite_debug *d = ln->debug;
    uint32_t i;
    d->forwards++;
    if (!d->txt_path[0] && !d->bin_dir[0]) return 0;
    for (i = 0; i < megcc_network_num_inputs(ln->net); i++) {
        megcc_tensor_info info;
        megcc_network_input_info(ln->net, i, &info);
        if (dump_tensor(d, "input", &info, (const uint8_t *)megcc_network_input_data(ln->net, i)))
            return -1;
    }
    for (i = 0; i < megcc_network_num_outputs(ln->net); i++) {
        megcc_tensor_info info;
        megcc_network_output_info(ln->net, i, &info);
        if (dump_tensor(d, "output", &info,
                        (const uint8_t *)megcc_network_output_data(ln->net, i)))
            return -1;
    }
    return 0;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void write_profile(lite_net *ln) {
    lite_debug *d = ln->debug;
    FILE *f = fopen(d->profile_path, "w");
    uint32_t i, first = 1;
    if (!f) {
        lite_fail("profile: cannot write '%s'", d->profile_path);
        return;
    }
    fprintf(f, "{\n  \"model\": ");
    json_string(f, megcc_model_name(ln->model));
    fprintf(f, ",\n  \"forwards\": %u,\n  \"instructions\": [", (unsigned)d->forwards);
    for (i = 0; i < d->n_instrs; i++) {
        if (!d->calls[i]) continue;
        fprintf(f, "%s\n    {\"index\": %u, \"kernel\": ", first ? "" : ",", (unsigned)i);
        json_string(f, d->kernels[i] ? d->kernels[i] : "");
        fprintf(f, ", \"calls\": %u, \"total_ns\": %llu}", (unsigned)d->calls[i],
                (unsigned long long)d->ns[i]);
        first = 0;
    }
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
}

void lite_debug_destroy(lite_net *ln) {
    lite_debug *d = ln->debug;
    if (!d) return;
    if (d->profile_path[0] && d->ns) write_profile(ln);
    if (d->ns) ln->hooks.free(ln->hooks.user, d->ns);
    if (d->calls) ln->hooks.free(ln->hooks.user, d->calls);
    if (d->kernels) ln->hooks.free(ln->hooks.user, (void *)d->kernels);
    ln->hooks.free(ln->hooks.user, d);
    ln->debug = NULL;
}

int LITE_get_static_memory_alloc_info(LiteNetwork network, const char *log_dir) {
    static const char *const storage[] = {"arena", "weight", "view"};
    lite_net *ln = lite_loaded(network, "LITE_get_static_memory_alloc_info");
    char path[MAX_PATH_LEN + 64];
    const mgc_plan *p;
    uint32_t i;
    FILE *f;
    if (!ln) return -1;
    if (!log_dir || !log_dir[0] || mgc_strlen(log_dir) >= MAX_PATH_LEN)
        return lite_fail("LITE_get_static_memory_alloc_info: bad log_dir");
    p = &ln->model->plans[megcc_network_plan(ln->net)];
    mgc_format(path, sizeof path, "%s/static_memory_alloc_info.json", log_dir);
    f = fopen(path, "w");
    if (!f) return lite_fail("LITE_get_static_memory_alloc_info: cannot write '%s'", path);
    fprintf(f, "{\n  \"model\": ");
    json_string(f, megcc_model_name(ln->model));
    fprintf(f, ",\n  \"plan\": ");
    json_string(f, p->name);
    fprintf(f, ",\n  \"arena_bytes\": %lu,\n  \"tensors\": [", (unsigned long)p->arena_size);
    for (i = 0; i < p->n_tensors; i++) {
        const uint8_t *rec = mgc_tensor(p, i);
        uint32_t st = mgc_t_storage(rec);
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        json_string(f, (const char *)ln->model->strings + mgc_rd32(rec));
        fprintf(f, ", \"storage\": \"%s\", \"offset\": %lu, \"bytes\": %lu",
                st < 3 ? storage[st] : "?", (unsigned long)mgc_t_offset(rec),
                (unsigned long)mgc_t_nbytes(rec));
        if (st == MGC_STORAGE_VIEW) fprintf(f, ", \"base\": %lu", (unsigned long)mgc_t_base(rec));
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
    return 0;
}

#endif
