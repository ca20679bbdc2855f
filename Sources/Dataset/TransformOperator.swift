import Foundation
import Randomness
import Imaging

/// One application of T: the drawn ops (list order) and their values.
public struct TransformDraw: Sendable, Equatable {
  public var ops: [TransformOp]
  public var values: [Double]
}

/// The transform operator T: n ~ U{0, ..., numTransform}, n distinct ops drawn
/// uniformly, applied in list order with their drawn values.
public struct TransformOperator: Sendable {
  public var numTransform: Int
  public init(numTransform: Int = 2) {
    precondition(numTransform >= 0 && numTransform <= TransformOp.allCases.count, "numTransform out of range")
    self.numTransform = numTransform
  }

  /// Applies T to `img`, drawing everything from `rng`. Returns the image and what was drawn.
  public func apply(_ img: RGBImage, rng: inout CounterRNG) -> (RGBImage, TransformDraw) {
    let n = rng.int(below: numTransform + 1)
    // n distinct indices by a partial Fisher-Yates shuffle, then sorted (list order).
    var idx = Array(0..<TransformOp.allCases.count)
    for k in 0..<n {
      let r = k + rng.int(below: idx.count - k)
      idx.swapAt(k, r)
    }
    let ops = idx[0..<n].sorted().map { TransformOp(rawValue: $0)! }
    var out = img
    var values: [Double] = []
    for op in ops {
      let v = op.drawValue(&rng)
      values.append(v)
      out = op.apply(out, value: v, rng: &rng)
    }
    return (out, TransformDraw(ops: ops, values: values))
  }
}
