import Foundation

/// SplitMix64 (Steele, Lea and Flood, OOPSLA'14, "Fast splittable pseudorandom number
/// generators"): a 64-bit Weyl sequence through a mixing finaliser.
///
///     state += 0x9E3779B97F4A7C15
///     z = state; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
///     z = (z ^ z>>27) * 0x94D049BB133111EB; next = z ^ z>>31
///
/// Used for weight initialisation, the epoch permutations (keyed with `mix`), synthetic
/// tensors and test data. `CounterRNG` (Philox) is the counter-based member of the family,
/// for draws that must not depend on order.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  public static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

  @usableFromInline var state: UInt64

  @inlinable public init(seed: UInt64) { state = seed }

  /// The finaliser applied to `x + gamma`: the first output of a generator seeded with `x`.
  /// Used to derive stream keys (`mix(mix(seed) ^ epoch)`).
  @inlinable public static func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ gamma
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Next 64 random bits.
  @inlinable public mutating func next() -> UInt64 {
    let z = SplitMix64.mix(state)
    state &+= SplitMix64.gamma
    return z
  }

  /// Uniform integer in 0 ..< n (n > 0), unbiased (Lemire's multiply-shift with rejection).
  @inlinable public mutating func below(_ n: UInt64) -> UInt64 {
    var m = next().multipliedFullWidth(by: n)
    if m.low < n {
      let t = (0 &- n) % n
      while m.low < t { m = next().multipliedFullWidth(by: n) }
    }
    return m.high
  }

  /// Uniform double in [0, 1): the top 53 bits of `next()` times 2^-53.
  @inlinable public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

  /// Standard normal deviate (Box-Muller, u1 clamped to 1e-300; the second value is discarded).
  @inlinable public mutating func normal() -> Double {
    let u1 = max(uniform(), 1e-300), u2 = uniform()
    return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
  }
}
