import XCTest
import Randomness

/// `SplitMix64` against its published test vectors, and `below(n)` against the closed-form
/// probabilities of an unbiased draw, at an `n` where a modulo draw is far off.
final class SplitMix64Tests: XCTestCase {
  /// The reference outputs of Vigna's splitmix64.c for state 0, and the three outputs for seed
  /// 1234567 that Java's `SplittableRandom` documentation and the literature quote
  /// (6457827717110365317, 3203168211198807973, 9817491932198370423).
  func testPublishedVectors() {
    var zero = SplitMix64(seed: 0)
    XCTAssertEqual((0..<4).map { _ in zero.next() },
                   [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC])
    var seeded = SplitMix64(seed: 1_234_567)
    XCTAssertEqual((0..<3).map { _ in seeded.next() },
                   [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    XCTAssertEqual(SplitMix64.mix(0), 0xE220_A839_7B1D_CDAF)
  }

  /// n = 3·2^62: an unbiased draw lands in [0, 2^62) with probability 1/3; `next() % n` would
  /// land there with probability 1/2 (2^64 = n + 2^62, so the first 2^62 values come twice).
  /// 30,000 draws: the standard error of the fraction is 0.0027, the bound is 5.5 of them.
  func testBelowIsUnbiasedWhereModuloIsNot() {
    let n: UInt64 = 3 << 62
    var rng = SplitMix64(seed: 42)
    var low = 0
    let draws = 30_000
    for _ in 0..<draws {
      let x = rng.below(n)
      XCTAssertLessThan(x, n)
      if x < 1 << 62 { low += 1 }
    }
    XCTAssertEqual(Double(low) / Double(draws), 1.0 / 3.0, accuracy: 0.015)
  }

  /// Small n: every value reached, counts within the chi-square 0.9999 quantile (df 6: 27.9).
  func testBelowSmallRangeUniform() {
    var rng = SplitMix64(seed: 7)
    var counts = [Int](repeating: 0, count: 7)
    let draws = 70_000
    for _ in 0..<draws { counts[Int(rng.below(7))] += 1 }
    let expected = Double(draws) / 7
    let chi2 = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
    XCTAssertLessThan(chi2, 27.9, "counts \(counts)")
    var one = SplitMix64(seed: 1)
    for _ in 0..<100 { XCTAssertEqual(one.below(1), 0) }
  }
}
