import CLinear
import Foundation
import SafeTensors

/// L2-regularised logistic regression with balanced class weights, as the CoDE authors
/// fit it with scikit-learn: `LogisticRegression(C=0.316, class_weight='balanced')`
/// (default solver lbfgs, intercept not regularised). Minimises
///
///     0.5 |w|^2 + C sum_i s_i log(1 + exp(-y_i (w.x_i + b))),   y_i in {-1 real, +1 fake},
///     s_i = n / (2 n_{class(i)})   (scikit-learn's class_weight='balanced'),
///
/// with liblinear's trust-region Newton solver (L2R_LR). liblinear regularises its bias
/// weight, so the bias feature is set to a large constant B (1000 x the RMS feature
/// value): the bias weight w_B gives b = B w_B, and its penalty 0.5 (b / B)^2 is
/// negligible; on CoDE-like embeddings the coefficients then agree with scikit-learn's
/// unregularised-intercept solution to about 1e-5.
///
/// Prediction: score = w.x + b (double precision), fake iff score > 0.
public struct LogisticRegressionClassifier: Sendable {
  public let dimension: Int
  /// w, `[dimension]`.
  public let coefficients: [Double]
  public let intercept: Double

  /// The authors' inverse regularisation strength.
  public static let defaultC = 0.316

  public init(coefficients: [Double], intercept: Double) {
    self.dimension = coefficients.count
    self.coefficients = coefficients
    self.intercept = intercept
  }

  /// Fits on row-major `[labels.count, dimension]` embeddings; labels 0 real, > 0 fake,
  /// < 0 ignored. `tolerance` is liblinear's relative gradient-norm stopping criterion.
  public static func fit(embeddings x: [Float], dimension d: Int, labels: [Int64],
                         c: Double = defaultC, balanced: Bool = true,
                         tolerance: Double = 1e-6) throws -> LogisticRegressionClassifier {
    precondition(x.count == labels.count * d)
    let rows = BinaryRows(labels: labels)
    guard rows.nReal > 0 else { throw EvaluationError(.noData, "logistic regression: the probe set has no real (label 0) embeddings") }
    guard rows.nFake > 0 else { throw EvaluationError(.noData, "logistic regression: the probe set has no fake (label > 0) embeddings") }
    let n = rows.y.count
    // Bias feature value B: large against the features so the intercept is almost free.
    var sumSq = 0.0
    for i in rows.index { for j in 0..<d { let v = Double(x[i * d + j]); sumSq += v * v } }
    let rms = (sumSq / Double(n * d)).squareRoot()
    let biasValue = 1000 * (rms > 0 ? rms : 1)

    // Nodes: d features, the bias node (index d + 1), the terminator (index -1).
    let stride = d + 2
    let nodes = UnsafeMutablePointer<feature_node>.allocate(capacity: n * stride)
    let rowPtrs = UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>.allocate(capacity: n)
    let y = UnsafeMutablePointer<Double>.allocate(capacity: n)
    defer { nodes.deallocate(); rowPtrs.deallocate(); y.deallocate() }
    for (r, i) in rows.index.enumerated() {
      let base = nodes + r * stride
      for j in 0..<d { base[j] = feature_node(index: Int32(j + 1), value: Double(x[i * d + j])) }
      base[d] = feature_node(index: Int32(d + 1), value: biasValue)
      base[d + 1] = feature_node(index: -1, value: 0)
      rowPtrs[r] = base
      y[r] = Double(rows.y[r])
    }
    var prob = problem(l: Int32(n), n: Int32(d + 1), y: y, x: rowPtrs, bias: biasValue)

    var weightLabel: [Int32] = [0, 1]
    var weight: [Double] = balanced
      ? [Double(n) / (2 * Double(rows.nReal)), Double(n) / (2 * Double(rows.nFake))]
      : [1, 1]
    let result: (w: [Double], sign: Double) = try weightLabel.withUnsafeMutableBufferPointer { wl in
      try weight.withUnsafeMutableBufferPointer { wv in
        var param = parameter(solver_type: Int32(L2R_LR), eps: tolerance, C: c, nr_weight: 2,
                              weight_label: wl.baseAddress, weight: wv.baseAddress, p: 0.1, init_sol: nil)
        if let msg = check_parameter(&prob, &param) {
          throw EvaluationError(.classifierFailed, "logistic regression: liblinear rejected the parameters: \(String(cString: msg))")
        }
        set_print_string_function { _ in }
        guard let model = train(&prob, &param) else { throw EvaluationError(.classifierFailed, "logistic regression: liblinear training failed") }
        defer { var m: UnsafeMutablePointer<model>? = model; free_and_destroy_model(&m) }
        let nw = Int(model.pointee.nr_feature) + 1
        let w = Array(UnsafeBufferPointer(start: model.pointee.w, count: nw))
        // Binary liblinear: decision value > 0 means label[0].
        let sign: Double = model.pointee.label[0] == 1 ? 1 : -1
        return (w, sign)
      }
    }
    precondition(result.w.count == d + 1)
    let coef = result.w[0..<d].map { $0 * result.sign }
    return LogisticRegressionClassifier(coefficients: coef, intercept: result.sign * result.w[d] * biasValue)
  }

  /// Scores w.x + b and labels (fake iff score > 0) for `[count, dimension]` rows.
  public func predict(_ x: [Float], count: Int) -> Predictions {
    var scores = [Double](repeating: 0, count: count)
    var labels = [Int](repeating: 0, count: count)
    let d = dimension
    x.withUnsafeBufferPointer { xp in
      coefficients.withUnsafeBufferPointer { w in
        for i in 0..<count {
          var s = intercept
          let row = xp.baseAddress! + i * d
          for j in 0..<d { s += w[j] * Double(row[j]) }
          scores[i] = s
          labels[i] = s > 0 ? 1 : 0
        }
      }
    }
    return Predictions(labels: labels, scores: scores)
  }

  func tensors() -> SafeTensorsWriter {
    var w = SafeTensorsWriter()
    w.add("coef", doubles: coefficients, shape: [dimension])
    w.add("intercept", doubles: [intercept], shape: [1])
    w.metadata["C"] = String(Self.defaultC)
    w.metadata["class_weight"] = "balanced"
    return w
  }

  init(file f: SafeTensorsFile, dimension d: Int) throws {
    let coef = try doubles(f, "coef", count: d)
    let b = try doubles(f, "intercept", count: 1)
    self.init(coefficients: coef, intercept: b[0])
  }
}
