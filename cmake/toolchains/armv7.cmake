set(MEGCC_TARGET armv7)
include("${CMAKE_CURRENT_LIST_DIR}/../megcc-toolchain.cmake")
