// FMA-throughput loops for `cde bench --fma-peak`: many independent accumulators,
// each updated by one fused multiply-add per iteration, so the loop runs at the
// FMA units' issue rate rather than at their latency. Each variant is compiled for
// its own instruction set (target attributes), whatever flags the file is built with,
// and is only called after the CPU reported that instruction set.
#include "include/fma_peak.h"
#include <immintrin.h>
#include <string.h>

// Accumulators per variant: enough to hide a 4-cycle FMA latency on 2 pipes (8 needed)
// with margin, and few enough to stay in registers with the two constants (16 ymm
// registers for AVX2, 32 zmm for AVX-512).
#define ACC2 12
#define ACC512 24

// acc = acc * m + c with m slightly below 1: converges to c / (1 - m), no overflow
// or subnormals however long it runs. One loop for every instruction set: ACC
// accumulators of type VEC (LANES floats), compiled for TARGET; the sum of the
// accumulators goes to *sink so that the loop is not optimised away. Returns the
// FLOPs done (2 per lane per FMA).
#define FMA_PEAK_LOOP(NAME, TARGET, VEC, ACC, LANES, SET1, FMADD, ADD)             \
  __attribute__((target(TARGET))) static double NAME(int64_t iters, float *sink) { \
    VEC m = SET1(0.999999f), c = SET1(1e-6f);                                      \
    VEC a[ACC];                                                                    \
    for (int i = 0; i < ACC; i++) a[i] = SET1((float)i);                           \
    for (int64_t it = 0; it < iters; it++) {                                       \
      _Pragma("clang loop unroll(full)")                                           \
      for (int i = 0; i < ACC; i++) a[i] = FMADD(a[i], m, c);                      \
    }                                                                              \
    VEC s = a[0];                                                                  \
    for (int i = 1; i < ACC; i++) s = ADD(s, a[i]);                                \
    float t[LANES], total = 0;                                                     \
    memcpy(t, &s, sizeof t);                                                       \
    for (int i = 0; i < LANES; i++) total += t[i];                                 \
    *sink = total;                                                                 \
    return (double)iters * ACC * LANES * 2;                                        \
  }

FMA_PEAK_LOOP(run_avx512, "avx512f", __m512, ACC512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
FMA_PEAK_LOOP(run_avx2, "avx2,fma", __m256, ACC2, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)

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
