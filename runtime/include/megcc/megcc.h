/* megcc.h — the megcc runtime: load a compiled model (.tiny) and run it.
 *
 * Quick start
 * -----------
 *
 *     megcc_model *model;
 *     megcc_network *net;
 *     if (megcc_model_load_from_path("mobilenet.tiny", &model) != MEGCC_OK) {
 *         fprintf(stderr, "%s\n", megcc_last_error());
 *         return 1;
 *     }
 *     if (megcc_network_create(model, NULL, 0, &net) != MEGCC_OK) { ... }
 *     float *in = megcc_network_input_data(net, 0);      // fill it
 *     if (megcc_network_forward(net) != MEGCC_OK)
 *         fprintf(stderr, "%s\n", megcc_network_last_error(net));
 *     const float *out = megcc_network_output_data(net, 0);
 *     megcc_network_destroy(net);
 *     megcc_model_free(model);
 *
 * Objects
 * -------
 * A *model* is the validated, read-only compiled file: kernels to call, tensors, weights,
 * and one *plan* per compiled input-shape instance (and architecture). A model can be
 * shared by any number of *networks*, even from several threads.
 *
 * A *network* is one runnable instance: it owns (or borrows) an *arena*, the single block
 * that holds every activation and kernel workspace. Its size is known at compile time
 * (megcc_network_arena_size), so the caller may provide it — static memory on an MCU, or
 * one block shared by two networks that never run at the same time.
 *
 * Memory
 * ------
 * The runtime allocates only at load (model tables, optional blob copy) and at network
 * create (pointer tables, arena unless the caller gives one), always through the
 * megcc_hooks of the model; and when the caller sets input shapes that need a bigger arena
 * than the one the network owns (megcc_network_set_input_shape). Nothing is allocated by
 * forward(), by plan switching or by setting I/O memory.
 *
 * Errors and threads
 * ------------------
 * Every call returns a megcc_status. Failures of calls on a network leave a message in
 * that network (megcc_network_last_error). Failures that have no object to hold a
 * message (loading, creating) write it to a buffer of the calling thread, read with
 * megcc_last_error() from the same thread; the runtime has no other mutable state
 * outside its objects, so loads, creates and forwards of different networks may run
 * concurrently; one network must not be used by two threads at once. The buffer is
 * thread-local where the compiler offers it (C11 _Thread_local, GCC/Clang __thread,
 * MSVC __declspec(thread)). With -DMEGCC_NO_LIBC_HOOKS (bare metal: no TLS runtime is
 * assumed) it is one static buffer: concurrent failing loads there may mix messages
 * (status codes stay right) unless the build defines MEGCC_THREAD_LOCAL to the
 * toolchain's thread-local keyword.
 *
 * A network may also run its kernels on several threads (megcc_network_set_threads: a
 * pthreads pool the network owns, on hosted targets; megcc_network_set_parallel: the
 * platform's own parallel-for). Outputs are bitwise identical for every thread count.
 *
 * Building
 * --------
 * C99, no VLAs. Link the generated kernels.c (it defines megcc_kernel_table,
 * megcc_kernel_count and megcc_kernel_set_id; see megcc/kernel_abi.h). With
 * -DMEGCC_NO_LIBC_HOOKS there are no default hooks (no malloc/free/stdio/clock): pass your
 * own to the *_ex functions; the runtime then needs only memcpy and memset. The default
 * thread pool needs pthreads; it is compiled out with MEGCC_NO_THREADS or
 * MEGCC_NO_LIBC_HOOKS (bare metal: one thread, or megcc_network_set_parallel).
 *
 * The file format is described in docs/model-format.md.
 */
#ifndef MEGCC_MEGCC_H
#define MEGCC_MEGCC_H

#include <stddef.h>
#include <stdint.h>

#include "megcc/parallel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MEGCC_VERSION_MAJOR 1      /* model-format major version this runtime reads */
#define MEGCC_VERSION_MINOR 1      /* 1.1: dynamic plans (docs/dynamic-shapes.md) */
#define MEGCC_MAX_DIMS 8
#define MEGCC_ARENA_ALIGN 64       /* arenas and in-place blobs must be aligned to this */

/* ------------------------------------------------------------------ status codes */

