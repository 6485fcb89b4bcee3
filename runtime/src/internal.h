/* Shared between the runtime's source files; not installed. */
#ifndef MEGCC_INTERNAL_H
#define MEGCC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "megcc/kernel_abi.h"
#include "megcc/megcc.h"

#define MGC_HEADER_SIZE 64u
#define MGC_PLAN_SIZE 48u
#define MGC_TENSOR_SIZE 64u
#define MGC_INSTR_HEADER 16u
#define MGC_NONE 0xFFFFFFFFu
#define MGC_ERROR_LEN 256

enum { MGC_STORAGE_ARENA = 0, MGC_STORAGE_WEIGHT = 1, MGC_STORAGE_VIEW = 2 };

/* Storage class of the last-error buffers (one per thread; megcc.h "Errors and threads").
 * C11 _Thread_local, or the GNU/MSVC spelling under C99. Bare metal (MEGCC_NO_LIBC_HOOKS)
 * has no TLS runtime to rely on (and usually one thread): plain static storage there,
 * unless the build defines MEGCC_THREAD_LOCAL itself (e.g. to __thread). */
#ifndef MEGCC_THREAD_LOCAL
#if defined(MEGCC_NO_LIBC_HOOKS)
#define MEGCC_THREAD_LOCAL
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_THREADS__)
#define MEGCC_THREAD_LOCAL _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define MEGCC_THREAD_LOCAL __thread
#elif defined(_MSC_VER)
#define MEGCC_THREAD_LOCAL __declspec(thread)
#else
#define MEGCC_THREAD_LOCAL
#endif
#endif

/* Little-endian reads that do not care about alignment: the loader reads an untrusted
 * buffer before knowing anything about it. */
static inline uint32_t mgc_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint16_t mgc_rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint64_t mgc_rd64(const uint8_t *p) {
    return (uint64_t)mgc_rd32(p) | ((uint64_t)mgc_rd32(p + 4) << 32);
}

/* Dynamic plans (docs/dynamic-shapes.md): record sizes and limits. */
#define MGC_DYNPLAN_SIZE 64u
#define MGC_SYMBOL_SIZE 20u
#define MGC_BUFFER_SIZE 20u
#define MGC_VALUE_SIZE 20u /* value symbol record: symbol, instr, tensor, element, bound */
#define MGC_VALUE_SHAPE 1u /* a value symbol's axis word: a computed shape extent, which
                            * stands at its min until defined (buffers at byte caps) */
#define MGC_MAX_EXPR_WORDS 256u
#define MGC_MAX_STACK 32u
enum { MGC_OP_CONST = 1, MGC_OP_SYM, MGC_OP_ADD, MGC_OP_SUB, MGC_OP_MUL, MGC_OP_FLOORDIV,
       MGC_OP_MOD, MGC_OP_MIN, MGC_OP_MAX, MGC_OP_EQ, MGC_OP_LE, MGC_OP_LT, MGC_OP_AND };

/* A validated DynPlan record: pointers to its arrays in the blob. Bindings are sorted by
 * their key (tensor, axis) / tensor / (instr, param), each key once (checked at load). */
typedef struct mgc_dyn {
    uint32_t n_symbols, n_exprs, n_dims, n_views, n_params, n_guards, n_buffers, n_values;
    const uint8_t *symbols;  /* Symbol records: name, min, max, input, axis */
    const uint8_t *exprs;    /* u32 file offsets of expression records */
    const uint8_t *dims;     /* (tensor, axis, expr) */
    const uint8_t *views;    /* (tensor, expr) */
    const uint8_t *params;   /* (instr, param, expr) */
    const uint8_t *guards;   /* (expr, message) */
    const uint8_t *buffers;  /* Buffer records: size expr, first, last, n_members, members */
    const uint8_t *values;   /* Value records by (instr, symbol): symbols an instruction
                              * defines at run time (docs/dynamic-shapes.md) */
} mgc_dyn;

