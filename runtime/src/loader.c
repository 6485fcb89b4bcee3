/* Model loading: validate every byte of the blob that the runtime will ever follow, per
 * docs/model-format.md, before anything else uses it. After a successful load the network
 * code trusts offsets, indices and sizes without re-checking them, so every rule that
 * keeps a pointer inside the blob, the weights or the arena is enforced here.
 *
 * All arithmetic on untrusted values is done in uint64_t on u32 operands, which cannot
 * overflow, and compared against the buffer size. */
#include <string.h>

#include "internal.h"

typedef struct {
    const uint8_t *d;
    uint64_t size;
    uint32_t strings_off, strings_size;
    uint32_t weights_off, weights_size;
    uint64_t strings_end; /* 1 + relative offset of the section's last NUL; 0 if none */
    uint64_t array_budget; /* file bytes not yet claimed by a plan's arrays */
    uint32_t dynamic_off;  /* header word 60: the dynamic plan table, 0 for none */
} blob_view;

static int in_file(const blob_view *b, uint64_t off, uint64_t len) {
    return off <= b->size && len <= b->size - off;
}

/* A string offset must name the start of a NUL-terminated string inside the strings
 * section (offset 0 or just after a NUL). Checked in O(1) with the section's last NUL,
 * found once: scanning each string here made a file of many names pointing at one long
 * string cost names x length (docs/model-format.md, "Limits"). */
static megcc_status check_string(const blob_view *b, uint32_t rel, const char *what,
                                 uint32_t index) {
    if (rel >= b->strings_size)
        return mgc_fail_global(MEGCC_ERR_CORRUPT,
                               "%s %u: string offset %u outside strings section (%u bytes)",
                               what, index, rel, b->strings_size);
    if (rel >= b->strings_end)
        return mgc_fail_global(MEGCC_ERR_CORRUPT,
                               "%s %u: string at %u is not NUL-terminated inside the section",
                               what, index, rel);
    if (rel && b->d[b->strings_off + rel - 1] != 0)
        return mgc_fail_global(MEGCC_ERR_CORRUPT,
                               "%s %u: string offset %u is inside another string", what, index,
                               rel);
    return MEGCC_OK;
}

static const char *str_at(const blob_view *b, uint32_t rel) {
    return (const char *)(b->d + b->strings_off + rel);
}

static int writable(const uint8_t *tensors, uint32_t i) {
    const uint8_t *rec = tensors + (size_t)i * MGC_TENSOR_SIZE;
    if (mgc_t_storage(rec) == MGC_STORAGE_VIEW)
        rec = tensors + (size_t)mgc_t_base(rec) * MGC_TENSOR_SIZE; /* base validated earlier */
    return mgc_t_storage(rec) == MGC_STORAGE_ARENA;
}

static megcc_status check_tensor(const blob_view *b, const mgc_plan *p, uint32_t pi,
                                 uint32_t ti) {
    const uint8_t *rec = p->tensors + (size_t)ti * MGC_TENSOR_SIZE;
    uint32_t ndim = rec[5], storage = rec[6], layout = rec[7];
    uint32_t offset = mgc_t_offset(rec), nbytes = mgc_t_nbytes(rec), base = mgc_t_base(rec);
    size_t isz = megcc_dtype_size((megcc_dtype)rec[4]);
    uint64_t prod = 1;
    uint32_t k;
    int has_zero = 0;
    megcc_status st = check_string(b, mgc_rd32(rec), "tensor name of plan", pi);
    if (st) return st;
#define TFAIL(...) mgc_fail_global(MEGCC_ERR_CORRUPT, __VA_ARGS__)
    if (!isz) return TFAIL("plan %u tensor %u: unknown dtype code %u", pi, ti, (uint32_t)rec[4]);
    if (ndim > MEGCC_MAX_DIMS) return TFAIL("plan %u tensor %u: ndim %u > 8", pi, ti, ndim);
    if (storage > MGC_STORAGE_VIEW)
        return TFAIL("plan %u tensor %u: unknown storage %u", pi, ti, storage);
    if (layout > 2) return TFAIL("plan %u tensor %u: unknown layout %u", pi, ti, layout);
    if (mgc_rd32(rec + 60) != 0) return TFAIL("plan %u tensor %u: reserved != 0", pi, ti);
    for (k = 0; k < MEGCC_MAX_DIMS; k++) {
        int32_t d = (int32_t)mgc_rd32(rec + 8 + 4 * k);
        if (k >= ndim ? d != 0 : d < 0)
            return TFAIL("plan %u tensor %u: bad dim %u = %d", pi, ti, k, (int)d);
        if (k < ndim && d == 0) has_zero = 1;
    }
    /* nbytes == product(dims) * itemsize, with the product saturating above u32 range
     * (a zero dim anywhere makes it 0 whatever the others are). */
    if (has_zero) {
        prod = 0;
    } else {
        for (k = 0; k < ndim && prod <= 0xFFFFFFFFu; k++) prod *= mgc_rd32(rec + 8 + 4 * k);
        if (prod > 0xFFFFFFFFu) prod = 0x100000000u; /* saturate: cannot equal a u32 */
        prod *= isz;
    }
    if (prod != nbytes)
        return TFAIL("plan %u tensor %u: nbytes %u != product(dims) x itemsize", pi, ti, nbytes);
    if (storage != MGC_STORAGE_VIEW && base != MGC_NONE)
        return TFAIL("plan %u tensor %u: base must be 0xffffffff for a non-view", pi, ti);
    switch (storage) {
    case MGC_STORAGE_ARENA:
        if ((uint64_t)offset + nbytes > p->arena_size)
            return TFAIL("plan %u tensor %u: arena bytes [%u, +%u) exceed arena_size %u", pi, ti,
                         offset, nbytes, p->arena_size);
        if (offset % isz)
            return TFAIL("plan %u tensor %u: arena offset %u not aligned to %z", pi, ti, offset,
                         isz);
        break;
    case MGC_STORAGE_WEIGHT:
        if ((uint64_t)offset + nbytes > b->weights_size)
            return TFAIL("plan %u tensor %u: weight bytes [%u, +%u) exceed weights section (%u)",
                         pi, ti, offset, nbytes, b->weights_size);
        if (offset % 16)
            return TFAIL("plan %u tensor %u: weight offset %u not 16-byte aligned", pi, ti,
                         offset);
        break;
    default: {
        const uint8_t *brec;
        if (base >= ti)
            return TFAIL("plan %u tensor %u: view base %u is not an earlier tensor", pi, ti,
                         base);
        brec = p->tensors + (size_t)base * MGC_TENSOR_SIZE;
        if (mgc_t_storage(brec) == MGC_STORAGE_VIEW)
            return TFAIL("plan %u tensor %u: view base %u is itself a view", pi, ti, base);
        if ((uint64_t)offset + nbytes > mgc_t_nbytes(brec))
            return TFAIL("plan %u tensor %u: view bytes [%u, +%u) exceed base %u (%u bytes)", pi,
                         ti, offset, nbytes, base, mgc_t_nbytes(brec));
        if (((uint64_t)mgc_t_offset(brec) + offset) % isz)
            return TFAIL("plan %u tensor %u: view address not aligned to %z", pi, ti, isz);
        break;
    }
    }
#undef TFAIL
    return MEGCC_OK;
}

