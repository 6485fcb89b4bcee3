/* The VM: a network resolves every tensor of its current plan to a pointer (arena, weights,
 * view of another tensor, or caller memory) and runs the instruction stream by calling
 * kernels from the linked table. Everything it reads was validated by loader.c, so the
 * hot loop does no bounds checks. All memory comes from megcc_network_create, except a
 * bigger arena the network owns when the caller sets larger input shapes.
 *
 * Dynamic plans (docs/dynamic-shapes.md): the network reads its tensor records and
 * instruction stream through `tensors`/`instrs`, which point into the blob for a static
 * plan (or a dynamic plan at its hint shapes), and to the network's own copies evaluated
 * by dynamic.c once the caller has set other input shapes. Shapes are evaluated lazily, by
 * the first call that needs concrete tensors (ensure_shapes / ensure_ready). */
#include <string.h>

#include "internal.h"

struct megcc_network {
    const megcc_model *model;
    const mgc_plan *plan;
    uint32_t plan_index;
    uint8_t *arena;
    size_t arena_size;
    int owns_arena;
    /* One hook allocation, split into: */
    void **ptr;             /* [max_tensors] resolved data pointer per tensor */
    void **override;        /* [max_tensors] caller memory replacing an arena tensor */
    void **in_user;         /* [max_inputs]  caller memory per input (NULL = arena) */
    void **in_copy;         /* [max_inputs]  ...when it must be copied (input is a view) */
    void **out_user;        /* [max_outputs] */
    void **out_copy;        /* [max_outputs] */
    void **operands;        /* [max_operands] pointers handed to one kernel call */
    const uint8_t *tensors; /* current tensor records (the plan's, or dyn_tensors) */
    const uint8_t *instrs;  /* current instruction stream (the plan's, or dyn_instrs) */
    uint64_t arena_need;    /* arena bytes the current plan at the current shapes needs */
    /* Input shapes (megcc_network_set_input_shape), one more hook allocation: */
    uint32_t *req_ndim;     /* [max_inputs] requested rank per input */
    int32_t *req_dims;      /* [max_inputs * MEGCC_MAX_DIMS] */
    uint8_t *dyn_tensors;   /* [dyn_tensors records] evaluated copies (dynamic models) */
    uint8_t *dyn_instrs;    /* [dyn_instrs_size bytes] */
    uint64_t *out_size;     /* [max_outputs] bytes of the caller's output memory */
    mgc_dyn_scratch scratch;
    void *shape_block;
    int shapes_dirty;       /* requested shapes not evaluated yet */
    int resolved;           /* ptr[] matches tensors / arena / overrides */
    int have_outputs;       /* a forward succeeded since the outputs last changed meaning */
    megcc_profile_fn profile;
    void *profile_user;
    const megcc_parallel *par; /* handed to every kernel; NULL = one thread */
    mgc_pool *pool;            /* the network's own pool behind `par`, if any */
    char error[MGC_ERROR_LEN];
};

static megcc_status net_fail(megcc_network *net, megcc_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mgc_vformat(net->error, sizeof net->error, fmt, ap);
    va_end(ap);
    return st;
}

static uint32_t io_tensor(const mgc_plan *p, int output, uint32_t index) {
    return mgc_rd32((output ? p->outputs : p->inputs) + 4 * index);
}

/* Record of tensor i as the network currently sees it (shapes evaluated). */
static const uint8_t *tensor_rec(const megcc_network *net, uint32_t i) {
    return net->tensors + (size_t)i * MGC_TENSOR_SIZE;
}

/* Views come after their base (checked at load), so one forward pass resolves all. */
static void resolve(megcc_network *net) {
    const mgc_plan *p = net->plan;
    uint32_t i;
    net->resolved = 1;
    for (i = 0; i < p->n_tensors; i++) {
        const uint8_t *rec = tensor_rec(net, i);
        uint32_t off = mgc_t_offset(rec);
        switch (mgc_t_storage(rec)) {
        case MGC_STORAGE_ARENA:
            net->ptr[i] = net->override[i] ? net->override[i] : (void *)(net->arena + off);
            break;
        case MGC_STORAGE_WEIGHT:
            /* Kernels never write weights (format rule; outputs are checked to be arena). */
            net->ptr[i] = (void *)(uintptr_t)(net->model->weights + off);
            break;
        default:
            net->ptr[i] = (void *)((uint8_t *)net->ptr[mgc_t_base(rec)] + off);
            break;
        }
    }
}

