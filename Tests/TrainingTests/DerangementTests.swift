import Foundation
import XCTest
import Training

/// `derangement(n, seed:)`: a permutation without fixed points, a function of (n, seed),
/// and every derangement of a small n drawn about equally often over many seeds.
final class DerangementTests: XCTestCase {
  func testPermutationWithoutFixedPoints() {
    for n in 2...40 {
      for seed: UInt64 in [0, 1, 7, 0xDEAD_BEEF, .max] {
        let p = derangement(n, seed: seed)
        XCTAssertEqual(p.sorted(), Array(0..<n), "n \(n) seed \(seed): not a permutation")
        for i in 0..<n { XCTAssertNotEqual(p[i], i, "n \(n) seed \(seed): fixed point \(i)") }
      }
    }
  }

  /// No derangement of 0 or 1 elements exists: the identity.
  func testTrivialSizes() {
    XCTAssertEqual(derangement(0, seed: 3), [])
    XCTAssertEqual(derangement(1, seed: 3), [0])
    XCTAssertEqual(derangement(2, seed: 3), [1, 0])
  }

  func testDeterministicPerSeed() {
    for seed: UInt64 in 0..<50 { XCTAssertEqual(derangement(16, seed: seed), derangement(16, seed: seed)) }
    let distinct = Set((0..<50).map { derangement(16, seed: UInt64($0)) })
    XCTAssertGreaterThan(distinct.count, 45, "seeds give the same derangement")
  }

  /// n = 4 has D(4) = 9 derangements, n = 5 has D(5) = 44. Over 1000 D(n) consecutive seeds each
  /// must appear, and the chi-square statistic of the counts against 1000 each must stay below
  /// the 0.9999 quantile of its distribution (df 8: 31.8; df 43: 85.0).
  func testAllDerangementsReachedUniformly() {
    for (n, count, limit) in [(4, 9, 31.8), (5, 44, 85.0)] {
      let draws = 1000 * count
      var seen: [[Int]: Int] = [:]
      for seed in 0..<draws { seen[derangement(n, seed: UInt64(seed)), default: 0] += 1 }
      XCTAssertEqual(seen.count, count, "n \(n): \(seen.count) of \(count) derangements reached")
      let expected = Double(draws) / Double(count)
      let chi2 = seen.values.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
      XCTAssertLessThan(chi2, limit, "n \(n): chi-square \(chi2) of the counts \(seen.values.sorted())")
    }
  }
}