static megcc_status check_io(const blob_view *b, const mgc_plan *p, uint32_t pi,
                             const uint8_t *arr, uint32_t n, const char *kind) {
    uint32_t k;
    (void)b;
    for (k = 0; k < n; k++) {
        uint32_t t = mgc_rd32(arr + 4 * k);
        if (t >= p->n_tensors)
            return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u %s %u: tensor %u >= %u tensors",
                                   pi, kind, k, t, p->n_tensors);
        if (!writable(p->tensors, t))
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u %s %u: tensor %u is not in the arena", pi, kind, k,
                                   t);
    }
    return MEGCC_OK;
}

/* Byte range [lo, hi) of operand tensor t in the arena; 0 when it has none (omitted,
 * weight, view of a weight, empty), which nothing an instruction writes can overlap. */
static int arena_range(const mgc_plan *p, uint32_t t, uint64_t *lo, uint64_t *hi) {
    const uint8_t *rec, *base;
    if (t == MGC_NONE) return 0;
    rec = mgc_tensor(p, t);
    *lo = mgc_t_offset(rec);
    if (mgc_t_storage(rec) == MGC_STORAGE_VIEW) {
        base = mgc_tensor(p, mgc_t_base(rec));
        if (mgc_t_storage(base) != MGC_STORAGE_ARENA) return 0;
        *lo += mgc_t_offset(base);
    } else if (mgc_t_storage(rec) != MGC_STORAGE_ARENA) {
        return 0;
    }
    *hi = *lo + mgc_t_nbytes(rec);
    return *hi > *lo;
}

/* Operand j of the instruction whose operand indices start at idx. */
static uint32_t operand(const uint8_t *idx, uint32_t j) { return mgc_rd32(idx + 4 * j); }

/* How an instruction's output o (operand index) shares bytes with the other operands:
 * 0 disjoint from all, k + 1 exactly input k's bytes (in place), MGC_NONE any other overlap
 * (partial, with another output or with the workspace). Kernels may memcpy and assume
 * disjoint buffers; the compiler only ever computes exactly in place. */
static uint32_t output_alias(const mgc_plan *p, const uint8_t *ins, uint32_t o) {
    uint32_t n_in = mgc_rd16(ins + 4), n_ops = n_in + mgc_rd16(ins + 6), ws = mgc_rd32(ins + 12);
    const uint8_t *idx = ins + MGC_INSTR_HEADER;
    uint64_t lo, hi, xlo, xhi;
    uint32_t k, alias = 0;
    if (!arena_range(p, operand(idx, o), &lo, &hi)) return 0;
    if (arena_range(p, ws, &xlo, &xhi) && lo < xhi && xlo < hi) return MGC_NONE;
    for (k = 0; k < n_ops; k++) {
        if (k == o || !arena_range(p, operand(idx, k), &xlo, &xhi) || hi <= xlo || xhi <= lo)
            continue;
        if (k >= n_in || lo != xlo || hi != xhi) return MGC_NONE;
        if (!alias) alias = k + 1;
    }
    return alias;
}

static megcc_status check_overlaps(const mgc_plan *p, uint32_t pi, uint32_t ii,
                                   const uint8_t *ins) {
    uint32_t n_in = mgc_rd16(ins + 4), n_ops = n_in + mgc_rd16(ins + 6), ws = mgc_rd32(ins + 12);
    const uint8_t *idx = ins + MGC_INSTR_HEADER;
    uint64_t lo, hi, xlo, xhi;
    uint32_t j;
    for (j = n_in; j < n_ops; j++)
        if (output_alias(p, ins, j) == MGC_NONE)
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u instr %u: output %u overlaps another operand "
                                   "(only exactly in place over an input is allowed)",
                                   pi, ii, j - n_in);
    if (arena_range(p, ws, &lo, &hi))
        for (j = 0; j < n_in; j++)
            if (arena_range(p, operand(idx, j), &xlo, &xhi) && lo < xhi && xlo < hi)
                return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                       "plan %u instr %u: the workspace overlaps input %u", pi,
                                       ii, j);
    return MEGCC_OK;
}

/* Does the instruction at `ins` (structurally valid) equal signature record `r`? */
static int sig_equal(const mgc_plan *p, const uint8_t *ins, const uint32_t *r) {
    uint32_t n_in = mgc_rd16(ins + 4), n_out = mgc_rd16(ins + 6), n_par = mgc_rd32(ins + 8);
    uint32_t ws = mgc_rd32(ins + 12), j;
    const uint8_t *idx = ins + MGC_INSTR_HEADER, *par = idx + 4 * ((size_t)n_in + n_out);
    if (r[0] != (n_in | n_out << 16) || r[1] != n_par) return 0;
    if (r[2] != (ws == MGC_NONE ? MGC_NONE : mgc_t_nbytes(mgc_tensor(p, ws)))) return 0;
    for (j = 0; j < n_in + n_out; j++) {
        uint32_t t = operand(idx, j);
        const uint8_t *rec = t == MGC_NONE ? NULL : mgc_tensor(p, t);
        uint32_t dtype = rec ? rec[4] : MGC_NONE, nbytes = rec ? mgc_t_nbytes(rec) : 0;
        if (r[3 + 2 * j] != dtype || r[4 + 2 * j] != nbytes) return 0;
    }
    r += 3 + 2 * ((size_t)n_in + n_out);
    for (j = 0; j < n_out; j++)
        if (r[j] != output_alias(p, ins, n_in + j)) return 0;
    r += n_out;
    for (j = 0; j < n_par; j++)
        if (r[j] != mgc_rd32(par + 4 * j)) return 0;
    return 1;
}

/* Record length in words, or 0 if it runs past `avail` (a malformed table matches nothing). */
static uint64_t sig_len(const uint32_t *r, uint32_t avail) {
    uint64_t len;
    if (avail < 3) return 0;
    len = 3 + 3 * (uint64_t)(r[0] >> 16) + 2 * (uint64_t)(r[0] & 0xFFFFu) + r[1];
    return len <= avail ? len : 0;
}

/* Kernels trust their params (extents, strides, offset tables), which the structural
 * checks cannot interpret. So an instruction is accepted only if it equals one of the
 * signatures its kernel was generated for, listed by the trusted kernels.c
 * (kernel_abi.h; megcc_builder/emit/signatures.py explains the design). The operand
 * counts are matched first, which also bounds the quadratic overlap check by what the
 * compiler produced. */
