#ifndef CDE_CDNNL_SHIM_H
#define CDE_CDNNL_SHIM_H
// oneDNN (Debian libdnnl-dev): dnnl_sgemm, row-major single-precision GEMM.
#include <oneapi/dnnl/dnnl.h>
#endif
