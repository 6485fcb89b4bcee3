/* MegEngine's extern C operator interface (extern_c_opr.h), so MegCC's example programs
 * that offer a loader library to the runtime build unchanged.
 *
 * The megcc runtime runs compiled models only: every operator's kernel was generated and
 * linked at build time, so there is nothing for a loader to register.
 * mgb_get_extern_c_opr_api_versioned returns an API whose register_loader refuses every
 * loader (returns 0, "not registered", and logs why) and whose unregister_loader finds
 * none; NULL for a version other than MGB_EXTERN_C_OPR_VERSION, as MegEngine does. */
#ifndef MEGBRAIN_EXTERN_C_OPR_H
#define MEGBRAIN_EXTERN_C_OPR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef MGB_C_OPR_INIT_FUNC
#define MGB_C_OPR_INIT_FUNC mgb_c_opr_init
#endif
#define INIT_FUNCS(s) #s
#define INIT_FUNC(s) INIT_FUNCS(s)
#define MGB_C_OPR_INIT_FUNC_STR INIT_FUNC(MGB_C_OPR_INIT_FUNC)

#define MGB_EXTERN_C_OPR_VERSION 0x24
#define MGB_TENSOR_MAX_NDIM 8

typedef enum MGBDType {
    MGB_DTYPE_FLOAT32,
    MGB_DTYPE_INT32,
    MGB_DTYPE_UINT8,
    MGB_DTYPE_FLOAT16,
    MGB_DTYPE_INT16,
} MGBDType;

typedef struct MGBTensorShape {
    uint32_t ndim, shape[MGB_TENSOR_MAX_NDIM];
} MGBTensorShape;

typedef struct MGBTensorLayout {
    uint32_t dtype;
    MGBTensorShape shape;
} MGBTensorLayout;

typedef struct MGBTensor {
    MGBTensorLayout layout;
    void* data;
} MGBTensor;

typedef struct ExternDeviceTensor {
    MGBTensorLayout layout;
    void* device_ptr;
} ExternDeviceTensor;

typedef struct ExternCOprParam {
    const char* extern_c_opr_dump_name;
    size_t nr_input, nr_output;
    ExternDeviceTensor* input;
    ExternDeviceTensor* output;
    size_t device_id;
    uint8_t* extra_info;
    size_t extra_info_size;
} ExternCOprParam;

typedef struct MGBOprDesc {
    uint32_t size;
    uint32_t nr_output;
    const char* type_name;
    void (*release)(struct MGBOprDesc* self);
    size_t (*hash)(const struct MGBOprDesc* self);
    int (*is_same)(const struct MGBOprDesc* self, const struct MGBOprDesc* rhs);
    void (*execute)(const struct MGBOprDesc* self, const MGBTensor* input,
                    const MGBTensor* output);
    void (*infer_shape)(const struct MGBOprDesc* self, const MGBTensorShape* input,
                        MGBTensorShape* output);
    void (*infer_dtype)(const struct MGBOprDesc* self, const MGBDType* input, MGBDType* output);
    void* user_data;
    ExternCOprParam* dynamic_param;
} MGBOprDesc;

#define MGB_OPR_DESC_FOREACH_MEM_FN(cb) \
    cb(release) cb(hash) cb(is_same) cb(execute) cb(infer_shape)

typedef struct MGBOprLoader {
    const char* name;
    MGBOprDesc* (*create_desc)(size_t nr_input, const void* buf, size_t buf_len);
} MGBOprLoader;

typedef struct MGBExternCOprApi {
    int (*register_loader)(const MGBOprLoader* loader);
    int (*unregister_loader)(const char* name);
} MGBExternCOprApi;

const MGBExternCOprApi* mgb_get_extern_c_opr_api_versioned(int version);

static inline const MGBExternCOprApi* mgb_get_extern_c_opr_api(void) {
    return mgb_get_extern_c_opr_api_versioned(MGB_EXTERN_C_OPR_VERSION);
}

static inline size_t mgb_get_dtype_size(MGBDType dtype) {
    switch (dtype) {
    case MGB_DTYPE_INT32: case MGB_DTYPE_FLOAT32: return 4;
    case MGB_DTYPE_UINT8: return 1;
    case MGB_DTYPE_FLOAT16: case MGB_DTYPE_INT16: return 2;
    }
    return 0;
}

static inline void mgb_init_opr_desc(MGBOprDesc* desc, uint32_t nr_output,
                                     const char* type_name) {
    memset(desc, 0, sizeof(MGBOprDesc));
    desc->size = sizeof(MGBOprDesc);
    desc->nr_output = nr_output;
    desc->type_name = type_name;
}

#ifdef __cplusplus
}
#endif
#endif