static megcc_status check_signature(const mgc_plan *p, uint32_t pi, uint32_t ii,
                                    const uint8_t *ins) {
    uint32_t kernel = mgc_rd32(ins);
    uint32_t counts = mgc_rd16(ins + 4) | (uint32_t)mgc_rd16(ins + 6) << 16;
    uint32_t begin = megcc_kernel_sig_index[kernel], end = megcc_kernel_sig_index[kernel + 1];
    uint32_t pos;
    uint64_t len;
    int shape_known = 0;
    megcc_status st;
    for (pos = begin; pos < end && (len = sig_len(megcc_kernel_sigs + pos, end - pos));
         pos += (uint32_t)len)
        if (megcc_kernel_sigs[pos] == counts && megcc_kernel_sigs[pos + 1] == mgc_rd32(ins + 8))
            shape_known = 1;
    if (shape_known) {
        if ((st = check_overlaps(p, pi, ii, ins))) return st;
        for (pos = begin; pos < end && (len = sig_len(megcc_kernel_sigs + pos, end - pos));
             pos += (uint32_t)len)
            if (sig_equal(p, ins, megcc_kernel_sigs + pos)) return MEGCC_OK;
    }
    return mgc_fail_global(MEGCC_ERR_KERNEL_MISMATCH,
                           "plan %u instr %u: kernel %s was not generated for these operands "
                           "and params (no matching signature in kernels.c)",
                           pi, ii, megcc_kernel_table[kernel].name);
}

static megcc_status check_instrs(mgc_plan *p, uint32_t pi, uint32_t instrs_size,
                                 uint32_t n_kernels) {
    const uint8_t *pos = p->instrs, *end = p->instrs + instrs_size;
    uint32_t ii, j;
    p->max_operands = 0;
    for (ii = 0; ii < p->n_instrs; ii++) {
        const uint8_t *ins = pos;
        uint32_t kernel, n_in, n_out, n_par, ws;
        megcc_status st;
        if ((size_t)(end - pos) < MGC_INSTR_HEADER)
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u instr %u: header runs past the instruction stream",
                                   pi, ii);
        kernel = mgc_rd32(pos);
        n_in = mgc_rd16(pos + 4);
        n_out = mgc_rd16(pos + 6);
        n_par = mgc_rd32(pos + 8);
        ws = mgc_rd32(pos + 12);
        pos += MGC_INSTR_HEADER;
        if (kernel >= n_kernels && !mgc_is_control(kernel)) /* control flow: control.c */
            return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u instr %u: kernel %u >= %u", pi,
                                   ii, kernel, n_kernels);
        if (!mgc_is_control(kernel) && !megcc_kernel_table[kernel].fn) p->foreign = 1;
        if (((uint64_t)n_in + n_out + n_par) * 4 > (uint64_t)(end - pos))
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u instr %u: operands run past the instruction stream",
                                   pi, ii);
        if (ws != MGC_NONE &&
            (ws >= p->n_tensors || mgc_t_storage(mgc_tensor(p, ws)) != MGC_STORAGE_ARENA))
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u instr %u: workspace %u is not an arena tensor", pi,
                                   ii, ws);
        /* Kernels cast the workspace to float* and friends: it must be SIMD-aligned. */
        if (ws != MGC_NONE && mgc_t_offset(mgc_tensor(p, ws)) % 16)
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u instr %u: workspace %u not 16-byte aligned", pi, ii,
                                   ws);
        for (j = 0; j < n_in + n_out; j++) {
            uint32_t t = mgc_rd32(pos + 4 * j);
            if (j < n_in && t == MGC_NONE) continue; /* omitted optional input */
            if (t >= p->n_tensors)
                return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                       "plan %u instr %u: operand %u tensor %u >= %u tensors",
                                       pi, ii, j, t, p->n_tensors);
            if (j >= n_in && !writable(p->tensors, t))
                return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                       "plan %u instr %u: output %u (tensor %u) is not in the "
                                       "arena",
                                       pi, ii, j - n_in, t);
        }
        if (mgc_is_control(kernel)) { /* control flow: a built-in, no kernel signature */
            if ((st = mgc_check_control(p, pi, ii, ins))) return st;
            p->n_control++;
        } else if ((st = check_signature(p, pi, ii, ins)))
            return st;
        if (n_in + n_out > p->max_operands) p->max_operands = n_in + n_out;
        pos += 4 * ((size_t)n_in + n_out + n_par);
    }
    if (pos != end)
        return mgc_fail_global(MEGCC_ERR_CORRUPT,
                               "plan %u: %z trailing bytes in the instruction stream", pi,
                               (size_t)(end - pos));
    return MEGCC_OK;
}

static megcc_status check_plan(blob_view *b, uint32_t rec_off, uint32_t pi,
                               uint32_t n_kernels, mgc_plan *p) {
    const uint8_t *r;
    uint32_t t_off, i_off, i_size, in_off, out_off, ti;
    megcc_status st;
    if (rec_off % 4 || !in_file(b, rec_off, MGC_PLAN_SIZE))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u: record offset %u out of bounds", pi,
                               rec_off);
    r = b->d + rec_off;
    if ((st = check_string(b, mgc_rd32(r), "name of plan", pi))) return st;
    p->name = str_at(b, mgc_rd32(r));
    p->arch = mgc_rd32(r + 4);
    p->arena_size = mgc_rd32(r + 8);
    p->n_tensors = mgc_rd32(r + 12);
    t_off = mgc_rd32(r + 16);
    p->n_instrs = mgc_rd32(r + 20);
    i_off = mgc_rd32(r + 24);
    i_size = mgc_rd32(r + 28);
    p->n_inputs = mgc_rd32(r + 32);
    in_off = mgc_rd32(r + 36);
    p->n_outputs = mgc_rd32(r + 40);
    out_off = mgc_rd32(r + 44);
    /* 4-byte alignment of every array lets kernels read params as int32_t in place. */
    if (t_off % 4 || !in_file(b, t_off, (uint64_t)p->n_tensors * MGC_TENSOR_SIZE))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u: tensor table out of bounds", pi);
    if (in_off % 4 || !in_file(b, in_off, (uint64_t)p->n_inputs * 4))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u: input table out of bounds", pi);
    if (out_off % 4 || !in_file(b, out_off, (uint64_t)p->n_outputs * 4))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u: output table out of bounds", pi);
    if (i_off % 4 || !in_file(b, i_off, i_size))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u: instruction stream out of bounds",
                               pi);
    /* Plans never share arrays, so together they fit in the file; a model that reuses
     * one array for many plans would make validation cost grow with the reuse. */
    {
        uint64_t claim = (uint64_t)p->n_tensors * MGC_TENSOR_SIZE +
                         4 * ((uint64_t)p->n_inputs + p->n_outputs) + i_size;
        if (claim > b->array_budget)
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u: the plans' arrays together exceed the file size "
                                   "(arrays shared between plans)", pi);
        b->array_budget -= claim;
    }
    p->tensors = b->d + t_off;
    p->inputs = b->d + in_off;
    p->outputs = b->d + out_off;
    p->instrs = b->d + i_off;
    p->instrs_size = i_size;
    for (ti = 0; ti < p->n_tensors; ti++)
        if ((st = check_tensor(b, p, pi, ti))) return st;
    if ((st = check_io(b, p, pi, p->inputs, p->n_inputs, "input"))) return st;
    if ((st = check_io(b, p, pi, p->outputs, p->n_outputs, "output"))) return st;
    return check_instrs(p, pi, i_size, n_kernels);
}

/* ------------------------------------------------------------------ dynamic plans */

