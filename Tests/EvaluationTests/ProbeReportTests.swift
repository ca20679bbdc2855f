import Foundation
import TestSupport
import XCTest
@testable import Evaluation

/// The probe evaluation rows of `cde train` (metrics.jsonl "eval" objects) in the run
/// report, and the class-balanced caps of the evaluation images.
final class ProbeReportTests: XCTestCase {
  /// Training rows every 10 steps; evaluation rows at 20, 40, 60 with a linear and a kNN
  /// probe over two generators (gen_1's AUC undefined at step 20: null).
  func jsonl() -> String {
    var lines: [String] = []
    for s in stride(from: 10, through: 60, by: 10) { lines.append("{\"step\":\(s),\"loss\":\(5.0 - Double(s) / 100),\"records_per_s\":3}") }
    let lin: [(Double, Double)] = [(0.5, 0.6), (0.7, 0.8), (0.65, 0.75)]
    for (i, s) in [20, 40, 60].enumerated() {
      let (g0, g1) = lin[i]
      let auc = i == 0 ? "null" : "0.9"
      lines.append("""
        {"step":\(s),"time":1.5,"eval":{"linear":{"gen_0":{"acc":\(g0),"auc":0.8},"gen_1":{"acc":\(g1),"auc":\(auc)},"all":{"acc":0.6}},\
        "knn":{"gen_0":{"acc":0.55},"gen_1":{"acc":0.65}}},"eval_s":\(2 + i),"eval_metric":\((g0 + g1) / 2),\
        "eval_best":\(i == 0 ? 0.55 : 0.75),"eval_best_step":\(i == 0 ? 20 : 40),"eval_stale":\(i == 2 ? 1 : 0)}
        """)
    }
    return lines.joined(separator: "\n") + "\n"
  }

  func testNestedEvaluationRowsAreFlattened() {
    let m = RunMetrics(jsonl: jsonl())
    XCTAssertEqual(m.skippedLines, 0)
    XCTAssertEqual(m["eval.linear.gen_0.acc"]?.map(\.step), [20, 40, 60])
    XCTAssertEqual(m["eval.linear.gen_1.acc"]?.map(\.value), [0.6, 0.8, 0.75])
    XCTAssertEqual(m["eval.linear.gen_1.auc"]?.map(\.step), [40, 60], "null is skipped")
    XCTAssertEqual(m["eval_best_step"]?.last?.value, 40)
    XCTAssertEqual(m["loss"]?.count, 6, "training rows and evaluation rows of the same step both count")
  }

  func testReportShowsProbeAccuracyOverSteps() throws {
    let run = temporaryDirectory(self, prefix: "eval") + "/run"
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    try jsonl().write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
    let r = try HTMLReport.load(run: run)
    XCTAssertEqual(r.probeClassifiers, ["linear", "knn"])
    XCTAssertEqual(r.probeGenerators("linear"), ["gen_0", "gen_1"])
    // Mean over the two generators per evaluation: (0.5 + 0.6) / 2, (0.7 + 0.8) / 2, (0.65 + 0.75) / 2.
    let mean = r.probeMean("linear")
    XCTAssertEqual(mean.map(\.x), [20, 40, 60])
    for (got, want) in zip(mean.map(\.y), [0.55, 0.75, 0.70]) { XCTAssertEqual(got, want, accuracy: 1e-15) }
    for got in r.probeMean("knn").map(\.y) { XCTAssertEqual(got, 0.6, accuracy: 1e-15) }
    let html = r.render()
    XCTAssertTrue(html.contains("<h2>Probe accuracy"))
    XCTAssertTrue(html.contains("Logistic regression: real vs each generator"))
    XCTAssertTrue(html.contains("Best value of eval.best_metric: 75.0% at step 40"))
    XCTAssertTrue(html.contains("<div class=\"label\">Best probe</div><div class=\"value\">75.0%</div>"))
    XCTAssertTrue(html.contains("3 evaluations"))
    XCTAssertFalse(html.contains("<h3>eval"), "evaluation series are not drawn again as generic metrics")
    // A log without evaluation rows has no probe section.
    try "{\"step\":1,\"loss\":2}\n".write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
    XCTAssertFalse(try HTMLReport.load(run: run).render().contains("Probe accuracy"))
  }

  func testBalancedSubsetKeepsEachClassesFirstImages() {
    // 7 real, 2 gen_0, 5 gen_1, 1 unknown-free list in listing order (real first, as a test-layout folder lists).
    let labels: [Int64] = Array(repeating: 0, count: 7) + [1, 1] + Array(repeating: 2, count: 5)
    let items = labels.enumerated().map { i, l in ImageItem(source: "img\(i)", label: l) { throw EvaluationError(.noData, "unused") } }
    func picked(_ cap: Int) -> [String] { items.balancedSubset(cap: cap).map(\.source) }
    XCTAssertEqual(picked(0).count, 14, "0: all")
    XCTAssertEqual(picked(20).count, 14, "a cap above the count: all")
    // cap 9: gen_0 takes its 2 (9 / 3 = 3 > 2), then real and gen_1 share 7: 7 / 2 = 3 and 4 (water-filling
    // by ascending count: gen_1 (5) before real (7)); each class's first images, in the original order.
    XCTAssertEqual(picked(9), ["img0", "img1", "img2", "img3", "img7", "img8", "img9", "img10", "img11"])
    // cap 6: 6 / 3 = 2 each.
    XCTAssertEqual(picked(6), ["img0", "img1", "img7", "img8", "img9", "img10"])
    // cap 4: 1, 1, 2 (gen_0 first with 4 / 3 = 1, then gen_1 3 / 2 = 1, real 2).
    XCTAssertEqual(picked(4), ["img0", "img1", "img7", "img9"])
  }
}
