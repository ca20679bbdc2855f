// The hand-written single-precision GEMM kernels (sgemm_avx2.c).
#ifndef CDE_CGEMM_H
#define CDE_CGEMM_H

#include <stdint.h>

/// Row-major `C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C` on AVX2 + FMA, single-threaded;
/// `op(A)` is `A[m,k]` (row stride `lda`) or, with `transA`, `A[k,m]` read transposed; `op(B)` is
/// `B[k,n]` (row stride `ldb`) or, with `transB`, `B[n,k]`.
///
/// Every element is one chain of fused multiply-adds over `p = 0, 1, ..., k-1` in order,
/// `s = fma(op(A)[i,p], op(B)[p,j], s)`, started from `C[i,j]` when `beta == 1`, from
/// `beta * C[i,j]` for another non-zero `beta`, from `bias[j]` when `bias` is given (then
/// `beta` must be 0), and from 0 otherwise; `alpha != 1` multiplies the end of the chain and
/// needs `beta == 0` and no bias. So an element's bits depend on its row of `op(A)`, its
/// column of `op(B)` and its start value only: never on `m`, `n`, the position of the row or
/// column in the call, or how a caller splits the call.
///
/// Returns 0, or -1 (nothing computed) for an unsupported combination of `alpha`, `beta` and `bias`.
/// Call only on a CPU with AVX2 and FMA (`cde_cpu_has`).
int cde_sgemm_avx2(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias);

/// The micro-kernel of `cde_sgemm_avx2` alone, for `cde bench --fma-peak`: `calls` runs of its
/// 6 x 16 tile of C over k = 256 on operands that stay in L1. Returns the FLOPs done (2 per
/// multiply-add; -1 off x86), and the first element of C in `*sink`. Its rate against the FMA loop
/// (`cde_fma_loop`) is the kernel's ceiling on a core: what a GEMM loses below it is in the
/// caches and memory. Call only on a CPU with AVX2 and FMA.
double cde_sgemm_avx2_microkernel_loop(int64_t calls, float *sink);

#endif