typedef enum megcc_status {
    MEGCC_OK = 0,
    MEGCC_ERR_INVALID_ARG = 1,     /* NULL pointer, index out of range, size too small */
    MEGCC_ERR_NO_MEMORY = 2,       /* the alloc hook returned NULL */
    MEGCC_ERR_IO = 3,              /* could not read the model file */
    MEGCC_ERR_BAD_MAGIC = 4,       /* not a .tiny file */
    MEGCC_ERR_BAD_VERSION = 5,     /* written for another format version */
    MEGCC_ERR_BAD_SIZE = 6,        /* truncated, or header file_size != buffer size */
    MEGCC_ERR_BAD_CRC = 7,         /* content corrupted */
    MEGCC_ERR_KERNEL_MISMATCH = 8, /* compiled against another kernels.c, or an instruction
                                      it has no signature for (docs/model-format.md) */
    MEGCC_ERR_CORRUPT = 9,         /* a structural check failed (offset, index, size...) */
    MEGCC_ERR_ALIGNMENT = 10,      /* buffer not aligned as required */
    MEGCC_ERR_ARENA_TOO_SMALL = 11,/* the given arena is smaller than the plan needs */
    MEGCC_ERR_KERNEL_FAILED = 12,  /* a kernel returned non-zero */
    MEGCC_ERR_UNSUPPORTED = 13,    /* feature compiled out or host not supported */
    MEGCC_ERR_NOT_FOUND = 14,      /* no such name / no matching plan */
    MEGCC_ERR_NO_OUTPUT = 15       /* output read before a successful forward */
} megcc_status;

/* A short constant description of a status ("corrupt model", ...). */
const char *megcc_status_string(megcc_status status);

/* The message of this thread's last failed load/create call ("Errors and threads"). */
const char *megcc_last_error(void);

/* ------------------------------------------------------------------ hooks */

/* Log levels passed to the log hook. */
enum { MEGCC_LOG_DEBUG = 0, MEGCC_LOG_INFO = 1, MEGCC_LOG_WARN = 2, MEGCC_LOG_ERROR = 3 };

/* Everything the runtime needs from the platform. `user` is passed back unchanged.
 * alloc must return memory aligned to `align` (a power of two <= 4096) or NULL.
 * log and time_ns may be NULL (no logging; no profiling). time_ns is a monotonic clock. */
typedef struct megcc_hooks {
    void *user;
    void *(*alloc)(void *user, size_t size, size_t align);
    void (*free)(void *user, void *ptr);
    void (*log)(void *user, int level, const char *message);
    uint64_t (*time_ns)(void *user);
} megcc_hooks;

/* Fill *hooks with the libc defaults (malloc/free/stderr/clock_gettime or clock()).
 * Returns MEGCC_ERR_UNSUPPORTED when built with MEGCC_NO_LIBC_HOOKS. */
megcc_status megcc_default_hooks(megcc_hooks *hooks);

/* ------------------------------------------------------------------ model */

typedef struct megcc_model megcc_model;

typedef enum megcc_dtype {
    MEGCC_FLOAT32 = 1, MEGCC_FLOAT16 = 2, MEGCC_INT32 = 3, MEGCC_INT16 = 4, MEGCC_INT8 = 5,
    MEGCC_UINT8 = 6, MEGCC_INT64 = 7, MEGCC_BOOL = 8, MEGCC_QINT8 = 9, MEGCC_QUINT8 = 10,
    MEGCC_QINT32 = 11, MEGCC_FLOAT64 = 12, MEGCC_UINT16 = 13, MEGCC_UINT32 = 14,
    MEGCC_UINT64 = 15,
    /* narrow storage types, one element per byte (bfloat16: two), never packed */
    MEGCC_BFLOAT16 = 16, MEGCC_FLOAT8E4M3FN = 17, MEGCC_FLOAT8E4M3FNUZ = 18,
    MEGCC_FLOAT8E5M2 = 19, MEGCC_FLOAT8E5M2FNUZ = 20, MEGCC_FLOAT8E8M0 = 21,
    MEGCC_FLOAT4E2M1 = 22, MEGCC_INT4 = 23, MEGCC_UINT4 = 24, MEGCC_INT2 = 25, MEGCC_UINT2 = 26
} megcc_dtype;

/* Bytes per element of a dtype, 0 for an unknown code. */
size_t megcc_dtype_size(megcc_dtype dtype);

/* Load and validate a model from memory. The whole blob is checked (docs/model-format.md)
 * before anything else touches it.
 *   copy != 0: the blob is copied; the caller may free `data` right after.
 *   copy == 0: the model points into `data` (weights used in place — it may live in flash);
 *              `data` must stay valid until megcc_model_free and be 64-byte aligned.
 * Uses the default hooks; see the _ex variant to pass your own. */
megcc_status megcc_model_load_from_memory(const void *data, size_t size, int copy,
                                          megcc_model **out);
megcc_status megcc_model_load_from_memory_ex(const void *data, size_t size, int copy,
                                             const megcc_hooks *hooks, megcc_model **out);