/* Claim an array of a DynPlan: in the file, 4-byte aligned, and (like the plans' arrays)
 * never shared, so validating them costs at most the file size. */
static megcc_status claim(blob_view *b, uint32_t pi, uint64_t off, uint64_t len,
                          const char *what) {
    if (off % 4 || !in_file(b, off, len))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u dynamic: %s out of bounds", pi, what);
    if (len > b->array_budget)
        return mgc_fail_global(MEGCC_ERR_CORRUPT,
                               "plan %u dynamic: arrays together exceed the file size (shared "
                               "arrays)", pi);
    b->array_budget -= len;
    return MEGCC_OK;
}

/* Strictly increasing keys (first `key_words` words of each row): no key bound twice. */
static int increasing(const uint8_t *rows, uint32_t n, uint32_t stride, uint32_t key_words) {
    uint32_t k;
    for (k = 1; k < n; k++) {
        const uint8_t *a = rows + (size_t)(k - 1) * stride, *c = a + stride;
        uint32_t a0 = mgc_rd32(a), c0 = mgc_rd32(c);
        uint32_t a1 = key_words > 1 ? mgc_rd32(a + 4) : 0, c1 = key_words > 1 ? mgc_rd32(c + 4) : 0;
        if (c0 < a0 || (c0 == a0 && c1 <= a1)) return 0;
    }
    return 1;
}

static uint32_t instr_n_params(const mgc_plan *p, uint32_t ii, const uint8_t **pos,
                               uint32_t *at) {
    /* walk forward from (*at, *pos): params bindings come in instruction order */
    while (*at < ii) {
        *pos += MGC_INSTR_HEADER + 4 * ((size_t)mgc_rd16(*pos + 4) + mgc_rd16(*pos + 6) +
                                        mgc_rd32(*pos + 8));
        (*at)++;
    }
    (void)p;
    return mgc_rd32(*pos + 8);
}

#define DFAIL(...) mgc_fail_global(MEGCC_ERR_CORRUPT, __VA_ARGS__)

/* Does the expression at file offset `eo` read a value symbol? */
static int reads_value_symbol(const blob_view *b, const mgc_dyn *d, uint32_t eo) {
    uint32_t n = mgc_rd32(b->d + eo), i = 0;
    const uint8_t *w = b->d + eo + 4;
    while (i < n) {
        uint32_t op = mgc_rd32(w + 4 * i);
        if (op == MGC_OP_CONST || op == MGC_OP_SYM) {
            if (op == MGC_OP_SYM &&
                mgc_rd32(d->symbols + (size_t)mgc_rd32(w + 4 * (i + 1)) * MGC_SYMBOL_SIZE + 12) ==
                    MGC_NONE)
                return 1;
            i += 2;
        } else {
            i++;
        }
    }
    return 0;
}

/* Value records (docs/dynamic-shapes.md, "Value symbols"), after the symbols, expressions
 * and dims: sorted by (instr, symbol); each names a value symbol (each such symbol once),
 * an output of its (kernel) instruction that is a static int32/int64 arena tensor or view,
 * an element inside it, and a bound expression reading input symbols only. */
static megcc_status check_values(blob_view *b, mgc_plan *p, uint32_t pi) {
    const mgc_dyn *d = &p->dyn;
    const uint8_t *pos = p->instrs;
    uint32_t k, j, at = 0, n_defined = 0;
    for (k = 0; k < d->n_values; k++) {
        const uint8_t *v = d->values + (size_t)k * MGC_VALUE_SIZE, *ins, *rec;
        uint32_t sym = mgc_rd32(v), ii = mgc_rd32(v + 4), t = mgc_rd32(v + 8);
        uint32_t el = mgc_rd32(v + 12), bound = mgc_rd32(v + 16), n_in, n_out, found = 0;
        uint64_t numel = 1;
        if (sym >= d->n_symbols ||
            mgc_rd32(d->symbols + (size_t)sym * MGC_SYMBOL_SIZE + 12) != MGC_NONE)
            return DFAIL("plan %u dynamic value %u: symbol %u is not a value symbol", pi, k, sym);
        /* symbols strictly increasing, instructions non-decreasing: each value symbol
         * named once (with the count below, every one), numbered in definition order */
        if (k && (sym <= mgc_rd32(v - MGC_VALUE_SIZE) || ii < mgc_rd32(v - MGC_VALUE_SIZE + 4)))
            return DFAIL("plan %u dynamic values: not in increasing (instr, symbol) order", pi);
        if (ii >= p->n_instrs) return DFAIL("plan %u dynamic value %u: no instruction %u", pi, k, ii);
        /* walk to instruction ii (records are in increasing instr order) */
        while (at < ii) {
            pos += MGC_INSTR_HEADER +
                   4 * ((size_t)mgc_rd16(pos + 4) + mgc_rd16(pos + 6) + mgc_rd32(pos + 8));
            at++;
        }
        ins = pos;
        n_in = mgc_rd16(ins + 4);
        n_out = mgc_rd16(ins + 6);
        for (j = 0; j < n_out; j++)
            if (mgc_rd32(ins + MGC_INSTR_HEADER + 4 * (n_in + j)) == t) found = 1;
        if (mgc_is_control(mgc_rd32(ins)) || !found || t >= p->n_tensors)
            return DFAIL("plan %u dynamic value %u: tensor %u is not an output of instruction %u",
                         pi, k, t, ii);
        rec = mgc_tensor(p, t);
        if ((rec[4] != MEGCC_INT32 && rec[4] != MEGCC_INT64) ||
            mgc_t_storage(rec) == MGC_STORAGE_WEIGHT ||
            mgc_find_binding(d->dims, d->n_dims, 12, 1, t, 0) != MGC_NONE)
            return DFAIL("plan %u dynamic value %u: tensor %u is not a static int32/int64 "
                         "activation", pi, k, t);
        for (j = 0; j < rec[5]; j++) numel *= mgc_rd32(rec + 8 + 4 * j);
        if (el >= numel)
            return DFAIL("plan %u dynamic value %u: element %u outside tensor %u", pi, k, el, t);
        if (bound >= d->n_exprs || reads_value_symbol(b, d, mgc_rd32(d->exprs + 4 * bound)))
            return DFAIL("plan %u dynamic value %u: bound expression missing or reading a "
                         "value symbol", pi, k);
        n_defined++;
    }
    /* distinct value symbols (strictly increasing), as many as there are: all named */
    for (k = 0; k < d->n_symbols; k++)
        if (mgc_rd32(d->symbols + (size_t)k * MGC_SYMBOL_SIZE + 12) == MGC_NONE) n_defined--;
    if (n_defined)
        return DFAIL("plan %u dynamic: value symbols and value records do not match", pi);
    return MEGCC_OK;
}

/* One DynPlan record (docs/dynamic-shapes.md, "Load-time checks"). `member` is scratch of
 * n_tensors bytes. */
