// sgemm on AVX2 + FMA for the step's GEMM classes (see include/cgemm.h for the contract).
//
// The layout is the classic one (Goto and van de Geijn, "Anatomy of high-performance matrix
// multiplication", ACM TOMS 34(3), 2008): a 6 x 16 register tile of C (twelve 8-float
// accumulators), updated by rank-1 steps from a packed panel of op(B) (16 consecutive floats
// per k, 64-byte aligned) and six broadcast elements of op(A) per k. Blocking:
//   for each column block of op(B) (sized to the L2 cache)
//     pack op(B)[all of k, column block] into 16-column panels, zero-padded (when k > 1024,
//     one k block at a time, the loops below once per k block)
//     for each 6-row panel of op(A) (in place; packed when A is transposed or the panel is short)
//       for each k block (the whole k up to 384, else about 256)
//         for each 16-column panel: the micro-kernel on the 6 x 16 tile of C
// The next panel of op(A) and the next tile of C are prefetched while a tile runs.
// A k block after the first starts its chains from the partial sums the previous block
// stored in C: a float stored and loaded back is the same float, so blocking never changes
// a chain. Tiles that stick out of C (the last rows or columns) run on a 6 x 16 copy.
//
// Compiled for AVX2 and FMA with target attributes, whatever the build's flags; the caller
// checks the CPU first.
#include "include/cgemm.h"

#if !defined(__x86_64__)
int cde_sgemm_avx2(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias) {
  return -1;  // x86 only: never chosen elsewhere (GEMMBackend.kernelAvailable)
}
double cde_sgemm_avx2_microkernel_loop(int64_t calls, float *sink) { return -1; }
#else
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

enum { MR = 6, NR = 16 };
enum { INIT_ZERO = 0, INIT_C = 1, INIT_BIAS = 2 };

// Scratch that each thread allocates once and grows when a call needs more (no allocation
// in the steady state of a training step).
static _Thread_local float *scratch_b, *scratch_a;
static _Thread_local size_t cap_b, cap_a;

static float *grow(float **p, size_t *cap, size_t floats) {
  if (floats > *cap) {
    free(*p);
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    *p = aligned_alloc(64, bytes);
    if (*p == NULL) abort();
    *cap = bytes / sizeof(float);
  }
  return *p;
}

// The micro-kernel, one body for the two layouts of the A panel: element (r, p) at
// a[r * RS + p * CS]: rows of A in place (RS = lda, CS = 1) or a packed panel (RS = 1, CS = 6).
// c: the 6 x 16 tile (row stride ldc); init: where the chains start (bias: 16 floats);
// scale: multiply by alpha at the end.
#define ACC_ROW(r) __m256 c##r##0, c##r##1;
#define LOAD_ROW(r)                                   \
  c##r##0 = _mm256_loadu_ps(c + (r) * ldc);           \
  c##r##1 = _mm256_loadu_ps(c + (r) * ldc + 8);
#define SET_ROW(r, x0, x1) c##r##0 = x0; c##r##1 = x1;
#define FMA_ROW(r)                                     \
  x = _mm256_broadcast_ss(a + (r) * rs + p * cs);      \
  c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0);           \
  c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1);
