import Foundation

/// A probe metric named CLASSIFIER.SUBSET.METRIC (`eval.best_metric`), e.g.
/// `linear.mean.acc`: SUBSET is `gen_k` (real vs generator k), `all`, or `mean`, the
/// mean of METRIC over the `gen_k` subsets present; METRIC is acc, real_acc, fake_acc
/// or auc. Higher is better for all of them.
public struct ProbeMetric: Equatable, Sendable, CustomStringConvertible {
  public static let classifiers = ["linear", "knn", "svm"]
  public static let metrics = ["acc", "real_acc", "fake_acc", "auc"]

  public var classifier: String
  public var subset: String
  public var metric: String

  /// Parses `linear.mean.acc`; nil when it does not have that form.
  public init?(_ text: String) {
    let p = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard p.count == 3, Self.classifiers.contains(p[0]), Self.metrics.contains(p[2]) else { return nil }
    let s = p[1]
    guard s == "mean" || s == "all" || (s.hasPrefix("gen_") && Int(s.dropFirst(4)).map { $0 >= 0 } == true) else { return nil }
    classifier = p[0]
    subset = s
    metric = p[2]
  }

  public var description: String { "\(classifier).\(subset).\(metric)" }

  /// The metric's value in flat probe scores keyed `classifier.subset.metric`
  /// (`ProbeEvaluator.score`); nil when absent or undefined (non-finite), or for
  /// `mean` when no generator has a finite value.
  public func value(in scores: [String: Double]) -> Double? {
    if subset != "mean" {
      guard let v = scores["\(classifier).\(subset).\(metric)"], v.isFinite else { return nil }
      return v
    }
    let prefix = "\(classifier).gen_", suffix = ".\(metric)"
    let values = scores.filter { $0.key.hasPrefix(prefix) && $0.key.hasSuffix(suffix) && $0.value.isFinite }
      .sorted { $0.key < $1.key }.map(\.value)
    guard !values.isEmpty else { return nil }
    return values.reduce(0, +) / Double(values.count)
  }
}

extension TrainConfig {
  /// True when probe evaluations run during training.
  public var evaluates: Bool { eval.everySteps > 0 }

  /// Checks of the `eval` section and of `train.early_stop_patience`.
  func validateEval(_ fail: (String, String) -> ConfigError) throws {
    if eval.everySteps < 0 { throw fail("eval.every_steps", "must be 0 (off) or positive") }
    if eval.maxProbeImages < 0 { throw fail("eval.max_probe_images", "must be 0 (all) or positive") }
    if eval.maxTestImages < 0 { throw fail("eval.max_test_images", "must be 0 (all) or positive") }
    for c in eval.classifiers where !ProbeMetric.classifiers.contains(c) {
      throw fail("eval.classifiers", "unknown classifier '\(c)' (expected linear, knn or svm)")
    }
    if Set(eval.classifiers).count != eval.classifiers.count { throw fail("eval.classifiers", "lists a classifier twice") }
    guard let metric = ProbeMetric(eval.bestMetric) else {
      throw fail("eval.best_metric", "'\(eval.bestMetric)' is not CLASSIFIER.SUBSET.METRIC "
                 + "(classifier linear, knn or svm; subset gen_k, all or mean; metric acc, real_acc, fake_acc or auc)")
    }
    if train.earlyStopPatience > 0 && !evaluates {
      throw fail("train.early_stop_patience", "needs probe evaluations (set eval.every_steps, eval.probe and eval.test)")
    }
    guard evaluates else { return }
    if eval.probe.isEmpty { throw fail("eval.probe", "no probe images given (eval.every_steps is \(eval.everySteps))") }
    if eval.test.isEmpty { throw fail("eval.test", "no test images given (eval.every_steps is \(eval.everySteps))") }
    if eval.classifiers.isEmpty { throw fail("eval.classifiers", "must name at least one of linear, knn, svm") }
    if !eval.classifiers.contains(metric.classifier) {
      throw fail("eval.best_metric", "'\(eval.bestMetric)' names \(metric.classifier), which eval.classifiers does not fit")
    }
  }
}
