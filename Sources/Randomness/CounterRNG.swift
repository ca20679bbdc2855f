/// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11, "Parallel
/// random numbers: as easy as 1, 2, 3").
///
/// Every draw is a pure function of (key, counter): key = the 64-bit seed, counter =
/// (block, epoch, record low 32 bits, stream | record high 16 bits << 16). Each
/// (seed, epoch, record, stream) therefore owns an independent sequence whose n-th
/// value does not depend on how many threads or which order produced the others.
/// One Philox block gives 128 bits = two `nextUInt64()` values.
///
/// Streams used by the view maker: 0...7 = the eight views (see `CoDEViewMaker`),
/// `CounterRNG.generatorStream` = the generator draw of a record.
public struct CounterRNG: RandomNumberGenerator, Sendable {
  public static let generatorStream = 0xFFFF

  @usableFromInline var key: (UInt32, UInt32)
  @usableFromInline var ctr: (UInt32, UInt32, UInt32, UInt32)
  @usableFromInline var buffer: (UInt64, UInt64) = (0, 0)
  @usableFromInline var available = 0

  /// - Parameters: epoch (0 ..< 2^32), record (0 ..< 2^48), stream (0 ..< 2^16).
  public init(seed: UInt64, epoch: Int, record: Int, stream: Int) {
    key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    let r = UInt64(truncatingIfNeeded: record)
    ctr = (0, UInt32(truncatingIfNeeded: epoch), UInt32(truncatingIfNeeded: r),
           UInt32(truncatingIfNeeded: stream) & 0xFFFF | (UInt32(truncatingIfNeeded: r >> 32) & 0xFFFF) << 16)
  }

  /// Philox4x32 with `rounds` rounds on one counter block (exposed for known-answer tests).
  public static func philox4x32(counter c: (UInt32, UInt32, UInt32, UInt32), key k: (UInt32, UInt32),
                                rounds: Int = 10) -> (UInt32, UInt32, UInt32, UInt32) {
    var c = c
    var k = k
    for r in 0..<rounds {
      if r > 0 { k.0 &+= 0x9E37_79B9; k.1 &+= 0xBB67_AE85 }
      let p0 = UInt64(0xD251_1F53) &* UInt64(c.0)
      let p1 = UInt64(0xCD9E_8D57) &* UInt64(c.2)
      c = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
           UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0))
    }
    return c
  }

  /// Next 64 random bits.
  @inlinable public mutating func nextUInt64() -> UInt64 {
    if available == 0 {
      let o = CounterRNG.philox4x32(counter: ctr, key: key)
      ctr.0 &+= 1
      buffer = (UInt64(o.0) | UInt64(o.1) << 32, UInt64(o.2) | UInt64(o.3) << 32)
      available = 2
      return buffer.0
    }
    available = 0
    return buffer.1
  }

  public mutating func next() -> UInt64 { nextUInt64() }

  /// Uniform double in [0, 1): the top 53 bits of `nextUInt64()` times 2^-53.
  @inlinable public mutating func uniform() -> Double {
    Double(nextUInt64() >> 11) * 0x1.0p-53
  }

  /// Uniform double in [a, b): a + (b - a) * uniform().
  @inlinable public mutating func uniform(_ a: Double, _ b: Double) -> Double {
    a + (b - a) * uniform()
  }

  /// Uniform integer in 0 ..< n (n > 0), unbiased (Lemire's multiply-and-reject).
  @inlinable public mutating func int(below n: Int) -> Int {
    precondition(n > 0, "CounterRNG.int(below:) needs n > 0")
    let bound = UInt64(n)
    var m = nextUInt64().multipliedFullWidth(by: bound)
    if m.low < bound {
      let t = (0 &- bound) % bound
      while m.low < t { m = nextUInt64().multipliedFullWidth(by: bound) }
    }
    return Int(m.high)
  }

  /// Standard normal deviate (Box-Muller with two uniforms; the second value is discarded).
  @inlinable public mutating func normal() -> Double {
    let u1 = 1.0 - uniform()  // (0, 1]
    let u2 = uniform()
    return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
  }
}

@usableFromInline func _log(_ x: Double) -> Double { Foundation.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Foundation.cos(x) }

import Foundation
