"""Writers of generated files: kernels.c/.h, model blobs, C arrays, manifest."""
