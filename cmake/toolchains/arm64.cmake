set(MEGCC_TARGET arm64)
include("${CMAKE_CURRENT_LIST_DIR}/../megcc-toolchain.cmake")