/* One plan, after validation: pointers into the blob. */
typedef struct mgc_plan {
    const char *name;
    uint32_t arch;
    uint32_t arena_size;
    uint32_t n_tensors;
    const uint8_t *tensors;    /* n_tensors records of MGC_TENSOR_SIZE */
    uint32_t n_instrs;
    const uint8_t *instrs;     /* the validated instruction stream */
    uint32_t n_inputs, n_outputs;
    const uint8_t *inputs, *outputs; /* u32 tensor indices */
    uint32_t max_operands;     /* max n_in + n_out over the instructions */
    uint32_t instrs_size;      /* bytes */
    int dynamic;               /* `dyn` holds the plan's DynPlan record */
    mgc_dyn dyn;
    uint32_t n_control;        /* control-flow records (control.c) */
    /* Calls a kernel the linked kernels.c lacks on this architecture: a plan of a
     * multi-architecture model compiled for the other one (docs/model-format.md). */
    int foreign;
} mgc_plan;

struct megcc_model {
    megcc_hooks hooks;
    const uint8_t *data;       /* the blob (caller's, or `owned`) */
    size_t size;
    void *owned;               /* blob copy to free, or NULL */
    const char *name;
    const uint8_t *strings;    /* strings section (names are validated NUL-terminated) */
    const uint8_t *weights;
    uint32_t n_plans;
    uint32_t first_plan;       /* the first plan that is not foreign: the default */
    mgc_plan *plans;           /* hook-allocated */
    uint32_t max_tensors, max_inputs, max_outputs, max_operands;
    uint32_t max_arena;
    /* Over the dynamic plans only: what a network needs to evaluate any of them. */
    uint32_t n_dynamic, dyn_tensors, dyn_instrs, dyn_instrs_size, dyn_symbols, dyn_exprs,
        dyn_buffers;
};

/* Tensor record field access (record validated at load). */
static inline uint32_t mgc_t_storage(const uint8_t *rec) { return rec[6]; }
static inline uint32_t mgc_t_offset(const uint8_t *rec) { return mgc_rd32(rec + 40); }
static inline uint32_t mgc_t_nbytes(const uint8_t *rec) { return mgc_rd32(rec + 44); }
static inline uint32_t mgc_t_base(const uint8_t *rec) { return mgc_rd32(rec + 48); }
static inline const uint8_t *mgc_tensor(const mgc_plan *p, uint32_t i) {
    return p->tensors + (size_t)i * MGC_TENSOR_SIZE;
}

/* Control flow (control.c): built-in instructions at reserved kernel indices. */
#define MGC_CTL_JUMP 0xFFFFFF00u
#define MGC_CTL_BRANCH_IF_ZERO 0xFFFFFF01u
static inline int mgc_is_control(uint32_t kernel) {
    return kernel == MGC_CTL_JUMP || kernel == MGC_CTL_BRANCH_IF_ZERO;
}
megcc_status mgc_check_control(const mgc_plan *p, uint32_t pi, uint32_t ii, const uint8_t *ins);
megcc_status mgc_check_jumps(const mgc_plan *p, uint32_t pi, const megcc_hooks *h);
int mgc_control_taken(uint32_t kernel, const uint8_t *operands, void *const *ptr);

/* Helpers (util.c). No libc beyond memcpy/memset. */
size_t mgc_strlen(const char *s);
int mgc_streq(const char *a, const char *b);
/* Tiny snprintf: %s, %u (uint32_t), %d (int), %z (size_t), %x (uint32_t, hex),
 * %X (uint64_t, 16 hex digits), %%.
 * Pass exactly these types: the args are read with va_arg. */
void mgc_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
void mgc_format(char *buf, size_t cap, const char *fmt, ...);
/* Write this thread's last-error buffer; returns `status` for tail calls. */
megcc_status mgc_fail_global(megcc_status status, const char *fmt, ...);
void mgc_log(const megcc_hooks *h, int level, const char *msg);
void *mgc_alloc(const megcc_hooks *h, size_t size, size_t align);
/* An `align`-aligned block from a malloc-like function, and its release. */
void *mgc_aligned_from(void *(*raw_alloc)(size_t), size_t size, size_t align);
void mgc_unaligned_free(void (*raw_free)(void *), void *ptr);
void mgc_free(const megcc_hooks *h, void *p);
void mgc_info_from_record(const megcc_model *m, const uint8_t *rec, megcc_tensor_info *info);

/* Validate a hook-allocated blob; on success the model owns (and later frees) `buf`. */
megcc_status mgc_load_owned(void *buf, size_t size, const megcc_hooks *hooks,
                            megcc_model **out);

uint32_t mgc_crc32(const uint8_t *data, size_t n);

