#ifndef CDE_CBLAS_SHIM_H
#define CDE_CBLAS_SHIM_H
#include <cblas.h>
// openblas_set_num_threads / openblas_get_num_threads are declared by OpenBLAS's cblas.h.
#endif
