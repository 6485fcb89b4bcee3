/* The tensor part of MegEngine Lite's C API (lite-c/tensor_c.h): every function of Lite
 * 1.13's, with Lite's names, signatures and struct layouts, on the megcc runtime.
 *
 * Two kinds of tensors:
 *  - I/O tensors of a network (LITE_get_io_tensor) belong to it and live until
 *    LITE_destroy_network. Their memory is valid as soon as the model is loaded and stays
 *    the same across forwards (until the layout of an input changes the plan), as in Lite;
 *    an output's contents are meaningful after a successful forward.
 *  - Host tensors made with LITE_make_tensor, LITE_tensor_slice or LITE_tensor_concat
 *    belong to the caller (LITE_destroy_tensor). Their memory comes from the hooks set
 *    with LITE_megcc_set_hooks (libc by default), allocated when first needed.
 * Every tensor lives on the CPU (device type LITE_CPU, device id 0, never pinned). */
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

/*! Description of a tensor to make. device_type must be LITE_CPU or LITE_DEVICE_DEFAULT;
 * is_pinned_host is accepted and has no effect (no device copies on this runtime). */
typedef struct LiteTensorDesc {
    int is_pinned_host;
    LiteLayout layout;
    LiteDeviceType device_type;
    int device_id;
} LiteTensorDesc;

extern LITE_API const LiteTensorDesc default_desc;

/*! The pointer to a Lite Tensor object. */
typedef void* LiteTensor;

/*! Make a host tensor of the described layout (its memory is allocated on first use). */
LITE_API int LITE_make_tensor(const LiteTensorDesc tensor_describe, LiteTensor* tensor);

/*! Destroy a tensor made by LITE_make_tensor/slice/concat (freeing memory it allocated;
 * never memory given with LITE_reset_tensor*). For an I/O tensor this only validates the
 * handle: the network owns it. */
LITE_API int LITE_destroy_tensor(LiteTensor tensor);

/*! Change the layout. Host tensor: memory is reallocated when it grows. Input tensor:
 * selects the compiled plan (or the dynamic plan's shapes) for this input shape; the data
 * type must match. An output's layout is decided by the model. */
LITE_API int LITE_set_tensor_layout(LiteTensor tensor, const LiteLayout layout);

/*! Use caller memory (at least the tensor's size; never freed by the runtime). */
LITE_API int LITE_reset_tensor_memory(
        LiteTensor tensor, void* prepared_data, size_t data_length_in_byte);

/*! Set layout and caller memory at once (memory of the new layout's size). */
LITE_API int LITE_reset_tensor(LiteTensor tensor, const LiteLayout layout, void* prepared_data);

/*! Reshape without touching memory: the element count must stay the same; one entry may
 * be -1 (deduced). For an input tensor this is LITE_set_tensor_layout with the new shape. */
LITE_API int LITE_tensor_reshape(LiteTensor tensor, const int* shape, int size);

/*! A new tensor viewing [start, end) with `step` (NULL: 1) on the first `size` axes of
 * `tensor`, sharing its memory (not contiguous in general: LITE_is_memory_continue).
 * The view must not outlive the memory of `tensor`. */
LITE_API int LITE_tensor_slice(
        const LiteTensor tensor, const size_t* start, const size_t* end, const size_t* step,
        size_t size, LiteTensor* slice_tensor);

/*! Set every element to zero. */
LITE_API int LITE_tensor_fill_zero(LiteTensor tensor);

/*! Copy the elements of src into dst (same element count and data type; dst takes src's
 * shape when it has none). Either may be a non-contiguous slice. */
LITE_API int LITE_tensor_copy(LiteTensor dst_tensor, const LiteTensor src_tensor);

/*! dst uses src's memory and layout from now on (src must outlive that use). */
LITE_API int LITE_tensor_share_memory_with(LiteTensor dst_tensor, const LiteTensor src_tensor);

/*! Data pointer of the tensor (allocating a host tensor's memory on first use). */
LITE_API int LITE_get_tensor_memory(const LiteTensor tensor, void** data);

/*! Pointer to the element at `index` (size coordinates, size <= ndim, the rest 0). */
LITE_API int LITE_get_tensor_memory_with_index(
        const LiteTensor tensor, const size_t* index, size_t size, void** data);

/*! Bytes of the tensor's elements. */
LITE_API int LITE_get_tensor_total_size_in_byte(const LiteTensor tensor, size_t* size);

LITE_API int LITE_get_tensor_layout(const LiteTensor tensor, LiteLayout* layout);

/*! Always LITE_CPU. */
LITE_API int LITE_get_tensor_device_type(const LiteTensor tensor, LiteDeviceType* device_type);

/*! Always 0. */
LITE_API int LITE_get_tensor_device_id(const LiteTensor tensor, int* device_id);

/*! Always 0 (no pinned memory on this runtime). */
LITE_API int LITE_is_pinned_host(const LiteTensor tensor, int* is_pinned_host);

/*! 1 when the elements are contiguous in memory (everything but most slices). */
LITE_API int LITE_is_memory_continue(const LiteTensor tensor, int* is_continue);

/*! A new host tensor: the `nr_tensor` tensors concatenated along `dim` (same data type,
 * same shape except along dim). dst_device must be LITE_CPU or LITE_DEVICE_DEFAULT;
 * device_id is ignored (-1 or 0). */
LITE_API int LITE_tensor_concat(
        LiteTensor* tensors, int nr_tensor, int dim, LiteDeviceType dst_device, int device_id,
        LiteTensor* result_tensor);

#ifdef __cplusplus
}
#endif
#endif
