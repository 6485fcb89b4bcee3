set(MEGCC_TARGET riscv64)
include("${CMAKE_CURRENT_LIST_DIR}/../megcc-toolchain.cmake")
