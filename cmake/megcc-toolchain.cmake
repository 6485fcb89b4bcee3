# CMake toolchain for a megcc target, read from toolchains/<MEGCC_TARGET>.json — the same
# description the SCons tool and megcc_builder.targets use (one source of truth).
# Use the per-target wrappers: cmake -DCMAKE_TOOLCHAIN_FILE=<repo>/cmake/toolchains/arm64.cmake
# Bare-metal memory profile: -DMEGCC_MEMORY=board (default: the description's default).
cmake_minimum_required(VERSION 3.20)  # string(JSON)

get_filename_component(_megcc_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
file(READ "${_megcc_root}/toolchains/${MEGCC_TARGET}.json" _megcc_json)
file(READ "${_megcc_root}/toolchains/common.json" _megcc_common)

# JSON array -> CMake list
function(_megcc_json_list out json)
  set(result "")
  string(JSON n LENGTH "${json}" ${ARGN})
  if(n GREATER 0)
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      string(JSON item GET "${json}" ${ARGN} ${i})
      list(APPEND result "${item}")
    endforeach()
  endif()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

string(JSON _os GET "${_megcc_json}" os)
string(JSON _cc GET "${_megcc_json}" cc)
string(JSON _ar GET "${_megcc_json}" ar)
string(JSON _size GET "${_megcc_json}" size)
string(JSON _arch GET "${_megcc_json}" arch)
string(JSON _isa GET "${_megcc_json}" isa)
_megcc_json_list(_machine "${_megcc_json}" cflags)
_megcc_json_list(_defines "${_megcc_json}" defines)
_megcc_json_list(_ldflags "${_megcc_json}" ldflags)
_megcc_json_list(_libs "${_megcc_json}" libs)
_megcc_json_list(_run "${_megcc_json}" run)
_megcc_json_list(_common_ld "${_megcc_common}" ldflags)
string(JSON _sysroot ERROR_VARIABLE _no_sysroot GET "${_megcc_json}" sysroot)

if(_os STREQUAL "baremetal")
  set(CMAKE_SYSTEM_NAME Generic)
  # No OS to link a test program against: check the compiler with a static library.
  set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
else()
  set(CMAKE_SYSTEM_NAME Linux)
endif()
if(NOT MEGCC_TARGET MATCHES "^x86_64")
  set(CMAKE_SYSTEM_PROCESSOR ${_arch})
endif()
set(CMAKE_C_COMPILER ${_cc})
find_program(CMAKE_AR ${_ar})
find_program(MEGCC_SIZE_TOOL ${_size})
set(MEGCC_TARGET_OS ${_os})
# The kernel ISA level megcc_add_model() compiles for (the target's flags enable it).
# A -DMEGCC_ISA=... on the command line (e.g. generic) wins over the target's level.
set(MEGCC_ISA "${_isa}" CACHE STRING "kernel ISA level of megcc_add_model()")

set(_cflags ${_machine})
foreach(d IN LISTS _defines)
  list(APPEND _cflags "-D${d}")
endforeach()
list(JOIN _cflags " " CMAKE_C_FLAGS_INIT)

set(_link ${_ldflags} ${_common_ld})
if(_os STREQUAL "baremetal")
  if(NOT MEGCC_MEMORY)
    string(JSON MEGCC_MEMORY GET "${_megcc_json}" default_memory)
  endif()
  # picolibc.ld reads the memory map from these symbols; the linker then enforces it.
  foreach(key flash flash_size ram ram_size stack_size)
    string(JSON v GET "${_megcc_json}" memory ${MEGCC_MEMORY} ${key})
    list(APPEND _link "-Wl,--defsym=__${key}=${v}")
  endforeach()
  # megcc_add_model() checks each model against the profile before compiling it
  string(JSON MEGCC_FLASH_SIZE GET "${_megcc_json}" memory ${MEGCC_MEMORY} flash_size)
endif()
list(JOIN _link " " CMAKE_EXE_LINKER_FLAGS_INIT)
set(_stdlibs "")
foreach(l IN LISTS _libs)
  string(APPEND _stdlibs " -l${l}")
endforeach()
set(CMAKE_C_STANDARD_LIBRARIES "${_stdlibs}" CACHE STRING "" FORCE)

# How to run a program for this target (ctest uses it for add_test). CMake appends the
# program (and its arguments) to the emulator command, so a template that ends with
# "{program}" (qemu-system-arm ... -kernel {program}) loses that placeholder.
if(_run)
  list(TRANSFORM _run REPLACE "{sysroot}" "${_sysroot}")
  list(GET _run -1 _last)
  if(_last STREQUAL "{program}")
    list(REMOVE_AT _run -1)
  endif()
  set(CMAKE_CROSSCOMPILING_EMULATOR ${_run})
endif()
# Keep these for try_compile projects, which re-read this file.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MEGCC_TARGET MEGCC_MEMORY)
