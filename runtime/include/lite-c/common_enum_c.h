/* Enums of MegEngine Lite's C API (lite/common_enum_c.h), same names and values, so code
 * written for Lite compiles unchanged against the megcc runtime. */
#ifndef LITE_COMMON_ENUM_C_H_
#define LITE_COMMON_ENUM_C_H_

/*! The log level. MegEngine Lite spells the levels DEBUG/INFO/WARN/ERROR, MegCC spells
 * them LITE_DEBUG/...; both are provided. The short names are skipped when they are
 * already macros (e.g. -DDEBUG), or with -DLITE_C_NO_SHORT_LOG_LEVELS. */
typedef enum LiteLogLevel {
    LITE_DEBUG = 0, /*!< The lowest level and most verbose */
    LITE_INFO = 1,  /*!< Print infos, warnings and errors */
    LITE_WARN = 2,  /*!< Print only warnings and errors */
    LITE_ERROR = 3, /*!< Print only errors */
#ifndef LITE_C_NO_SHORT_LOG_LEVELS
#ifndef DEBUG
    DEBUG = 0,
#endif
#ifndef INFO
    INFO = 1,
#endif
#ifndef WARN
    WARN = 2,
#endif
#ifndef ERROR
    ERROR = 3,
#endif
#endif
} LiteLogLevel;

/*! The error code of the calling thread's last LITE_* call (LITE_get_last_error_code).
 * Lite's three codes, plus one megcc extension for the calls this runtime documents as
 * meaningless on it (TensorRT, GPU devices, algorithm caches, model decryption...). */
typedef enum ErrorCode {
    OK = 0,
    LITE_INTERNAL_ERROR = 1,
    LITE_UNKNOWN_ERROR = 2,
    /* megcc extension */
    LITE_MEGCC_NOT_SUPPORTED = 64,
} ErrorCode;

typedef enum LiteBackend {
    LITE_DEFAULT = 0, /*!< the only backend: the megcc runtime */
} LiteBackend;

typedef enum LiteDeviceType {
    LITE_CPU = 0,
    LITE_CUDA = 1,
    LITE_ATLAS = 3,
    LITE_NPU = 4,
    LITE_CAMBRICON = 5,
    /*! device given by the model; for megcc that is always the CPU */
    LITE_DEVICE_DEFAULT = 7,
} LiteDeviceType;

typedef enum LiteDataType {
    LITE_FLOAT = 0,
    LITE_HALF = 1,
    LITE_INT = 2,
    LITE_INT16 = 3,
    LITE_INT8 = 4,
    LITE_UINT8 = 5,
    LITE_UINT = 6,
    LITE_UINT16 = 7,
    LITE_INT64 = 8,
    /* megcc extensions: element types Lite has no name for. */
    LITE_MEGCC_FLOAT64 = 64,
    LITE_MEGCC_UINT64 = 65,
    /* the narrow storage types, codes 66 + (megcc dtype code - 16) */
    LITE_MEGCC_BFLOAT16 = 66,
    LITE_MEGCC_FLOAT8E4M3FN = 67,
    LITE_MEGCC_FLOAT8E4M3FNUZ = 68,
    LITE_MEGCC_FLOAT8E5M2 = 69,
    LITE_MEGCC_FLOAT8E5M2FNUZ = 70,
    LITE_MEGCC_FLOAT8E8M0 = 71,
    LITE_MEGCC_FLOAT4E2M1 = 72,
    LITE_MEGCC_INT4 = 73,
    LITE_MEGCC_UINT4 = 74,
    LITE_MEGCC_INT2 = 75,
    LITE_MEGCC_UINT2 = 76,
} LiteDataType;

/*! MegCC's lite-c spells the layout's type LiteCDataType. */
typedef LiteDataType LiteCDataType;

typedef enum LiteTensorPhase {
    LITE_IO = 0,     /*!< Tensor maybe input or output */
    LITE_INPUT = 1,  /*!< Tensor is input */
    LITE_OUTPUT = 2, /*!< Tensor is output */
} LiteTensorPhase;

/*! The input and output type: SHAPE when only the shape is needed. */
typedef enum LiteIOType {
    LITE_IO_VALUE = 0,
    LITE_IO_SHAPE = 1,
} LiteIOType;

/*! Algorithm selection strategy; accepted for source compatibility, megcc chooses
 * kernels at compile time. */
typedef enum LiteAlgoSelectStrategy {
    LITE_ALGO_HEURISTIC = 1 << 0,
    LITE_ALGO_PROFILE = 1 << 1,
    LITE_ALGO_REPRODUCIBLE = 1 << 2,
    LITE_ALGO_OPTIMIZED = 1 << 3,
} LiteAlgoSelectStrategy;

/*! OpenCL program-cache compatibility level (Lite's; nothing to do on this runtime). */
typedef enum LiteOpenCLCacheCompatLevel {
    LITE_NOT_COMPAT = 0,
    LITE_SERIES_COMPAT = 1,
    LITE_VENDOR_COMPAT = 2,
    LITE_CACHE_COMPAT_LEVEL_CNT = 3
} LiteOpenCLCacheCompatLevel;

#endif