static megcc_status check_dyn(blob_view *b, mgc_plan *p, uint32_t pi, uint32_t off,
                              uint8_t *member) {
    mgc_dyn *d = &p->dyn;
    const uint8_t *r, *pos = p->instrs;
    uint32_t f[16], k, j, at = 0;
    megcc_status st;
    if ((st = claim(b, pi, off, MGC_DYNPLAN_SIZE, "record"))) return st;
    r = b->d + off;
    for (k = 0; k < 16; k++) f[k] = mgc_rd32(r + 4 * k);
    if (!f[14] != !f[15])
        return DFAIL("plan %u dynamic: value symbols: count and offset must be both 0 or not",
                     pi);
    if ((st = claim(b, pi, f[1], (uint64_t)f[0] * MGC_SYMBOL_SIZE, "symbols")) ||
        (st = claim(b, pi, f[3], (uint64_t)f[2] * 4, "expression table")) ||
        (st = claim(b, pi, f[5], (uint64_t)f[4] * 12, "dims")) ||
        (st = claim(b, pi, f[7], (uint64_t)f[6] * 8, "view offsets")) ||
        (st = claim(b, pi, f[9], (uint64_t)f[8] * 12, "params")) ||
        (st = claim(b, pi, f[11], (uint64_t)f[10] * 8, "guards")) ||
        (st = claim(b, pi, f[13], (uint64_t)f[12] * MGC_BUFFER_SIZE, "buffers")) ||
        (f[14] && (st = claim(b, pi, f[15], (uint64_t)f[14] * MGC_VALUE_SIZE, "values"))))
        return st;
    d->n_symbols = f[0];
    d->symbols = b->d + f[1];
    d->n_exprs = f[2];
    d->exprs = b->d + f[3];
    d->n_dims = f[4];
    d->dims = b->d + f[5];
    d->n_views = f[6];
    d->views = b->d + f[7];
    d->n_params = f[8];
    d->params = b->d + f[9];
    d->n_guards = f[10];
    d->guards = b->d + f[11];
    d->n_buffers = f[12];
    d->buffers = b->d + f[13];
    d->n_values = f[14];
    d->values = f[14] ? b->d + f[15] : NULL;
    for (k = 0; k < d->n_symbols; k++) {
        const uint8_t *sy = d->symbols + (size_t)k * MGC_SYMBOL_SIZE;
        int32_t lo = (int32_t)mgc_rd32(sy + 4), hi = (int32_t)mgc_rd32(sy + 8);
        uint32_t in = mgc_rd32(sy + 12), axis = mgc_rd32(sy + 16);
        if ((st = check_string(b, mgc_rd32(sy), "symbol name of plan", pi))) return st;
        if (lo < 0 || lo > hi)
            return DFAIL("plan %u dynamic symbol %u: bounds [%d, %d] are not 0 <= min <= max",
                         pi, k, (int)lo, (int)hi);
        if (in == MGC_NONE) { /* a value symbol: checked with the value records */
            /* axis: 0 a count (stands at its cap), 1 a computed shape extent (at its min) */
            if (axis > MGC_VALUE_SHAPE)
                return DFAIL("plan %u dynamic symbol %u: value symbol axis is not 0 or 1", pi, k);
            continue;
        }
        if (in >= p->n_inputs)
            return DFAIL("plan %u dynamic symbol %u: input %u >= %u", pi, k, in, p->n_inputs);
        if (axis >= mgc_tensor(p, mgc_rd32(p->inputs + 4 * in))[5])
            return DFAIL("plan %u dynamic symbol %u: axis %u >= the input's rank", pi, k, axis);
    }
    for (k = 0; k < d->n_exprs; k++) {
        uint32_t eo = mgc_rd32(d->exprs + 4 * k), n;
        const char *why;
        if (!in_file(b, eo, 4)) return DFAIL("plan %u dynamic expression %u out of bounds", pi, k);
        n = mgc_rd32(b->d + eo);
        if (n < 1 || n > MGC_MAX_EXPR_WORDS)
            return DFAIL("plan %u dynamic expression %u: %u words (1..256)", pi, k, n);
        if ((st = claim(b, pi, eo, 4 + 4 * (uint64_t)n, "expression"))) return st;
        if ((why = mgc_expr_check(b->d + eo + 4, n, d->n_symbols)))
            return DFAIL("plan %u dynamic expression %u: %s", pi, k, why);
    }
    for (k = 0; k < d->n_dims; k++) {
        const uint8_t *x = d->dims + 12 * (size_t)k;
        uint32_t t = mgc_rd32(x), axis = mgc_rd32(x + 4);
        if (t >= p->n_tensors || mgc_t_storage(mgc_tensor(p, t)) == MGC_STORAGE_WEIGHT ||
            axis >= mgc_tensor(p, t)[5] || mgc_rd32(x + 8) >= d->n_exprs)
            return DFAIL("plan %u dynamic dims binding %u: bad tensor, axis or expression", pi, k);
    }
    if (!increasing(d->dims, d->n_dims, 12, 2))
        return DFAIL("plan %u dynamic dims: bindings not in increasing order or bound twice", pi);
    for (k = 0; k < d->n_views; k++) {
        const uint8_t *x = d->views + 8 * (size_t)k;
        uint32_t t = mgc_rd32(x);
        if (t >= p->n_tensors || mgc_t_storage(mgc_tensor(p, t)) != MGC_STORAGE_VIEW ||
            mgc_rd32(x + 4) >= d->n_exprs)
            return DFAIL("plan %u dynamic view offset %u: not a view, or bad expression", pi, k);
    }
    if (!increasing(d->views, d->n_views, 8, 1))
        return DFAIL("plan %u dynamic view offsets: not in increasing order or bound twice", pi);
    if (!increasing(d->params, d->n_params, 12, 2))
        return DFAIL("plan %u dynamic params: bindings not in increasing order or bound twice", pi);
    for (k = 0; k < d->n_params; k++) {
        const uint8_t *x = d->params + 12 * (size_t)k;
        uint32_t ii = mgc_rd32(x);
        if (ii >= p->n_instrs || mgc_rd32(x + 4) >= instr_n_params(p, ii, &pos, &at) ||
            mgc_rd32(x + 8) >= d->n_exprs)
            return DFAIL("plan %u dynamic params binding %u: no such instruction parameter, or "
                         "bad expression", pi, k);
    }
    for (k = 0; k < d->n_guards; k++) {
        const uint8_t *x = d->guards + 8 * (size_t)k;
        if (mgc_rd32(x) >= d->n_exprs)
            return DFAIL("plan %u dynamic guard %u: expression out of range", pi, k);
        if ((st = check_string(b, mgc_rd32(x + 4), "guard message of plan", pi))) return st;
    }
    memset(member, 0, p->n_tensors);
    for (k = 0; k < d->n_buffers; k++) {
        const uint8_t *x = d->buffers + (size_t)k * MGC_BUFFER_SIZE;
        int32_t first = (int32_t)mgc_rd32(x + 4);
        uint32_t last = mgc_rd32(x + 8), n_m = mgc_rd32(x + 12), m_off = mgc_rd32(x + 16);
        if (mgc_rd32(x) >= d->n_exprs)
            return DFAIL("plan %u dynamic buffer %u: size expression out of range", pi, k);
        if (first < -1 || (first >= 0 && (uint32_t)first > last) || last > p->n_instrs)
            return DFAIL("plan %u dynamic buffer %u: interval outside [-1, %u]", pi, k,
                         p->n_instrs);
        if ((st = claim(b, pi, m_off, 4 * (uint64_t)n_m, "buffer members"))) return st;
        for (j = 0; j < n_m; j++) {
            uint32_t t = mgc_rd32(b->d + m_off + 4 * j);
            if (t >= p->n_tensors || mgc_t_storage(mgc_tensor(p, t)) != MGC_STORAGE_ARENA)
                return DFAIL("plan %u dynamic buffer %u: member %u is not an arena tensor", pi,
                             k, t);
            if (member[t])
                return DFAIL("plan %u dynamic buffer %u: tensor %u is in two buffers", pi, k, t);
            member[t] = 1;
        }
    }
    for (k = 0; k < p->n_tensors; k++)
        if (mgc_t_storage(mgc_tensor(p, k)) == MGC_STORAGE_ARENA && !member[k])
            return DFAIL("plan %u dynamic: arena tensor %u is in no buffer", pi, k);
    if ((st = check_values(b, p, pi))) return st;
    for (k = 0; k < d->n_symbols; k++) {
        const uint8_t *sy = d->symbols + (size_t)k * MGC_SYMBOL_SIZE;
        uint32_t t, x;
        const uint8_t *e;
        if (mgc_rd32(sy + 12) == MGC_NONE) continue; /* value symbol */
        t = mgc_rd32(p->inputs + 4 * mgc_rd32(sy + 12));
        x = mgc_find_binding(d->dims, d->n_dims, 12, 1, t, mgc_rd32(sy + 16));
        if (x == MGC_NONE) goto unbound;
        e = b->d + mgc_rd32(d->exprs + 4 * mgc_rd32(d->dims + 12 * (size_t)x + 8));
        if (mgc_rd32(e) == 2 && mgc_rd32(e + 4) == MGC_OP_SYM && mgc_rd32(e + 8) == k) continue;
    unbound:
        return DFAIL("plan %u dynamic symbol %u: its input dimension is not bound to the "
                     "symbol", pi, k);
    }
    return MEGCC_OK;
}
#undef DFAIL