/* The plan's own records: a static plan, or a dynamic plan at its hint shapes. */
static void use_plan(megcc_network *net, uint32_t plan) {
    net->plan = &net->model->plans[plan];
    net->plan_index = plan;
    net->tensors = net->plan->tensors;
    net->instrs = net->plan->instrs;
    net->arena_need = net->plan->arena_size;
    net->shapes_dirty = 0;
    net->have_outputs = 0;
    net->resolved = 0;
}

static void clear_io(megcc_network *net) {
    const megcc_model *m = net->model;
    memset(net->override, 0, m->max_tensors * sizeof(void *));
    memset(net->in_user, 0, m->max_inputs * sizeof(void *));
    memset(net->in_copy, 0, m->max_inputs * sizeof(void *));
    memset(net->out_user, 0, m->max_outputs * sizeof(void *));
    memset(net->out_copy, 0, m->max_outputs * sizeof(void *));
    if (net->out_size) memset(net->out_size, 0, m->max_outputs * sizeof(uint64_t));
}

/* Room to place `n` items of `size` bytes at *at (8-byte aligned), returning their address
 * inside `base` (NULL base: only measure). */
static void *carve(uint8_t *base, uint64_t *at, uint64_t n, uint64_t size) {
    void *p;
    *at = (*at + 7) / 8 * 8;
    p = base ? base + *at : NULL;
    *at += n * size;
    return p;
}

/* Requested input shapes, and for a model with dynamic plans the evaluated copies and the
 * evaluation scratch, all sized from the model's maxima: one allocation, at create. */
static megcc_status alloc_shape_block(megcc_network *net) {
    const megcc_model *m = net->model;
    uint8_t *base = NULL;
    int pass;
    for (pass = 0; pass < 2; pass++) {
        uint64_t at = 0;
        mgc_dyn_scratch *s = &net->scratch;
        net->req_ndim = (uint32_t *)carve(base, &at, m->max_inputs, 4);
        net->req_dims = (int32_t *)carve(base, &at, (uint64_t)m->max_inputs * MEGCC_MAX_DIMS, 4);
        net->dyn_tensors = (uint8_t *)carve(base, &at, m->dyn_tensors, MGC_TENSOR_SIZE);
        net->dyn_instrs = (uint8_t *)carve(base, &at, m->dyn_instrs_size, 1);
        net->out_size = (uint64_t *)carve(base, &at, m->max_outputs, 8);
        s->sym = (int64_t *)carve(base, &at, m->dyn_symbols, 8);
        s->val = (int64_t *)carve(base, &at, m->dyn_exprs, 8);
        s->size = (uint64_t *)carve(base, &at, m->dyn_buffers, 8);
        s->off = (uint64_t *)carve(base, &at, m->dyn_buffers, 8);
        s->instr_off = (uint32_t *)carve(base, &at, m->dyn_instrs, 4);
        s->order = (uint32_t *)carve(base, &at, m->dyn_buffers, 4);
        s->placed = (uint32_t *)carve(base, &at, m->dyn_buffers, 4);
        s->cap = (int64_t *)carve(base, &at, m->dyn_symbols, 8);
        s->val_err = (uint8_t *)carve(base, &at, m->dyn_exprs, 1);
        s->defined = (uint8_t *)carve(base, &at, m->dyn_symbols, 1);
        if (pass == 0) {
            if (at > (size_t)-1 - 64) return MEGCC_ERR_NO_MEMORY;
            base = (uint8_t *)mgc_alloc(&m->hooks, (size_t)at + 8, 16);
            if (!base) return MEGCC_ERR_NO_MEMORY;
            net->shape_block = base;
        }
    }
    return MEGCC_OK;
}

