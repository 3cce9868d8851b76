#ifndef CODISTILL_CBLAS_SHIM_H
#define CODISTILL_CBLAS_SHIM_H
// OpenBLAS's cblas.h declares both the CBLAS interface and openblas_set_num_threads.
#include <cblas.h>
#endif