/* Fingerprint words (docs/dynamic-shapes.md, "Trust"), streamed into a comparison with
 * one record of megcc_dynamic_plans (ref == NULL: only count them). */
typedef struct {
    const uint32_t *ref;
    uint64_t n, pos;
    int same;
} fp_cursor;

static void fp_put(fp_cursor *c, uint32_t w) {
    if (c->ref && c->same && (c->pos >= c->n || c->ref[c->pos] != w)) c->same = 0;
    c->pos++;
}

static void fp_words(fp_cursor *c, const uint8_t *p, uint64_t n_words) {
    uint64_t k;
    for (k = 0; k < n_words && (c->same || !c->ref); k++) fp_put(c, mgc_rd32(p + 4 * k));
}

static void fingerprint(const uint8_t *data, const mgc_plan *p, fp_cursor *c) {
    const mgc_dyn *d = &p->dyn;
    uint32_t k, j;
    fp_put(c, p->n_tensors);
    for (k = 0; k < p->n_tensors && (c->same || !c->ref); k++) {
        const uint8_t *rec = mgc_tensor(p, k);
        fp_put(c, 0); /* name */
        fp_words(c, rec + 4, 9);
        fp_put(c, mgc_t_storage(rec) == MGC_STORAGE_WEIGHT ? 0 : mgc_t_offset(rec));
        fp_words(c, rec + 44, 5);
    }
    fp_put(c, p->n_instrs);
    fp_words(c, p->instrs, p->instrs_size / 4);
    fp_put(c, d->n_symbols);
    for (k = 0; k < d->n_symbols; k++) fp_words(c, d->symbols + (size_t)k * MGC_SYMBOL_SIZE + 4, 4);
    fp_put(c, d->n_exprs);
    for (k = 0; k < d->n_exprs; k++) {
        const uint8_t *e = data + mgc_rd32(d->exprs + 4 * k);
        fp_words(c, e, 1 + (uint64_t)mgc_rd32(e));
    }
    fp_put(c, d->n_dims);
    fp_words(c, d->dims, 3 * (uint64_t)d->n_dims);
    fp_put(c, d->n_views);
    fp_words(c, d->views, 2 * (uint64_t)d->n_views);
    fp_put(c, d->n_params);
    fp_words(c, d->params, 3 * (uint64_t)d->n_params);
    fp_put(c, d->n_guards);
    for (k = 0; k < d->n_guards; k++) fp_put(c, mgc_rd32(d->guards + 8 * (size_t)k));
    fp_put(c, d->n_buffers);
    for (k = 0; k < d->n_buffers; k++) {
        const uint8_t *x = d->buffers + (size_t)k * MGC_BUFFER_SIZE;
        fp_words(c, x, 4);
        for (j = 0; j < mgc_rd32(x + 12) && (c->same || !c->ref); j++)
            fp_put(c, mgc_rd32(data + mgc_rd32(x + 16) + 4 * j));
    }
    if (d->n_values) { /* absent without value symbols: the older plans' fingerprint */
        fp_put(c, d->n_values);
        fp_words(c, d->values, 5 * (uint64_t)d->n_values);
    }
}

/* Kernels trust the params a dynamic plan computes, so the plan must be one the trusted
 * kernels.c was generated for. */
static megcc_status check_fingerprint(const uint8_t *data, const mgc_plan *p, uint32_t pi) {
    fp_cursor count = {NULL, 0, 0, 1};
    uint32_t k;
    fingerprint(data, p, &count);
    for (k = 0; k < megcc_dynamic_plan_count; k++) {
        uint32_t lo = megcc_dynamic_plan_index[k], hi = megcc_dynamic_plan_index[k + 1];
        fp_cursor c;
        if (hi < lo || hi - lo != count.pos) continue;
        c.ref = megcc_dynamic_plans + lo;
        c.n = hi - lo;
        c.pos = 0;
        c.same = 1;
        fingerprint(data, p, &c);
        if (c.same && c.pos == c.n) return MEGCC_OK;
    }
    return mgc_fail_global(MEGCC_ERR_KERNEL_MISMATCH,
                           "plan %u: dynamic plan not generated with this kernels.c (its "
                           "fingerprint is not in megcc_dynamic_plans)", pi);
}

