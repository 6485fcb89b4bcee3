/* Control flow: the runtime's two built-in instructions (docs/model-format.md, "Control
 * flow"). They sit in the one instruction stream at reserved kernel indices and let the
 * compiler lower If, Loop and Scan inline:
 *   JUMP            params [target offset, target index]
 *   BRANCH_IF_ZERO  one input (a one-byte bool tensor); jumps when that byte is 0
 * A target is the byte offset of a record start in the stream (or its end) and that
 * record's index; the loader checks both name the same record, so the forward loop jumps
 * without a table and without allocating. */
#include "internal.h"

megcc_status mgc_check_control(const mgc_plan *p, uint32_t pi, uint32_t ii,
                               const uint8_t *ins) {
    uint32_t kernel = mgc_rd32(ins), n_in = mgc_rd16(ins + 4), n_out = mgc_rd16(ins + 6);
    uint32_t n_par = mgc_rd32(ins + 8), ws = mgc_rd32(ins + 12);
    uint32_t want_in = kernel == MGC_CTL_BRANCH_IF_ZERO ? 1u : 0u;
    if (n_in != want_in || n_out != 0 || n_par != 2 || ws != MGC_NONE)
        return mgc_fail_global(MEGCC_ERR_CORRUPT, "plan %u instr %u: malformed %s record", pi,
                               ii, want_in ? "branch" : "jump");
    if (want_in) {
        uint32_t t = mgc_rd32(ins + MGC_INSTR_HEADER);
        const uint8_t *rec;
        if (t >= p->n_tensors)
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u instr %u: branch condition missing", pi, ii);
        rec = mgc_tensor(p, t);
        if (rec[4] != MEGCC_BOOL || mgc_t_nbytes(rec) != 1)
            return mgc_fail_global(MEGCC_ERR_CORRUPT,
                                   "plan %u instr %u: branch condition (tensor %u) is not a "
                                   "one-byte bool",
                                   pi, ii, t);
    }
    return MEGCC_OK;
}

/* Every jump target must be (offset, index) of one record, or (instrs_size, n_instrs).
 * Linear: one walk records the offsets (a load-time table, freed before returning). */
megcc_status mgc_check_jumps(const mgc_plan *p, uint32_t pi, const megcc_hooks *h) {
    const uint8_t *pos = p->instrs;
    uint32_t *at, ii;
    megcc_status st = MEGCC_OK;
    if (!p->n_control) return MEGCC_OK;
    /* n_instrs records of >= 16 bytes lie in the file: the table is bounded by its size */
    at = (uint32_t *)mgc_alloc(h, ((size_t)p->n_instrs + 1) * sizeof(uint32_t), 16);
    if (!at) return mgc_fail_global(MEGCC_ERR_NO_MEMORY, "out of memory for jump targets");
    for (ii = 0; ii < p->n_instrs; ii++) {
        at[ii] = (uint32_t)(pos - p->instrs);
        pos += MGC_INSTR_HEADER +
               4 * ((size_t)mgc_rd16(pos + 4) + mgc_rd16(pos + 6) + mgc_rd32(pos + 8));
    }
    at[p->n_instrs] = (uint32_t)(pos - p->instrs);
    pos = p->instrs;
    for (ii = 0; ii < p->n_instrs && !st; ii++) {
        uint32_t n_in = mgc_rd16(pos + 4), n_out = mgc_rd16(pos + 6);
        if (mgc_is_control(mgc_rd32(pos))) {
            const uint8_t *par = pos + MGC_INSTR_HEADER + 4 * (n_in + n_out);
            uint32_t off = mgc_rd32(par), index = mgc_rd32(par + 4);
            if (index > p->n_instrs || at[index] != off)
                st = mgc_fail_global(MEGCC_ERR_CORRUPT,
                                     "plan %u instr %u: jump target (offset %u, instruction "
                                     "%u) is not the start of a record",
                                     pi, ii, off, index);
        }
        pos += MGC_INSTR_HEADER + 4 * ((size_t)n_in + n_out + mgc_rd32(pos + 8));
    }
    mgc_free(h, at);
    return st;
}

int mgc_control_taken(uint32_t kernel, const uint8_t *operands, void *const *ptr) {
    if (kernel == MGC_CTL_JUMP) return 1;
    return *(const uint8_t *)ptr[mgc_rd32(operands)] == 0;
}
