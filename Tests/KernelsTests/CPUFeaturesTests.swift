import CSupport
import XCTest
@testable import Kernels

/// cpuid's view of the CPU (`cde_cpu_features`, what `BLASRuntime` and the start-up check
/// use) against the kernel's (/proc/cpuinfo), and the build's requirements against the table.
final class CPUFeaturesTests: XCTestCase {
  /// Every feature the build needs is one the start-up check can test: a name missing from
  /// the table would be skipped, and a CPU without it would die of SIGILL.
  func testEveryBuildFeatureIsInTheTable() {
    var p = cde_build_features_list()!
    var names: [String] = []
    while let c = p.pointee { names.append(String(cString: c)); p += 1 }
    #if arch(x86_64)
    // The portable build needs at least the x86-64-v3 features; a native one more.
    for f in ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "lzcnt", "movbe"] { XCTAssert(names.contains(f), f) }
    #endif
    for n in names { XCTAssertGreaterThanOrEqual(cde_cpu_feature_index(n), 0, "\(n) is not in cpu.c's table") }
    // And this machine, which runs the tests, has them all.
    var buf = [CChar](repeating: 0, count: 512)
    XCTAssertEqual(cde_cpu_missing(&buf, buf.count), 0, String(cString: buf))
  }

  /// On real hardware or a hypervisor (not an emulator), cpuid and /proc/cpuinfo agree on
  /// every feature of the table (but RDSEED, which Linux hides on Zen 5).
  func testCPUIDAgreesWithProcCPUInfo() throws {
    #if !arch(x86_64)
    throw XCTSkip("cpuid exists only on x86")
    #else
    let proc = BLASRuntime.procCPUInfoFlags()
    if proc.isEmpty { throw XCTSkip("/proc/cpuinfo is not readable") }
    let mine = BLASRuntime.cpuidFlags()
    XCTAssert(mine.contains("sse3") && mine.contains("ssse3"), "every x86-64 CPU of this century has SSE3: \(mine)")
    for i in 0..<cde_cpu_feature_count() {
      let name = String(cString: cde_cpu_feature_name(i)!)
      // Linux calls SSE3 "pni" (Prescott New Instructions) and LZCNT "abm".
      let procName = ["sse3": "pni", "lzcnt": "abm"][name] ?? name
      // Linux clears RDSEED on AMD Zen 5 (family 0x1a), whose RDSEED can return zeros
      // (an AMD erratum), while cpuid still reports it. The kernel may hide a feature the CPU
      // has, never the reverse.
      if name == "rdseed" && mine.contains(name) && !proc.contains(procName) { continue }
      XCTAssertEqual(mine.contains(name), proc.contains(procName), "\(name): cpuid and /proc/cpuinfo disagree")
    }
    #endif
  }

  func testBuildTargetIsNamed() {
    #if arch(x86_64)
    XCTAssert(["x86-64-v3", "native"].contains(BLASRuntime.buildTarget), BLASRuntime.buildTarget)
    #endif
  }
}
