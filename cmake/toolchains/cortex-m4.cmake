set(MEGCC_TARGET cortex-m4)
include("${CMAKE_CURRENT_LIST_DIR}/../megcc-toolchain.cmake")
