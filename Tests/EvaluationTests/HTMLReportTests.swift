import Foundation
import TestSupport
import XCTest
@testable import Evaluation

final class HTMLReportTests: XCTestCase {
  /// A run directory with a synthetic training log, an evaluation of the fixture
  /// embeddings and the fixture test embeddings.
  func makeRun(metrics: Bool = true, eval: Bool = true, embeddings: Bool = true) throws -> String {
    let run = temporaryDirectory(self, prefix: "eval") + "/run <&> \"1\""
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    if metrics {
      var lines: [String] = []
      for s in 1...500 {
        let loss = 2 + 10 * exp(-Double(s) / 100)
        // Health figures as `cde train` logs them (G = 32: collapse ln 33).
        let c = log(33.0), t = loss / 2
        let health = "\"loss_collapse\": \(c), \"loss_collapse_ratio\": \(loss / (2 * c)), \"loss_global_real\": \(t), "
          + "\"loss_global_fake\": \(t), \"loss_multiscale_real\": \(t * 0.9), \"loss_multiscale_fake\": \(t * 0.8), "
          + "\"emb_mean_cos\": \(1 - Double(s) / 1000), \"emb_centroid_cos\": 0.9, \"emb_dim_std\": 0.01, "
          + "\"final_ln_weight_norm\": 8, \"grad_norm_patch_embed\": 0.1, \"grad_norm_block_0\": 0.2, \"grad_norm_block_1\": 0.3, "
          + "\"grad_norm_final_norm\": 0.05, \"comm_frac\": 0.02, "
        lines.append("{\"step\": \(s), \"loss\": \(loss), \"loss_real\": \(loss / 2), \"loss_fake\": \(loss / 2), \"lr\": \(Double(s) * 1e-5), \"records_per_s\": 1.5, \"data_wait_s\": 0.01, " + health + "\"grad_norm\": \(1 + Double(s % 7)), \"ok\": true}")
      }
      lines.append("{\"event\": \"checkpoint\"}")
      lines.append("{\"step\": 501, \"loss\": 1.")  // torn last line
      try lines.joined(separator: "\n").write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
    }
    if eval || embeddings {
      let probe = try EmbeddingFile(path: fixturePath("eval-probe.safetensors"))
      let test = try EmbeddingFile(path: fixturePath("eval-test.safetensors"))
      if eval {
        let (report, _) = try runEvaluation(probe: probe, test: test, classifiers: [.linear, .knn])
        try report.json().write(toFile: run + "/eval.json", atomically: true, encoding: .utf8)
      }
      if embeddings { try test.write(to: run + "/embeddings-test.safetensors") }
    }
    return run
  }

  func testFullReport() throws {
    let run = try makeRun()
    let path = try HTMLReport.write(run: run)
    XCTAssertEqual(path, run + "/report.html")
    let html = try String(contentsOfFile: path, encoding: .utf8)
    // One self-contained file: no scripts, no links, no external resources.
    for banned in ["<script", "src=", "href=", "http://", "https://", "@import", "url("] {
      XCTAssertFalse(html.contains(banned), banned)
    }
    // The run name is escaped.
    XCTAssertTrue(html.contains("run &lt;&amp;&gt; &quot;1&quot;"))
    XCTAssertFalse(html.contains("<&>"))
    // Curves: loss (3 series), lr, throughput, data wait, the health figures and the extra numeric metric.
    for title in ["<h3>Loss</h3>", "<h3>Learning rate</h3>", "<h3>Throughput</h3>", "<h3>Data wait</h3>", "<h3>comm_frac</h3>",
                  "<h3>Loss terms against collapse</h3>", "<h3>Embedding cosines</h3>", "<h3>Embedding spread</h3>",
                  "<h3>Final LayerNorm weight</h3>", "<h3>Gradient norms</h3>"] {
      XCTAssertTrue(html.contains(title), title)
    }
    // Health metrics are not drawn again as generic charts.
    for name in ["grad_norm", "emb_mean_cos", "loss_global_real", "grad_norm_block_0"] { XCTAssertFalse(html.contains("<h3>\(name)</h3>"), name) }
    // The collapse lines: 2 ln(1+G) on the total loss, ln(1+G) on the terms; the four terms and both blocks drawn.
    XCTAssertEqual(html.components(separatedBy: "stroke-dasharray=\"6 4\"").count - 1, 2)
    for name in ["<title>collapse 2 ln(1+G)</title>", "<title>collapse ln(1+G)</title>", "<title>global, real</title>",
                 "<title>multi-scale, fake</title>", "<title>block 0</title>", "<title>block 1</title>"] {
      XCTAssertTrue(html.contains(name), name)
    }
    let ratio = (2 + 10 * exp(-5.0)) / (2 * log(33.0))
    XCTAssertTrue(html.contains(String(format: "%.3f×", ratio)), "collapse card")
    XCTAssertFalse(html.contains("<h3>ok</h3>"), "booleans are not metrics")
    XCTAssertTrue(html.contains(">500<"), "last step shown")
    XCTAssertTrue(html.contains("2 skipped"), "the torn line and the line without a step")
    // Accuracy bars: 5 groups x 2 classifiers, with the values of eval.json.
    let report = try EvaluationReport.parse(Data(contentsOf: URL(fileURLWithPath: run + "/eval.json")), path: "eval.json")
    let linearAll = try XCTUnwrap(report["linear"]?["all"]?.acc)
    XCTAssertTrue(html.contains(String(format: "Logistic regression all: %.1f%%", 100 * linearAll)))
    XCTAssertEqual(html.components(separatedBy: "<rect x=").count - 1, 10 + 1, "10 bars and the scatter background")
    // Projection: every labelled and unlabelled test row drawn once, six classes in the legend.
    XCTAssertEqual(html.components(separatedBy: "<circle").count - 1, 1408)
    for c in ["real (400)", "gen_0 (250)", "gen_3 (250)", "unknown (8)"] { XCTAssertTrue(html.contains(c), c) }
  }

