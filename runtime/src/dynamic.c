/* Dynamic plans (docs/dynamic-shapes.md): evaluate a plan's expressions for the input
 * shapes a caller set, and place the arena. megcc_builder/emit/dynamic.py is the Python
 * twin (same expressions, same placement, same checks).
 *
 * The DynPlan record was validated at load (loader.c): every index is in range, every
 * expression program is well formed. What can still fail depends on the values: a
 * dimension outside its bounds, an inconsistent input, a guard, an overflow. Nothing is
 * allocated here: the network hands in scratch sized at create. */
#include <string.h>

#include "internal.h"

#define I64_MAX ((int64_t)0x7FFFFFFFFFFFFFFFll)
#define I64_MIN (-I64_MAX - 1)

enum { VAL_OK = 0, VAL_OVERFLOW = 1, VAL_DIVISION = 2, VAL_MALFORMED = 3 };

const char *mgc_expr_check(const uint8_t *w, uint32_t n, uint32_t n_symbols) {
    uint32_t i = 0, depth = 0;
    while (i < n) {
        uint32_t op = mgc_rd32(w + 4 * i);
        if (op == MGC_OP_CONST || op == MGC_OP_SYM) {
            if (i + 1 >= n) return "an opcode lacks its operand";
            if (op == MGC_OP_SYM && mgc_rd32(w + 4 * (i + 1)) >= n_symbols)
                return "SYM names no symbol";
            depth++;
            i += 2;
        } else if (op >= MGC_OP_ADD && op <= MGC_OP_AND) {
            if (depth < 2) return "stack underflow";
            depth--;
            i++;
        } else {
            return "unknown opcode";
        }
        if (depth > MGC_MAX_STACK) return "stack deeper than 32";
    }
    return depth == 1 ? NULL : "the program does not leave exactly one value";
}

uint32_t mgc_find_binding(const uint8_t *rows, uint32_t n, uint32_t stride, int pair,
                          uint32_t key0, uint32_t key1) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *r = rows + (size_t)mid * stride;
        uint32_t a = mgc_rd32(r), b = pair ? mgc_rd32(r + 4) : 0;
        if (a == key0 && (!pair || b == key1)) return mid;
        if (a < key0 || (a == key0 && b < key1)) lo = mid + 1;
        else hi = mid;
    }
    return MGC_NONE;
}

/* a op b for the binary opcodes, without undefined behaviour. */
static int apply(uint32_t op, int64_t a, int64_t b, int64_t *r) {
    switch (op) {
    case MGC_OP_ADD:
        if ((b > 0 && a > I64_MAX - b) || (b < 0 && a < I64_MIN - b)) return VAL_OVERFLOW;
        *r = a + b;
        return VAL_OK;
    case MGC_OP_SUB:
        if ((b < 0 && a > I64_MAX + b) || (b > 0 && a < I64_MIN + b)) return VAL_OVERFLOW;
        *r = a - b;
        return VAL_OK;
    case MGC_OP_MUL:
        if (a != 0 && b != 0) {
            if (a > 0 ? (b > 0 ? a > I64_MAX / b : b < I64_MIN / a)
                      : (b > 0 ? a < I64_MIN / b : b < I64_MAX / a))
                return VAL_OVERFLOW;
        }
        *r = a * b;
        return VAL_OK;
    case MGC_OP_FLOORDIV:
    case MGC_OP_MOD: {
        int64_t q, m;
        if (b <= 0) return VAL_DIVISION;
        q = a / b;
        m = a % b;
        if (m < 0) { /* C truncates; the contract floors (b > 0) */
            q -= 1;
            m += b;
        }
        *r = op == MGC_OP_FLOORDIV ? q : m;
        return VAL_OK;
    }
    case MGC_OP_MIN: *r = a < b ? a : b; return VAL_OK;
    case MGC_OP_MAX: *r = a > b ? a : b; return VAL_OK;
    case MGC_OP_EQ: *r = a == b; return VAL_OK;
    case MGC_OP_LE: *r = a <= b; return VAL_OK;
    case MGC_OP_LT: *r = a < b; return VAL_OK;
    case MGC_OP_AND: *r = a != 0 && b != 0; return VAL_OK;
    default: return VAL_MALFORMED;
    }
}