static inline void mgc_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* dynamic.c ------------------------------------------------------------------------- */

/* Structural check of an expression program of n words (at `words`): opcodes known,
 * operands present, SYM k < n_symbols, stack within MGC_MAX_STACK, exactly one result.
 * Returns NULL when valid, else what is wrong. */
const char *mgc_expr_check(const uint8_t *words, uint32_t n, uint32_t n_symbols);

/* Index of the binding of (key0, key1) in a sorted array of `n` records of `stride`
 * bytes whose first words are the key (key1 ignored when `pair` is 0), or MGC_NONE. */
uint32_t mgc_find_binding(const uint8_t *rows, uint32_t n, uint32_t stride, int pair,
                          uint32_t key0, uint32_t key1);

/* Scratch a network owns to evaluate its model's dynamic plans (sized from the maxima). */
typedef struct mgc_dyn_scratch {
    int64_t *sym;        /* [dyn_symbols] */
    int64_t *val;        /* [dyn_exprs] expression values */
    uint8_t *val_err;    /* [dyn_exprs] 0, or why the value could not be computed */
    int64_t *cap;        /* [dyn_symbols] a value symbol's cap at the current shapes */
    uint8_t *defined;    /* [dyn_symbols] value symbol set by its instruction this forward */
    uint32_t *instr_off; /* [dyn_instrs] byte offset of each instruction in the stream */
    uint64_t *size;      /* [dyn_buffers] aligned buffer sizes */
    uint64_t *off;       /* [dyn_buffers] placed offsets */
    uint32_t *order;     /* [dyn_buffers] */
    uint32_t *placed;    /* [dyn_buffers] */
} mgc_dyn_scratch;

/* Evaluate dynamic plan `p` for the requested input shapes (ndim[i], dims[i] per plan
 * input), docs/dynamic-shapes.md "Evaluation": `tensors` and `instrs` receive the plan's
 * tensor records and instruction stream with dims, nbytes, offsets and params of these
 * shapes; *arena the bytes they need. On failure returns the status and writes the
 * message (naming the input, symbol or guard) into err. */
megcc_status mgc_dyn_evaluate(const megcc_model *m, const mgc_plan *p, const uint32_t *ndim,
                              const int32_t *dims, const mgc_dyn_scratch *s, uint8_t *tensors,
                              uint8_t *instrs, uint64_t *arena, char *err, size_t cap);

/* After instruction `instr` of dynamic plan `p` ran (with its operands at `ptr`): read the
 * value symbols it defines, then recompute (into `tensors`/`instrs`) every dim, nbytes,
 * view offset and param from them, check the guards they complete and that every buffer
 * still fits where mgc_dyn_evaluate placed it. *changed = 1 when it defined any. */
megcc_status mgc_dyn_define(const megcc_model *m, const mgc_plan *p, uint32_t instr,
                            void *const *ptr, const mgc_dyn_scratch *s, uint8_t *tensors,
                            uint8_t *instrs, int *changed, char *err, size_t cap);

/* Bytes caller memory for arena tensor `t` (now `nbytes`) must hold for any forward: its
 * nbytes, or, when the plan has computed shape extents (which stand at their min until
 * defined), the size of the buffer placed for it (its byte cap). */
uint64_t mgc_dyn_memory_need(const megcc_model *m, const mgc_plan *p,
                             const mgc_dyn_scratch *s, uint32_t t, uint32_t nbytes);

/* The placement of docs/dynamic-shapes.md (emit/dynamic.py place_buffers), exactly:
 * `size` holds the aligned sizes; fills off and returns the arena size. */
uint64_t mgc_place_buffers(uint32_t n, const uint8_t *buffers, const uint64_t *size,
                           uint64_t *off, uint32_t *order, uint32_t *placed);

/* The default thread pool of a network (threads.c): threads - 1 workers. Create reports
 * MEGCC_ERR_UNSUPPORTED in builds without one (bare metal, MEGCC_NO_THREADS). */
typedef struct mgc_pool mgc_pool;
megcc_status mgc_pool_create(const megcc_hooks *hooks, uint32_t threads, mgc_pool **out);
void mgc_pool_destroy(mgc_pool *pool);
const megcc_parallel *mgc_pool_parallel(const mgc_pool *pool);

#endif
