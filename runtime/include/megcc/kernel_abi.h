/* The contract between the generated kernels (kernels.c) and the runtime.
 * A kernel is specialised at compile time on everything that changes its code
 * (operator, kernel size, stride, dtype, fused activation, layout); extents and
 * per-layer constants arrive in `params`, so one kernel serves many layers and models.
 * `par` is the network's parallel-for (megcc/parallel.h), NULL on one thread. */
#ifndef MEGCC_KERNEL_ABI_H
#define MEGCC_KERNEL_ABI_H

#include <stdint.h>

#include "megcc/parallel.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*megcc_kernel_fn)(void *const *inputs, void *const *outputs,
                               const int32_t *params, void *workspace,
                               const megcc_parallel *par);

typedef struct {
    const char *name;
    megcc_kernel_fn fn;
} megcc_kernel_entry;

/* Defined by the generated kernels.c of the build. */
extern const megcc_kernel_entry megcc_kernel_table[];
extern const uint32_t megcc_kernel_count;
extern const uint64_t megcc_kernel_set_id;

/* The instruction signatures each kernel was generated for (docs/model-format.md,
 * "Instruction signatures"). Kernels trust their params, so the loader accepts an
 * instruction only if its operand dtypes and byte sizes, workspace size and params equal
 * one of the records of its kernel: records of kernel k are the words
 * megcc_kernel_sigs[megcc_kernel_sig_index[k] .. megcc_kernel_sig_index[k + 1]). */
extern const uint32_t megcc_kernel_sigs[];
extern const uint32_t megcc_kernel_sig_index[]; /* megcc_kernel_count + 1 entries */

/* The dynamic plans (docs/dynamic-shapes.md, "Trust") this kernel set was generated for:
 * a dynamic plan's params are computed at run time, so instead of signatures the loader
 * requires its fingerprint words to equal one of these records: record d is
 * megcc_dynamic_plans[megcc_dynamic_plan_index[d] .. megcc_dynamic_plan_index[d + 1]). */
extern const uint32_t megcc_dynamic_plans[];
extern const uint32_t megcc_dynamic_plan_index[]; /* megcc_dynamic_plan_count + 1 entries */
extern const uint32_t megcc_dynamic_plan_count;

#ifdef __cplusplus
}
#endif
#endif