/* Value of one expression record (n_words, words). Checked again although the loader
 * validated the program: evaluation never trusts the stack depth. */
static int eval_expr(const uint8_t *rec, uint32_t n_symbols, const int64_t *sym, int64_t *out) {
    int64_t stack[MGC_MAX_STACK];
    uint32_t n = mgc_rd32(rec), i = 0, sp = 0;
    const uint8_t *w = rec + 4;
    while (i < n) {
        uint32_t op = mgc_rd32(w + 4 * i);
        if (op == MGC_OP_CONST || op == MGC_OP_SYM) {
            uint32_t v;
            if (i + 1 >= n || sp >= MGC_MAX_STACK) return VAL_MALFORMED;
            v = mgc_rd32(w + 4 * (i + 1));
            if (op == MGC_OP_SYM) {
                if (v >= n_symbols) return VAL_MALFORMED;
                stack[sp++] = sym[v];
            } else {
                stack[sp++] = (int32_t)v;
            }
            i += 2;
        } else {
            int st;
            if (sp < 2) return VAL_MALFORMED;
            if ((st = apply(op, stack[sp - 2], stack[sp - 1], &stack[sp - 2])) != VAL_OK)
                return st;
            sp--;
            i++;
        }
    }
    if (sp != 1) return VAL_MALFORMED;
    *out = stack[0];
    return VAL_OK;
}

/* Evaluation context: one call of mgc_dyn_evaluate. */
typedef struct {
    const megcc_model *m;
    const mgc_plan *p;
    const mgc_dyn *d;
    const mgc_dyn_scratch *s;
    char *err;
    size_t cap;
} ctx;

static megcc_status fail(const ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mgc_vformat(c->err, c->cap, fmt, ap);
    va_end(ap);
    return MEGCC_ERR_INVALID_ARG;
}

static const char *str(const ctx *c, uint32_t rel) {
    return (const char *)(c->m->strings + rel);
}

/* The value of expression e (evaluated up front), or a failure naming `what`. */
static megcc_status value(const ctx *c, uint32_t e, const char *what, uint32_t index,
                          int64_t *v) {
    static const char *const why[] = {"", "overflows 64 bits", "divides by a value <= 0",
                                      "is malformed"};
    *v = 0;
    if (c->s->val_err[e])
        return fail(c, "%s %u: expression %u %s at these shapes", what, index, e,
                    why[c->s->val_err[e]]);
    *v = c->s->val[e];
    return MEGCC_OK;
}

static const char *tensor_name(const ctx *c, const uint8_t *rec) {
    return str(c, mgc_rd32(rec));
}

/* 1 when expression e reads a value symbol; with `undefined` only one not yet defined
 * by its instruction in this forward. */
static int reads_value(const ctx *c, uint32_t e, int undefined) {
    const uint8_t *rec = c->m->data + mgc_rd32(c->d->exprs + 4 * e);
    uint32_t n = mgc_rd32(rec), i = 0;
    while (i < n) {
        uint32_t op = mgc_rd32(rec + 4 + 4 * i);
        if (op == MGC_OP_CONST || op == MGC_OP_SYM) {
            uint32_t k = mgc_rd32(rec + 8 + 4 * i);
            if (op == MGC_OP_SYM &&
                mgc_rd32(c->d->symbols + (size_t)k * MGC_SYMBOL_SIZE + 12) == MGC_NONE &&
                (!undefined || !c->s->defined[k]))
                return 1;
            i += 2;
        } else {
            i++;
        }
    }
    return 0;
}

/* Guards non-zero. When the shapes are set (`running` 0) the guards reading a value
 * symbol wait for it; during a forward, those whose value symbols are all defined. */
static megcc_status check_guards(const ctx *c, int running) {
    uint32_t k;
    for (k = 0; k < c->d->n_guards; k++) {
        const uint8_t *g = c->d->guards + 8 * (size_t)k;
        int64_t v;
        megcc_status st;
        if (c->d->n_values && reads_value(c, mgc_rd32(g), running)) continue;
        if ((st = value(c, mgc_rd32(g), "guard", k, &v))) return st;
        if (!v)
            return fail(c, "%s refused by guard %u: %s", running ? "computed value" : "shape",
                        k, str(c, mgc_rd32(g + 4)));
    }
    return MEGCC_OK;
}

