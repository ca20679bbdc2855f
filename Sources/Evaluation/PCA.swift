import CBLAS
import Foundation

/// Principal component analysis of row-major `[n, d]` data.
///
/// Covariance C = Xc^T Xc / (n - 1) of the centred rows (double precision, `cblas_dsyrk`),
/// then all eigenpairs of the symmetric d x d matrix by the cyclic Jacobi method;
/// the components are the eigenvectors of the `k` largest eigenvalues, each signed so
/// that its largest-magnitude entry is positive. `explainedVariance` = those eigenvalues
/// (scikit-learn's `explained_variance_`).
public struct PCA: Sendable {
  public let mean: [Double]
  /// `[k, d]`, row-major, orthonormal rows.
  public let components: [Double]
  public let explainedVariance: [Double]
  /// Sum of all eigenvalues (total variance).
  public let totalVariance: Double
  public let dimension: Int
  public var count: Int { explainedVariance.count }

  public init(data x: [Float], rows n: Int, dimension d: Int, components k: Int = 2) {
    precondition(x.count == n * d && n >= 1 && k >= 1 && k <= d)
    var mean = [Double](repeating: 0, count: d)
    for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i * d + j]) } }
    for j in 0..<d { mean[j] /= Double(n) }
    var xc = [Double](repeating: 0, count: n * d)
    for i in 0..<n { for j in 0..<d { xc[i * d + j] = Double(x[i * d + j]) - mean[j] } }
    var c = [Double](repeating: 0, count: d * d)
    let scale = 1 / Double(max(n - 1, 1))
    xc.withUnsafeBufferPointer { xp in
      c.withUnsafeMutableBufferPointer { cp in
        // Upper triangle of C = scale * Xc^T Xc.
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(n), scale, xp.baseAddress!, Int32(d), 0,
                    cp.baseAddress!, Int32(d))
      }
    }
    for i in 0..<d { for j in 0..<i { c[i * d + j] = c[j * d + i] } }
    let (values, vectors) = PCA.jacobiEigen(c, d)
    let order = (0..<d).sorted { values[$0] > values[$1] }
    var comps = [Double](repeating: 0, count: k * d)
    for r in 0..<k {
      let col = order[r]
      var v = (0..<d).map { vectors[$0 * d + col] }
      let big = v.indices.max { abs(v[$0]) < abs(v[$1]) }!
      if v[big] < 0 { v = v.map { -$0 } }
      for j in 0..<d { comps[r * d + j] = v[j] }
    }
    self.mean = mean
    self.components = comps
    self.explainedVariance = (0..<k).map { max(values[order[$0]], 0) }
    self.totalVariance = values.reduce(0) { $0 + max($1, 0) }
    self.dimension = d
  }

  /// Projections `[n, k]` of row-major `[n, d]` data.
  public func transform(_ x: [Float], rows n: Int) -> [Double] {
    let d = dimension, k = count
    var out = [Double](repeating: 0, count: n * k)
    for i in 0..<n {
      for r in 0..<k {
        var s = 0.0
        for j in 0..<d { s += (Double(x[i * d + j]) - mean[j]) * components[r * d + j] }
        out[i * k + r] = s
      }
    }
    return out
  }

  /// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a
  /// symmetric `n x n` matrix by cyclic Jacobi rotations, until the off-diagonal
  /// Frobenius norm is below 1e-14 of the total (at most 100 sweeps).
  static func jacobiEigen(_ m: [Double], _ n: Int) -> (values: [Double], vectors: [Double]) {
    var a = m
    var v = [Double](repeating: 0, count: n * n)
    for i in 0..<n { v[i * n + i] = 1 }
    var total = 0.0
    for x in a { total += x * x }
    a.withUnsafeMutableBufferPointer { a in
      v.withUnsafeMutableBufferPointer { v in
        for _ in 0..<100 {
          var off = 0.0
          for p in 0..<n { for q in (p + 1)..<max(n, p + 1) { off += 2 * a[p * n + q] * a[p * n + q] } }
          if off <= 1e-28 * total || off == 0 { break }
          for p in 0..<(n - 1) {
            for q in (p + 1)..<n {
              let apq = a[p * n + q]
              if apq == 0 { continue }
              let app = a[p * n + p], aqq = a[q * n + q]
              let theta = (aqq - app) / (2 * apq)
              let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
              let c = 1 / (t * t + 1).squareRoot(), s = t * c
              // A <- J^T A J on rows/columns p and q.
              for k in 0..<n {
                let akp = a[k * n + p], akq = a[k * n + q]
                a[k * n + p] = c * akp - s * akq
                a[k * n + q] = s * akp + c * akq
              }
              for k in 0..<n {
                let apk = a[p * n + k], aqk = a[q * n + k]
                a[p * n + k] = c * apk - s * aqk
                a[q * n + k] = s * apk + c * aqk
              }
              for k in 0..<n {
                let vkp = v[k * n + p], vkq = v[k * n + q]
                v[k * n + p] = c * vkp - s * vkq
                v[k * n + q] = s * vkp + c * vkq
              }
            }
          }
        }
      }
    }
    return ((0..<n).map { a[$0 * n + $0] }, v)
  }
}