static megcc_status check_dynamic_plans(blob_view *b, megcc_model *m, const megcc_hooks *hooks) {
    uint32_t pi;
    uint8_t *member = NULL;
    megcc_status st = MEGCC_OK;
    if (m->max_tensors) {
        member = (uint8_t *)mgc_alloc(hooks, m->max_tensors, 16);
        if (!member) return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory checking plans");
    }
    for (pi = 0; pi < m->n_plans && !st; pi++) {
        mgc_plan *p = &m->plans[pi];
        uint32_t off = mgc_rd32(b->d + b->dynamic_off + 4 * pi);
        if (!off) continue;
        if ((st = check_dyn(b, p, pi, off, member))) break;
        if ((st = check_fingerprint(b->d, p, pi))) break;
        p->dynamic = 1;
        m->n_dynamic++;
        if (p->n_tensors > m->dyn_tensors) m->dyn_tensors = p->n_tensors;
        if (p->n_instrs > m->dyn_instrs) m->dyn_instrs = p->n_instrs;
        if (p->instrs_size > m->dyn_instrs_size) m->dyn_instrs_size = p->instrs_size;
        if (p->dyn.n_symbols > m->dyn_symbols) m->dyn_symbols = p->dyn.n_symbols;
        if (p->dyn.n_exprs > m->dyn_exprs) m->dyn_exprs = p->dyn.n_exprs;
        if (p->dyn.n_buffers > m->dyn_buffers) m->dyn_buffers = p->dyn.n_buffers;
    }
    mgc_free(hooks, member);
    return st;
}

static int host_is_little_endian(void) {
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Header, sections and kernel table. */
static megcc_status check_header(blob_view *b, uint32_t *n_plans, uint32_t *plans_off) {
    const uint8_t *d = b->d;
    uint32_t file_size, crc, k_off, n_kernels, i;
    uint64_t ks_id;
    megcc_status st;
    if (b->size < MGC_HEADER_SIZE)
        return mgc_fail_global(MEGCC_ERR_BAD_SIZE, "truncated: %z bytes, the header alone is 64",
                               (size_t)b->size);
    if (d[0] != 'M' || d[1] != 'G' || d[2] != 'C' || d[3] != 'C')
        return mgc_fail_global(MEGCC_ERR_BAD_MAGIC, "bad magic: not a megcc .tiny model");
    if (mgc_rd16(d + 4) != MEGCC_VERSION_MAJOR)
        return mgc_fail_global(MEGCC_ERR_BAD_VERSION,
                               "format version %u.%u, this runtime reads %u.x",
                               (uint32_t)mgc_rd16(d + 4), (uint32_t)mgc_rd16(d + 6),
                               (uint32_t)MEGCC_VERSION_MAJOR);
    file_size = mgc_rd32(d + 8);
    if (file_size != b->size)
        return mgc_fail_global(MEGCC_ERR_BAD_SIZE,
                               "header says %u bytes but the buffer has %z (truncated?)",
                               file_size, (size_t)b->size);
    crc = mgc_crc32(d + 16, (size_t)b->size - 16);
    if (crc != mgc_rd32(d + 12))
        return mgc_fail_global(MEGCC_ERR_BAD_CRC, "CRC-32 mismatch: header %x, content %x",
                               mgc_rd32(d + 12), crc);
    ks_id = mgc_rd64(d + 16);
    n_kernels = mgc_rd32(d + 52);
    if (ks_id != megcc_kernel_set_id)
        return mgc_fail_global(MEGCC_ERR_KERNEL_MISMATCH,
                               "model compiled for kernel set %X, linked kernels.c is %X", ks_id,
                               (uint64_t)megcc_kernel_set_id);
    if (n_kernels != megcc_kernel_count)
        return mgc_fail_global(MEGCC_ERR_KERNEL_MISMATCH,
                               "model names %u kernels, linked kernels.c has %u", n_kernels,
                               megcc_kernel_count);
    b->dynamic_off = mgc_rd32(d + 60);
    b->strings_off = mgc_rd32(d + 24);
    b->strings_size = mgc_rd32(d + 28);
    b->weights_off = mgc_rd32(d + 32);
    b->weights_size = mgc_rd32(d + 36);
    *plans_off = mgc_rd32(d + 40);
    *n_plans = mgc_rd32(d + 44);
    k_off = mgc_rd32(d + 48);
    if (!in_file(b, b->strings_off, b->strings_size))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "strings section out of bounds");
    for (b->strings_end = b->strings_size; b->strings_end; b->strings_end--)
        if (d[b->strings_off + b->strings_end - 1] == 0) break;
    b->array_budget = b->size;
    if (!in_file(b, b->weights_off, b->weights_size) || b->weights_off % 64)
        return mgc_fail_global(MEGCC_ERR_CORRUPT,
                               "weights section out of bounds or not 64-byte aligned");
    if (*n_plans < 1 || *plans_off % 4 || !in_file(b, *plans_off, (uint64_t)*n_plans * 4))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan table out of bounds or empty");
    if (k_off % 4 || !in_file(b, k_off, (uint64_t)n_kernels * 4))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "kernel table out of bounds");
    if (b->dynamic_off &&
        (b->dynamic_off % 4 || !in_file(b, b->dynamic_off, (uint64_t)*n_plans * 4)))
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "dynamic plan table out of bounds");
    if ((st = check_string(b, mgc_rd32(d + 56), "model name", 0))) return st;
    /* The id covers names and sources but not table order; comparing names catches a
     * kernels.c whose table is ordered differently from the one the model was built for. */
    for (i = 0; i < n_kernels; i++) {
        uint32_t rel = mgc_rd32(d + k_off + 4 * i);
        if ((st = check_string(b, rel, "kernel name", i))) return st;
        /* (a NULL function: a kernel of another architecture of a multi-architecture
         * build; plans calling it are foreign, see load_validated) */
        if (!megcc_kernel_table[i].name || !mgc_streq(str_at(b, rel), megcc_kernel_table[i].name))
            return mgc_fail_global(MEGCC_ERR_KERNEL_MISMATCH,
                                   "kernel %u is '%s' in the model but '%s' in kernels.c", i,
                                   str_at(b, rel), megcc_kernel_table[i].name);
    }
    return MEGCC_OK;
}

/* Validate `data` (already the bytes the model will use) and build the model object.
 * On success the model owns `owned` (may be NULL); on failure the caller keeps it. */
