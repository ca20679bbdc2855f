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

// The bf16 dot-product loop (AVX512_BF16): VDPBF16PS adds two products of bfloat16 pairs to
// each fp32 lane, so it counts 4 operations per lane, the rate of the bf16 GEMMs of
// `--precision bf16`. acc += 1 * 2^-18 + 1 * 2^-18 per iteration, from each accumulator's start
// value (0, 1, ..., 23): every sum is exact while it stays below 32 (9 * 2^17 iterations), and
// longer runs only lose the increments to rounding (no overflow, no subnormals).
__attribute__((target("avx512f,avx512bf16,evex512"))) static double run_avx512_bf16(int64_t iters, float *sink) {
  __m512bh one = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f));
  __m512bh tiny = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0x1p-18f), _mm512_set1_ps(0x1p-18f));
  __m512 a[ACC512];
  for (int i = 0; i < ACC512; i++) a[i] = _mm512_set1_ps((float)i);
  for (int64_t it = 0; it < iters; it++) {
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < ACC512; i++) a[i] = _mm512_dpbf16_ps(a[i], one, tiny);
  }
  __m512 s = a[0];
  for (int i = 1; i < ACC512; i++) s = _mm512_add_ps(s, a[i]);
  float t[16], total = 0;
  memcpy(t, &s, sizeof t);
  for (int i = 0; i < 16; i++) total += t[i];
  *sink = total;
  return (double)iters * ACC512 * 16 * 4;
}

int cde_fma_isa_supported(int isa) {
  __builtin_cpu_init();
  switch (isa) {
  case CDE_FMA_AVX512: return __builtin_cpu_supports("avx512f");
  case CDE_FMA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  case CDE_FMA_AVX512_BF16: return __builtin_cpu_supports("avx512bf16");
  default: return 0;
  }
}

double cde_fma_loop(int isa, int64_t iterations, float *sink) {
  if (!cde_fma_isa_supported(isa)) return 0;
  switch (isa) {
  case CDE_FMA_AVX512: return run_avx512(iterations, sink);
  case CDE_FMA_AVX512_BF16: return run_avx512_bf16(iterations, sink);
  default: return run_avx2(iterations, sink);
  }
}