megcc_status megcc_network_create(const megcc_model *m, void *arena, size_t arena_size,
                                  megcc_network **out) {
    megcc_network *net;
    uint64_t n_ptrs;
    void **block;
    if (!out) return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!m) return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "model is NULL");
    if (arena && (uintptr_t)arena % MEGCC_ARENA_ALIGN)
        return mgc_fail_global(MEGCC_ERR_ALIGNMENT, "arena must be 64-byte aligned");
    if (arena && arena_size < m->plans[m->first_plan].arena_size)
        return mgc_fail_global(MEGCC_ERR_ARENA_TOO_SMALL,
                               "arena of %z bytes, plan %u needs %u", arena_size,
                               m->first_plan, m->plans[m->first_plan].arena_size);
    n_ptrs = 2 * (uint64_t)m->max_tensors + 2 * (uint64_t)m->max_inputs +
             2 * (uint64_t)m->max_outputs + m->max_operands;
    if (n_ptrs > (size_t)-1 / sizeof(void *))
        return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "model too large for this address space");
    net = (megcc_network *)mgc_alloc(&m->hooks, sizeof *net, 16);
    if (!net) return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory for the network");
    memset(net, 0, sizeof *net);
    block = (void **)mgc_alloc(&m->hooks, (size_t)n_ptrs * sizeof(void *), 16);
    if (!block) {
        mgc_free(&m->hooks, net);
        return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory for tensor tables");
    }
    net->model = m;
    net->ptr = block;
    net->override = net->ptr + m->max_tensors;
    net->in_user = net->override + m->max_tensors;
    net->in_copy = net->in_user + m->max_inputs;
    net->out_user = net->in_copy + m->max_inputs;
    net->out_copy = net->out_user + m->max_outputs;
    net->operands = net->out_copy + m->max_outputs;
    if (arena) {
        net->arena = (uint8_t *)arena;
        net->arena_size = arena_size;
    } else {
        net->arena = (uint8_t *)mgc_alloc(&m->hooks, m->max_arena, MEGCC_ARENA_ALIGN);
        if (!net->arena) {
            mgc_free(&m->hooks, block);
            mgc_free(&m->hooks, net);
            return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory for a %u-byte arena",
                                   m->max_arena);
        }
        net->arena_size = m->max_arena;
        net->owns_arena = 1;
    }
    if (alloc_shape_block(net) != MEGCC_OK) {
        if (net->owns_arena) mgc_free(&m->hooks, net->arena);
        mgc_free(&m->hooks, block);
        mgc_free(&m->hooks, net);
        return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory for shape tables");
    }
    use_plan(net, m->first_plan);
    clear_io(net);
    resolve(net);
    *out = net;
    return MEGCC_OK;
}

void megcc_network_destroy(megcc_network *net) {
    const megcc_hooks *h;
    if (!net) return;
    h = &net->model->hooks;
    mgc_pool_destroy(net->pool);
    if (net->owns_arena) mgc_free(h, net->arena);
    mgc_free(h, net->shape_block);
    mgc_free(h, net->ptr);
    mgc_free(h, net);
}

/* ------------------------------------------------------------------ input shapes */

static int shapes_equal(const megcc_network *net, const mgc_plan *p, const uint8_t *tensors) {
    uint32_t i, k;
    for (i = 0; i < p->n_inputs; i++) {
        const uint8_t *rec = tensors + (size_t)io_tensor(p, 0, i) * MGC_TENSOR_SIZE;
        if (net->req_ndim[i] != rec[5]) return 0;
        for (k = 0; k < rec[5]; k++)
            if ((uint32_t)net->req_dims[(size_t)i * MEGCC_MAX_DIMS + k] !=
                mgc_rd32(rec + 8 + 4 * k))
                return 0;
    }
    return 1;
}

/* Choose and evaluate the plan for the requested shapes: a static plan whose inputs have
 * exactly these shapes first (MegCC's listed shapes), else the first dynamic plan that
 * accepts them. */
