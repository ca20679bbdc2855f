import Foundation
import SafeTensors

/// The three probe classifiers of CoDE's evaluation.
public enum ClassifierKind: String, CaseIterable, Codable, Sendable {
  /// L2 logistic regression, C = 0.316, balanced class weights.
  case linear
  /// 1-nearest neighbour, cosine distance.
  case knn
  /// One-class SVM on real images: polynomial kernel of degree 3, gamma 1/D, nu 0.1.
  case svm

  /// Parses a comma-separated list ("linear,knn,svm"); the error names the option.
  public static func parseList(_ s: String, option: String = "--classifiers") throws -> [ClassifierKind] {
    var out: [ClassifierKind] = []
    for part in s.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
      guard let k = ClassifierKind(rawValue: part) else {
        throw EvaluationError(.invalidArgument, "\(option): unknown classifier '\(part)' (expected linear, knn or svm)")
      }
      if !out.contains(k) { out.append(k) }
    }
    guard !out.isEmpty else { throw EvaluationError(.invalidArgument, "\(option): no classifier given (expected linear, knn or svm)") }
    return out
  }

  /// File name of a saved classifier inside a classifier directory.
  public var fileName: String { "\(rawValue).safetensors" }
}

/// Predictions for a set of rows: `labels[i]` 0 real / 1 fake and `scores[i]`, higher =
/// more likely fake (logistic: w.x + b; kNN: cosine distance to the nearest real probe
/// minus distance to the nearest fake probe; SVM: minus the decision function).
public struct Predictions: Sendable {
  public var labels: [Int]
  public var scores: [Double]
  public init(labels: [Int], scores: [Double]) { self.labels = labels; self.scores = scores }
}

/// Binary view of labelled rows: real (0) -> 0, gen_k (> 0) -> 1, unknown (< 0) dropped.
struct BinaryRows {
  /// Indices of the kept rows in the original set.
  var index: [Int]
  /// 0 real, 1 fake, per kept row.
  var y: [Int]
  var nReal: Int { y.count - nFake }
  var nFake: Int { y.reduce(0, +) }

  init(labels: [Int64]) {
    index = []
    y = []
    for (i, l) in labels.enumerated() where l >= 0 {
      index.append(i)
      y.append(l > 0 ? 1 : 0)
    }
  }
}

/// One fitted classifier of any kind.
public enum AnyClassifier: Sendable {
  case linear(LogisticRegressionClassifier)
  case knn(KNNClassifier)
  case svm(OneClassSVMClassifier)

  public var kind: ClassifierKind {
    switch self {
    case .linear: return .linear
    case .knn: return .knn
    case .svm: return .svm
    }
  }

  public var dimension: Int {
    switch self {
    case .linear(let c): return c.dimension
    case .knn(let c): return c.dimension
    case .svm(let c): return c.dimension
    }
  }

  /// Fits a classifier of `kind` on row-major `[labels.count, dimension]` embeddings
  /// (labels: 0 real, > 0 fake, < 0 ignored).
  public static func fit(_ kind: ClassifierKind, embeddings: [Float], dimension: Int, labels: [Int64]) throws -> AnyClassifier {
    switch kind {
    case .linear: return .linear(try LogisticRegressionClassifier.fit(embeddings: embeddings, dimension: dimension, labels: labels))
    case .knn: return .knn(try KNNClassifier.fit(embeddings: embeddings, dimension: dimension, labels: labels))
    case .svm: return .svm(try OneClassSVMClassifier.fit(embeddings: embeddings, dimension: dimension, labels: labels))
    }
  }

  /// Predictions for row-major `[count, dimension]` embeddings.
  public func predict(_ embeddings: [Float], count: Int) -> Predictions {
    precondition(embeddings.count == count * dimension, "predict: \(embeddings.count) values for \(count) rows of \(dimension)")
    switch self {
    case .linear(let c): return c.predict(embeddings, count: count)
    case .knn(let c): return c.predict(embeddings, count: count)
    case .svm(let c): return c.predict(embeddings, count: count)
    }
  }

  /// Saves to a safetensors file whose metadata names the classifier kind.
  public func save(to path: String) throws {
    var w: SafeTensorsWriter
    switch self {
    case .linear(let c): w = c.tensors()
    case .knn(let c): w = c.tensors()
    case .svm(let c): w = c.tensors()
    }
    w.metadata["format"] = AnyClassifier.format
    w.metadata["classifier"] = kind.rawValue
    w.metadata["dimension"] = String(dimension)
    try w.write(to: path)
  }

  static let format = "cde-classifier-1"

  /// Loads a classifier saved by `save(to:)`; errors name the file and key.
  public static func load(path: String) throws -> AnyClassifier {
    let f: SafeTensorsFile
    f = try SafeTensorsFile(path: path)
    guard f.metadata["format"] == format, let kindName = f.metadata["classifier"] else {
      throw EvaluationError(.unsupported(path: path), "\(path): not a cde classifier file (metadata format/classifier missing)")
    }
    guard let kind = ClassifierKind(rawValue: kindName) else {
      throw EvaluationError(.unsupported(path: path), "\(path): unknown classifier '\(kindName)' in metadata")
    }
    guard let ds = f.metadata["dimension"], let d = Int(ds), d > 0 else {
      throw EvaluationError(.badFile(path: path), "\(path): metadata `dimension` missing or invalid")
    }
    do {
      switch kind {
      case .linear: return .linear(try LogisticRegressionClassifier(file: f, dimension: d))
      case .knn: return .knn(try KNNClassifier(file: f, dimension: d))
      case .svm: return .svm(try OneClassSVMClassifier(file: f, dimension: d))
      }
    }
  }
}

/// Reads a tensor and checks its element count; the error names file and tensor.
func tensor(_ f: SafeTensorsFile, _ name: String, count: Int) throws -> [Float] {
  let v = try f.floats(name)
  guard v.count == count else { throw EvaluationError(.badFile(path: f.path), "\(f.path): tensor \(name) has \(v.count) values, expected \(count)") }
  return v
}

/// F64 tensor as doubles (stored by this module as F64).
func doubles(_ f: SafeTensorsFile, _ name: String, count: Int) throws -> [Double] {
  let t = try f.info(name)
  guard t.dtype == .f64 else { throw EvaluationError(.badFile(path: f.path), "\(f.path): tensor \(name) has dtype \(t.dtype.rawValue), expected F64") }
  guard t.count == count else { throw EvaluationError(.badFile(path: f.path), "\(f.path): tensor \(name) has \(t.count) values, expected \(count)") }
  let data = try f.bytes(name)
  return data.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
}

extension SafeTensorsWriter {
  mutating func add(_ name: String, doubles a: [Double], shape: [Int]) {
    add(name, dtype: .f64, shape: shape, bytes: a.withUnsafeBufferPointer { Data(buffer: $0) })
  }
}