/* Read a file (stdio) into a hook-allocated buffer and load it. MEGCC_ERR_UNSUPPORTED under
 * MEGCC_NO_LIBC_HOOKS. */
megcc_status megcc_model_load_from_path(const char *path, megcc_model **out);
megcc_status megcc_model_load_from_path_ex(const char *path, const megcc_hooks *hooks,
                                           megcc_model **out);

/* Free a model; all its networks must be destroyed first. NULL is a no-op. */
void megcc_model_free(megcc_model *model);

const char *megcc_model_name(const megcc_model *model);
uint32_t megcc_model_num_plans(const megcc_model *model);
/* NULL when plan is out of range. */
const char *megcc_model_plan_name(const megcc_model *model, uint32_t plan);

/* Everything about one plan input or output. `name` lives as long as the model. */
typedef struct megcc_tensor_info {
    const char *name;
    megcc_dtype dtype;
    uint32_t ndim;
    int32_t dims[MEGCC_MAX_DIMS];
    size_t nbytes;
    uint32_t layout;        /* 0 plain, 1 NCHW44, 2 NCHW88 */
    float scale;            /* quantized dtypes: value = scale * (q - zero_point) */
    int32_t zero_point;
} megcc_tensor_info;

/* Non-zero when the plan is dynamic (docs/dynamic-shapes.md): its input shapes may be set
 * at run time with megcc_network_set_input_shape. Its info below is the hint instance. */
int megcc_model_plan_is_dynamic(const megcc_model *model, uint32_t plan);

/* Non-zero when this program can run the plan: 0 for a plan of another architecture in a
 * multi-architecture model (its kernels are not built here; docs/model-format.md) and for
 * a plan out of range. */
int megcc_model_plan_is_runnable(const megcc_model *model, uint32_t plan);

/* I/O description of any plan (to choose one before or without a network). */
uint32_t megcc_model_plan_num_inputs(const megcc_model *model, uint32_t plan);
uint32_t megcc_model_plan_num_outputs(const megcc_model *model, uint32_t plan);
megcc_status megcc_model_plan_input_info(const megcc_model *model, uint32_t plan,
                                         uint32_t index, megcc_tensor_info *info);
megcc_status megcc_model_plan_output_info(const megcc_model *model, uint32_t plan,
                                          uint32_t index, megcc_tensor_info *info);

/* ------------------------------------------------------------------ network */

typedef struct megcc_network megcc_network;

/* Arena bytes a plan needs; plan = -1 gives the maximum over all plans, i.e. what lets
 * megcc_network_select_plan reach every plan. 0 for an invalid plan. */
size_t megcc_network_arena_size(const megcc_model *model, int plan);

/* Create a network on plan 0 (in a multi-architecture model: the first plan the linked
 * kernels.c runs on this architecture, docs/model-format.md).
 *   arena == NULL: allocate megcc_network_arena_size(model, -1) bytes through the hooks
 *                  (arena_size is ignored).
 *   arena != NULL: use the caller's block (64-byte aligned, arena_size bytes, alive until
 *                  destroy); it must hold plan 0, and a plan that does not fit it cannot be
 *                  selected later (MEGCC_ERR_ARENA_TOO_SMALL). */
megcc_status megcc_network_create(const megcc_model *model, void *arena, size_t arena_size,
                                  megcc_network **out);

/* Replace the arena (e.g. to share one block between networks that never run at the same
 * time). The old arena is freed if the network owned it. Activations are not preserved. */
megcc_status megcc_network_set_arena(megcc_network *net, void *arena, size_t arena_size);

/* Switch to another plan (another compiled input shape). I/O memory set with
 * megcc_network_set_*_memory is reset, since the I/O tensors change. */
megcc_status megcc_network_select_plan(megcc_network *net, uint32_t plan);
uint32_t megcc_network_plan(const megcc_network *net);

/* I/O of the current plan. */
uint32_t megcc_network_num_inputs(const megcc_network *net);
uint32_t megcc_network_num_outputs(const megcc_network *net);
megcc_status megcc_network_input_info(const megcc_network *net, uint32_t index,
                                      megcc_tensor_info *info);
megcc_status megcc_network_output_info(const megcc_network *net, uint32_t index,
                                       megcc_tensor_info *info);
/* Index of the input/output called `name`, or -1. */
int megcc_network_find_input(const megcc_network *net, const char *name);
int megcc_network_find_output(const megcc_network *net, const char *name);

/* Where the data of an input/output lives: in the arena, or the caller's buffer after
 * megcc_network_set_*_memory. NULL for an index out of range. Outputs are valid from a
 * successful forward until the next forward (the arena is reused): before one (after
 * create, select_plan, set_arena or set_output_memory, or after a failed forward)
 * megcc_network_output_data returns NULL and the network's last error says why
 * (MEGCC_ERR_NO_OUTPUT). */
