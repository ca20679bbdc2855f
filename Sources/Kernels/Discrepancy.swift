/// How far a tensor `x` is from a reference `r` of the same size, accumulated in Double:
/// `squaredError = sum (x - r)^2`, `squaredReference = sum r^2`, `maxAbs = max |x - r|`, and
/// the relative Frobenius error `|x - r|_F / |r|_F = sqrt(squaredError / max(squaredReference, 1e-300))`.
/// Used by `cde compare` and the parity tests.
public struct Discrepancy: Sendable {
  public private(set) var squaredError = 0.0
  public private(set) var squaredReference = 0.0
  public private(set) var maxAbs = 0.0

  public init(_ x: [Float], reference r: [Float]) {
    precondition(x.count == r.count, "size mismatch \(x.count) vs \(r.count)")
    for i in 0..<x.count {
      let d = Double(x[i]) - Double(r[i])
      squaredError += d * d
      squaredReference += Double(r[i]) * Double(r[i])
      maxAbs = max(maxAbs, abs(d))
    }
  }

  /// `|x - r|_F / |r|_F` (with `|r|_F^2` floored at 1e-300).
  public var relativeFrobenius: Double { (squaredError / max(squaredReference, 1e-300)).squareRoot() }
}

/// `|a - b|_F / |b|_F`: `Discrepancy(a, reference: b).relativeFrobenius`.
public func relFrobenius(_ a: [Float], _ b: [Float]) -> Double { Discrepancy(a, reference: b).relativeFrobenius }
