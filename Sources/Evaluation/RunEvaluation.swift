import Foundation
import JSONOutput

/// Fits `classifiers` on the labelled rows of `probe` and evaluates them on `test`
/// (per generator and overall). Returns the report and the fitted classifiers.
public func runEvaluation(probe: EmbeddingFile, test: EmbeddingFile,
                          classifiers kinds: [ClassifierKind] = ClassifierKind.allCases,
                          probePath: String = "probe", testPath: String = "test") throws -> (report: EvaluationReport, fitted: [AnyClassifier]) {
  guard probe.dimension == test.dimension else {
    throw EvaluationError(.dimensionMismatch, "\(testPath): embeddings have dimension \(test.dimension), \(probePath) has \(probe.dimension)")
  }
  guard probe.labels.contains(0) else { throw EvaluationError(.noData, "\(probePath): no real (label 0) rows to fit on") }
  guard test.labels.contains(where: { $0 >= 0 }) else {
    throw EvaluationError(.noData, "\(testPath): no labelled rows (every label is -1) to evaluate on")
  }
  var fitted: [AnyClassifier] = []
  var results: [ClassifierResult] = []
  for kind in kinds {
    if kind != .svm && !probe.labels.contains(where: { $0 > 0 }) {
      throw EvaluationError(.noData, "\(probePath): no fake (label > 0) rows to fit the \(kind.rawValue) classifier on")
    }
    let c: AnyClassifier
    do { c = try AnyClassifier.fit(kind, embeddings: probe.embeddings, dimension: probe.dimension, labels: probe.labels) } catch let e as EvaluationError {
      throw EvaluationError(e.kind, "\(probePath): \(e.description)")
    }
    let p = c.predict(test.embeddings, count: test.count)
    results.append(ClassifierResult.evaluate(name: kind.rawValue, predictions: p, labels: test.labels))
    fitted.append(c)
  }
  return (EvaluationReport(classifiers: results), fitted)
}

/// Fitted classifiers saved next to a model: `<model directory>/classifiers/<kind>.safetensors`,
/// where the model directory is the model path itself when it is a directory (a
/// checkpoint or Hugging Face directory), else the directory holding the model file.
public struct DetectorBundle: Sendable {
  public var classifiers: [AnyClassifier]

  public init(classifiers: [AnyClassifier]) { self.classifiers = classifiers }

  /// `<model directory>/classifiers`.
  public static func directory(forModel modelPath: String) -> String {
    var isDir: ObjCBool = false
    let dir = FileManager.default.fileExists(atPath: modelPath, isDirectory: &isDir) && isDir.boolValue
      ? modelPath : (modelPath as NSString).deletingLastPathComponent
    return ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent("classifiers")
  }

  /// Writes every classifier into `directory` (created if needed); returns the paths.
  @discardableResult
  public func save(to directory: String) throws -> [String] {
    do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
      throw EvaluationError(.io(path: directory), "\(directory): cannot create directory: \(error.localizedDescription)")
    }
    return try classifiers.map { c in
      let path = (directory as NSString).appendingPathComponent(c.kind.fileName)
      try c.save(to: path)
      return path
    }
  }

  /// Loads the classifiers saved next to `modelPath` (`kinds` nil: every one present).
  public static func load(modelPath: String, kinds: [ClassifierKind]? = nil) throws -> DetectorBundle {
    try load(directory: directory(forModel: modelPath), kinds: kinds)
  }

  public static func load(directory: String, kinds: [ClassifierKind]? = nil) throws -> DetectorBundle {
    var out: [AnyClassifier] = []
    for k in kinds ?? ClassifierKind.allCases {
      let path = (directory as NSString).appendingPathComponent(k.fileName)
      guard FileManager.default.fileExists(atPath: path) else {
        if kinds == nil { continue }
        throw EvaluationError(.noData, "\(path): no fitted \(k.rawValue) classifier (run `cde eval` with this model first)")
      }
      out.append(try AnyClassifier.load(path: path))
    }
    guard !out.isEmpty else {
      throw EvaluationError(.noData, "\(directory): no fitted classifiers (run `cde eval` with this model first)")
    }
    return DetectorBundle(classifiers: out)
  }

  public subscript(kind: ClassifierKind) -> AnyClassifier? { classifiers.first { $0.kind == kind } }

  /// Predictions of every classifier for `[count, D]` embeddings; throws if D differs
  /// from the dimension the classifiers were fitted on.
  public func detect(embeddings: [Float], count: Int) throws -> [(kind: ClassifierKind, predictions: Predictions)] {
    try classifiers.map { c in
      guard embeddings.count == count * c.dimension else {
        throw EvaluationError(.dimensionMismatch, "\(c.kind.rawValue) classifier expects embeddings of dimension \(c.dimension), got \(count > 0 ? embeddings.count / count : 0)")
      }
      return (c.kind, c.predict(embeddings, count: count))
    }
  }
}

extension DetectorBundle {
  /// A readable table of detections: one row per image, per classifier "real"/"fake"
  /// and its score (higher = more likely fake; see `Predictions`).
  public static func table(sources: [String], results: [(kind: ClassifierKind, predictions: Predictions)]) -> String {
    let width = min(max(sources.map(\.count).max() ?? 5, 5), 60)
    func pad(_ s: String, _ w: Int) -> String {
      s.count >= w ? s : s + String(repeating: " ", count: w - s.count)
    }
    var out = pad("image", width) + results.map { "  " + pad($0.kind.rawValue, 14) }.joined() + "\n"
    for (i, src) in sources.enumerated() {
      let shown = src.count > width ? "…" + String(src.suffix(width - 1)) : src
      out += pad(shown, width)
      for r in results {
        let p = r.predictions
        out += "  " + pad((p.labels[i] == 1 ? "fake" : "real") + String(format: " %+.3f", p.scores[i]), 14)
      }
      out += "\n"
    }
    return out
  }

  /// One JSON object per image: {"image": .., "<kind>": {"label": "real"|"fake", "score": ..}, ..}.
  public static func jsonLines(sources: [String], results: [(kind: ClassifierKind, predictions: Predictions)]) -> String {
    var out = ""
    for (i, src) in sources.enumerated() {
      var obj: [String: Any] = ["image": src]
      for r in results {
        obj[r.kind.rawValue] = ["label": r.predictions.labels[i] == 1 ? "fake" : "real", "score": r.predictions.scores[i]]
      }
      out += ((try? JSONOutput.string(obj)) ?? "{}") + "\n"
    }
    return out
  }
}
