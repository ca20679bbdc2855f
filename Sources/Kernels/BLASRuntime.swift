import CBLAS
import Foundation

/// Makes sure OpenBLAS runs its best kernel on this CPU.
///
/// Debian's OpenBLAS 0.3.21 is a DYNAMIC_ARCH build whose CPU detection does
/// not know recent cores (AMD Zen 4 among them) and then falls back to the
/// SSE3 "Prescott" kernels, 3-4x slower. The core type can only be chosen by
/// `OPENBLAS_CORETYPE` before the library loads, so when the detected core is
/// a generic fallback and the CPU's flags allow better, the process sets the
/// variable and re-executes itself once, before doing anything else.
public enum BLASRuntime {
  /// The kernel family OpenBLAS selected ("Cooperlake", "SkylakeX", "Haswell", "Prescott", ...).
  public static var coreName: String { String(cString: openblas_get_corename()) }

  /// The best OpenBLAS core type for the flags in /proc/cpuinfo, or nil.
  public static func preferredCoreType() -> String? {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return nil }
    let flags = Set(line.split(separator: " ").map(String.init))
    let avx512 = ["avx512f", "avx512vl", "avx512bw", "avx512dq"].allSatisfy(flags.contains)
    if avx512 && flags.contains("avx512_bf16") { return "Cooperlake" }
    if avx512 { return "SkylakeX" }
    if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
    return nil
  }

  /// Re-executes the process with `OPENBLAS_CORETYPE` set when OpenBLAS fell
  /// back to a generic kernel. No-op when the variable is already set.
  public static func ensureBestKernel() {
    let env = ProcessInfo.processInfo.environment
    if env["OPENBLAS_CORETYPE"] != nil { return }
    let generic = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai", "Coppermine", "Northwood",
                   "Banias", "Barcelona", "Unknown"]
    guard generic.contains(where: { coreName.caseInsensitiveCompare($0) == .orderedSame }),
      let better = preferredCoreType()
    else { return }
    setenv("OPENBLAS_CORETYPE", better, 1)
    let args = CommandLine.arguments
    var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
    cargs.append(nil)
    execv("/proc/self/exe", &cargs)
    // execv only returns on failure: carry on with the slower kernel.
  }
}
