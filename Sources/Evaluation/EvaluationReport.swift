import Foundation

/// Metrics of one classifier on one test subset (fractions in [0, 1]; nil when undefined,
/// e.g. no real rows in the subset, or AUC with one class only).
public struct SubsetMetrics: Sendable, Equatable {
  public var realAcc: Double?
  public var fakeAcc: Double?
  public var acc: Double?
  public var auc: Double?
  /// Row counts (not part of the JSON format; 0 when read from JSON).
  public var nReal: Int
  public var nFake: Int

  public init(realAcc: Double?, fakeAcc: Double?, acc: Double?, auc: Double?, nReal: Int = 0, nFake: Int = 0) {
    self.realAcc = realAcc; self.fakeAcc = fakeAcc; self.acc = acc; self.auc = auc
    self.nReal = nReal; self.nFake = nFake
  }

  /// Metrics of predictions against binary truth (0 real, 1 fake).
  public static func compute(predicted: [Int], scores: [Double], truth: [Int]) -> SubsetMetrics {
    var pr: [Int] = [], tr: [Int] = [], pf: [Int] = [], tf: [Int] = []
    for i in truth.indices {
      if truth[i] == 0 { pr.append(predicted[i]); tr.append(0) } else { pf.append(predicted[i]); tf.append(1) }
    }
    return SubsetMetrics(realAcc: Metrics.accuracy(predicted: pr, truth: tr),
                         fakeAcc: Metrics.accuracy(predicted: pf, truth: tf),
                         acc: Metrics.accuracy(predicted: predicted, truth: truth),
                         auc: Metrics.rocAUC(scores: scores, truth: truth),
                         nReal: tr.count, nFake: tf.count)
  }
}

/// Results of one classifier: subsets `gen_k` (real vs gen_k) in ascending k, then `all`.
///
/// `all` is balanced, so that a detector answering "fake" for everything scores 50 %
/// whatever the numbers of real and generated test images:
///
///     all.real_acc = accuracy on the real rows
///     all.fake_acc = (1/K) sum_k gen_k.fake_acc        each of the K generators weighted equally
///     all.acc      = (all.real_acc + all.fake_acc) / 2  (the one defined, when the other is not)
///     all.auc      = (1/K) sum_k gen_k.auc
///
/// which is scikit-learn's `balanced_accuracy_score` (and `recall_score`, `roc_auc_score`)
/// with sample weight 1 / n_c for a row of class c (real, gen_0, ...).
public struct ClassifierResult: Sendable, Equatable {
  public var name: String
  public var subsets: [(name: String, metrics: SubsetMetrics)]

  public init(name: String, subsets: [(name: String, metrics: SubsetMetrics)]) {
    self.name = name
    self.subsets = subsets
  }

  public subscript(subset: String) -> SubsetMetrics? { subsets.first { $0.name == subset }?.metrics }

  public static func == (a: ClassifierResult, b: ClassifierResult) -> Bool {
    a.name == b.name && a.subsets.map(\.name) == b.subsets.map(\.name) && a.subsets.map(\.metrics) == b.subsets.map(\.metrics)
  }

  /// Per-generator and overall metrics of predictions for test rows with `labels`
  /// (0 real, k + 1 gen_k, < 0 unknown: left out). Subset gen_k = the real rows and the
  /// gen_k rows; `all` = every labelled row, balanced as the type's comment says.
  public static func evaluate(name: String, predictions p: Predictions, labels: [Int64]) -> ClassifierResult {
    precondition(p.labels.count == labels.count)
    let gens = Array(Set(labels.filter { $0 > 0 })).sorted()
    var subsets: [(String, SubsetMetrics)] = []
    func metrics(_ keep: (Int64) -> Bool) -> SubsetMetrics {
      var pl: [Int] = [], sc: [Double] = [], tr: [Int] = []
      for i in labels.indices where labels[i] >= 0 && keep(labels[i]) {
        pl.append(p.labels[i]); sc.append(p.scores[i]); tr.append(labels[i] > 0 ? 1 : 0)
      }
      return SubsetMetrics.compute(predicted: pl, scores: sc, truth: tr)
    }
    for g in gens { subsets.append(("gen_\(g - 1)", metrics { $0 == 0 || $0 == g })) }
    func mean(_ v: [Double?]) -> Double? {
      let x = v.compactMap { $0 }
      return x.isEmpty ? nil : x.reduce(0, +) / Double(x.count)
    }
    let pooled = metrics { _ in true }
    let fake = mean(subsets.map(\.1.fakeAcc))
    let all = SubsetMetrics(realAcc: pooled.realAcc, fakeAcc: fake, acc: mean([pooled.realAcc, fake]),
                            auc: mean(subsets.map(\.1.auc)), nReal: pooled.nReal, nFake: pooled.nFake)
    subsets.append(("all", all))
    return ClassifierResult(name: name, subsets: subsets)
  }
}

