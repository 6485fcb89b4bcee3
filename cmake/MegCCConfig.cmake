# find_package(MegCC CONFIG PATHS <repo>/cmake) — see megcc.cmake for megcc_add_model().
include("${CMAKE_CURRENT_LIST_DIR}/megcc.cmake")
set(MegCC_FOUND TRUE)
