// FMA-throughput loops for `cde bench --fma-peak`: many independent accumulators,
// each updated by one fused multiply-add per iteration, so the loop runs at the
// FMA units' issue rate rather than at their latency. Each variant is compiled for
// its own instruction set (target attributes), whatever flags the file is built with,
// and is only called after the CPU reported that instruction set.
#include "include/fma_peak.h"
#include <immintrin.h>

// Accumulators per variant: enough to hide a 4-cycle FMA latency on 2 pipes (8 needed)
// with margin, and few enough to stay in registers with the two constants (16 ymm
// registers for AVX2, 32 zmm for AVX-512).
#define ACC2 12
#define ACC512 24

// acc = acc * m + c with m slightly below 1: converges to c / (1 - m), no overflow
// or subnormals however long it runs.
__attribute__((target("avx512f")))
static double run_avx512(int64_t iters, float *sink) {
  __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  __m512 a[ACC512];
  for (int i = 0; i < ACC512; i++) a[i] = _mm512_set1_ps((float)i);
  for (int64_t it = 0; it < iters; it++) {
#pragma clang loop unroll(full)
    for (int i = 0; i < ACC512; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < ACC512; i++) s = _mm512_add_ps(s, a[i]);
  *sink = _mm512_reduce_add_ps(s);
  return (double)iters * ACC512 * 16 * 2;
}

__attribute__((target("avx2,fma")))
static double run_avx2(int64_t iters, float *sink) {
  __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  __m256 a[ACC2];
  for (int i = 0; i < ACC2; i++) a[i] = _mm256_set1_ps((float)i);
  for (int64_t it = 0; it < iters; it++) {
#pragma clang loop unroll(full)
    for (int i = 0; i < ACC2; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
  }
  __m256 s = a[0];
  for (int i = 1; i < ACC2; i++) s = _mm256_add_ps(s, a[i]);
  float t[8];
  _mm256_storeu_ps(t, s);
  *sink = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
  return (double)iters * ACC2 * 8 * 2;
}

int cde_fma_isa_supported(int isa) {
  __builtin_cpu_init();
  switch (isa) {
  case CDE_FMA_AVX512: return __builtin_cpu_supports("avx512f");
  case CDE_FMA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  default: return 0;
  }
}

double cde_fma_loop(int isa, int64_t iterations, float *sink) {
  if (!cde_fma_isa_supported(isa)) return 0;
  return isa == CDE_FMA_AVX512 ? run_avx512(iterations, sink) : run_avx2(iterations, sink);
}