static megcc_status reshape(megcc_network *net) {
    const megcc_model *m = net->model;
    uint32_t n_in = net->plan->n_inputs, pi, tried = 0;
    char other[MGC_ERROR_LEN];
    megcc_status first = MEGCC_OK;
    for (pi = 0; pi < m->n_plans; pi++) {
        const mgc_plan *p = &m->plans[pi];
        if (!p->dynamic && !p->foreign && p->n_inputs == n_in &&
            shapes_equal(net, p, p->tensors)) {
            use_plan(net, pi);
            return MEGCC_OK;
        }
    }
    for (pi = 0; pi < m->n_plans; pi++) {
        const mgc_plan *p = &m->plans[pi];
        uint64_t need = 0;
        megcc_status st;
        if (!p->dynamic || p->foreign || p->n_inputs != n_in) continue;
        st = mgc_dyn_evaluate(m, p, net->req_ndim, net->req_dims, &net->scratch,
                              net->dyn_tensors, net->dyn_instrs, &need,
                              tried ? other : net->error, tried ? sizeof other : sizeof net->error);
        if (!tried++) first = st;
        if (st == MEGCC_OK) {
            use_plan(net, pi);
            net->tensors = net->dyn_tensors;
            net->instrs = net->dyn_instrs;
            net->arena_need = need;
            net->error[0] = '\0';
            return MEGCC_OK;
        }
    }
    if (!tried)
        return net_fail(net, MEGCC_ERR_NOT_FOUND,
                        "no plan has inputs of the requested shapes (the model has no dynamic "
                        "plan)");
    return first;
}

/* Shapes evaluated (tensor records and params concrete); the arena may still be short. */
static megcc_status ensure_shapes(megcc_network *net) {
    const mgc_plan *p = net->plan;
    uint32_t i, k;
    uint64_t need = 0;
    megcc_status st;
    if (net->shapes_dirty) return reshape(net);
    if (!p->dynamic || !p->dyn.n_values || net->tensors != p->tensors) return MEGCC_OK;
    /* A plan with value symbols always runs on evaluated copies (its instructions rewrite
     * sizes during the forward): evaluate it at its hint shapes. */
    for (i = 0; i < p->n_inputs; i++) {
        const uint8_t *rec = mgc_tensor(p, io_tensor(p, 0, i));
        net->req_ndim[i] = rec[5];
        for (k = 0; k < rec[5]; k++)
            net->req_dims[(size_t)i * MEGCC_MAX_DIMS + k] = (int32_t)mgc_rd32(rec + 8 + 4 * k);
    }
    st = mgc_dyn_evaluate(net->model, p, net->req_ndim, net->req_dims, &net->scratch,
                          net->dyn_tensors, net->dyn_instrs, &need, net->error,
                          sizeof net->error);
    if (st) return st;
    net->tensors = net->dyn_tensors;
    net->instrs = net->dyn_instrs;
    net->arena_need = need;
    net->resolved = 0;
    return MEGCC_OK;
}

/* Shapes evaluated, the arena big enough (grown if the network owns it), pointers
 * resolved: what every call touching tensor data needs. */
static megcc_status ensure_ready(megcc_network *net) {
    megcc_status st;
    if ((st = ensure_shapes(net))) return st;
    if (net->arena_need > net->arena_size) {
        const megcc_hooks *h = &net->model->hooks;
        uint8_t *bigger;
        if (!net->owns_arena || net->arena_need > (size_t)-1)
            return net_fail(net, MEGCC_ERR_ARENA_TOO_SMALL,
                            "the input shapes need an arena of %z bytes, the network's has %z "
                            "(megcc_network_set_arena)",
                            (size_t)net->arena_need, net->arena_size);
        bigger = (uint8_t *)mgc_alloc(h, (size_t)net->arena_need, MEGCC_ARENA_ALIGN);
        if (!bigger)
            return net_fail(net, MEGCC_ERR_NO_MEMORY, "out of memory for a %z-byte arena",
                            (size_t)net->arena_need);
        mgc_free(h, net->arena);
        net->arena = bigger;
        net->arena_size = (size_t)net->arena_need;
        net->resolved = 0;
    }
    if (!net->resolved) resolve(net);
    return MEGCC_OK;
}

