import Foundation

/// The training log of a run, `RUN/metrics.jsonl`: one JSON object per line with a
/// numeric `step` and any numeric metrics (`loss`, `loss_real`, `loss_fake`, `lr`,
/// `records_per_s`, `data_wait_s`, ...). Nested objects are flattened with dotted names:
/// the probe evaluation row's `{"eval": {"linear": {"gen_0": {"acc": 0.9}}}}` gives
/// `eval.linear.gen_0.acc`. Lines without a step, non-numeric values and a torn last
/// line (a run killed mid-write) are skipped and counted.
public struct RunMetrics: Sendable {
  /// Values of each metric as (step, value) in file order.
  public var series: [String: [(step: Double, value: Double)]]
  /// Metric names in order of first appearance.
  public var names: [String]
  public var skippedLines: Int
  public var lineCount: Int

  public init(series: [String: [(step: Double, value: Double)]] = [:], names: [String] = []) {
    self.series = series
    self.names = names
    self.skippedLines = 0
    self.lineCount = 0
  }

  /// Parses the text of a metrics.jsonl file.
  public init(jsonl text: String) {
    self.init()
    for line in text.split(whereSeparator: \.isNewline) {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if trimmed.isEmpty { continue }
      lineCount += 1
      guard let obj = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any],
        let stepN = number(obj["step"])
      else { skippedLines += 1; continue }
      add(obj, prefix: "", step: stepN)
    }
  }

  /// Appends the numbers of `obj` (nested objects flattened as `prefix.key`) at `step`.
  mutating func add(_ obj: [String: Any], prefix: String, step: Double) {
    for key in obj.keys.sorted() where !(prefix.isEmpty && key == "step") {
      let name = prefix.isEmpty ? key : prefix + "." + key
      if let inner = obj[key] as? [String: Any] { add(inner, prefix: name, step: step); continue }
      guard let v = number(obj[key]), v.isFinite else { continue }
      if series[name] == nil { series[name] = []; names.append(name) }
      series[name]!.append((step, v))
    }
  }

  /// A JSON number as a Double; nil for anything else, including true/false (which
  /// Foundation may also hand out as NSNumber).
  func number(_ v: Any?) -> Double? {
    guard let v, let n = v as? NSNumber else { return nil }
    // JSON true/false arrive as boolean NSNumbers, whose objCType is "c" (char).
    if String(cString: n.objCType) == "c" { return nil }
    return n.doubleValue
  }

  /// Reads a file; a missing file is an error naming it.
  public init(path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else { throw EvaluationError(.io(path: path), "\(path): cannot read file") }
    self.init(jsonl: String(decoding: data, as: UTF8.self))
  }

  public subscript(name: String) -> [(step: Double, value: Double)]? { series[name] }

  public var lastStep: Double? { series.values.compactMap { $0.last?.step }.max() }
}
