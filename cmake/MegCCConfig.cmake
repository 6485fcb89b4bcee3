# find_package(MegCC CONFIG) with -DMegCC_DIR=<repo>/cmake, or for an installed package
# -DMegCC_DIR=$(megcc --cmake-dir). See megcc.cmake for megcc_add_model().
include("${CMAKE_CURRENT_LIST_DIR}/megcc.cmake")
set(MegCC_FOUND TRUE)
