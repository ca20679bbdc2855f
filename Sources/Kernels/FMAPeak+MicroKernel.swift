import CGEMM
import Clock

extension FMAPeak {
  /// GFLOP/s of cde's AVX2 GEMM micro-kernel alone (`cde_sgemm_avx2_microkernel_loop`: its
  /// 6 x 16 tile of C over k = 256, operands in L1), best of `repetitions` runs of `calls` calls
  /// on this thread (CPU time, as the FMA loop's per-core figure); nil where the kernel is not
  /// available (`GEMMBackend.kernelAvailable`).
  ///
  /// Rate = 2 · 6 · 16 · 256 · calls / time. Against `measure(.avx2)` it is the kernel's ceiling
  /// on this core: a GEMM of the step below it loses the rest in the caches and memory.
  public static func microKernel(calls: Int64 = 400_000, repetitions: Int = 3) -> Double? {
    guard GEMMBackend.kernelAvailable else { return nil }
    var sink: Float = 0
    _ = cde_sgemm_avx2_microkernel_loop(calls / 10, &sink)  // warm-up
    var best = 0.0
    for _ in 0..<max(repetitions, 1) {
      let t0 = CPUClock.threadSeconds()
      let f = cde_sgemm_avx2_microkernel_loop(calls, &sink)
      best = max(best, f / (CPUClock.threadSeconds() - t0) / 1e9)
    }
    return best
  }
}
