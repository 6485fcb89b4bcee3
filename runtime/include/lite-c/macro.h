/* LITE_API as in MegEngine Lite's lite/macro.h, without assuming a GNU compiler. */
#ifndef LITE_MACRO_H_
#define LITE_MACRO_H_

#if defined(_WIN32)
#define LITE_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define LITE_API __attribute__((visibility("default")))
#else
#define LITE_API
#endif

#endif