/// The evaluation of a set of classifiers on a test set.
///
/// JSON: `{"linear": {"gen_0": {"real_acc": .., "fake_acc": .., "acc": .., "auc": ..}, ..,
/// "all": {.., "balanced": true}}, "knn": {..}, "svm": {..}}` (fractions; null where undefined).
/// `all` is the balanced figure (`ClassifierResult`), marked by `"balanced": true`; files
/// written before that change have a pooled `all` and no such key.
public struct EvaluationReport: Sendable, Equatable {
  public var classifiers: [ClassifierResult]

  public init(classifiers: [ClassifierResult]) { self.classifiers = classifiers }

  public subscript(classifier: String) -> ClassifierResult? { classifiers.first { $0.name == classifier } }

  /// The JSON text (keys in the order above, two-space indentation).
  public func json() -> String {
    func num(_ v: Double?) -> String {
      guard let v, v.isFinite else { return "null" }
      return "\(v)"
    }
    var out = "{\n"
    for (ci, c) in classifiers.enumerated() {
      out += "  \"\(c.name)\": {\n"
      for (si, s) in c.subsets.enumerated() {
        let m = s.metrics
        out += "    \"\(s.name)\": {\"real_acc\": \(num(m.realAcc)), \"fake_acc\": \(num(m.fakeAcc)), "
        out += "\"acc\": \(num(m.acc)), \"auc\": \(num(m.auc))" + (s.name == "all" ? ", \"balanced\": true}" : "}")
        out += si + 1 < c.subsets.count ? ",\n" : "\n"
      }
      out += ci + 1 < classifiers.count ? "  },\n" : "  }\n"
    }
    return out + "}\n"
  }

  /// Parses the JSON format above; `path` names the source in errors.
  public static func parse(_ data: Data, path: String) throws -> EvaluationReport {
    guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw EvaluationError(.badFile(path: path), "\(path): not a JSON object")
    }
    let known = ClassifierKind.allCases.map(\.rawValue)
    let names = obj.keys.sorted { a, b in
      let ia = known.firstIndex(of: a) ?? known.count, ib = known.firstIndex(of: b) ?? known.count
      return ia != ib ? ia < ib : a < b
    }
    var out: [ClassifierResult] = []
    for name in names {
      guard let subs = obj[name] as? [String: Any] else { throw EvaluationError(.badFile(path: path), "\(path): \(name) is not an object") }
      let subNames = subs.keys.sorted { a, b in
        if a == "all" || b == "all" { return b == "all" && a != "all" }
        let ka = Int(a.dropFirst(4)) ?? Int.max, kb = Int(b.dropFirst(4)) ?? Int.max
        return ka != kb ? ka < kb : a < b
      }
      var list: [(name: String, metrics: SubsetMetrics)] = []
      for s in subNames {
        guard let m = subs[s] as? [String: Any] else { throw EvaluationError(.badFile(path: path), "\(path): \(name).\(s) is not an object") }
        func value(_ k: String) throws -> Double? {
          guard let v = m[k] else { return nil }
          if v is NSNull { return nil }
          guard let n = v as? NSNumber else { throw EvaluationError(.badFile(path: path), "\(path): \(name).\(s).\(k) is not a number") }
          return n.doubleValue
        }
        list.append((s, SubsetMetrics(realAcc: try value("real_acc"), fakeAcc: try value("fake_acc"),
                                      acc: try value("acc"), auc: try value("auc"))))
      }
      out.append(ClassifierResult(name: name, subsets: list))
    }
    return EvaluationReport(classifiers: out)
  }

  /// A readable table: one block per classifier, percentages, AUC, row counts.
  public func table() -> String {
    func pct(_ v: Double?) -> String { v.map { String(format: "%7.2f%%", 100 * $0) } ?? "       -" }
    func auc(_ v: Double?) -> String { v.map { String(format: "%6.4f", $0) } ?? "     -" }
    let header = "classifier  subset   real acc   fake acc   accuracy      AUC  n real  n fake"
    var lines = [header, String(repeating: "-", count: header.count)]
    for c in classifiers {
      for (i, s) in c.subsets.enumerated() {
        let m = s.metrics
        let name = i == 0 ? c.name : ""
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        lines.append(pad(name, 10) + "  " + pad(s.name, 7) + "  " + pct(m.realAcc) + "   " + pct(m.fakeAcc) + "   "
                     + pct(m.acc) + "   " + auc(m.auc) + String(format: "  %6d  %6d", m.nReal, m.nFake))
      }
    }
    lines.append("all: balanced, accuracy = (real acc + fake acc) / 2 with fake acc and AUC the means over the generators")
    return lines.joined(separator: "\n") + "\n"
  }
}