/* Steps 1-4: input ranks and static dims, symbol bounds, the other bound input dims,
 * guards. Fills the symbol and expression values. */
static megcc_status check_inputs(const ctx *c, const uint32_t *ndim, const int32_t *dims) {
    const mgc_dyn *d = c->d;
    uint32_t i, k;
    for (i = 0; i < c->p->n_inputs; i++) {
        uint32_t t = mgc_rd32(c->p->inputs + 4 * i);
        const uint8_t *rec = mgc_tensor(c->p, t);
        const int32_t *want = dims + (size_t)i * MEGCC_MAX_DIMS;
        if (ndim[i] != rec[5])
            return fail(c, "input %u (%s): rank %u, the model's is %u", i, tensor_name(c, rec),
                        ndim[i], (uint32_t)rec[5]);
        for (k = 0; k < ndim[i]; k++) {
            int32_t have = (int32_t)mgc_rd32(rec + 8 + 4 * k);
            if (mgc_find_binding(d->dims, d->n_dims, 12, 1, t, k) == MGC_NONE &&
                want[k] != have)
                return fail(c, "input %u (%s): dimension %u is %d, the model's is %d", i,
                            tensor_name(c, rec), k, (int)want[k], (int)have);
        }
    }
    for (k = 0; k < d->n_symbols; k++) {
        const uint8_t *sy = d->symbols + (size_t)k * MGC_SYMBOL_SIZE;
        int32_t lo = (int32_t)mgc_rd32(sy + 4), hi = (int32_t)mgc_rd32(sy + 8);
        uint32_t in = mgc_rd32(sy + 12), axis = mgc_rd32(sy + 16);
        int32_t v;
        if (in == MGC_NONE) { /* a value symbol: its cap, below */
            c->s->sym[k] = 0;
            continue;
        }
        v = dims[(size_t)in * MEGCC_MAX_DIMS + axis];
        if (v < lo || v > hi)
            return fail(c, "input %u (%s) dimension %u: %s = %d is outside [%d, %d]", in,
                        tensor_name(c, mgc_tensor(c->p, mgc_rd32(c->p->inputs + 4 * in))), axis,
                        str(c, mgc_rd32(sy)), (int)v, (int)lo, (int)hi);
        c->s->sym[k] = v;
    }
    for (k = 0; k < d->n_values; k++) { /* bounds read input symbols only (loader) */
        const uint8_t *v = d->values + (size_t)k * MGC_VALUE_SIZE;
        uint32_t sym = mgc_rd32(v);
        const uint8_t *sy = d->symbols + (size_t)sym * MGC_SYMBOL_SIZE;
        int64_t lo = (int32_t)mgc_rd32(sy + 4), hi = (int32_t)mgc_rd32(sy + 8), b;
        if (eval_expr(c->m->data + mgc_rd32(d->exprs + 4 * mgc_rd32(v + 16)), d->n_symbols,
                      c->s->sym, &b) != VAL_OK)
            return fail(c, "value symbol %s: its bound cannot be computed at these shapes",
                        str(c, mgc_rd32(sy)));
        c->s->cap[sym] = b < lo ? lo : b > hi ? hi : b;
        /* a count stands at its cap (its outputs are placed for it); a computed shape
         * extent at its min (what it shapes is placed at byte caps, not at a product of
         * extent caps, which would overflow) */
        c->s->sym[sym] = mgc_rd32(sy + 16) == MGC_VALUE_SHAPE ? lo : c->s->cap[sym];
    }
    for (k = 0; k < d->n_exprs; k++)
        c->s->val_err[k] = (uint8_t)eval_expr(c->m->data + mgc_rd32(d->exprs + 4 * k),
                                              d->n_symbols, c->s->sym, &c->s->val[k]);
    for (i = 0; i < c->p->n_inputs; i++) {
        uint32_t t = mgc_rd32(c->p->inputs + 4 * i);
        const int32_t *want = dims + (size_t)i * MEGCC_MAX_DIMS;
        for (k = 0; k < ndim[i]; k++) {
            uint32_t b = mgc_find_binding(d->dims, d->n_dims, 12, 1, t, k);
            int64_t v;
            megcc_status st;
            if (b == MGC_NONE) continue;
            if ((st = value(c, mgc_rd32(d->dims + 12 * (size_t)b + 8), "input", i, &v))) return st;
            if (v != want[k])
                return fail(c, "input %u (%s): dimension %u is %d, the other inputs make it %d",
                            i, tensor_name(c, mgc_tensor(c->p, t)), k, (int)want[k],
                            (int)(v > 0x7FFFFFFF ? 0x7FFFFFFF : v < -0x7FFFFFFF ? -0x7FFFFFFF
                                                                                 : v));
        }
    }
    return check_guards(c, 0);
}