static megcc_status load_validated(const uint8_t *data, size_t size, void *owned,
                                   const megcc_hooks *hooks, megcc_model **out) {
    blob_view b;
    megcc_model *m;
    uint32_t n_plans = 0, plans_off = 0, pi;
    megcc_status st;
    memset(&b, 0, sizeof b);
    b.d = data;
    b.size = size;
    if ((st = check_header(&b, &n_plans, &plans_off))) return st;
    m = (megcc_model *)mgc_alloc(hooks, sizeof *m, 16);
    if (!m) return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory for the model");
    memset(m, 0, sizeof *m);
    /* n_plans * 4 bytes fit in the file, so this allocation is bounded by the file size. */
    m->plans = (mgc_plan *)mgc_alloc(hooks, (size_t)n_plans * sizeof(mgc_plan), 16);
    if (!m->plans) {
        mgc_free(hooks, m);
        return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory for %u plans", n_plans);
    }
    memset(m->plans, 0, (size_t)n_plans * sizeof(mgc_plan));
    for (pi = 0; pi < n_plans; pi++) {
        mgc_plan *p = &m->plans[pi];
        uint32_t rec_off = mgc_rd32(data + plans_off + 4 * pi);
        /* Records in increasing order: a plan listed twice is refused, not checked twice. */
        if (pi && rec_off <= mgc_rd32(data + plans_off + 4 * (pi - 1)))
            st = mgc_fail_global(MEGCC_ERR_CORRUPT,
                                 "plan %u: record offset %u not after plan %u's (plan table "
                                 "must list distinct records in file order)",
                                 pi, rec_off, pi - 1);
        else
            st = check_plan(&b, rec_off, pi, megcc_kernel_count, p);
        if (!st) st = mgc_check_jumps(p, pi, hooks); /* control flow: control.c */
        if (st) {
            mgc_free(hooks, m->plans);
            mgc_free(hooks, m);
            return st;
        }
        if (p->n_tensors > m->max_tensors) m->max_tensors = p->n_tensors;
        if (p->n_inputs > m->max_inputs) m->max_inputs = p->n_inputs;
        if (p->n_outputs > m->max_outputs) m->max_outputs = p->n_outputs;
        if (p->max_operands > m->max_operands) m->max_operands = p->max_operands;
        /* (a foreign plan never runs here: its arena is not reserved) */
        if (!p->foreign && p->arena_size > m->max_arena) m->max_arena = p->arena_size;
    }
    m->n_plans = n_plans;
    for (pi = 0; pi < n_plans && m->plans[pi].foreign; pi++) {
    }
    if (pi == n_plans) {
        mgc_free(hooks, m->plans);
        mgc_free(hooks, m);
        return mgc_fail_global(MEGCC_ERR_KERNEL_MISMATCH,
                               "every plan of the model calls kernels the linked kernels.c "
                               "does not have on this architecture (its plans are for another "
                               "one: build for the architecture the model was compiled for)");
    }
    m->first_plan = pi;
    if (b.dynamic_off && (st = check_dynamic_plans(&b, m, hooks))) {
        mgc_free(hooks, m->plans);
        mgc_free(hooks, m);
        return st;
    }
    m->hooks = *hooks;
    m->data = data;
    m->size = size;
    m->owned = owned;
    m->n_plans = n_plans;
    m->strings = data + b.strings_off;
    m->weights = data + b.weights_off;
    m->name = str_at(&b, mgc_rd32(data + 56));
    *out = m;
    return MEGCC_OK;
}

static megcc_status check_hooks(const megcc_hooks *hooks) {
    if (!hooks || !hooks->alloc || !hooks->free)
        return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "hooks need alloc and free");
    return MEGCC_OK;
}

megcc_status megcc_model_load_from_memory_ex(const void *data, size_t size, int copy,
                                             const megcc_hooks *hooks, megcc_model **out) {
    megcc_status st;
    void *buf;
    if (!out) return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!data) return mgc_fail_global(MEGCC_ERR_INVALID_ARG, "data is NULL");
    if ((st = check_hooks(hooks))) return st;
    if (!host_is_little_endian())
        return mgc_fail_global(MEGCC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    if (size > 0xFFFFFFFFu)
        return mgc_fail_global(MEGCC_ERR_BAD_SIZE, "buffer of %z bytes exceeds 4 GiB", size);
    if (!copy) {
        if ((uintptr_t)data % MEGCC_ARENA_ALIGN)
            return mgc_fail_global(MEGCC_ERR_ALIGNMENT,
                                   "in-place model buffer must be 64-byte aligned (or copy=1)");
        return load_validated((const uint8_t *)data, size, NULL, hooks, out);
    }
    /* Copy first and validate the copy: what was checked is what will be used. */
    buf = mgc_alloc(hooks, size, MEGCC_ARENA_ALIGN);
    if (!buf) return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory copying %z bytes", size);
    memcpy(buf, data, size);
    st = load_validated((const uint8_t *)buf, size, buf, hooks, out);
    if (st) mgc_free(hooks, buf);
    return st;
}

/* For load_from_path: the buffer was allocated with the hooks; the model takes it over. */
megcc_status mgc_load_owned(void *buf, size_t size, const megcc_hooks *hooks,
                            megcc_model **out) {
    megcc_status st;
    *out = NULL;
    if (!host_is_little_endian())
        return mgc_fail_global(MEGCC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    st = load_validated((const uint8_t *)buf, size, buf, hooks, out);
    return st;
}

megcc_status megcc_model_load_from_memory(const void *data, size_t size, int copy,
                                          megcc_model **out) {
    megcc_hooks hooks;
    if (megcc_default_hooks(&hooks) != MEGCC_OK) {
        if (out) *out = NULL;
        return mgc_fail_global(MEGCC_ERR_UNSUPPORTED,
                               "no default hooks (MEGCC_NO_LIBC_HOOKS): use the _ex variant");
    }
    return megcc_model_load_from_memory_ex(data, size, copy, &hooks, out);
}

void megcc_model_free(megcc_model *m) {
    megcc_hooks h;
    if (!m) return;
    h = m->hooks;
    mgc_free(&h, m->owned);
    mgc_free(&h, m->plans);
    mgc_free(&h, m);
}

const char *megcc_model_name(const megcc_model *m) { return m ? m->name : NULL; }
uint32_t megcc_model_num_plans(const megcc_model *m) { return m ? m->n_plans : 0; }

const char *megcc_model_plan_name(const megcc_model *m, uint32_t plan) {
    return (m && plan < m->n_plans) ? m->plans[plan].name : NULL;
}

uint32_t megcc_model_plan_num_inputs(const megcc_model *m, uint32_t plan) {
    return (m && plan < m->n_plans) ? m->plans[plan].n_inputs : 0;
}

uint32_t megcc_model_plan_num_outputs(const megcc_model *m, uint32_t plan) {
    return (m && plan < m->n_plans) ? m->plans[plan].n_outputs : 0;
}

static megcc_status plan_io_info(const megcc_model *m, uint32_t plan, uint32_t index,
                                 int output, megcc_tensor_info *info) {
    const mgc_plan *p;
    if (!m || !info || plan >= m->n_plans) return MEGCC_ERR_INVALID_ARG;
    p = &m->plans[plan];
    if (index >= (output ? p->n_outputs : p->n_inputs)) return MEGCC_ERR_INVALID_ARG;
    mgc_info_from_record(m, mgc_tensor(p, mgc_rd32((output ? p->outputs : p->inputs) + 4 * index)),
                         info);
    return MEGCC_OK;
}

megcc_status megcc_model_plan_input_info(const megcc_model *m, uint32_t plan, uint32_t index,
                                         megcc_tensor_info *info) {
    return plan_io_info(m, plan, index, 0, info);
}

megcc_status megcc_model_plan_output_info(const megcc_model *m, uint32_t plan, uint32_t index,
                                          megcc_tensor_info *info) {
    return plan_io_info(m, plan, index, 1, info);
}

int megcc_model_plan_is_dynamic(const megcc_model *m, uint32_t plan) {
    return m && plan < m->n_plans && m->plans[plan].dynamic;
}

int megcc_model_plan_is_runnable(const megcc_model *m, uint32_t plan) {
    return m && plan < m->n_plans && !m->plans[plan].foreign;
}

size_t megcc_network_arena_size(const megcc_model *m, int plan) {
    if (!m) return 0;
    if (plan < 0) return m->max_arena;
    return (uint32_t)plan < m->n_plans ? m->plans[plan].arena_size : 0;
}
