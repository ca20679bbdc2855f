import Foundation

/// Figures that tell a learning embedding from CoDE's collapse plateau, where every
/// embedding is the same vector (each InfoNCE term is then `ln(1 + G)`, see
/// `CoDELoss.LossTerms`).
///
/// Rows are L2-normalised as the loss normalises them, `z = x / max(|x|, 1e-12)`. Over
/// the `n` rows added (n_r real, n_f fake), with `S = sum_i z_i`, `S_r`, `S_f` the sums
/// over the real and the fake rows and `Q = sum_i |z_i|^2` (= n unless a row is zero):
///
///     meanCos     = (|S|^2 - Q) / (n (n - 1))           mean of z_i . z_j over the pairs i != j
///     centroidCos = S_r . S_f / (|S_r| |S_f|)            cosine of the real and the fake centroid
///     dimStd      = (1/D) sum_c sqrt(sum_i z_ic^2 / n - (S_c / n)^2)
///                                                        mean per-dimension (population) std
///
/// A collapsed embedding has meanCos = 1, centroidCos = 1, dimStd = 0. Undefined
/// figures (fewer than two rows, a zero centroid) are NaN (null in metrics.jsonl).
///
/// In training (`CoDEStep.embeddingHealth()`) the rows are the four key views that the
/// step all-gathers for the loss, for every record of the global batch: aug_real r' and
/// global_real r_g (real, 2G rows) and aug_fake f' and global_fake f_g (fake, 2G rows),
/// n = 4G. The base views r, f and the local views stay on their ranks and are not
/// included. Every rank holds the same gathered rows, so the figures do not depend on
/// the number of ranks beyond the rounding of the embeddings themselves.
///
/// The accumulators are allocated once per dimension; `reset`, `add` and `figures`
/// allocate nothing.
public final class EmbeddingHealthMeter {
  public struct Figures: Equatable {
    public var meanCos: Double
    public var centroidCos: Double
    public var dimStd: Double
    /// Metric names (metrics.jsonl, TensorBoard `train/...`, `cde step` output), in the order of `values`.
    public static let names = ["emb_mean_cos", "emb_centroid_cos", "emb_dim_std"]
    public var values: [Double] { [meanCos, centroidCos, dimStd] }
  }

  public private(set) var dimension = 0
  /// Per dimension: sums of the real rows, of the fake rows, and of the squares of all rows.
  var sumReal: [Double] = [], sumFake: [Double] = [], sumSq: [Double] = []
  var rowsReal = 0, rowsFake = 0, squares = 0.0

  public init() {}

  /// Starts a new set of rows of `dim` floats.
  public func reset(dimension dim: Int) {
    if dim != dimension {
      dimension = dim
      sumReal = [Double](repeating: 0, count: dim)
      sumFake = sumReal
      sumSq = sumReal
    } else {
      for c in 0..<dim { sumReal[c] = 0; sumFake[c] = 0; sumSq[c] = 0 }
    }
    rowsReal = 0; rowsFake = 0; squares = 0
  }

  /// Adds `count` raw rows `[count, D]` of the real or the fake class.
  public func add(_ x: UnsafePointer<Float>, rows count: Int, real: Bool) {
    let d = dimension
    for r in 0..<count {
      let row = x + r * d
      var s = 0.0
      for c in 0..<d { s += Double(row[c]) * Double(row[c]) }
      let inv = 1 / max(s.squareRoot(), 1e-12)
      var q = 0.0
      for c in 0..<d {
        let z = Double(row[c]) * inv
        sumSq[c] += z * z
        q += z * z
        if real { sumReal[c] += z } else { sumFake[c] += z }
      }
      squares += q
    }
    if real { rowsReal += count } else { rowsFake += count }
  }

  /// The figures of the rows added since `reset`.
  public func figures() -> Figures {
    let d = dimension, n = Double(rowsReal + rowsFake)
    var s2 = 0.0, rr = 0.0, ff = 0.0, rf = 0.0, std = 0.0
    for c in 0..<d {
      let r = sumReal[c], f = sumFake[c], t = r + f
      s2 += t * t; rr += r * r; ff += f * f; rf += r * f
      let mean = t / n
      std += max(0, sumSq[c] / n - mean * mean).squareRoot()
    }
    let meanCos = n >= 2 ? (s2 - squares) / (n * (n - 1)) : .nan
    let centroid = rr > 0 && ff > 0 ? rf / (rr.squareRoot() * ff.squareRoot()) : .nan
    return Figures(meanCos: meanCos, centroidCos: centroid, dimStd: n > 0 && d > 0 ? std / Double(d) : .nan)
  }
}
