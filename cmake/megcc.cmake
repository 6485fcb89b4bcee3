# megcc for CMake:  include(<repo>/cmake/megcc.cmake)  or  find_package(MegCC), with
# -DMegCC_DIR=<repo>/cmake or, for an installed package, -DMegCC_DIR=$(megcc --cmake-dir)
#
#   megcc_add_model(<lib> MODEL <file.mge|file.onnx|config.json>
#                   [NAME <model name>] [INPUT_SHAPES "data=(1,3,224,224)"]
#                   [OPTIONS --no-fuse ...] [NO_EMBED | C_ARRAY]
#                   [CV resize_linear:ui8,f32 flip:ui8 ...])
#
# CV (or a JSON config's "cv" section) names MegCC's CV operators to generate: then
# <lib>.megcc/ also holds tinycv_c.h and tinycv.c, compiled into <lib>.
#
# compiles the model at build time (add_custom_command) into <binary dir>/<lib>.megcc/
# (kernels.c, kernels.h, manifest.json, <name>.tiny, <name>.tiny.txt) and makes <lib> a
# static library of the runtime, the kernels and (unless NO_EMBED) the model, embedded
# with the assembler's .incbin (<name>.tiny.embed.c; C_ARRAY: the C array <name>.tiny.c
# instead, for compilers without .incbin). Linking <lib> gives the include paths (megcc/megcc.h, the generated
# kernels.h with MEGCC_<NAME>_ARENA_SIZE) and --gc-sections.
#
# Rebuild rules: the options are written to <lib>.megcc/options.txt (rewritten only when
# they change) and the rule depends on it, so a new input shape regenerates with Make too;
# the rule runs megcc through cmake/megcc_compile.py, which skips the compiler when no
# input byte changed (touching a model rebuilds nothing) and which includes the compiler's
# signature (megcc --signature: version + source digest; a new compiler regenerates).
# megcc writes only changed files, and Ninja (restat on BYPRODUCTS) and Make (timestamps)
# then recompile only what changed: new weights rebuild the model object, not the kernels.
#
#   megcc_size_report(<executable> <lib>)   prints text/data/bss and arena bytes after linking
cmake_minimum_required(VERSION 3.20)
include_guard(GLOBAL)