/* Step 5: tensor dims and nbytes, view offsets, params. */
static megcc_status set_sizes(const ctx *c, uint8_t *tensors, uint8_t *instrs) {
    const mgc_dyn *d = c->d;
    uint32_t k, i;
    megcc_status st;
    int64_t v;
    for (k = 0; k < d->n_dims; k++) {
        const uint8_t *b = d->dims + 12 * (size_t)k;
        uint32_t t = mgc_rd32(b), axis = mgc_rd32(b + 4);
        if ((st = value(c, mgc_rd32(b + 8), "tensor", t, &v))) return st;
        if (v < 0 || v > 0x7FFFFFFF)
            return fail(c, "tensor %u (%s) dimension %u would be out of range at these shapes",
                        t, tensor_name(c, mgc_tensor(c->p, t)), axis);
        mgc_wr32(tensors + (size_t)t * MGC_TENSOR_SIZE + 8 + 4 * axis, (uint32_t)v);
        /* the last binding of a tensor: its dims are complete, recompute nbytes */
        if (k + 1 == d->n_dims || mgc_rd32(b + 12) != t) {
            uint8_t *rec = tensors + (size_t)t * MGC_TENSOR_SIZE;
            uint64_t n = megcc_dtype_size((megcc_dtype)rec[4]);
            for (i = 0; i < rec[5]; i++)
                if (!mgc_rd32(rec + 8 + 4 * i)) n = 0; /* empty, whatever the others are */
            for (i = 0; i < rec[5] && n <= 0xFFFFFFFFu; i++) n *= mgc_rd32(rec + 8 + 4 * i);
            if (n > 0xFFFFFFFFu)
                return fail(c, "tensor %u (%s) would exceed 4 GiB at these shapes", t,
                            tensor_name(c, rec));
            mgc_wr32(rec + 44, (uint32_t)n);
        }
    }
    for (k = 0; k < d->n_views; k++) {
        const uint8_t *b = d->views + 8 * (size_t)k;
        uint32_t t = mgc_rd32(b);
        if ((st = value(c, mgc_rd32(b + 4), "view", t, &v))) return st;
        if (v < 0 || v > 0xFFFFFFFFll)
            return fail(c, "view %u: offset out of range at these shapes", t);
        mgc_wr32(tensors + (size_t)t * MGC_TENSOR_SIZE + 40, (uint32_t)v);
    }
    if (d->n_params) {
        const uint8_t *pos = instrs;
        for (i = 0; i < c->p->n_instrs; i++) {
            c->s->instr_off[i] = (uint32_t)(pos - instrs);
            pos += MGC_INSTR_HEADER + 4 * ((size_t)mgc_rd16(pos + 4) + mgc_rd16(pos + 6) +
                                           mgc_rd32(pos + 8));
        }
    }
    for (k = 0; k < d->n_params; k++) {
        const uint8_t *b = d->params + 12 * (size_t)k;
        uint32_t ii = mgc_rd32(b), par = mgc_rd32(b + 4);
        uint8_t *ins = instrs + c->s->instr_off[ii];
        if ((st = value(c, mgc_rd32(b + 8), "instruction", ii, &v))) return st;
        if (v < -0x7FFFFFFFll - 1 || v > 0x7FFFFFFF)
            return fail(c, "instruction %u param %u out of int32 range at these shapes", ii, par);
        mgc_wr32(ins + MGC_INSTR_HEADER + 4 * ((size_t)mgc_rd16(ins + 4) + mgc_rd16(ins + 6) + par),
                 (uint32_t)(int32_t)v);
    }
    return MEGCC_OK;
}

