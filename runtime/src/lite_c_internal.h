/* Shared by the Lite-C layer's files (lite_c.c: global state and networks; lite_c_tensor.c:
 * tensors; lite_c_debug.c: profiling, I/O dumps, memory and model info). Not installed. */
#ifndef MEGCC_LITE_C_INTERNAL_H
#define MEGCC_LITE_C_INTERNAL_H

#include <string.h>

#include "internal.h"
#include "lite-c/global_c.h"

#define LITE_NET_MAGIC 0x4C4E4554u    /* "LNET" */
#define LITE_TENSOR_MAGIC 0x4C54534Eu /* "LTSN" */

/* Activation memory shared by a ring of networks (LITE_share_runtime_memroy). */
typedef struct lite_arena {
    void *ptr;
    size_t size;
    uint32_t refs;
    megcc_hooks hooks; /* what allocates and frees ptr and this record */
} lite_arena;

/* A user allocator (LITE_set_memory_allocator), the `user` of the hooks that call it. It
 * lives as long as anything allocated through it: the network, a model shared with other
 * networks (LITE_shared_weight_with_network), an arena shared by a ring. */
typedef struct lite_allocator {
    LiteAllocate allocate;
    LiteFree free;
    uint32_t refs;
} lite_allocator;

/* A loaded model, shared by the networks of LITE_shared_weight_with_network. */
typedef struct lite_model {
    megcc_model *model;
    uint32_t refs;
    megcc_hooks hooks; /* what frees this record */
} lite_model;

struct lite_net;
struct lite_debug;

/* One tensor handle. I/O tensors (net != NULL) name a tensor of their network's current
 * plan; host tensors (net == NULL) describe memory of their own or borrowed. */
typedef struct lite_tensor {
    uint32_t magic;
    struct lite_net *net;
    const char *name; /* I/O: points into the model */
    int output;
    /* host tensors */
    LiteLayout layout;
    size_t strides[LAYOUT_MAX_DIM]; /* in elements */
    uint8_t *data;                  /* element 0, or NULL until allocated */
    void *owned;                    /* hook allocation behind data, freed with the tensor */
    size_t capacity;                /* bytes of `owned` */
    megcc_hooks hooks;
    struct lite_tensor *live_prev, *live_next; /* host tensors: the live list */
    int pinned_host; /* as made (LiteTensorDesc.is_pinned_host): reported, no effect on a CPU */
} lite_tensor;

typedef struct lite_net {
    uint32_t magic;
    LiteConfig config;
    megcc_hooks hooks; /* libc's, LITE_megcc_set_hooks's or a lite_allocator's */
    megcc_hooks record_hooks; /* what allocated this record (hooks may change after) */
    lite_model *shared;
    megcc_model *model; /* shared->model */
    megcc_network *net;
    lite_arena *arena;
    struct lite_net *ring_next; /* circular list of networks sharing `arena` */
    lite_tensor *tensors;       /* handles given out by LITE_get_io_tensor */
    uint32_t n_tensors, cap_tensors;
    size_t threads; /* LITE_set_cpu_threads_number (applied at load too) */
    /* callbacks */
    LiteAsyncCallback async_cb;
    LiteAsyncCallbackWithData async_cb_data;
    void *async_user;
    LiteStartCallback start_cb;
    LiteStartCallbackWithData start_cb_data;
    void *start_user;
    LiteFinishCallback finish_cb;
    LiteFinishCallbackWithData finish_cb_data;
    void *finish_user;
    LiteIO *cb_io;          /* [max inputs + outputs] descriptions handed to callbacks */
    LiteTensor *cb_tensors; /* [max inputs + outputs] */
    struct lite_debug *debug;
} lite_net;

/* Record an error for this thread (message + LITE_INTERNAL_ERROR); returns -1. */
int lite_fail(const char *fmt, ...);
/* The same with LITE_MEGCC_NOT_SUPPORTED: "<what> is not supported by the megcc runtime". */
int lite_unsupported(const char *what, const char *why);
/* Hooks for a new object: LITE_megcc_set_hooks's, else libc's. */
int lite_hooks_for_new(megcc_hooks *h);
lite_net *lite_as_net(LiteNetwork n);
lite_net *lite_loaded(LiteNetwork n, const char *fn);
/* Grow the activation block of ln's ring to `need` bytes (moving every member network). */
int lite_ensure_arena(lite_net *ln, size_t need);
/* Handle of an I/O tensor of a loaded network (no allocation: handles are preallocated). */
int lite_io_handle(lite_net *ln, const char *name, int output, LiteTensor *out);

LiteDataType lite_dtype(megcc_dtype d);
size_t lite_dtype_size(LiteDataType t); /* 0 for an unknown type */
int lite_layout_of(const megcc_tensor_info *info, LiteLayout *layout);

/* lite_c_debug.c */
int lite_debug_after_forward(lite_net *ln);
void lite_debug_destroy(lite_net *ln);

#endif