get_filename_component(MEGCC_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(MEGCC_RUNTIME_DIR "${MEGCC_ROOT}/runtime")
# The Python that runs the compiler: -DMEGCC_PYTHON=..., else the first candidate that can
# import megcc_builder: a checkout's .venv/bin/python; for an installed package
# (<prefix>/lib/pythonX.Y/site-packages/megcc_builder/_data/cmake) the Python of <prefix>;
# else the Python CMake finds.
if(NOT MEGCC_PYTHON)
  set(_megcc_candidates "${MEGCC_ROOT}/.venv/bin/python")
  if(EXISTS "${MEGCC_ROOT}/../__init__.py")   # MEGCC_ROOT is megcc_builder/_data
    get_filename_component(_megcc_prefix "${MEGCC_ROOT}/../../../../.." ABSOLUTE)
    list(APPEND _megcc_candidates "${_megcc_prefix}/bin/python3" "${_megcc_prefix}/bin/python")
  endif()
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    list(APPEND _megcc_candidates "${Python3_EXECUTABLE}")
  endif()
  foreach(_megcc_py IN LISTS _megcc_candidates)
    if(EXISTS "${_megcc_py}")
      # The package and its dependencies (pyproject.toml): a Python that has only some of
      # them would fail later, in the middle of the build.
      execute_process(COMMAND "${_megcc_py}" -c "import megcc_builder.cli, numpy, onnx, yaml"
                      RESULT_VARIABLE _megcc_rc OUTPUT_QUIET ERROR_QUIET)
      if(_megcc_rc EQUAL 0)
        set(MEGCC_PYTHON "${_megcc_py}" CACHE FILEPATH "Python that has megcc_builder installed")
        break()
      endif()
    endif()
  endforeach()
  if(NOT MEGCC_PYTHON)
    message(FATAL_ERROR "megcc: no Python that can import megcc_builder (tried: "
                        "${_megcc_candidates}); pass -DMEGCC_PYTHON=<python>")
  endif()
endif()

# Flags every megcc build gets (toolchains/common.json); target flags come from the
# toolchain file (cmake/toolchains/<target>.cmake), or the native compiler's defaults.
file(READ "${MEGCC_ROOT}/toolchains/common.json" _megcc_common)
string(JSON _n LENGTH "${_megcc_common}" cflags)
set(MEGCC_COMMON_CFLAGS "")
math(EXPR _last "${_n} - 1")
foreach(i RANGE ${_last})
  string(JSON _f GET "${_megcc_common}" cflags ${i})
  if(NOT _f MATCHES "^-std=")   # C standard via C_STANDARD below
    list(APPEND MEGCC_COMMON_CFLAGS "${_f}")
  endif()
endforeach()

# The kernels' ISA level: -DMEGCC_ISA=<level> wins, then the toolchain file's (its target's
# level), else the baseline of the processor CMake builds for. Its compiler flags (e.g.
# -march=x86-64-v3 for the AVX2 kernels) are added to the kernels' compile, so a level
# that needs them builds with any toolchain, or none.
if(NOT MEGCC_ISA)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    set(_megcc_isa x86_64)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(_megcc_isa arm64-neon)
  else()
    set(_megcc_isa generic)
  endif()
  set(MEGCC_ISA "${_megcc_isa}" CACHE STRING "kernel ISA level of megcc_add_model()")
endif()
execute_process(
  COMMAND "${MEGCC_PYTHON}" -c "import sys; from megcc_builder.isa import resolve, spec
try:
    print(';'.join(spec(resolve(sys.argv[1])).cflags))
except ValueError as exc:
    sys.exit(str(exc))" "${MEGCC_ISA}"
  RESULT_VARIABLE _megcc_rc OUTPUT_VARIABLE MEGCC_ISA_CFLAGS ERROR_VARIABLE _megcc_err
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
if(NOT _megcc_rc EQUAL 0)
  message(FATAL_ERROR "megcc: MEGCC_ISA=${MEGCC_ISA}: ${_megcc_err}")
endif()
message(STATUS "megcc: kernels for ISA level ${MEGCC_ISA} (flags: ${MEGCC_ISA_CFLAGS}); "
               "-DMEGCC_ISA=generic|x86_64|x86_64-v3|armv7-neon|arm64-neon|native to change")

function(_megcc_runtime)
  if(TARGET megcc_runtime)
    return()
  endif()
  file(GLOB _src CONFIGURE_DEPENDS "${MEGCC_RUNTIME_DIR}/src/*.c")
  add_library(megcc_runtime OBJECT ${_src})
  target_include_directories(megcc_runtime PUBLIC "${MEGCC_RUNTIME_DIR}/include")
  target_compile_options(megcc_runtime PRIVATE ${MEGCC_COMMON_CFLAGS})
  set_target_properties(megcc_runtime PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON
                                                 C_EXTENSIONS OFF)
endfunction()

# ONNX external-data files of a model, as build dependencies (found at configure time).
function(_megcc_external_data model out)
  set(files "")
  if(model MATCHES "\\.onnx$")
    execute_process(COMMAND "${MEGCC_PYTHON}" "${MEGCC_ROOT}/cmake/megcc_compile.py"
                            --external-data "${model}"
                    OUTPUT_VARIABLE files OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
  set(${out} "${files}" PARENT_SCOPE)
endfunction()

function(megcc_add_model lib)
  cmake_parse_arguments(ARG "NO_EMBED;C_ARRAY" "MODEL;NAME" "INPUT_SHAPES;OPTIONS;CV" ${ARGN})
  if(NOT ARG_MODEL)
    message(FATAL_ERROR "megcc_add_model(${lib}): MODEL <file> is required")
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE)
  set(gen "${CMAKE_CURRENT_BINARY_DIR}/${lib}.megcc")
  file(MAKE_DIRECTORY "${gen}")

  set(cmd "${MEGCC_PYTHON}" -m megcc_builder.cli compile)
  if(model MATCHES "\\.(json|ya?ml)$")
    # A config lists several models sharing one kernel set: name the outputs after it.
    if(NOT model MATCHES "\\.json$")
      message(FATAL_ERROR "megcc_add_model(${lib}): YAML configs need SCons or a JSON copy")
    endif()
    file(READ "${model}" cfg)
    string(JSON n LENGTH "${cfg}" models)
    math(EXPR last "${n} - 1")
    set(names "")
    foreach(i RANGE ${last})
      string(JSON nm GET "${cfg}" models ${i} model_name)
      string(JSON mp GET "${cfg}" models ${i} model_path)
      list(APPEND names "${nm}")
      get_filename_component(cfg_dir "${model}" DIRECTORY)
      list(APPEND deps "${cfg_dir}/${mp}")
      _megcc_external_data("${cfg_dir}/${mp}" ext)
      list(APPEND deps ${ext})
    endforeach()
    string(JSON cv_len ERROR_VARIABLE cv_missing LENGTH "${cfg}" cv)
    if(NOT cv_missing AND cv_len GREATER 0)
      set(cfg_has_cv TRUE)
    endif()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${model}")
    list(APPEND cmd --json "${model}" -o "${gen}")
  else()
    set(names "${ARG_NAME}")
    if(NOT names)
      set(names "${lib}")
    endif()
    list(APPEND cmd "${model}" -o "${gen}" --name "${names}")
  endif()
  if(ARG_INPUT_SHAPES)
    list(JOIN ARG_INPUT_SHAPES ":" shapes)
    list(APPEND cmd --input-shapes "${shapes}")
  endif()
  list(APPEND cmd --isa "${MEGCC_ISA}")
  if(NOT model MATCHES "\\.(json|ya?ml)$")
    _megcc_external_data("${model}" ext)  # ONNX weights kept in other files
    list(APPEND deps ${ext})
  endif()
  if(NOT ARG_C_ARRAY)
    list(APPEND cmd --no-c-array)  # embedded with .incbin, or not at all
  endif()
  foreach(entry IN LISTS ARG_CV)  # one --cv per entry: a ';' would split the argument
    list(APPEND cmd --cv "${entry}")
  endforeach()
  list(APPEND cmd ${ARG_OPTIONS})

  set(outs "${gen}/kernels.c" "${gen}/kernels.h" "${gen}/manifest.json")
  set(cv_srcs "")
  if(ARG_CV OR cfg_has_cv)
    list(APPEND outs "${gen}/tinycv_c.h" "${gen}/tinycv.c")
    set(cv_srcs "${gen}/tinycv.c")
  endif()
  set(embedded "")
  foreach(nm IN LISTS names)
    list(APPEND outs "${gen}/${nm}.tiny" "${gen}/${nm}.tiny.txt")
    if(ARG_C_ARRAY)
      list(APPEND outs "${gen}/${nm}.tiny.c")
      list(APPEND embedded "${gen}/${nm}.tiny.c")
    elseif(NOT ARG_NO_EMBED)
      # The assembler copies <name>.tiny in (megcc_builder/embed.py): this small C file,
      # written now, names the blob by its path; the object is rebuilt when the blob changes.
      set(embed_c "${gen}/${nm}.tiny.embed.c")
      execute_process(COMMAND "${MEGCC_PYTHON}" -m megcc_builder.embed "${gen}/${nm}.tiny"
                              "${nm}" "${embed_c}"
                      RESULT_VARIABLE rc ERROR_VARIABLE err ERROR_STRIP_TRAILING_WHITESPACE)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "megcc_add_model(${lib}): ${err}")
      endif()
      set_source_files_properties("${embed_c}" PROPERTIES OBJECT_DEPENDS "${gen}/${nm}.tiny")
      list(APPEND embedded "${embed_c}")
    endif()
  endforeach()
  # On bare metal: the model data and arena are checked against the board's memory right
  # after the compiler, before any C of the model compiles.
  set(budget "")
  if(MEGCC_FLASH_SIZE)
    if(ARG_NO_EMBED)
      set(embedded_flag 0)
    else()
      set(embedded_flag 1)
    endif()
    set(budget COMMAND "${MEGCC_PYTHON}" -m megcc_builder.targets check-budget
                       "${gen}/manifest.json" "${MEGCC_TARGET}" "${MEGCC_MEMORY}" ${embedded_flag})
  endif()

  # Options as a file that changes only when they do: Makefile generators do not rerun a
  # rule whose command line changed, so the rule depends on this file.
  list(JOIN cmd " " cmd_text)
  file(CONFIGURE OUTPUT "${gen}/options.txt" CONTENT "${cmd_text}\n")

  set(stamp "${gen}/megcc.stamp")
  add_custom_command(
    OUTPUT "${stamp}"
    BYPRODUCTS ${outs}
    COMMAND "${MEGCC_PYTHON}" "${MEGCC_ROOT}/cmake/megcc_compile.py" "${stamp}" ${outs} -- ${cmd}
    ${budget}
    DEPENDS "${model}" ${deps} "${gen}/options.txt" "${MEGCC_ROOT}/cmake/megcc_compile.py"
    COMMENT "megcc: compiling ${ARG_MODEL}"
    VERBATIM)
  add_custom_target(${lib}_generate DEPENDS "${stamp}")
  set_property(TARGET ${lib}_generate APPEND PROPERTY ADDITIONAL_CLEAN_FILES "${gen}")

  _megcc_runtime()
  set(srcs "${gen}/kernels.c" ${cv_srcs})
  if(NOT ARG_NO_EMBED)
    list(APPEND srcs ${embedded})
  endif()
  add_library(${lib} STATIC ${srcs} $<TARGET_OBJECTS:megcc_runtime>)
  add_dependencies(${lib} ${lib}_generate)
  target_include_directories(${lib} PUBLIC "${gen}" "${MEGCC_RUNTIME_DIR}/include")
  target_compile_options(${lib} PRIVATE ${MEGCC_COMMON_CFLAGS} ${MEGCC_ISA_CFLAGS})
  set_target_properties(${lib} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  target_link_options(${lib} INTERFACE "-Wl,--gc-sections")
  if(NOT MEGCC_TARGET_OS STREQUAL "baremetal")
    target_link_libraries(${lib} INTERFACE m)
  endif()
  set_target_properties(${lib} PROPERTIES MEGCC_MANIFEST "${gen}/manifest.json")
endfunction()

function(megcc_size_report exe lib)
  if(MEGCC_SIZE_TOOL)
    set(size "${MEGCC_SIZE_TOOL}")
  else()
    find_program(size NAMES size REQUIRED)
  endif()
  get_target_property(manifest ${lib} MEGCC_MANIFEST)
  # One short report per link: library and program totals, arena per model.
  add_custom_command(TARGET ${exe} POST_BUILD
    COMMAND "${MEGCC_PYTHON}" "${MEGCC_ROOT}/cmake/megcc_size_report.py" "${size}"
            $<TARGET_FILE:${lib}> $<TARGET_FILE:${exe}> "${manifest}"
    VERBATIM)
endfunction()
