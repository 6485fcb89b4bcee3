set(MEGCC_TARGET cortex-m55)
include("${CMAKE_CURRENT_LIST_DIR}/../megcc-toolchain.cmake")
