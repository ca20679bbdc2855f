import Foundation
import Randomness

/// How records are distributed over ranks.
public enum Sampling: String, Codable, Sendable, CaseIterable {
  /// One permutation of all records per epoch, seeded by (seed, epoch); step s takes the
  /// records at positions s*G ..< (s+1)*G and rank r of N the slice r*B ..< (r+1)*B of
  /// them (B = G/N). Independent of N.
  case global
  /// Rank r of N reads only shards r, r+N, r+2N, ... and shuffles its own records per
  /// epoch (seed, epoch, r). Exact resume needs the same N.
  case shardLocal = "shard-local"
}

/// The record order of one epoch: a Fisher-Yates permutation of 0..<count drawn from a
/// SplitMix64 stream keyed by mix(mix(mix(seed) ^ epoch) ^ stream). `stream` is 0 for
/// global sampling and 1 + rank for shard-local sampling.
public func epochPermutation(count: Int, seed: UInt64, epoch: Int, stream: UInt64 = 0) -> [Int32] {
  precondition(count <= Int(Int32.max))
  var rng = SplitMix64(seed: SplitMix64.mix(SplitMix64.mix(SplitMix64.mix(seed) ^ UInt64(bitPattern: Int64(epoch))) ^ stream))
  var p = [Int32](unsafeUninitializedCapacity: count) { buf, n in
    for i in 0..<count { buf[i] = Int32(i) }
    n = count
  }
  if count > 1 {
    p.withUnsafeMutableBufferPointer { b in
      for i in stride(from: count - 1, to: 0, by: -1) {
        let j = Int(rng.below(UInt64(i + 1)))
        b.swapAt(i, j)
      }
    }
  }
  return p
}

/// The position of an epoch's data stream that a checkpoint stores: the NEXT batch to
/// produce is step `step` of epoch `epoch`. `sampling` and `worldSize` are recorded so
/// that a shard-local stream can tell when it is resumed with another N.
public struct DataCursor: Codable, Equatable, Sendable {
  public var epoch: Int
  public var step: Int
  public var sampling: Sampling?
  public var worldSize: Int?
  public init(epoch: Int = 0, step: Int = 0, sampling: Sampling? = nil, worldSize: Int? = nil) {
    self.epoch = epoch; self.step = step; self.sampling = sampling; self.worldSize = worldSize
  }
}
