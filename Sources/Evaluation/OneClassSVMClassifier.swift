import CBLAS
import CSVM
import Foundation
import SafeTensors

/// One-class SVM fitted on real embeddings only, as the CoDE authors fit it with
/// scikit-learn: `OneClassSVM(nu=0.1, kernel='poly', gamma='auto')` (degree 3,
/// coef0 0, gamma = 1 / D). Trained by libsvm (ONE_CLASS, POLY, tolerance 1e-3,
/// shrinking, as scikit-learn calls it); the decision function is
///
///     f(x) = sum_i a_i (gamma sv_i.x + coef0)^degree - rho,
///
/// evaluated here in double precision with `cblas_dgemm` for the dot products.
/// f(x) > 0: inlier = real (label 0), otherwise outlier = fake (label 1), as libsvm
/// predicts. Score (higher = more fake) = -f(x).
public struct OneClassSVMClassifier: Sendable {
  public let dimension: Int
  /// Support vectors, row-major `[supportCount, dimension]`.
  public let supportVectors: [Double]
  /// a_i, `[supportCount]`.
  public let dualCoefficients: [Double]
  public let rho: Double
  public let gamma: Double
  public let coef0: Double
  public let degree: Int

  public var supportCount: Int { dualCoefficients.count }

  public static let defaultNu = 0.1
  public static let defaultDegree = 3

  public init(supportVectors: [Double], dualCoefficients: [Double], rho: Double, dimension: Int,
              gamma: Double, coef0: Double = 0, degree: Int = defaultDegree) {
    precondition(supportVectors.count == dualCoefficients.count * dimension)
    self.supportVectors = supportVectors
    self.dualCoefficients = dualCoefficients
    self.rho = rho
    self.dimension = dimension
    self.gamma = gamma
    self.coef0 = coef0
    self.degree = degree
  }

  /// Fits on the real rows (label 0) of `[labels.count, dimension]` embeddings.
  /// `gamma` defaults to 1 / dimension (scikit-learn's 'auto'; 1/192 for CoDE).
  public static func fit(embeddings x: [Float], dimension d: Int, labels: [Int64],
                         nu: Double = defaultNu, gamma: Double? = nil, degree: Int = defaultDegree,
                         coef0: Double = 0, tolerance: Double = 1e-3, cacheMB: Double = 200) throws -> OneClassSVMClassifier {
    precondition(x.count == labels.count * d)
    let real = labels.indices.filter { labels[$0] == 0 }
    guard !real.isEmpty else { throw EvaluationError(.noData, "one-class SVM: the probe set has no real (label 0) embeddings") }
    let g = gamma ?? 1 / Double(d)
    let n = real.count
    let stride = d + 1
    let nodes = UnsafeMutablePointer<svm_node>.allocate(capacity: n * stride)
    let rowPtrs = UnsafeMutablePointer<UnsafeMutablePointer<svm_node>?>.allocate(capacity: n)
    let y = UnsafeMutablePointer<Double>.allocate(capacity: n)
    defer { nodes.deallocate(); rowPtrs.deallocate(); y.deallocate() }
    for (r, i) in real.enumerated() {
      let base = nodes + r * stride
      for j in 0..<d { base[j] = svm_node(index: Int32(j + 1), value: Double(x[i * d + j])) }
      base[d] = svm_node(index: -1, value: 0)
      rowPtrs[r] = base
      y[r] = 1
    }
    var prob = svm_problem(l: Int32(n), y: y, x: rowPtrs)
    var param = svm_parameter(svm_type: Int32(ONE_CLASS), kernel_type: Int32(POLY), degree: Int32(degree), gamma: g,
                              coef0: coef0, cache_size: cacheMB, eps: tolerance, C: 1, nr_weight: 0,
                              weight_label: nil, weight: nil, nu: nu, p: 0.1, shrinking: 1, probability: 0)
    if let msg = svm_check_parameter(&prob, &param) {
      throw EvaluationError(.classifierFailed, "one-class SVM: libsvm rejected the parameters: \(String(cString: msg))")
    }
    svm_set_print_string_function { _ in }
    guard let model = svm_train(&prob, &param) else { throw EvaluationError(.classifierFailed, "one-class SVM: libsvm training failed") }
    defer { var m: UnsafeMutablePointer<svm_model>? = model; svm_free_and_destroy_model(&m) }
    let l = Int(model.pointee.l)
    var sv = [Double](repeating: 0, count: l * d)
    var coef = [Double](repeating: 0, count: l)
    let indices = model.pointee.sv_indices!
    let c0 = model.pointee.sv_coef[0]!
    for k in 0..<l {
      let i = real[Int(indices[k]) - 1]  // 1-based index into the training rows
      for j in 0..<d { sv[k * d + j] = Double(x[i * d + j]) }
      coef[k] = c0[k]
    }
    return OneClassSVMClassifier(supportVectors: sv, dualCoefficients: coef, rho: model.pointee.rho[0],
                                 dimension: d, gamma: g, coef0: coef0, degree: degree)
  }

