#ifndef CDE_FMA_PEAK_H
#define CDE_FMA_PEAK_H
#include <stdint.h>

/// Instruction sets of the FMA-throughput loop; AVX512_BF16's is a bf16 dot-product loop.
enum { CDE_FMA_AVX2 = 2, CDE_FMA_AVX512 = 3, CDE_FMA_AVX512_BF16 = 4 };
/// 1 when this CPU runs `isa` (`__builtin_cpu_supports`), else 0.
int cde_fma_isa_supported(int isa);
/// Runs `iterations` of 12 (AVX2) or 24 (AVX-512) independent single-precision FMA chains on
/// vectors of `isa` (8 lanes for AVX2, 16 for AVX-512) and returns the floating-point operations
/// done (2 per lane per FMA), or 0 when the CPU lacks `isa`. `CDE_FMA_AVX512_BF16`: 24 chains of
/// VDPBF16PS on 16 fp32 lanes, 4 operations per lane (two bf16 products and their sums).
/// `sink` receives a sum of the results so that the loop is not optimised away.
double cde_fma_loop(int isa, int64_t iterations, float *sink);
#endif