/* Every view inside its base (after sizes or offsets changed). */
static megcc_status check_views(const ctx *c, const uint8_t *tensors) {
    uint32_t k;
    for (k = 0; k < c->p->n_tensors; k++) {
        const uint8_t *rec = tensors + (size_t)k * MGC_TENSOR_SIZE, *base;
        size_t isz = megcc_dtype_size((megcc_dtype)rec[4]);
        if (mgc_t_storage(rec) != MGC_STORAGE_VIEW) continue;
        base = tensors + (size_t)mgc_t_base(rec) * MGC_TENSOR_SIZE;
        if ((uint64_t)mgc_t_offset(rec) + mgc_t_nbytes(rec) > mgc_t_nbytes(base) ||
            ((uint64_t)mgc_t_offset(base) + mgc_t_offset(rec)) % isz)
            return fail(c, "view %u (%s) would leave its base at these shapes", k,
                        tensor_name(c, rec));
    }
    return MEGCC_OK;
}

/* Step 6: buffer sizes, placement, member offsets; then every view inside its base. */
static megcc_status place(const ctx *c, uint8_t *tensors, uint64_t *arena) {
    const mgc_dyn *d = c->d;
    uint32_t k, j;
    for (k = 0; k < d->n_buffers; k++) {
        const uint8_t *b = d->buffers + (size_t)k * MGC_BUFFER_SIZE;
        const uint8_t *mem = c->m->data + mgc_rd32(b + 16);
        int64_t v;
        megcc_status st;
        if ((st = value(c, mgc_rd32(b), "buffer", k, &v))) return st;
        if (v < 0 || v > 0xFFFFFFFFll)
            return fail(c, "buffer %u: size out of range at these shapes", k);
        for (j = 0; j < mgc_rd32(b + 12); j++) {
            uint32_t t = mgc_rd32(mem + 4 * j);
            if ((uint64_t)v < mgc_t_nbytes(tensors + (size_t)t * MGC_TENSOR_SIZE))
                return fail(c, "buffer %u is smaller than its tensor %u at these shapes", k, t);
        }
        c->s->size[k] = ((uint64_t)v + MEGCC_ARENA_ALIGN - 1) / MEGCC_ARENA_ALIGN *
                        MEGCC_ARENA_ALIGN;
    }
    *arena = mgc_place_buffers(d->n_buffers, d->buffers, c->s->size, c->s->off, c->s->order,
                               c->s->placed);
    if (*arena > 0xFFFFFFFFu) return fail(c, "the arena would exceed 4 GiB at these shapes");
    for (k = 0; k < d->n_buffers; k++) {
        const uint8_t *b = d->buffers + (size_t)k * MGC_BUFFER_SIZE;
        const uint8_t *mem = c->m->data + mgc_rd32(b + 16);
        for (j = 0; j < mgc_rd32(b + 12); j++)
            mgc_wr32(tensors + (size_t)mgc_rd32(mem + 4 * j) * MGC_TENSOR_SIZE + 40,
                     (uint32_t)c->s->off[k]);
    }
    return check_views(c, tensors);
}

megcc_status mgc_dyn_evaluate(const megcc_model *m, const mgc_plan *p, const uint32_t *ndim,
                              const int32_t *dims, const mgc_dyn_scratch *s, uint8_t *tensors,
                              uint8_t *instrs, uint64_t *arena, char *err, size_t cap) {
    ctx c;
    megcc_status st;
    c.m = m;
    c.p = p;
    c.d = &p->dyn;
    c.s = s;
    c.err = err;
    c.cap = cap;
    if ((st = check_inputs(&c, ndim, dims))) return st;
    memcpy(tensors, p->tensors, (size_t)p->n_tensors * MGC_TENSOR_SIZE);
    memcpy(instrs, p->instrs, p->instrs_size);
    if ((st = set_sizes(&c, tensors, instrs))) return st;
    return place(&c, tensors, arena);
}

/* ------------------------------------------------------------------ value symbols */

