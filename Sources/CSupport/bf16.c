// Rounding fp32 to bfloat16 (round to nearest even, NaN kept a quiet NaN, subnormal inputs
// taken as zero) for the bf16 GEMM operands (Sources/Kernels/GEMM+BF16.swift). With
// AVX512_BF16, VCVTNE2PS2BF16 rounds 32 floats per instruction (Intel SDM vol. 2,
// VCVTNE2PS2BF16: round to nearest even, denormal inputs treated as zero, NaN to quiet NaN);
// elsewhere the same rounding on the bits, one value at a time.
// This target is compiled without -march flags (see Package.swift), so the AVX-512 path is a
// function of its own, compiled for those instructions and called only when cpuid has them.
#include "csupport.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void convert_avx512bf16(const float *src, uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 lo = _mm512_loadu_ps(src + i), hi = _mm512_loadu_ps(src + i + 16);
    _mm512_storeu_si512((void *)(dst + i), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
  if (i < n) {
    __mmask16 m0 = (__mmask16)((n - i >= 16) ? 0xffff : ((1u << (n - i)) - 1));
    __m256bh a = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m0, src + i));
    _mm256_mask_storeu_epi16(dst + i, m0, (__m256i)a);
    if (n - i > 16) {
      __mmask16 m1 = (__mmask16)((1u << (n - i - 16)) - 1);
      __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m1, src + i + 16));
      _mm256_mask_storeu_epi16(dst + i + 16, m1, (__m256i)b);
    }
  }
}
#endif

static uint16_t round_one(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#if defined(__x86_64__)
// Whether cpuid reports the feature `name` (a name of cpu.c's table).
static int has(uint64_t features, const char *name) {
  int32_t i = cde_cpu_feature_index(name);
  return i >= 0 && ((features >> i) & 1);
}
#endif

void cde_bf16_convert(const float *src, uint16_t *dst, size_t n) {
#if defined(__x86_64__)
  static int fast = -1;  // the same value whichever thread sets it first
  if (__atomic_load_n(&fast, __ATOMIC_RELAXED) < 0) {
    uint64_t f = cde_cpu_features();
    __atomic_store_n(&fast, has(f, "avx512_bf16") && has(f, "avx512bw") && has(f, "avx512vl"), __ATOMIC_RELAXED);
  }
  if (__atomic_load_n(&fast, __ATOMIC_RELAXED)) { convert_avx512bf16(src, dst, n); return; }
#endif
  for (size_t i = 0; i < n; i++) dst[i] = round_one(src[i]);
}
