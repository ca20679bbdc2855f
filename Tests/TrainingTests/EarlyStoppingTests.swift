import Foundation
import XCTest
import Dataset
@testable import Training
@testable import TrainingRun

final class EarlyStoppingTests: XCTestCase {
  func error(_ body: () throws -> Any) -> String {
    do { _ = try body(); XCTFail("no error"); return "" } catch { return "\(error)" }
  }

  /// A hand-worked sequence: strict improvement resets the count, an equal or undefined
  /// value is stale, and patience 2 stops at the second stale evaluation in a row.
  func testRecordCountsStaleEvaluationsAndStopsAtPatience() {
    var e = EarlyStopping()
    let seq: [(Double?, Int, EarlyStopping.Decision, Double?, Int?, Int)] = [
      // value, step, decision, best, best step, stale
      (0.50, 10, .init(improved: true, stop: false), 0.50, 10, 0),
      (0.60, 20, .init(improved: true, stop: false), 0.60, 20, 0),
      (0.60, 30, .init(improved: false, stop: false), 0.60, 20, 1),
      (0.70, 40, .init(improved: true, stop: false), 0.70, 40, 0),
      (nil, 50, .init(improved: false, stop: false), 0.70, 40, 1),
      (0.65, 60, .init(improved: false, stop: true), 0.70, 40, 2),
    ]
    for (v, step, d, best, bestStep, stale) in seq {
      XCTAssertEqual(e.record(v, step: step, patience: 2), d, "step \(step)")
      XCTAssertEqual(e.best, best)
      XCTAssertEqual(e.bestStep, bestStep)
      XCTAssertEqual(e.stale, stale)
    }
    XCTAssertEqual(e.evaluations, 6)
    XCTAssertTrue(e.shouldStop(patience: 2))
    XCTAssertFalse(e.shouldStop(patience: 3))
    XCTAssertFalse(e.shouldStop(patience: 0), "patience 0 never stops")
  }

  func testFirstUndefinedValueIsNotABest() {
    var e = EarlyStopping()
    XCTAssertEqual(e.record(.nan, step: 5, patience: 1), .init(improved: false, stop: true))
    XCTAssertNil(e.best)
    XCTAssertEqual(e.record(0.1, step: 6, patience: 1), .init(improved: true, stop: false))
  }

