import Foundation

/// Probe accuracy over steps: the evaluation rows that `cde train` writes to
/// metrics.jsonl with `eval.every_steps` (`eval.CLASSIFIER.gen_k.acc`, `eval_best`,
/// `eval_best_step`, `eval_s`, flattened by `RunMetrics`).
extension HTMLReport {
  /// Classifiers with per-generator accuracy in the training log.
  var probeClassifiers: [String] {
    guard let m = metrics else { return [] }
    return ["linear", "knn", "svm"].filter { c in !probeGenerators(c).isEmpty && m.names.contains { $0.hasPrefix("eval.\(c).") } }
  }

  /// Generator subsets (gen_k, in k order) with an accuracy series for classifier `c`.
  func probeGenerators(_ c: String) -> [String] {
    guard let m = metrics else { return [] }
    let prefix = "eval.\(c).gen_"
    return m.names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".acc") }
      .map { String($0.dropFirst("eval.\(c).".count).dropLast(".acc".count)) }
      .sorted { (Int($0.dropFirst(4)) ?? 0) < (Int($1.dropFirst(4)) ?? 0) }
  }

  /// Per step, the mean over generators of classifier `c`'s accuracy (the default
  /// `eval.best_metric` for linear).
  func probeMean(_ c: String) -> [(x: Double, y: Double)] {
    var sum: [Double: (Double, Int)] = [:]
    for g in probeGenerators(c) {
      for p in metrics?["eval.\(c).\(g).acc"] ?? [] {
        let s = sum[p.step] ?? (0, 0)
        sum[p.step] = (s.0 + p.value, s.1 + 1)
      }
    }
    return sum.keys.sorted().map { (x: $0, y: sum[$0]!.0 / Double(sum[$0]!.1)) }
  }

  /// The summary card of the best evaluation, if the log has one.
  func probeCard() -> (String, String, String)? {
    guard let m = metrics, let best = m["eval_best"]?.last?.value else { return nil }
    let step = m["eval_best_step"]?.last.map { " at step \(SVG.groupThousands(Int($0.value)))" } ?? ""
    let evals = m["eval_s"]?.count ?? 0
    return ("Best probe", String(format: "%.1f%%", 100 * best), "best metric\(step), \(evals) evaluation\(evals == 1 ? "" : "s")")
  }

  func probeSection() -> String {
    let cs = probeClassifiers
    guard let m = metrics, !cs.isEmpty else { return "" }
    let palette = HTMLReport.classColors
    var s = "<h2>Probe accuracy <span class=\"h2sub\">classifiers fitted on the probe embeddings during training, scored on the test images</span></h2>"
    s += "<section class=\"grid\">"
    let lead = cs[0]
    let gens = probeGenerators(lead)
    var series = gens.enumerated().map { i, g in
      SVG.Series(name: g, color: palette[(i + 1) % palette.count], points: (m["eval.\(lead).\(g).acc"] ?? []).map { ($0.step, $0.value) },
                 smooth: false)
    }
    series.append(SVG.Series(name: "mean", color: "#222831", points: probeMean(lead), smooth: false))
    s += "<div class=\"card\"><h3>\(SVG.esc(HTMLReport.classifierTitles[lead] ?? lead)): real vs each generator</h3>"
    s += legend(series.map { ($0.name, $0.color) })
    s += SVG.lineChart(series, width: 560, height: 280, yLabel: "accuracy")
    var note = "Accuracy on the test images of real and generator k, after each evaluation."
    if let b = m["eval_best"]?.last?.value, let bs = m["eval_best_step"]?.last?.value {
      note += String(format: " Best value of eval.best_metric: %.1f%% at step ", 100 * b) + SVG.groupThousands(Int(bs))
        + " (RUN/checkpoints/best)."
    }
    if let t = m["eval_s"], !t.isEmpty { note += " An evaluation took \(SVG.number(median(t.map(\.value)))) s (median)." }
    s += "<p class=\"note\">\(SVG.esc(note))</p></div>"
    let means = cs.map { c in
      SVG.Series(name: HTMLReport.classifierTitles[c] ?? c, color: HTMLReport.classifierColors[c] ?? "#777", points: probeMean(c), smooth: false)
    }
    s += "<div class=\"card\"><h3>Mean accuracy over generators</h3>"
    s += legend(means.map { ($0.name, $0.color) })
    s += SVG.lineChart(means, width: 560, height: 280, yLabel: "accuracy")
    s += "<p class=\"note\">Per classifier, the mean over gen_0 ... gen_k of the real-vs-generator accuracy.</p></div>"
    return s + "</section>"
  }
}