megcc_status megcc_network_set_input_shape(megcc_network *net, uint32_t index,
                                           const int32_t *dims, uint32_t ndim) {
    const mgc_plan *p;
    uint32_t i, k;
    if (!net) return MEGCC_ERR_INVALID_ARG;
    p = net->plan;
    if (index >= p->n_inputs)
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "input %u out of range (%u inputs)", index,
                        p->n_inputs);
    if (ndim > MEGCC_MAX_DIMS || (ndim && !dims))
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "input %u: rank %u (at most 8, dims given)",
                        index, ndim);
    for (k = 0; k < ndim; k++)
        if (dims[k] < 0)
            return net_fail(net, MEGCC_ERR_INVALID_ARG, "input %u: dimension %u is negative",
                            index, k);
    if (!net->shapes_dirty) /* start from the current shapes of every input */
        for (i = 0; i < p->n_inputs; i++) {
            const uint8_t *rec = tensor_rec(net, io_tensor(p, 0, i));
            net->req_ndim[i] = rec[5];
            for (k = 0; k < rec[5]; k++)
                net->req_dims[(size_t)i * MEGCC_MAX_DIMS + k] = (int32_t)mgc_rd32(rec + 8 + 4 * k);
        }
    net->req_ndim[index] = ndim;
    for (k = 0; k < MEGCC_MAX_DIMS; k++)
        net->req_dims[(size_t)index * MEGCC_MAX_DIMS + k] = k < ndim ? dims[k] : 0;
    /* setting the shape the network already has changes nothing (no I/O reset) */
    if (!net->shapes_dirty && shapes_equal(net, p, net->tensors)) return MEGCC_OK;
    net->shapes_dirty = 1;
    net->have_outputs = 0;
    net->resolved = 0;
    clear_io(net); /* the I/O tensors change size: caller buffers no longer fit */
    return MEGCC_OK;
}

megcc_status megcc_network_required_arena_size(megcc_network *net, size_t *bytes) {
    megcc_status st;
    if (!net || !bytes) return MEGCC_ERR_INVALID_ARG;
    if ((st = ensure_shapes(net))) return st;
    *bytes = (size_t)net->arena_need;
    return MEGCC_OK;
}

megcc_status megcc_network_set_arena(megcc_network *net, void *arena, size_t arena_size) {
    if (!net) return MEGCC_ERR_INVALID_ARG;
    if (!arena) return net_fail(net, MEGCC_ERR_INVALID_ARG, "arena is NULL");
    if ((uintptr_t)arena % MEGCC_ARENA_ALIGN)
        return net_fail(net, MEGCC_ERR_ALIGNMENT, "arena must be 64-byte aligned");
    {
        megcc_status st = ensure_shapes(net);
        if (st) return st;
    }
    if (arena_size < net->arena_need)
        return net_fail(net, MEGCC_ERR_ARENA_TOO_SMALL, "arena of %z bytes, plan %u needs %z",
                        arena_size, net->plan_index, (size_t)net->arena_need);
    if (net->owns_arena && (void *)net->arena != arena) mgc_free(&net->model->hooks, net->arena);
    net->arena = (uint8_t *)arena;
    net->arena_size = arena_size;
    net->owns_arena = 0;
    net->have_outputs = 0; /* the activations were not carried over */
    resolve(net);
    return MEGCC_OK;
}

megcc_status megcc_network_select_plan(megcc_network *net, uint32_t plan) {
    const megcc_model *m;
    if (!net) return MEGCC_ERR_INVALID_ARG;
    m = net->model;
    if (plan >= m->n_plans)
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "plan %u out of range (%u plans)", plan,
                        m->n_plans);
    if (m->plans[plan].foreign)
        return net_fail(net, MEGCC_ERR_KERNEL_MISMATCH, "plan %u was compiled for another "
                        "architecture (the linked kernels.c lacks its kernels here)", plan);
    if (m->plans[plan].arena_size > net->arena_size)
        return net_fail(net, MEGCC_ERR_ARENA_TOO_SMALL, "plan %u needs %u arena bytes, have %z",
                        plan, m->plans[plan].arena_size, net->arena_size);
    use_plan(net, plan);
    clear_io(net);
    resolve(net);
    return MEGCC_OK;
}

uint32_t megcc_network_plan(const megcc_network *net) {
    if (!net) return 0;
    (void)ensure_shapes((megcc_network *)net); /* the plan the set shapes choose */
    return net->plan_index;
}
uint32_t megcc_network_num_inputs(const megcc_network *net) {
    return net ? net->plan->n_inputs : 0;
}
uint32_t megcc_network_num_outputs(const megcc_network *net) {
    return net ? net->plan->n_outputs : 0;
}

/* Info is computed from the network's records: a dynamic plan's at the set shapes. The
 * network is logically const here; evaluating pending shapes only fills its caches. */