#define SCALE_ROW(r) c##r##0 = _mm256_mul_ps(c##r##0, al); c##r##1 = _mm256_mul_ps(c##r##1, al);
#define STORE_ROW(r)                                  \
  _mm256_storeu_ps(c + (r) * ldc, c##r##0);           \
  _mm256_storeu_ps(c + (r) * ldc + 8, c##r##1);

#define MICRO_KERNEL(NAME, RS_DECL, RS, CS)                                                              \
  static inline __attribute__((always_inline)) void NAME(int64_t kc, const float *restrict a, RS_DECL,   \
                                                        const float *restrict bp, float *restrict c,     \
                                                        int64_t ldc, int init, const float *bias,        \
                                                        int scale, float alpha) {                        \
    const int64_t rs = RS, cs = CS;                                                                      \
    ACC_ROW(0) ACC_ROW(1) ACC_ROW(2) ACC_ROW(3) ACC_ROW(4) ACC_ROW(5)                                   \
    if (init == INIT_C) {                                                                                \
      LOAD_ROW(0) LOAD_ROW(1) LOAD_ROW(2) LOAD_ROW(3) LOAD_ROW(4) LOAD_ROW(5)                           \
    } else {                                                                                             \
      __m256 z0 = _mm256_setzero_ps(), z1 = z0;                                                          \
      if (init == INIT_BIAS) { z0 = _mm256_loadu_ps(bias); z1 = _mm256_loadu_ps(bias + 8); }             \
      SET_ROW(0, z0, z1) SET_ROW(1, z0, z1) SET_ROW(2, z0, z1)                                           \
      SET_ROW(3, z0, z1) SET_ROW(4, z0, z1) SET_ROW(5, z0, z1)                                           \
    }                                                                                                    \
    _Pragma("clang loop unroll_count(4)")                                                               \
    for (int64_t p = 0; p < kc; p++) {                                                                   \
      __m256 b0 = _mm256_load_ps(bp + p * NR), b1 = _mm256_load_ps(bp + p * NR + 8), x;                  \
      FMA_ROW(0) FMA_ROW(1) FMA_ROW(2) FMA_ROW(3) FMA_ROW(4) FMA_ROW(5)                                 \
    }                                                                                                    \
    if (scale) {                                                                                         \
      __m256 al = _mm256_set1_ps(alpha);                                                                 \
      SCALE_ROW(0) SCALE_ROW(1) SCALE_ROW(2) SCALE_ROW(3) SCALE_ROW(4) SCALE_ROW(5)                     \
    }                                                                                                    \
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5)                       \
  }

MICRO_KERNEL(kernel_rows, int64_t lda, lda, 1)
MICRO_KERNEL(kernel_packed, int unused_rs, 1, MR)

// dst[r * ldd + c] = src[c * lds + r] for r, c < 8: an 8 x 8 block transposed in registers.
static inline __attribute__((always_inline)) void transpose8(const float *src, int64_t lds, float *dst, int64_t ldd) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds);
  __m256 r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
  __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3);
  __m256 t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// op(B)[p0 + p, j0 + j] for p < kc, j < nc into 16-column panels (panel q at bp + q * kc * 16,
// row p of it at + p * 16), the columns past nc zero.
static void pack_b(int transB, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                   float *bp) {
  for (int64_t q = 0; q < nc; q += NR) {
    int64_t w = nc - q < NR ? nc - q : NR;
    float *dst = bp + q * kc;
    if (!transB) {
      const float *src = b + p0 * ldb + j0 + q;
      if (w == NR) {
        for (int64_t p = 0; p < kc; p++) {
          __builtin_prefetch(src + (p + 8) * ldb, 0, 3);  // rows far apart: ahead of the stride prefetcher
          _mm256_store_ps(dst + p * NR, _mm256_loadu_ps(src + p * ldb));
          _mm256_store_ps(dst + p * NR + 8, _mm256_loadu_ps(src + p * ldb + 8));
        }
      } else {
        for (int64_t p = 0; p < kc; p++) {
          for (int64_t j = 0; j < w; j++) dst[p * NR + j] = src[p * ldb + j];
          for (int64_t j = w; j < NR; j++) dst[p * NR + j] = 0;
        }
      }
    } else {
      // B[n, k]: column j of op(B) is row j0 + q + j of B. Full panels: 8 x 8 blocks transposed
      // in registers, the next panel's rows prefetched; the rest element by element.
      const float *src = b + (j0 + q) * ldb + p0;
      int64_t p = 0;
      if (w == NR) {
        for (int64_t j = 0; j < NR && q + NR + j < nc; j++)
          for (int64_t e = 0; e < kc; e += 16) __builtin_prefetch(src + (NR + j) * ldb + e, 0, 3);
        for (; p + 8 <= kc; p += 8)
          for (int64_t h = 0; h < NR; h += 8) transpose8(src + h * ldb + p, ldb, dst + p * NR + h, NR);
      }
      for (int64_t j = 0; j < w; j++) {
        const float *row = src + j * ldb;
        for (int64_t pp = p; pp < kc; pp++) dst[pp * NR + j] = row[pp];
      }
      for (int64_t j = w; j < NR; j++)
        for (int64_t pp = 0; pp < kc; pp++) dst[pp * NR + j] = 0;
    }
  }
}

