/* The tensor part of MegEngine Lite's C API (lite-c/tensor_c.h), subset implemented by the
 * megcc runtime. Declarations match Lite's. Tensors are the I/O tensors of a network
 * (LITE_get_io_tensor); they belong to the network. */
#ifndef LITE_TENSOR_C_H_
#define LITE_TENSOR_C_H_

#include "common_enum_c.h"
#include "macro.h"

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>
#include <stdint.h>

#define LAYOUT_MAX_DIM (7)

/*! The simple layout description. */
typedef struct LiteLayout {
    size_t shapes[LAYOUT_MAX_DIM];
    size_t ndim;
    LiteDataType data_type;
} LiteLayout;

/*! A default LiteLayout (ndim 0, LITE_FLOAT). */
extern LITE_API const LiteLayout default_layout;

/*! Tensor description, as in Lite (only used by LITE_make_tensor, which megcc omits). */
typedef struct LiteTensorDesc {
    int is_pinned_host;
    LiteLayout layout;
    LiteDeviceType device_type;
    int device_id;
} LiteTensorDesc;

extern LITE_API const LiteTensorDesc default_desc;

/*! The pointer to a Lite Tensor object. */
typedef void* LiteTensor;

/*! Destroy a tensor handle. I/O tensors are owned by their network, so this only
 * validates the handle; the network frees them. */
LITE_API int LITE_destroy_tensor(LiteTensor tensor);

/*! Set the layout of an input tensor: selects the compiled plan whose inputs have this
 * shape (a model compiled with several input shapes). The data type must match. */
LITE_API int LITE_set_tensor_layout(LiteTensor tensor, const LiteLayout layout);

/*! Use caller memory (at least the tensor's size, not freed by the runtime) for this
 * input/output: zero-copy where possible. */
LITE_API int LITE_reset_tensor_memory(
        LiteTensor tensor, void* prepared_data, size_t data_length_in_byte);

/*! Data pointer of the tensor. */
LITE_API int LITE_get_tensor_memory(const LiteTensor tensor, void** data);

/*! Size of the tensor in bytes. */
LITE_API int LITE_get_tensor_total_size_in_byte(const LiteTensor tensor, size_t* size);

/*! Layout of the tensor in the network's current plan. */
LITE_API int LITE_get_tensor_layout(const LiteTensor tensor, LiteLayout* layout);

#ifdef __cplusplus
}
#endif
#endif
