import Clock
import Foundation

/// Per-kernel wall-clock accounting behind one global flag (`cde bench --profile`).
///
/// Kernels are called from one thread (they parallelise inside), so the
/// totals are plain counters. When `enabled` is false a probe costs one load
/// and one branch.
public enum KernelProfiler {
  /// Kernel families that are timed separately.
  public enum Slot: Int, CaseIterable, Sendable {
    case patchEmbed, tokens, layerNormForward, linearForward, attentionForward, geluForward
    case layerNormBackward, linearBackwardInput, linearBackwardWeight, biasGradient, attentionBackward, geluBackward
    /// Rounding the Linear layers' GEMM operands to bf16 (`optim.precision: bf16`).
    case bf16Convert

    public var name: String {
      switch self {
      case .patchEmbed: return "patch_embed"
      case .tokens: return "tokens+pos_embed"
      case .layerNormForward: return "layernorm_fwd"
      case .linearForward: return "linear_fwd (sgemm)"
      case .attentionForward: return "attention_fwd"
      case .geluForward: return "bias+gelu_fwd"
      case .layerNormBackward: return "layernorm_bwd"
      case .linearBackwardInput: return "linear_bwd_dx (sgemm)"
      case .linearBackwardWeight: return "linear_bwd_dw (sgemm)"
      case .biasGradient: return "bias_grad"
      case .attentionBackward: return "attention_bwd"
      case .geluBackward: return "gelu_bwd"
      case .bf16Convert: return "bf16_convert"
      }
    }
  }

  nonisolated(unsafe) public static var enabled = false
  nonisolated(unsafe) static var seconds = [Double](repeating: 0, count: Slot.allCases.count)
  nonisolated(unsafe) static var flops = [Double](repeating: 0, count: Slot.allCases.count)
  nonisolated(unsafe) static var calls = [Int](repeating: 0, count: Slot.allCases.count)

  /// Monotonic clock in nanoseconds, or 0 when profiling is off.
  @inline(__always) public static func start() -> UInt64 {
    enabled ? MonotonicClock.nanoseconds() : 0
  }

  /// Adds the time since `t0` (from `start()`) and `flop` floating-point operations to `slot`.
  @inline(__always) public static func stop(_ slot: Slot, _ t0: UInt64, flop: Double = 0) {
    if !enabled { return }
    let dt = Double(MonotonicClock.nanoseconds() &- t0) * 1e-9
    seconds[slot.rawValue] += dt
    flops[slot.rawValue] += flop
    calls[slot.rawValue] += 1
  }

  public static func reset() {
    for i in seconds.indices {
      seconds[i] = 0
      flops[i] = 0
      calls[i] = 0
    }
  }

  /// Accumulated (slot, seconds, flop, calls), slots with no calls left out.
  public static var totals: [(slot: Slot, seconds: Double, flop: Double, calls: Int)] {
    Slot.allCases.compactMap { s in
      calls[s.rawValue] == 0 ? nil : (s, seconds[s.rawValue], flops[s.rawValue], calls[s.rawValue])
    }
  }
}
