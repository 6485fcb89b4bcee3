set(MEGCC_TARGET cortex-m3)
include("${CMAKE_CURRENT_LIST_DIR}/../megcc-toolchain.cmake")