  /// The state goes through a checkpoint's trainer.json unchanged (and old checkpoints without it still decode).
  func testStateRoundTripsThroughTrainerState() throws {
    var e = EarlyStopping()
    _ = e.record(0.8125, step: 40, patience: 6)
    _ = e.record(0.75, step: 50, patience: 6)
    let s = TrainerState(epoch: 1, dataCursor: DataCursor(epoch: 1, step: 50), schedule: LRSchedule(base: 0.1, warmupSteps: 1, totalSteps: 9),
                         seed: 1, worldSize: 2, globalBatch: 8, optimizerSteps: 50, config: TrainConfig(), metrics: [:],
                         time: "t", earlyStopping: e)
    let back = try JSONDecoder().decode(TrainerState.self, from: JSONEncoder().encode(s))
    XCTAssertEqual(back.earlyStopping, e)
    var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(s)) as! [String: Any]
    object["earlyStopping"] = nil
    let old = try JSONDecoder().decode(TrainerState.self, from: JSONSerialization.data(withJSONObject: object))
    XCTAssertNil(old.earlyStopping)
  }

  func testProbeMetricNamesAndValues() throws {
    let scores: [String: Double] = [
      "linear.gen_0.acc": 0.5, "linear.gen_1.acc": 0.75, "linear.gen_10.acc": 1.0, "linear.all.acc": 0.6,
      "linear.gen_0.auc": .nan, "knn.gen_0.acc": 0.9,
    ]
    // mean: (0.5 + 0.75 + 1.0) / 3 over the linear generators only.
    XCTAssertEqual(ProbeMetric("linear.mean.acc")?.value(in: scores), 2.25 / 3)
    XCTAssertEqual(ProbeMetric("linear.all.acc")?.value(in: scores), 0.6)
    XCTAssertEqual(ProbeMetric("knn.mean.acc")?.value(in: scores), 0.9)
    XCTAssertNil(ProbeMetric("linear.gen_0.auc")?.value(in: scores), "NaN is undefined")
    XCTAssertNil(ProbeMetric("linear.mean.auc")?.value(in: scores))
    XCTAssertNil(ProbeMetric("svm.gen_0.acc")?.value(in: scores))
    for bad in ["linear.mean", "lin.mean.acc", "linear.gen_x.acc", "linear.gen_-1.acc", "linear.mean.f1", "a.b.c.d"] {
      XCTAssertNil(ProbeMetric(bad), bad)
    }
  }

  func testEvalSectionParsesAndChecksNameTheKey() throws {
    let y = "train:\n  steps: 10\neval:\n  probe: [p/]\n  test: [t/]\n  every_steps: 5\n"
    let c = try TrainConfig.parse(yaml: y, overrides: ["eval.classifiers=linear,knn,svm", "train.early_stop_patience=3",
                                                        "eval.max_probe_images=500", "eval.preprocess=center-crop"])
    XCTAssertEqual(c.eval.probe, ["p/"])
    XCTAssertEqual(c.eval.test, ["t/"])
    XCTAssertEqual(c.eval.everySteps, 5)
    XCTAssertEqual(c.eval.classifiers, ["linear", "knn", "svm"])
    XCTAssertEqual(c.eval.maxProbeImages, 500)
    XCTAssertEqual(c.eval.maxTestImages, 0)
    XCTAssertEqual(c.eval.preprocess, .centerCrop)
    XCTAssertEqual(c.eval.bestMetric, "linear.mean.acc")
    XCTAssertEqual(c.train.earlyStopPatience, 3)
    XCTAssertTrue(c.evaluates)
    // Defaults: off, linear + kNN, the training base view.
    let d = TrainConfig()
    XCTAssertEqual([d.eval.everySteps, d.train.earlyStopPatience], [0, 0])
    XCTAssertEqual(d.eval.classifiers, ["linear", "knn"])
    XCTAssertEqual(d.eval.preprocess, .resizeCrop)
    // Round trip through config.yaml (RUN/config.yaml) keeps the section.
    XCTAssertEqual(try TrainConfig.parse(yaml: c.toYAML()), c)
    XCTAssertEqual(try TrainConfig.fromJSON(c.toJSON()), c)

    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["eval.classifiers=linear,tree"]) },
                   "c.yaml: key 'eval.classifiers': unknown classifier 'tree' (expected linear, knn or svm)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["eval.best_metric=knn.mean.acc", "eval.classifiers=linear"]) },
                   "c.yaml: key 'eval.best_metric': 'knn.mean.acc' names knn, which eval.classifiers does not fit")
    XCTAssertTrue(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["eval.best_metric=linear.acc"]) }
      .hasPrefix("c.yaml: key 'eval.best_metric': 'linear.acc' is not CLASSIFIER.SUBSET.METRIC"))
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["eval.test=[]"]) },
                   "c.yaml: key 'eval.test': no test images given (eval.every_steps is 5)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: "train:\n  steps: 10\n  early_stop_patience: 2\n", source: "c.yaml") },
                   "c.yaml: key 'train.early_stop_patience': needs probe evaluations (set eval.every_steps, eval.probe and eval.test)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["eval.every_steps=-1"]) },
                   "c.yaml: key 'eval.every_steps': must be 0 (off) or positive")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y + "  every_step: 3\n", source: "c.yaml") },
                   "c.yaml:7: unknown key 'eval.every_step' (did you mean 'eval.every_steps'?)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["eval.preprocess=crop"]) },
                   "--set eval.preprocess=crop: expected one of resize-crop, center-crop")
  }
}
