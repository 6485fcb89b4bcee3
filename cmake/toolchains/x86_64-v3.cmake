set(MEGCC_TARGET x86_64-v3)
include("${CMAKE_CURRENT_LIST_DIR}/../megcc-toolchain.cmake")