  /// Decision values f(x) for `[count, dimension]` rows.
  public func decisionFunction(_ x: [Float], count n: Int) -> [Double] {
    let d = dimension, m = supportCount
    var out = [Double](repeating: -rho, count: n)
    guard m > 0, n > 0 else { return out }
    let block = 256
    var q = [Double](repeating: 0, count: block * d)
    var dots = [Double](repeating: 0, count: block * m)
    supportVectors.withUnsafeBufferPointer { sv in
      var start = 0
      while start < n {
        let b = min(block, n - start)
        for i in 0..<(b * d) { q[i] = Double(x[start * d + i]) }
        q.withUnsafeBufferPointer { qp in
          dots.withUnsafeMutableBufferPointer { dp in
            // dots[b, m] = Q[b, d] * SV[m, d]^T
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(m), Int32(d),
                        1, qp.baseAddress!, Int32(d), sv.baseAddress!, Int32(d), 0, dp.baseAddress!, Int32(m))
            for r in 0..<b {
              var s = 0.0
              let row = dp.baseAddress! + r * m
              for k in 0..<m { s += dualCoefficients[k] * power(gamma * row[k] + coef0, degree) }
              out[start + r] = s - rho
            }
          }
        }
        start += b
      }
    }
    return out
  }

  /// Labels (0 real when f > 0, else 1 fake) and scores -f(x).
  public func predict(_ x: [Float], count n: Int) -> Predictions {
    let f = decisionFunction(x, count: n)
    return Predictions(labels: f.map { $0 > 0 ? 0 : 1 }, scores: f.map { -$0 })
  }

  /// base^e by squaring (libsvm's powi).
  @inline(__always) func power(_ base: Double, _ e: Int) -> Double {
    var r = 1.0, b = base, k = e
    while k > 0 {
      if k & 1 == 1 { r *= b }
      b *= b
      k >>= 1
    }
    return r
  }

  func tensors() -> SafeTensorsWriter {
    var w = SafeTensorsWriter()
    w.add("support_vectors", doubles: supportVectors, shape: [supportCount, dimension])
    w.add("dual_coef", doubles: dualCoefficients, shape: [supportCount])
    w.add("rho", doubles: [rho], shape: [1])
    w.metadata["kernel"] = "poly"
    w.metadata["gamma"] = String(gamma)
    w.metadata["coef0"] = String(coef0)
    w.metadata["degree"] = String(degree)
    return w
  }

  init(file f: SafeTensorsFile, dimension d: Int) throws {
    let info = try f.info("support_vectors")
    guard info.shape.count == 2, info.shape[1] == d else {
      throw EvaluationError(.badFile(path: f.path), "\(f.path): tensor support_vectors has shape \(info.shape), expected [N, \(d)]")
    }
    let m = info.shape[0]
    let sv = try doubles(f, "support_vectors", count: m * d)
    let a = try doubles(f, "dual_coef", count: m)
    let r = try doubles(f, "rho", count: 1)
    guard let g = f.metadata["gamma"].flatMap(Double.init), let c = f.metadata["coef0"].flatMap(Double.init),
      let deg = f.metadata["degree"].flatMap(Int.init), deg >= 0
    else { throw EvaluationError(.badFile(path: f.path), "\(f.path): metadata gamma/coef0/degree missing or invalid") }
    self.init(supportVectors: sv, dualCoefficients: a, rho: r[0], dimension: d, gamma: g, coef0: c, degree: deg)
  }
}