static megcc_status io_info(const megcc_network *cnet, uint32_t index, int output,
                            megcc_tensor_info *info) {
    megcc_network *net = (megcc_network *)cnet;
    megcc_status st;
    if (!net || !info) return MEGCC_ERR_INVALID_ARG;
    if ((st = ensure_shapes(net))) return st;
    if (index >= (output ? net->plan->n_outputs : net->plan->n_inputs))
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "%s %u out of range",
                        output ? "output" : "input", index);
    mgc_info_from_record(net->model, tensor_rec(net, io_tensor(net->plan, output, index)), info);
    return MEGCC_OK;
}

megcc_status megcc_network_input_info(const megcc_network *net, uint32_t index,
                                      megcc_tensor_info *info) {
    return io_info(net, index, 0, info);
}

megcc_status megcc_network_output_info(const megcc_network *net, uint32_t index,
                                       megcc_tensor_info *info) {
    return io_info(net, index, 1, info);
}

static int find_io(const megcc_network *net, const char *name, int output) {
    const mgc_plan *p;
    uint32_t i, n;
    if (!net || !name) return -1;
    p = net->plan;
    n = output ? p->n_outputs : p->n_inputs;
    for (i = 0; i < n; i++) {
        const uint8_t *rec = mgc_tensor(p, io_tensor(p, output, i));
        if (mgc_streq((const char *)(net->model->strings + mgc_rd32(rec)), name)) return (int)i;
    }
    return -1;
}

int megcc_network_find_input(const megcc_network *net, const char *name) {
    return find_io(net, name, 0);
}
int megcc_network_find_output(const megcc_network *net, const char *name) {
    return find_io(net, name, 1);
}

void *megcc_network_input_data(megcc_network *net, uint32_t index) {
    if (!net || ensure_ready(net) != MEGCC_OK || index >= net->plan->n_inputs) return NULL;
    return net->in_user[index] ? net->in_user[index] : net->ptr[io_tensor(net->plan, 0, index)];
}

void *megcc_network_output_data(megcc_network *net, uint32_t index) {
    if (!net || ensure_ready(net) != MEGCC_OK) return NULL;
    if (index >= net->plan->n_outputs) {
        net_fail(net, MEGCC_ERR_INVALID_ARG, "output %u out of range", index);
        return NULL;
    }
    /* Before a successful forward the bytes are stale or garbage: refuse rather than let
     * an application consume them. */
    if (!net->have_outputs) {
        net_fail(net, MEGCC_ERR_NO_OUTPUT, "output %u read before a successful forward", index);
        return NULL;
    }
    return net->out_user[index] ? net->out_user[index]
                                : net->ptr[io_tensor(net->plan, 1, index)];
}

void *megcc_network_output_buffer(megcc_network *net, uint32_t index) {
    if (!net || index >= net->plan->n_outputs) return NULL;
    return net->out_user[index] ? net->out_user[index]
                                : net->ptr[io_tensor(net->plan, 1, index)];
}

static megcc_status set_io_memory(megcc_network *net, int output, uint32_t index, void *data,
                                  size_t size) {
    const mgc_plan *p;
    const uint8_t *rec;
    uint32_t t;
    size_t isz;
    megcc_status st;
    if (!net) return MEGCC_ERR_INVALID_ARG;
    if ((st = ensure_ready(net))) return st;
    p = net->plan;
    if (index >= (output ? p->n_outputs : p->n_inputs))
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "%s %u out of range",
                        output ? "output" : "input", index);
    t = io_tensor(p, output, index);
    rec = tensor_rec(net, t);
    isz = megcc_dtype_size((megcc_dtype)rec[4]);
    if (data && size < mgc_t_nbytes(rec))
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "%s %u: buffer of %z bytes, tensor needs %u",
                        output ? "output" : "input", index, size, mgc_t_nbytes(rec));
    if (data && (uintptr_t)data % isz)
        return net_fail(net, MEGCC_ERR_ALIGNMENT, "%s %u: buffer not aligned to %z bytes",
                        output ? "output" : "input", index, isz);
    (output ? net->out_user : net->in_user)[index] = data;
    if (output) {
        net->have_outputs = 0; /* the new buffer holds no result yet */
        net->out_size[index] = data ? size : 0;
    }
    if (mgc_t_storage(rec) == MGC_STORAGE_ARENA) {
        /* Zero-copy: the tensor (and every view of it) now lives in the caller's buffer. */
        net->override[t] = data;
        (output ? net->out_copy : net->in_copy)[index] = NULL;
    } else {
        /* A view shares its base's storage, which other tensors use too: copy instead. */
        (output ? net->out_copy : net->in_copy)[index] = data;
    }
    resolve(net);
    return MEGCC_OK;
}

