import Foundation
import SafeTensors

extension AnyClassifier {
  /// A classifier from the arrays `scripts/sklearn_classifiers.py export` wrote for a
  /// scikit-learn pickle (metadata `estimator`):
  /// - `LogisticRegression`: `coef` [D], `intercept` [1], metadata `fake_index`: scikit-learn's
  ///   decision w.x + b > 0 means classes_[1], so the fake score is w.x + b when classes_[1]
  ///   is fake and -(w.x + b) otherwise;
  /// - `KNeighborsClassifier` (1-NN, cosine): `fit_x` [N, D], `fake` [N] (0 real, 1 fake);
  ///   rows are L2-normalised as `KNNClassifier` keeps them;
  /// - `OneClassSVM` (poly): `support_vectors` [M, D], `dual_coef` [M], `intercept` [1],
  ///   metadata gamma, degree, coef0: f(x) = sum_i a_i (gamma sv_i.x + coef0)^degree + intercept,
  ///   so rho = -intercept; f > 0 is real (scikit-learn's +1, inlier).
  /// Errors name the file and the tensor or key.
  public static func fromScikitLearnExport(path: String) throws -> AnyClassifier {
    let f: SafeTensorsFile
    f = try SafeTensorsFile(path: path)
    let estimator = f.metadata["estimator"] ?? "?"
    func matrix(_ name: String) throws -> (rows: Int, cols: Int, values: [Double]) {
      let info = try f.info(name)
      guard info.shape.count == 2, info.shape[0] > 0, info.shape[1] > 0 else {
        throw EvaluationError(.badFile(path: path), "\(path): tensor \(name) has shape \(info.shape), expected [N, D]")
      }
      return (info.shape[0], info.shape[1], try doubles(f, name, count: info.count))
    }
    do {
      switch estimator {
      case "LogisticRegression":
        let info = try f.info("coef")
        let w = try doubles(f, "coef", count: info.count)
        let b = try doubles(f, "intercept", count: 1)[0]
        guard let fi = f.metadata["fake_index"].flatMap(Int.init), fi == 0 || fi == 1 else {
          throw EvaluationError(.badFile(path: path), "\(path): metadata fake_index missing or not 0/1")
        }
        let sign: Double = fi == 1 ? 1 : -1
        return .linear(LogisticRegressionClassifier(coefficients: w.map { sign * $0 }, intercept: sign * b))
      case "KNeighborsClassifier":
        let x = try matrix("fit_x")
        let fake = try f.ints("fake")
        guard fake.count == x.rows, fake.allSatisfy({ $0 == 0 || $0 == 1 }) else {
          throw EvaluationError(.badFile(path: path), "\(path): tensor fake must hold one 0/1 label per row of fit_x")
        }
        var p = x.values.map { Float($0) }
        KNNClassifier.normalizeRows(&p, dimension: x.cols)
        return .knn(KNNClassifier(normalizedProbe: p, dimension: x.cols, labels: fake.map { Int($0) }))
      case "OneClassSVM":
        let sv = try matrix("support_vectors")
        let a = try doubles(f, "dual_coef", count: sv.rows)
        let b = try doubles(f, "intercept", count: 1)[0]
        guard let g = f.metadata["gamma"].flatMap(Double.init), let c = f.metadata["coef0"].flatMap(Double.init),
              let deg = f.metadata["degree"].flatMap(Int.init), deg >= 0
        else { throw EvaluationError(.badFile(path: path), "\(path): metadata gamma/coef0/degree missing or invalid") }
        return .svm(OneClassSVMClassifier(supportVectors: sv.values, dualCoefficients: a, rho: -b, dimension: sv.cols,
                                          gamma: g, coef0: c, degree: deg))
      default:
        throw EvaluationError(.unsupported(path: path), "\(path): estimator '\(estimator)' is not supported (LogisticRegression, KNeighborsClassifier, OneClassSVM)")
      }
    }
  }
}