void *megcc_network_input_data(megcc_network *net, uint32_t index);
void *megcc_network_output_data(megcc_network *net, uint32_t index);

/* Where output `index` is written: the pointer megcc_network_output_data returns after a
 * successful forward, available before one (to hand to a consumer once, as MegEngine
 * Lite's I/O tensors allow). It changes only with the plan, the arena or the output
 * memory; its contents are meaningful only after a successful forward. NULL for an index
 * out of range. */
void *megcc_network_output_buffer(megcc_network *net, uint32_t index);

/* Zero-copy I/O: the network reads input `index` from / writes output `index` to `data`
 * (size >= the tensor's nbytes, aligned to its element size). When the tensor is a view
 * inside another arena tensor, the data is copied in before / out after forward instead.
 * data == NULL returns to the arena. A kernel computing in place over an input may write
 * into an input buffer given here. */
megcc_status megcc_network_set_input_memory(megcc_network *net, uint32_t index, void *data,
                                            size_t size);
megcc_status megcc_network_set_output_memory(megcc_network *net, uint32_t index, void *data,
                                             size_t size);

/* ------------------------------------------------------------------ input shapes */

/* Request the shape of input `index` (docs/dynamic-shapes.md). Recorded only: the next
 * call that needs concrete tensors (forward, input/output data or info, set_*_memory,
 * set_arena, required_arena_size) chooses the plan (a static plan whose inputs have exactly
 * the requested shapes first, else the first dynamic plan that accepts them) and evaluates
 * its sizes, offsets and params; it fails, with a message naming the input, symbol or
 * guard, when no plan accepts them (MEGCC_ERR_INVALID_ARG from a dynamic plan,
 * MEGCC_ERR_NOT_FOUND when the model has none), until the shapes are set again. So
 * several inputs sharing a dimension can be set one after the other. Setting the current
 * shape is a no-op; another shape resets I/O memory set with set_*_memory (the tensors
 * change size) and the outputs. A network that owns its arena grows it through the alloc
 * hook when the shapes need more (the only allocation after create); with the caller's
 * arena, calls fail with MEGCC_ERR_ARENA_TOO_SMALL until megcc_network_set_arena gives
 * enough. Nothing is allocated by forward. */
megcc_status megcc_network_set_input_shape(megcc_network *net, uint32_t index,
                                           const int32_t *dims, uint32_t ndim);

/* Arena bytes the current plan needs at the set shapes (evaluating them if needed); OK
 * even when the network's arena is too small, so a caller can provide a big enough one. */
megcc_status megcc_network_required_arena_size(megcc_network *net, size_t *bytes);

/* Run the current plan once. */
megcc_status megcc_network_forward(megcc_network *net);

/* Message of the last failed call on this network ("" if none). */
const char *megcc_network_last_error(const megcc_network *net);

/* Profiling: called after every instruction with its index, kernel name and duration
 * measured with the time_ns hook. fn == NULL turns profiling off. Needs a time_ns hook. */
typedef void (*megcc_profile_fn)(void *user, uint32_t instr_index, const char *kernel_name,
                                 uint64_t elapsed_ns);
megcc_status megcc_network_set_profiler(megcc_network *net, megcc_profile_fn fn, void *user);

/* ------------------------------------------------------------------ threads */

/* Run the kernels on `threads` threads (1..1024): the calling thread plus threads - 1
 * workers of a pool the network owns, started here (memory through the model's hooks) and
 * stopped by the next call or megcc_network_destroy. 1 (the default) stops the pool. Two
 * networks have two pools. MEGCC_ERR_UNSUPPORTED when threads > 1 and the build has no
 * pool (MEGCC_NO_THREADS, MEGCC_NO_LIBC_HOOKS, non-POSIX) or a thread cannot start. */
megcc_status megcc_network_set_threads(megcc_network *net, uint32_t threads);

/* Use the platform's parallel-for instead (an RTOS task pool; see megcc/parallel.h): `par`
 * must stay valid until replaced or the network is destroyed. NULL: one thread. Stops the
 * network's own pool if it had one. */
megcc_status megcc_network_set_parallel(megcc_network *net, const megcc_parallel *par);

/* Threads a forward runs on (1 without a pool). */
uint32_t megcc_network_threads(const megcc_network *net);

/* Destroy a network (frees its arena if it allocated it). NULL is a no-op. */
void megcc_network_destroy(megcc_network *net);

#ifdef __cplusplus
}
#endif
#endif /* MEGCC_MEGCC_H */