int cde_sgemm_avx2(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias) {
  if ((alpha != 1 && (beta != 0 || bias)) || (bias && beta != 0)) return -1;
  if (m <= 0 || n <= 0) return 0;
  if (beta != 0 && beta != 1) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] *= beta;
  }
  if (k <= 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++)
        if (beta == 0) c[i * ldc + j] = bias ? bias[j] : 0;
    return 0;
  }
  // k blocks: the whole k up to 384, else blocks of about 256.
  int64_t kblocks = k <= 384 ? 1 : (k + 255) / 256;
  int64_t kc = (k + kblocks - 1) / kblocks;
  // op(B) is packed a column block at a time, for all of k when k <= 1024 (each 6-row panel of
  // op(A) then runs through every k block before the next: its tiles of C stay in cache), else
  // one k block at a time (weight gradients, k the batch's tokens: C is revisited per k block).
  // A packed column block takes at most three quarters of the L2 cache, half when k is blocked
  // (C, revisited for every k block, shares the L2 with it).
  static _Thread_local int64_t l2 = 0;
  if (l2 == 0) {
    long s = sysconf(_SC_LEVEL2_CACHE_SIZE);
    l2 = s > 0 ? s : 256 * 1024;
  }
  int64_t kspan = k <= 1024 ? k : kc;
  int64_t budget = k <= 1024 ? l2 * 3 / 4 : l2 / 2;
  int64_t ncmax = budget / (kspan * (int64_t)sizeof(float)) / NR * NR;
  if (ncmax < NR) ncmax = NR;
  int64_t npad = (n + NR - 1) / NR * NR;
  int64_t nblocks = (npad + ncmax - 1) / ncmax;
  int64_t nc = ((npad + nblocks - 1) / nblocks + NR - 1) / NR * NR;

  float *bp = grow(&scratch_b, &cap_b, (size_t)(kspan * nc));
  float *ap = grow(&scratch_a, &cap_a, (size_t)(MR * kc + 2 * MR * NR + NR));
  float *tile = ap + MR * kc, *biasTile = tile + MR * NR;  // 64-byte aligned: MR * kc * 4 need not be,
  // but the tile and the bias copy are only read and written with unaligned loads and stores.

  for (int64_t j0 = 0; j0 < n; j0 += nc) {
    int64_t ncur = n - j0 < nc ? n - j0 : nc;
    int64_t tiles = (ncur + NR - 1) / NR;
    for (int64_t s0 = 0; s0 < k; s0 += kspan) {
      int64_t send = k - s0 < kspan ? k : s0 + kspan;
      // k block p0 of the span at bp + (p0 - s0) * nc, its panel jq at + jq * kcur.
      for (int64_t p0 = s0; p0 < send; p0 += kc)
        pack_b(transB, b, ldb, p0, send - p0 < kc ? send - p0 : kc, j0, ncur, bp + (p0 - s0) * nc);
      for (int64_t i0 = 0; i0 < m; i0 += MR) {
        int64_t mr = m - i0 < MR ? m - i0 : MR;
        for (int64_t p0 = s0; p0 < send; p0 += kc) {
          int64_t kcur = send - p0 < kc ? send - p0 : kc;
          int init = p0 > 0 || beta != 0 ? INIT_C : bias ? INIT_BIAS : INIT_ZERO;
          int scale = p0 + kcur == k && alpha != 1;
          const float *bblock = bp + (p0 - s0) * nc;
          const float *apanel = a + i0 * lda + p0;
          int64_t ars = lda;
          if (transA) {
            // A[k, m]: op(A)[i0 + r, p0 + p] = A[(p0 + p) * lda + i0 + r], packed as ap[p * 6 + r].
            const float *src = a + p0 * lda + i0;
            if (mr == MR) {
              for (int64_t p = 0; p < kcur; p++) {  // 4 + 2 floats
                _mm_storeu_ps(ap + p * MR, _mm_loadu_ps(src + p * lda));
                _mm_storel_pi((__m64 *)(ap + p * MR + 4), _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(src + p * lda + 4)));
              }
            } else {
              for (int64_t p = 0; p < kcur; p++) {
                for (int64_t r = 0; r < mr; r++) ap[p * MR + r] = src[p * lda + r];
                for (int64_t r = mr; r < MR; r++) ap[p * MR + r] = 0;
              }
            }
          } else if (mr < MR) {
            // The last rows: a copy with zero rows below (row stride kcur).
            for (int64_t r = 0; r < MR; r++)
              for (int64_t p = 0; p < kcur; p++) ap[r * kcur + p] = r < mr ? apanel[r * lda + p] : 0;
            apanel = ap;
            ars = kcur;
          }
          // The next panel of op(A) (rows in place), fetched a slice per tile.
          const float *anext = !transA && i0 + 2 * MR <= m ? apanel + MR * lda : NULL;
          int64_t lines = (kcur + 15) / 16, items = MR * lines;
          int64_t per = (items + tiles - 1) / tiles, line = 0;
          for (int64_t jq = 0, t = 0; jq < ncur; jq += NR, t++) {
            int64_t nr = ncur - jq < NR ? ncur - jq : NR;
            const float *bpanel = bblock + jq * kcur;
            float *ct = c + i0 * ldc + j0 + jq;
            const float *bt = bias ? bias + j0 + jq : NULL;
            if (anext)
              for (int64_t e = 0; e < per && line < items; e++, line++)
                __builtin_prefetch(anext + (line / lines) * lda + (line % lines) * 16, 0, 3);
            // The next tile of C (this row panel's, or the next panel's first).
            float *cn = jq + NR < ncur ? ct + NR : i0 + MR < m ? c + (i0 + MR) * ldc + j0 : NULL;
            if (cn)
              for (int r = 0; r < MR && i0 + (jq + NR < ncur ? 0 : MR) + r < m; r++) __builtin_prefetch(cn + r * ldc, 1, 3);
            if (mr < MR || nr < NR) {
              // A tile that sticks out: run on a 6 x 16 copy.
              if (init == INIT_C)
                for (int64_t r = 0; r < mr; r++) memcpy(tile + r * NR, ct + r * ldc, (size_t)nr * sizeof(float));
              if (bt) {
                memset(biasTile, 0, NR * sizeof(float));
                memcpy(biasTile, bt, (size_t)nr * sizeof(float));
                bt = biasTile;
              }
              if (transA) kernel_packed(kcur, ap, 0, bpanel, tile, NR, init, bt, scale, alpha);
              else kernel_rows(kcur, apanel, ars, bpanel, tile, NR, init, bt, scale, alpha);
              for (int64_t r = 0; r < mr; r++) memcpy(ct + r * ldc, tile + r * NR, (size_t)nr * sizeof(float));
              continue;
            }
            if (transA) kernel_packed(kcur, ap, 0, bpanel, ct, ldc, init, bt, scale, alpha);
            else kernel_rows(kcur, apanel, ars, bpanel, ct, ldc, init, bt, scale, alpha);
          }
        }
      }
    }
  }
  return 0;
}

