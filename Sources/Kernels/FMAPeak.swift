import CSupport
import Clock
import Dispatch
import Foundation

/// The CPU's single-precision FMA peak, measured with an FMA-throughput loop
/// (`cde_fma_loop`: 12 or 24 independent chains of fused multiply-adds on AVX2 or
/// AVX-512 vectors) rather than computed from a guessed clock; and on CPUs with AVX512_BF16
/// the peak of the bf16 GEMMs (`--precision bf16`), from 24 chains of bf16 dot products
/// (VDPBF16PS: two products of bfloat16 pairs added to each fp32 lane).
///
/// Rate = floating-point operations / time, 2 per lane per FMA, 4 per lane per bf16 dot. The per-core
/// figure divides by the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so time
/// the thread spends preempted on a shared machine does not count; the all-cores
/// figure runs one loop per core at once and divides by wall time.
public enum FMAPeak {
  /// Instruction sets of the loop, widest fp32 one last, then the bf16 dot product.
  public enum ISA: Int32, CaseIterable, Sendable {
    case avx2 = 2, avx512 = 3, avx512BF16 = 4
    public var name: String {
      switch self {
      case .avx2: "avx2"
      case .avx512: "avx512"
      case .avx512BF16: "avx512_bf16"
      }
    }
    /// True for the bf16 dot-product loop, whose rate is not the fp32 peak.
    public var isBF16: Bool { self == .avx512BF16 }
    public var supported: Bool { cde_fma_isa_supported(rawValue) != 0 }
  }

  public struct Result: Sendable {
    public var isa: ISA
    /// GFLOP/s of one core (best of the repetitions, CPU time).
    public var perCore: Double
    /// GFLOP/s of `cores` loops at once (best of the repetitions, wall time).
    public var allCores: Double
    public var cores: Int
  }

  /// Measures `isa` (nil when the CPU lacks it): `repetitions` loops of `iterations`
  /// each, on one core and on `cores` cores at once.
  public static func measure(_ isa: ISA, cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                             iterations: Int64 = 20_000_000, repetitions: Int = 3) -> Result? {
    guard isa.supported else { return nil }
    var sink: Float = 0
    _ = cde_fma_loop(isa.rawValue, iterations / 10, &sink)  // warm-up (clock ramp, AVX-512 licence)
    var single = 0.0, all = 0.0
    for _ in 0..<repetitions {
      let t0 = CPUClock.threadSeconds()
      let f = cde_fma_loop(isa.rawValue, iterations, &sink)
      single = max(single, f / (CPUClock.threadSeconds() - t0) / 1e9)
      let w0 = MonotonicClock.seconds()
      let total = UnsafeMutablePointer<Double>.allocate(capacity: cores)
      defer { total.deallocate() }
      DispatchQueue.concurrentPerform(iterations: cores) { i in
        var s: Float = 0
        total[i] = cde_fma_loop(isa.rawValue, iterations, &s)
      }
      let wall = MonotonicClock.seconds(since: w0)
      all = max(all, (0..<cores).reduce(0) { $0 + total[$1] } / wall / 1e9)
    }
    return Result(isa: isa, perCore: single, allCores: all, cores: cores)
  }
}
