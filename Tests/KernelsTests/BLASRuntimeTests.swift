import XCTest
@testable import Kernels

/// The kernel-selection rule of `BLASRuntime`: re-execute only for a strictly higher instruction-set tier.
final class BLASRuntimeTests: XCTestCase {
  let zen5: Set<String> = ["fma", "avx", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_bf16"]
  let skylake: Set<String> = ["fma", "avx", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl"]
  let zen3: Set<String> = ["fma", "avx", "avx2"]

  func testPreferredCoreFollowsTheFlags() {
    XCTAssertEqual(BLASRuntime.preferredCoreType(flags: zen5), "Cooperlake")
    XCTAssertEqual(BLASRuntime.preferredCoreType(flags: skylake), "SkylakeX")
    XCTAssertEqual(BLASRuntime.preferredCoreType(flags: zen3), "Haswell")
    XCTAssertEqual(BLASRuntime.preferredCoreType(flags: ["avx"]), "Sandybridge")
    XCTAssertNil(BLASRuntime.preferredCoreType(flags: ["sse2", "sse3"]))
    // AVX-512 without BW (Knights Landing) is not enough for the SkylakeX kernels.
    XCTAssertEqual(BLASRuntime.preferredCoreType(flags: ["fma", "avx2", "avx512f", "avx512vl", "avx512dq"]), "Haswell")
  }

  func testSwitchOnlyToAHigherTier() {
    // Zen 5 under Debian's OpenBLAS 0.3.21: detected as Haswell, AVX-512 available.
    XCTAssertEqual(BLASRuntime.switchTarget(current: "Haswell", flags: zen5), "Cooperlake")
    // Zen 4: generic fallback.
    XCTAssertEqual(BLASRuntime.switchTarget(current: "Prescott", flags: zen5), "Cooperlake")
    XCTAssertEqual(BLASRuntime.switchTarget(current: "Zen", flags: skylake), "SkylakeX")
    // Same tier: no re-execution (SkylakeX on a BF16 CPU is as fast for sgemm).
    XCTAssertNil(BLASRuntime.switchTarget(current: "SkylakeX", flags: zen5))
    XCTAssertNil(BLASRuntime.switchTarget(current: "Cooperlake", flags: skylake))
    XCTAssertNil(BLASRuntime.switchTarget(current: "Zen", flags: zen3))
    XCTAssertNil(BLASRuntime.switchTarget(current: "Haswell", flags: []))
    XCTAssertEqual(BLASRuntime.switchTarget(current: "Prescott", flags: zen3), "Haswell")
  }

  func testTiers() {
    XCTAssertEqual(BLASRuntime.tier(ofCore: "COOPERLAKE"), 3)
    XCTAssertEqual(BLASRuntime.tier(ofCore: "Haswell"), 2)
    XCTAssertEqual(BLASRuntime.tier(ofCore: "Sandybridge"), 1)
    XCTAssertEqual(BLASRuntime.tier(ofCore: "Prescott"), 0)
    XCTAssertEqual(BLASRuntime.tier(ofCore: "SomethingNew"), 0)
  }
}
