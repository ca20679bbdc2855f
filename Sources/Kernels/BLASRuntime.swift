import CBLAS
import CSupport
import Foundation

/// Makes sure OpenBLAS runs its best kernel on this CPU.
///
/// Debian's OpenBLAS 0.3.21 is a DYNAMIC_ARCH build whose CPU detection does not
/// know recent cores. On AMD Zen 4 it falls back to the SSE3 "Prescott" kernels
/// (3-4x slower); on AMD Zen 5 it picks the AVX2 "Haswell" kernels, half the
/// AVX-512 rate (2048^3 sgemm, one core: 104 GFLOP/s against 207 with SkylakeX).
/// The core type can only be chosen by `OPENBLAS_CORETYPE` before the library
/// loads, so when the CPU's features (cpuid) allow a kernel of a higher tier than the one
/// running, the process sets the variable and re-executes itself once, before
/// doing anything else (and so before `MPI_Init`).
public enum BLASRuntime {
  /// The kernel family OpenBLAS selected ("Cooperlake", "SkylakeX", "Haswell", "Prescott", ...).
  public static var coreName: String { String(cString: openblas_get_corename()) }

  /// Instruction-set tier of an OpenBLAS core name: 3 AVX-512, 2 AVX2 + FMA, 1 AVX, 0 anything older or unknown.
  public static func tier(ofCore name: String) -> Int {
    switch name.lowercased() {
    case "skylakex", "cooperlake", "sapphirerapids": return 3
    case "haswell", "zen", "excavator": return 2
    case "sandybridge", "bulldozer", "piledriver", "steamroller": return 1
    default: return 0
    }
  }

  /// The best OpenBLAS core type for a set of CPU flags (/proc/cpuinfo's names), or nil when none beats the generic kernels.
  /// AVX-512 needs F, VL, BW and DQ (SkylakeX's kernels use all four); with BF16 as well, Cooperlake
  /// (the same sgemm kernel: 2048^3 at 209-220 against 208-213 GFLOP/s on one Zen 5 core).
  public static func preferredCoreType(flags: Set<String>) -> String? {
    let avx512 = ["avx512f", "avx512vl", "avx512bw", "avx512dq"].allSatisfy(flags.contains)
    if avx512 && flags.contains("avx512_bf16") { return "Cooperlake" }
    if avx512 { return "SkylakeX" }
    if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
    if flags.contains("avx") { return "Sandybridge" }
    return nil
  }

  /// The CPU's features as cpuid reports them, under /proc/cpuinfo's names ("avx2",
  /// "avx512f", "avx512_bf16", ...): what the processor, or an emulator or hypervisor in
  /// front of it, will execute. /proc/cpuinfo describes the host's CPU, which under
  /// `qemu-x86_64 -cpu Haswell` has AVX-512 that the emulated CPU lacks. Elsewhere than
  /// x86, where cpuid does not exist, /proc/cpuinfo's flags.
  public static func cpuFlags() -> Set<String> {
    #if arch(x86_64) || arch(i386)
    return cpuidFlags()
    #else
    return procCPUInfoFlags()
    #endif
  }

  /// The features cpuid reports (see `cde_cpu_features`), usable by this process.
  public static func cpuidFlags() -> Set<String> {
    let bits = cde_cpu_features()
    var out = Set<String>()
    for i in 0..<cde_cpu_feature_count() where (bits >> UInt64(i)) & 1 == 1 {
      if let name = cde_cpu_feature_name(i) { out.insert(String(cString: name)) }
    }
    return out
  }

  /// The `-march` the numeric code was compiled for: "x86-64-v3" (the default build), "native".
  public static var buildTarget: String { String(cString: cde_cpu_build_target()) }

  /// The flags of the first processor in /proc/cpuinfo (empty when unreadable).
  public static func procCPUInfoFlags() -> Set<String> {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return [] }
    return Set(line.split(separator: " ").map(String.init))
  }

  /// The core type to switch to, or nil to keep `current`: only a strictly higher tier is worth a re-execution.
  public static func switchTarget(current: String, flags: Set<String>) -> String? {
    guard let better = preferredCoreType(flags: flags), tier(ofCore: better) > tier(ofCore: current) else { return nil }
    return better
  }

  /// Re-executes the process with `OPENBLAS_CORETYPE` set when OpenBLAS runs a
  /// kernel of a lower tier than the CPU supports; at most once.
  ///
  /// `CDE_BLAS_CORE` chooses: `auto` (default) picks the best tier for the CPU's
  /// features (cpuid), and also lifts an `OPENBLAS_CORETYPE` that names a lower tier (some
  /// machines export `OPENBLAS_CORETYPE=Haswell` fleet-wide, half the rate of an
  /// AVX-512 CPU), which `kernelDescription` then says; `keep` leaves OpenBLAS as
  /// it is; any other value is an OpenBLAS core name to use. `auto` never picks a
  /// lower tier.
  public static func ensureBestKernel() {
    let env = ProcessInfo.processInfo.environment
    if env["CDE_BLAS_REEXEC"] != nil { return }  // this is the re-executed process
    let mode = env["CDE_BLAS_CORE"] ?? "auto"
    let current = coreName
    let target: String
    switch mode.lowercased() {
    case "keep":
      return
    case "auto", "":
      guard let better = switchTarget(current: current, flags: cpuFlags()) else { return }
      target = better
      if let user = env["OPENBLAS_CORETYPE"] { setenv("CDE_BLAS_LIFTED_FROM", user, 1) }
    default:
      if mode.caseInsensitiveCompare(current) == .orderedSame { return }
      target = mode
    }
    setenv("OPENBLAS_CORETYPE", target, 1)
    setenv("CDE_BLAS_REEXEC", "1", 1)
    var cargs: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
    cargs.append(nil)
    execv("/proc/self/exe", &cargs)
    // execv only returns on failure: carry on with the kernel OpenBLAS chose.
  }

  /// The kernel in use, for logs: "Cooperlake", or "Cooperlake (OPENBLAS_CORETYPE=Haswell lifted; CDE_BLAS_CORE=keep keeps it)".
  public static var kernelDescription: String {
    guard let from = ProcessInfo.processInfo.environment["CDE_BLAS_LIFTED_FROM"] else { return coreName }
    return "\(coreName) (OPENBLAS_CORETYPE=\(from) lifted; CDE_BLAS_CORE=keep keeps it)"
  }
}