// The micro-kernel alone (cgemm.h): A's 6 rows in place (row stride 256) and one packed
// 16-column panel of B, 22 KiB together, stay in L1; C's chains carry on from call to call.
// A and B hold 2^-10 and 2^-8: every product is 2^-18 and a call adds at most 2^-10 to an element
// of C, so no overflow or subnormals however long it runs. Not inlined, so that every call loads
// and stores its tile.
enum { LOOP_K = 256 };
__attribute__((noinline)) static void microkernel_call(const float *a, const float *bp, float *c) {
  kernel_rows(LOOP_K, a, LOOP_K, bp, c, NR, INIT_C, NULL, 0, 1);
}

double cde_sgemm_avx2_microkernel_loop(int64_t calls, float *sink) {
  _Alignas(64) float a[MR * LOOP_K], bp[LOOP_K * NR];
  _Alignas(64) float c[MR * NR] = {0};
  for (int i = 0; i < MR * LOOP_K; i++) a[i] = 0x1p-10f;
  for (int i = 0; i < LOOP_K * NR; i++) bp[i] = 0x1p-8f;
  for (int64_t i = 0; i < calls; i++) microkernel_call(a, bp, c);
  *sink = c[0];
  return 2.0 * MR * NR * LOOP_K * (double)calls;
}

#pragma clang attribute pop
#endif