  func testPartialRuns() throws {
    let onlyEval = try makeRun(metrics: false, embeddings: false)
    let html = try HTMLReport.load(run: onlyEval).render()
    XCTAssertTrue(html.contains("No metrics.jsonl"))
    XCTAssertTrue(html.contains("No embeddings-test.safetensors"))
    XCTAssertTrue(html.contains("Best detector"))
    let onlyMetrics = try makeRun(eval: false, embeddings: false)
    XCTAssertTrue(try HTMLReport.load(run: onlyMetrics).render().contains("No eval.json"))
  }

  func testBadRunsGiveOneLine() throws {
    let dir = temporaryDirectory(self, prefix: "eval")
    XCTAssertThrowsError(try HTMLReport.load(run: dir)) { e in
      XCTAssertEqual("\(e)", "\(dir): nothing to report (no metrics.jsonl, eval.json or embeddings-test.safetensors)")
    }
    XCTAssertThrowsError(try HTMLReport.load(run: dir + "/missing")) { e in
      XCTAssertEqual("\(e)", "\(dir)/missing: no such run directory")
    }
    try "{\"linear\": 3}".write(toFile: dir + "/eval.json", atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try HTMLReport.load(run: dir)) { e in
      XCTAssertEqual("\(e)", "\(dir)/eval.json: linear is not an object")
    }
  }

  func testTicksAndLabels() {
    XCTAssertEqual(SVG.ticks(0, 3000, count: 6), [0, 500, 1000, 1500, 2000, 2500, 3000])
    // Raw step 0.28 rounds up to 0.5 in the 1-2-2.5-5 sequence.
    XCTAssertEqual(SVG.ticks(0.3, 1.7, count: 5), [0.5, 1.0, 1.5])
    XCTAssertEqual(SVG.ticks(-0.02, 0.81, count: 5), [0, 0.2, 0.4, 0.6, 0.8])
    XCTAssertEqual(SVG.label(1500), "1.5k")
    XCTAssertEqual(SVG.label(0.0015), "0.0015")
    XCTAssertEqual(SVG.label(250_000), "250k")
    XCTAssertEqual(SVG.label(2e-6), "2e-06")
    XCTAssertEqual(SVG.groupThousands(1234567), "1,234,567")
    // Debiased EMA of a constant is the constant.
    XCTAssertEqual(SVG.ema([3, 3, 3, 3]), [3, 3, 3, 3])
  }

  func testRandomInitBaselineIsShownNextToTheTrainedFigures() throws {
    let run = try makeRun(metrics: false, embeddings: false)
    // A baseline report: the linear classifier fitted on labels shuffled against the rows.
    let probe = try EmbeddingFile(path: fixturePath("eval-probe.safetensors"))
    let test = try EmbeddingFile(path: fixturePath("eval-test.safetensors"))
    var shuffled = probe
    shuffled.labels = probe.labels.enumerated().map { probe.labels[($0.offset * 7919) % probe.count] }
    let (base, _) = try runEvaluation(probe: shuffled, test: test, classifiers: [.linear])
    try base.json().write(toFile: run + "/eval-random.json", atomically: true, encoding: .utf8)
    let html = try HTMLReport.load(run: run).render()
    let trained = try EvaluationReport.parse(Data(contentsOf: URL(fileURLWithPath: run + "/eval.json")), path: "eval.json")
    let want = String(format: "Logistic regression %.1f%% (trained %.1f%%)", 100 * base["linear"]!["all"]!.acc!,
                      100 * trained["linear"]!["all"]!.acc!)
    XCTAssertTrue(html.contains("Random-init baseline"), "baseline note")
    XCTAssertTrue(html.contains(want), want)
    // Without eval-random.json there is no baseline note.
    try FileManager.default.removeItem(atPath: run + "/eval-random.json")
    XCTAssertFalse(try HTMLReport.load(run: run).render().contains("Random-init baseline"))
  }
}
