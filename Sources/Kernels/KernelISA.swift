import Foundation

/// Which copy of the instruction-set-dependent kernels runs (`Sources/Kernels/ISA`: the
/// attention tiles, the softmax rows, GELU's element loops and the vector math under them).
///
/// Every build compiles those files twice: into `Kernels` with the build's own `-march`
/// (x86-64-v3 for the portable build, the builder's CPU with `NATIVE=1`), and into
/// `KernelsAVX512` for x86-64-v4 (AVX-512 F, BW, CD, DQ and VL), with the 512-bit attention
/// tiles. `auto` runs the AVX-512 copy when the build's own is not AVX-512 and cpuid reports
/// x86-64-v4 (the OS saving the zmm registers), so the portable binary runs AVX-512 kernels
/// on AVX-512 machines. Both copies compute every element with the same operations in the
/// same order and give the same bits (KernelISATests), so the choice never changes a result.
public enum KernelISA: String, CaseIterable, Sendable, CustomStringConvertible {
  /// The copy compiled with the build's `-march`.
  case build
  /// The x86-64-v4 copy (`KernelsAVX512`).
  case avx512

  /// How the copy is chosen (`--kernels`, `CDE_KERNELS`): `auto`, or one of the cases.
  public enum Choice: String, CaseIterable, Sendable {
    case auto, build, avx512
  }

  /// Whether the build's own copy is already AVX-512 (a native build on an AVX-512 CPU).
  public static var buildIsAVX512: Bool {
    #if CDE_AVX512
    return true
    #else
    return false
    #endif
  }

  /// x86-64-v4's features (cpuid names, `BLASRuntime.cpuFlags`): v3's and the five AVX-512 sets.
  public static let avx512Features = ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe",
                                      "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]

  /// The features of `avx512Features` that `flags` lacks (empty: the AVX-512 copy can run).
  public static func missingAVX512(flags: Set<String>) -> [String] {
    #if arch(x86_64)
    return avx512Features.filter { !flags.contains($0) }
    #else
    return ["x86-64"]
    #endif
  }

  /// The copy `choice` runs on a CPU with `flags`; nil when `choice` is `.avx512` and the CPU
  /// lacks part of x86-64-v4.
  public static func resolve(_ choice: Choice, flags: Set<String>) -> KernelISA? {
    switch choice {
    case .build: return .build
    case .avx512: return missingAVX512(flags: flags).isEmpty ? .avx512 : nil
    case .auto: return !buildIsAVX512 && missingAVX512(flags: flags).isEmpty ? .avx512 : .build
    }
  }

  /// The copy every kernel call runs. `auto` until `select`, which belongs before any buffer
  /// is sized: the saved attention probabilities' row stride follows the copy
  /// (`Attention.probsStride`, `scratchCount`), and the commands select in
  /// `ComputeOptions.apply`, before they build a model.
  nonisolated(unsafe) public private(set) static var active: KernelISA =
    resolve(.auto, flags: BLASRuntime.cpuFlags()) ?? .build

  /// Makes `isa` the copy of every following kernel call; the caller has checked the CPU
  /// (`resolve`) and sizes its attention buffers afterwards (see `active`).
  public static func select(_ isa: KernelISA) { active = isa }

  /// True when calls go to the AVX-512 copy.
  @inline(__always) static var avx512Copy: Bool { active == .avx512 }

  /// For logs: "avx512 (x86-64-v4 copy)", or "build (x86-64-v3)" / "build (native)".
  public var description: String {
    switch self {
    case .avx512: return "avx512 (x86-64-v4 copy)"
    case .build:
      let t = BLASRuntime.buildTarget
      return "build (\(t.isEmpty ? "default target" : t)\(KernelISA.buildIsAVX512 ? ", AVX-512" : ""))"
    }
  }
}