megcc_status megcc_network_set_input_memory(megcc_network *net, uint32_t index, void *data,
                                            size_t size) {
    return set_io_memory(net, 0, index, data, size);
}

megcc_status megcc_network_set_output_memory(megcc_network *net, uint32_t index, void *data,
                                             size_t size) {
    return set_io_memory(net, 1, index, data, size);
}

megcc_status megcc_network_set_profiler(megcc_network *net, megcc_profile_fn fn, void *user) {
    if (!net) return MEGCC_ERR_INVALID_ARG;
    if (fn && !net->model->hooks.time_ns)
        return net_fail(net, MEGCC_ERR_UNSUPPORTED, "profiling needs a time_ns hook");
    net->profile = fn;
    net->profile_user = user;
    return MEGCC_OK;
}

/* A plan with value symbols starts every forward at the caps (the previous forward left
 * the sizes it computed): the same evaluation and placement as when the shapes were set,
 * and caller output memory must hold each output at its cap. */
static megcc_status at_caps(megcc_network *net) {
    const mgc_plan *p = net->plan;
    uint64_t need = 0;
    uint32_t i;
    megcc_status st = mgc_dyn_evaluate(net->model, p, net->req_ndim, net->req_dims,
                                       &net->scratch, net->dyn_tensors, net->dyn_instrs, &need,
                                       net->error, sizeof net->error);
    if (st) return st;
    if (need != net->arena_need) /* same shapes, same placement (deterministic) */
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "internal: placement changed");
    resolve(net);
    for (i = 0; i < p->n_outputs; i++) {
        uint32_t t = io_tensor(p, 1, i);
        uint64_t nb = mgc_dyn_memory_need(net->model, p, &net->scratch, t,
                                          mgc_t_nbytes(tensor_rec(net, t)));
        if ((net->out_user[i] || net->out_copy[i]) && net->out_size[i] < nb)
            return net_fail(net, MEGCC_ERR_INVALID_ARG,
                            "output %u: buffer of %z bytes, the output may take %z (its size "
                            "is computed during the forward; give memory for its cap)",
                            i, (size_t)net->out_size[i], (size_t)nb);
    }
    return MEGCC_OK;
}