static int clamp_int(int64_t v) {
    return v > 0x7FFFFFFF ? 0x7FFFFFFF : v < -0x7FFFFFFF ? -0x7FFFFFFF : (int)v;
}

/* First value record of instruction `instr` (records sorted by instr), or n_values. */
static uint32_t first_value_of(const mgc_dyn *d, uint32_t instr) {
    uint32_t lo = 0, hi = d->n_values;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (mgc_rd32(d->values + (size_t)mid * MGC_VALUE_SIZE + 4) < instr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

megcc_status mgc_dyn_define(const megcc_model *m, const mgc_plan *p, uint32_t instr,
                            void *const *ptr, const mgc_dyn_scratch *s, uint8_t *tensors,
                            uint8_t *instrs, int *changed, char *err, size_t cap) {
    ctx c;
    const mgc_dyn *d = &p->dyn;
    uint32_t k = first_value_of(d, instr), j;
    megcc_status st;
    *changed = 0;
    if (k >= d->n_values || mgc_rd32(d->values + (size_t)k * MGC_VALUE_SIZE + 4) != instr)
        return MEGCC_OK;
    c.m = m;
    c.p = p;
    c.d = d;
    c.s = s;
    c.err = err;
    c.cap = cap;
    for (; k < d->n_values && mgc_rd32(d->values + (size_t)k * MGC_VALUE_SIZE + 4) == instr;
         k++) {
        const uint8_t *v = d->values + (size_t)k * MGC_VALUE_SIZE;
        uint32_t sym = mgc_rd32(v), t = mgc_rd32(v + 8), el = mgc_rd32(v + 12);
        const uint8_t *sy = d->symbols + (size_t)sym * MGC_SYMBOL_SIZE;
        const uint8_t *rec = tensors + (size_t)t * MGC_TENSOR_SIZE;
        int64_t lo = (int32_t)mgc_rd32(sy + 4), x;
        if (rec[4] == MEGCC_INT64) {
            memcpy(&x, (const uint8_t *)ptr[t] + 8 * (size_t)el, 8);
        } else {
            int32_t y;
            memcpy(&y, (const uint8_t *)ptr[t] + 4 * (size_t)el, 4);
            x = y;
        }
        if (x == -1 && mgc_rd32(sy + 16) == MGC_VALUE_SHAPE)
            return fail(&c, "instruction %u computed a shape its operator's rules reject (%s "
                            "= -1)", instr, str(&c, mgc_rd32(sy)));
        if (x < lo || x > s->cap[sym])
            return fail(&c, "instruction %u computed %s = %d, outside [%d, %d] (the bound "
                            "its outputs were placed for)",
                        instr, str(&c, mgc_rd32(sy)), clamp_int(x), clamp_int(lo),
                        clamp_int(s->cap[sym]));
        s->sym[sym] = x;
        s->defined[sym] = 1;
    }
    *changed = 1;
    for (k = 0; k < d->n_exprs; k++)
        s->val_err[k] = (uint8_t)eval_expr(m->data + mgc_rd32(d->exprs + 4 * k), d->n_symbols,
                                           s->sym, &s->val[k]);
    if ((st = check_guards(&c, 1))) return st;
    if ((st = set_sizes(&c, tensors, instrs))) return st;
    for (k = 0; k < d->n_buffers; k++) { /* placed at the caps: every member still fits */
        const uint8_t *b = d->buffers + (size_t)k * MGC_BUFFER_SIZE;
        const uint8_t *mem = m->data + mgc_rd32(b + 16);
        for (j = 0; j < mgc_rd32(b + 12); j++) {
            uint32_t t = mgc_rd32(mem + 4 * j);
            if (mgc_t_nbytes(tensors + (size_t)t * MGC_TENSOR_SIZE) > s->size[k])
                return fail(&c, "after instruction %u tensor %u (%s) needs %u bytes, more "
                                "than the %z placed for it (its cap: --value-cap)",
                            instr, t, tensor_name(&c, tensors + (size_t)t * MGC_TENSOR_SIZE),
                            mgc_t_nbytes(tensors + (size_t)t * MGC_TENSOR_SIZE),
                            (size_t)s->size[k]);
        }
    }
    return check_views(&c, tensors);
}

uint64_t mgc_dyn_memory_need(const megcc_model *m, const mgc_plan *p,
                             const mgc_dyn_scratch *s, uint32_t t, uint32_t nbytes) {
    const mgc_dyn *d = &p->dyn;
    uint32_t k, j, shaped = 0;
    for (k = 0; k < d->n_symbols && !shaped; k++) {
        const uint8_t *sy = d->symbols + (size_t)k * MGC_SYMBOL_SIZE;
        shaped = mgc_rd32(sy + 12) == MGC_NONE && mgc_rd32(sy + 16) == MGC_VALUE_SHAPE;
    }
    if (!shaped) return nbytes;
    for (k = 0; k < d->n_buffers; k++) {
        const uint8_t *b = d->buffers + (size_t)k * MGC_BUFFER_SIZE;
        const uint8_t *mem = m->data + mgc_rd32(b + 16);
        for (j = 0; j < mgc_rd32(b + 12); j++)
            if (mgc_rd32(mem + 4 * j) == t) {
                int64_t v = s->val_err[mgc_rd32(b)] ? 0 : s->val[mgc_rd32(b)];
                return (uint64_t)v > nbytes ? (uint64_t)v : nbytes;
            }
    }
    return nbytes;
}

/* ---------------------------------------------------------------------------- placement */

static int32_t buf_first(const uint8_t *b, uint32_t i) {
    return (int32_t)mgc_rd32(b + (size_t)i * MGC_BUFFER_SIZE + 4);
}
static uint32_t buf_last(const uint8_t *b, uint32_t i) {
    return mgc_rd32(b + (size_t)i * MGC_BUFFER_SIZE + 8);
}

/* Placement order: aligned size descending, then first ascending, then index. */
static int goes_before(const uint8_t *b, const uint64_t *size, uint32_t i, uint32_t j) {
    if (size[i] != size[j]) return size[i] > size[j];
    if (buf_first(b, i) != buf_first(b, j)) return buf_first(b, i) < buf_first(b, j);
    return i < j;
}

static void sift(const uint8_t *b, const uint64_t *size, uint32_t *a, uint32_t root,
                 uint32_t n) {
    for (;;) {
        uint32_t child = 2 * root + 1, top = root;
        if (child < n && goes_before(b, size, a[top], a[child])) top = child;
        if (child + 1 < n && goes_before(b, size, a[top], a[child + 1])) top = child + 1;
        if (top == root) return;
        {
            uint32_t t = a[root];
            a[root] = a[top];
            a[top] = t;
        }
        root = top;
    }
}

uint64_t mgc_place_buffers(uint32_t n, const uint8_t *b, const uint64_t *size, uint64_t *off,
                           uint32_t *order, uint32_t *placed) {
    uint32_t i, k, n_placed = 0;
    uint64_t arena = 0;
    /* heap sort (no recursion, no allocation; the key is a total order, so any correct
     * sort gives the Python twin's order) */
    for (i = 0; i < n; i++) order[i] = i;
    for (i = n / 2; i-- > 0;) sift(b, size, order, i, n);
    for (i = n; i-- > 1;) {
        uint32_t t = order[0];
        order[0] = order[i];
        order[i] = t;
        sift(b, size, order, 0, i);
    }
    for (k = 0; k < n; k++) {
        uint32_t cur = order[k], pos;
        int64_t first = buf_first(b, cur), last = buf_last(b, cur);
        uint64_t o = 0;
        /* `placed` is kept sorted by (offset, index): first fit over the live clashes */
        for (i = 0; i < n_placed; i++) {
            uint32_t j = placed[i];
            if (!(buf_first(b, j) <= last && first <= (int64_t)buf_last(b, j))) continue;
            if (o + size[cur] <= off[j]) break;
            if (off[j] + size[j] > o) o = off[j] + size[j];
        }
        off[cur] = o;
        if (o + size[cur] > arena) arena = o + size[cur];
        for (pos = n_placed; pos > 0; pos--) {
            uint32_t j = placed[pos - 1];
            if (off[j] < o || (off[j] == o && j < cur)) break;
            placed[pos] = j;
        }
        placed[pos] = cur;
        n_placed++;
    }
    return arena;
}
