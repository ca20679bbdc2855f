import CBLAS
import Foundation
import SafeTensors

/// 1-nearest-neighbour classifier with cosine distance, as the CoDE authors fit it with
/// scikit-learn: `KNeighborsClassifier(n_neighbors=1, metric='cosine')`.
///
/// Distance 1 - x.p / (|x| |p|); rows are L2-normalised once (a zero row stays zero,
/// as scikit-learn's `normalize` leaves it) and similarities S = X P^T `[n, m]` come
/// from `cblas_sgemm` in blocks of rows. Label = label of the most similar probe row
/// (fake when the best fake similarity is strictly larger than the best real one).
/// Score = d(nearest real) - d(nearest fake) = s_fake - s_real, so score > 0 iff fake.
public struct KNNClassifier: Sendable {
  public let dimension: Int
  /// L2-normalised probe rows, row-major `[count, dimension]`.
  public let probe: [Float]
  /// 0 real / 1 fake per probe row.
  public let probeLabels: [Int]

  public var count: Int { probeLabels.count }

  public init(normalizedProbe: [Float], dimension: Int, labels: [Int]) {
    precondition(normalizedProbe.count == labels.count * dimension)
    self.dimension = dimension
    self.probe = normalizedProbe
    self.probeLabels = labels
  }

  /// Keeps the labelled rows (0 real, > 0 fake) of `[labels.count, dimension]` embeddings.
  public static func fit(embeddings x: [Float], dimension d: Int, labels: [Int64]) throws -> KNNClassifier {
    precondition(x.count == labels.count * d)
    let rows = BinaryRows(labels: labels)
    guard rows.nReal > 0 else { throw EvaluationError(.noData, "kNN: the probe set has no real (label 0) embeddings") }
    guard rows.nFake > 0 else { throw EvaluationError(.noData, "kNN: the probe set has no fake (label > 0) embeddings") }
    var p = [Float](repeating: 0, count: rows.y.count * d)
    for (r, i) in rows.index.enumerated() {
      for j in 0..<d { p[r * d + j] = x[i * d + j] }
    }
    normalizeRows(&p, dimension: d)
    return KNNClassifier(normalizedProbe: p, dimension: d, labels: rows.y)
  }

  /// Rows divided by their L2 norm (zero rows left at zero).
  static func normalizeRows(_ a: inout [Float], dimension d: Int) {
    let n = a.count / d
    a.withUnsafeMutableBufferPointer { p in
      for i in 0..<n {
        let row = p.baseAddress! + i * d
        var s: Float = 0
        for j in 0..<d { s += row[j] * row[j] }
        if s > 0 {
          let inv = 1 / s.squareRoot()
          for j in 0..<d { row[j] *= inv }
        }
      }
    }
  }

  /// Labels and scores for `[count, dimension]` rows.
  public func predict(_ x: [Float], count n: Int) -> Predictions {
    let d = dimension, m = self.count
    var q = x
    KNNClassifier.normalizeRows(&q, dimension: d)
    var labels = [Int](repeating: 0, count: n)
    var scores = [Double](repeating: 0, count: n)
    let block = 256
    var sim = [Float](repeating: 0, count: block * m)
    q.withUnsafeBufferPointer { qp in
      probe.withUnsafeBufferPointer { pp in
        sim.withUnsafeMutableBufferPointer { sp in
          var start = 0
          while start < n {
            let b = min(block, n - start)
            // S[b, m] = Q[start..<start+b, d] * P[m, d]^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(m), Int32(d),
                        1, qp.baseAddress! + start * d, Int32(d), pp.baseAddress!, Int32(d),
                        0, sp.baseAddress!, Int32(m))
            for r in 0..<b {
              let row = sp.baseAddress! + r * m
              var bestReal = -Float.infinity, bestFake = -Float.infinity
              for k in 0..<m {
                let s = row[k]
                if probeLabels[k] == 0 { if s > bestReal { bestReal = s } } else if s > bestFake { bestFake = s }
              }
              labels[start + r] = bestFake > bestReal ? 1 : 0
              scores[start + r] = Double(bestFake) - Double(bestReal)
            }
            start += b
          }
        }
      }
    }
    return Predictions(labels: labels, scores: scores)
  }

  func tensors() -> SafeTensorsWriter {
    var w = SafeTensorsWriter()
    w.add("probe", floats: probe, shape: [count, dimension])
    w.add("labels", int64: probeLabels.map(Int64.init), shape: [count])
    w.metadata["metric"] = "cosine"
    w.metadata["n_neighbors"] = "1"
    return w
  }

  init(file f: SafeTensorsFile, dimension d: Int) throws {
    let info = try f.info("probe")
    guard info.shape.count == 2, info.shape[1] == d else {
      throw EvaluationError(.badFile(path: f.path), "\(f.path): tensor probe has shape \(info.shape), expected [N, \(d)]")
    }
    let p = try tensor(f, "probe", count: info.count)
    let l = try f.ints("labels")
    guard l.count == info.shape[0], l.allSatisfy({ $0 == 0 || $0 == 1 }) else {
      throw EvaluationError(.badFile(path: f.path), "\(f.path): tensor labels must hold one 0/1 label per probe row")
    }
    self.init(normalizedProbe: p, dimension: d, labels: l.map { Int($0) })
  }
}