megcc_status megcc_network_forward(megcc_network *net) {
    const mgc_plan *p;
    const megcc_hooks *h;
    const uint8_t *pos;
    uint32_t i, j;
    megcc_status st;
#ifdef MEGCC_MAX_BACKWARD_JUMPS
    uint64_t back_jumps;
#endif
    if (!net) return MEGCC_ERR_INVALID_ARG;
    if ((st = ensure_ready(net))) return st;
    p = net->plan;
    if (p->dynamic && p->dyn.n_values && (st = at_caps(net))) return st;
    h = &net->model->hooks;
    net->error[0] = '\0';
    net->have_outputs = 0; /* until this run completes */
    for (i = 0; i < p->n_inputs; i++)
        if (net->in_copy[i])
            memcpy(net->ptr[io_tensor(p, 0, i)], net->in_copy[i],
                   mgc_t_nbytes(tensor_rec(net, io_tensor(p, 0, i))));
    pos = net->instrs;
    if (p->dynamic && p->dyn.n_values) memset(net->scratch.defined, 0, p->dyn.n_symbols);
#ifdef MEGCC_MAX_BACKWARD_JUMPS
    back_jumps = 0;
#endif
    for (i = 0; i < p->n_instrs; i++) {
        uint32_t kernel = mgc_rd32(pos), n_in = mgc_rd16(pos + 4), n_out = mgc_rd16(pos + 6);
        uint32_t n_par = mgc_rd32(pos + 8), ws = mgc_rd32(pos + 12);
        const uint8_t *idx = pos + MGC_INSTR_HEADER;
        /* The blob is 64-byte aligned and every record 4-byte aligned (loader), and so is
         * a dynamic plan's evaluated copy: the params can be handed to the kernel in place. */
        const int32_t *params = (const int32_t *)(const void *)(idx + 4 * (n_in + n_out));
        uint64_t t0 = 0;
        int rc;
        if (mgc_is_control(kernel)) { /* control flow (control.c): targets checked at load */
            if (mgc_control_taken(kernel, idx, net->ptr)) {
                uint32_t target = mgc_rd32(idx + 4 * n_in + 4);
#ifdef MEGCC_MAX_BACKWARD_JUMPS /* fuzzing builds: a hostile blob may loop forever */
                if (target <= i && ++back_jumps > (uint64_t)MEGCC_MAX_BACKWARD_JUMPS)
                    return net_fail(net, MEGCC_ERR_KERNEL_FAILED, "more than %u backward jumps",
                                    (uint32_t)MEGCC_MAX_BACKWARD_JUMPS);
#endif
                pos = net->instrs + mgc_rd32(idx + 4 * n_in); /* dynamic: the evaluated copy */
                i = target - 1; /* the loop's i++ makes it the target */
            } else {
                pos = idx + 4 * ((size_t)n_in + n_out + n_par);
            }
            continue;
        }
        for (j = 0; j < n_in + n_out; j++) {
            uint32_t t = mgc_rd32(idx + 4 * j);
            net->operands[j] = t == MGC_NONE ? NULL : net->ptr[t];
        }
        if (net->profile) t0 = h->time_ns(h->user);
        rc = megcc_kernel_table[kernel].fn(net->operands, net->operands + n_in, params,
                                           ws == MGC_NONE ? NULL : net->ptr[ws], net->par);
        if (net->profile)
            net->profile(net->profile_user, i, megcc_kernel_table[kernel].name,
                         h->time_ns(h->user) - t0);
        if (rc != 0)
            return net_fail(net, MEGCC_ERR_KERNEL_FAILED, "instruction %u (kernel %s) returned %d",
                            i, megcc_kernel_table[kernel].name, rc);
        if (p->dynamic && p->dyn.n_values) { /* it may define value symbols: sizes follow */
            int changed;
            st = mgc_dyn_define(net->model, p, i, net->ptr, &net->scratch, net->dyn_tensors,
                                net->dyn_instrs, &changed, net->error, sizeof net->error);
            if (st) return st;
            if (changed) resolve(net); /* view offsets may have moved */
        }
        pos = idx + 4 * ((size_t)n_in + n_out + n_par);
    }
    for (i = 0; i < p->n_outputs; i++)
        if (net->out_copy[i])
            memcpy(net->out_copy[i], net->ptr[io_tensor(p, 1, i)],
                   mgc_t_nbytes(tensor_rec(net, io_tensor(p, 1, i))));
    net->have_outputs = 1;
    return MEGCC_OK;
}

megcc_status megcc_network_set_threads(megcc_network *net, uint32_t threads) {
    mgc_pool *pool = NULL;
    megcc_status st;
    if (!net) return MEGCC_ERR_INVALID_ARG;
    if (threads < 1 || threads > 1024)
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "thread count %u out of range (1..1024)",
                        threads);
    if (threads == megcc_network_threads(net) && (threads == 1 || net->pool)) return MEGCC_OK;
    if (threads > 1 && (st = mgc_pool_create(&net->model->hooks, threads, &pool)) != MEGCC_OK)
        return net_fail(net, st, st == MEGCC_ERR_UNSUPPORTED
                                     ? "cannot start %u threads (no thread pool in this build, "
                                       "or thread creation failed)"
                                     : "out of memory for a pool of %u threads", threads);
    mgc_pool_destroy(net->pool);
    net->pool = pool;
    net->par = pool ? mgc_pool_parallel(pool) : NULL;
    return MEGCC_OK;
}

megcc_status megcc_network_set_parallel(megcc_network *net, const megcc_parallel *par) {
    if (!net) return MEGCC_ERR_INVALID_ARG;
    if (par && (!par->run || par->threads < 1))
        return net_fail(net, MEGCC_ERR_INVALID_ARG, "parallel-for without run or threads");
    mgc_pool_destroy(net->pool);
    net->pool = NULL;
    net->par = par;
    return MEGCC_OK;
}

uint32_t megcc_network_threads(const megcc_network *net) {
    return net && net->par && net->par->threads > 1 ? (uint32_t)net->par->threads : 1;
}

const char *megcc_network_last_error(const megcc_network *net) {
    return net ? net->error : "network is NULL";
}
