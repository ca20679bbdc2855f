import Foundation
import Randomness

/// A one-file HTML report of a run (inline CSS and SVG, no scripts, no network):
/// summary cards; loss terms against their collapse value, embedding and gradient health
/// figures (HTMLReport+Health.swift), learning rate, throughput and data wait over steps
/// (`RUN/metrics.jsonl`); probe accuracy over steps (its evaluation rows, HTMLReport+Probes.swift);
/// per-generator accuracy bars and a metrics table of the last
/// evaluation (`RUN/eval.json`); a PCA projection of the test embeddings coloured by
/// class (`RUN/embeddings-test.safetensors`). Any of the three inputs may be missing.
public struct HTMLReport {
  public var title: String
  public var runPath: String
  public var metrics: RunMetrics?
  public var evaluation: EvaluationReport?
  public var embeddings: EmbeddingFile?
  /// The same evaluation for a randomly initialised model of the same shape
  /// (`RUN/eval-random.json`, written by scripts/eval-smoke.sh), shown as a baseline.
  public var baseline: EvaluationReport?
  /// Lines shown at the bottom (inputs read, skipped lines, ...).
  public var notes: [String] = []
  /// Most points drawn in the projection (a deterministic, class-stratified sample).
  public var maxScatterPoints = 2500

  public init(title: String, runPath: String, metrics: RunMetrics?, evaluation: EvaluationReport?, embeddings: EmbeddingFile?) {
    self.title = title
    self.runPath = runPath
    self.metrics = metrics
    self.evaluation = evaluation
    self.embeddings = embeddings
  }

  /// Reads the inputs of run directory `run`. Throws when none of them exists, or when
  /// one exists but cannot be read (one line naming the file).
  public static func load(run: String) throws -> HTMLReport {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: run, isDirectory: &isDir), isDir.boolValue else {
      throw EvaluationError(.notFound(path: run), "\(run): no such run directory")
    }
    func path(_ n: String) -> String { (run as NSString).appendingPathComponent(n) }
    let fm = FileManager.default
    var notes: [String] = []
    var metrics: RunMetrics? = nil
    if fm.fileExists(atPath: path("metrics.jsonl")) {
      let m = try RunMetrics(path: path("metrics.jsonl"))
      notes.append("metrics.jsonl: \(m.lineCount) lines" + (m.skippedLines > 0 ? ", \(m.skippedLines) skipped (not a JSON object with a step)" : ""))
      metrics = m
    }
    var eval: EvaluationReport? = nil
    if fm.fileExists(atPath: path("eval.json")) {
      guard let data = fm.contents(atPath: path("eval.json")) else { throw EvaluationError(.io(path: path("eval.json")), "\(path("eval.json")): cannot read file") }
      eval = try EvaluationReport.parse(data, path: path("eval.json"))
      notes.append("eval.json: \(eval!.classifiers.map(\.name).joined(separator: ", "))")
    }
    var baseline: EvaluationReport? = nil
    if fm.fileExists(atPath: path("eval-random.json")) {
      guard let data = fm.contents(atPath: path("eval-random.json")) else { throw EvaluationError(.io(path: path("eval-random.json")), "\(path("eval-random.json")): cannot read file") }
      baseline = try EvaluationReport.parse(data, path: path("eval-random.json"))
      notes.append("eval-random.json: \(baseline!.classifiers.map(\.name).joined(separator: ", "))")
    }
    var emb: EmbeddingFile? = nil
    if fm.fileExists(atPath: path("embeddings-test.safetensors")) {
      emb = try EmbeddingFile(path: path("embeddings-test.safetensors"))
      notes.append("embeddings-test.safetensors: \(emb!.count) rows of \(emb!.dimension)")
    }
    guard metrics != nil || eval != nil || emb != nil else {
      throw EvaluationError(.noData, "\(run): nothing to report (no metrics.jsonl, eval.json or embeddings-test.safetensors)")
    }
    let name = (URL(fileURLWithPath: run).standardizedFileURL.path as NSString).lastPathComponent
    var r = HTMLReport(title: name, runPath: run, metrics: metrics, evaluation: eval, embeddings: emb)
    r.notes = notes
    r.baseline = baseline
    return r
  }

  static let classColors = ["#2f6db5", "#f28e2b", "#d64541", "#8e6cbf", "#3a9d5d", "#b07aa1", "#9c755f", "#a4acb6"]
  static let classifierColors: [String: String] = ["linear": "#3b6fb6", "knn": "#f0a030", "svm": "#4aa37a"]
  static let classifierTitles: [String: String] = [
    "linear": "Logistic regression", "knn": "1-NN (cosine)", "svm": "One-class SVM",
  ]

  /// The HTML page.
  public func render(generated: Date = Date()) -> String {
    var body = ""
    body += "<header><div><h1>\(SVG.esc(title))</h1><div class=\"sub\">CoDE training run · \(SVG.esc(runPath))</div></div>"
    let df = DateFormatter()
    df.dateFormat = "yyyy-MM-dd HH:mm"
    df.locale = Locale(identifier: "en_US_POSIX")
    body += "<div class=\"gen\">report generated \(df.string(from: generated))</div></header>"
    body += cards()
    body += trainingSection()
    body += probeSection()
    body += detectionSection()
    body += embeddingSection()
    if !notes.isEmpty {
      body += "<footer>Inputs: " + notes.map(SVG.esc).joined(separator: " · ") + "</footer>"
    }
    return """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <title>\(SVG.esc(title)) · CoDE report</title>
      <style>\(HTMLReport.css)</style></head>
      <body><main>\(body)</main></body></html>

      """
  }

  // MARK: sections

  func cards() -> String {
    var cards: [(String, String, String)] = []
    if let m = metrics {
      if let last = m.lastStep { cards.append(("Steps", SVG.groupThousands(Int(last)), epochText(m))) }
      if let loss = m["loss"], loss.count > 0 {
        let sm = SVG.ema(loss.map(\.value))
        let first = loss.count > 40 ? SVG.ema(Array(loss.prefix(max(loss.count / 50, 1))).map(\.value)).last! : loss[0].value
        cards.append(("Loss", SVG.number(sm.last!), "from \(SVG.number(first)) at the start"))
      }
      if let c = collapseCard(m) { cards.append(c) }
      if let r = m["records_per_s"], !r.isEmpty {
        let med = median(r.map(\.value))
        cards.append(("Throughput", SVG.number(med), "records/s (median)"))
      }
      if let w = m["data_wait_s"], !w.isEmpty {
        cards.append(("Data wait", SVG.number(median(w.map(\.value))) + " s", "per step (median), max \(SVG.number(w.map(\.value).max()!)) s"))
      }
      if let c = probeCard() { cards.append(c) }
    }
    if let e = evaluation {
      let best = e.classifiers.compactMap { c in c["all"]?.acc.map { (c.name, $0, c["all"]?.auc) } }.max { $0.1 < $1.1 }
      if let b = best {
        let t = HTMLReport.classifierTitles[b.0] ?? b.0
        cards.append(("Best detector", String(format: "%.1f%%", 100 * b.1),
                      "\(t), balanced accuracy" + (b.2.map { String(format: ", AUC %.3f", $0) } ?? "")))
      }
    }
    guard !cards.isEmpty else { return "" }
    return "<section class=\"cards\">" + cards.map {
      "<div class=\"card stat\"><div class=\"label\">\(SVG.esc($0.0))</div><div class=\"value\">\(SVG.esc($0.1))</div><div class=\"hint\">\(SVG.esc($0.2))</div></div>"
    }.joined() + "</section>"
  }

  func epochText(_ m: RunMetrics) -> String {
    if let e = m["epoch"]?.last?.value { return "epoch \(SVG.number(e, digits: 3))" }
    return "optimiser steps"
  }

  func legend(_ items: [(String, String)]) -> String {
    "<div class=\"legend\">" + items.map {
      "<span><i style=\"background:\($0.1)\"></i>\(SVG.esc($0.0))</span>"
    }.joined() + "</div>"
  }

  func points(_ name: String) -> [(x: Double, y: Double)] {
    (metrics?[name] ?? []).map { ($0.step, $0.value) }
  }

  func trainingSection() -> String {
    guard let m = metrics else {
      return "<h2>Training</h2><div class=\"card empty\">No metrics.jsonl in this run yet.</div>"
    }
    var s = "<h2>Training</h2><section class=\"grid\">"
    let lossSeries: [(String, String, String)] = [
      ("loss", "total  L = L_real + L_fake", "#222831"), ("loss_real", "L_real", "#2f6db5"), ("loss_fake", "L_fake", "#d64541"),
    ]
    let present = lossSeries.filter { m[$0.0] != nil }
    if !present.isEmpty {
      s += "<div class=\"card wide\"><h3>Loss</h3>"
      let collapse = totalCollapseSeries()
      s += legend(present.map { ($0.1, $0.2) } + collapse.map {
        ($0.name, "repeating-linear-gradient(90deg,\($0.color) 0 4px,transparent 4px 7px)")
      })
      s += SVG.lineChart(present.map { SVG.Series(name: $0.1, color: $0.2, points: points($0.0)) } + collapse,
                         width: 1100, height: 300, yLabel: "InfoNCE", yFloorZero: true)
      s += "<p class=\"note\">Bold lines are smoothed (exponential moving average); the shaded band is the range of the raw values.</p></div>"
    }
    s += "</section>" + healthSection(m) + "<section class=\"grid3\">"
    let w = 400.0, h = 240.0
    if m["lr"] != nil {
      s += "<div class=\"card\"><h3>Learning rate</h3>"
      s += SVG.lineChart([SVG.Series(name: "lr", color: "#8e6cbf", points: points("lr"), smooth: false)],
                         width: w, height: h, yFloorZero: true)
      s += "<p class=\"note\">The schedule the coordinator broadcast: warmup, then cosine decay.</p></div>"
    }
    if m["records_per_s"] != nil {
      s += "<div class=\"card\"><h3>Throughput</h3>"
      s += SVG.lineChart([SVG.Series(name: "records/s", color: "#3a9d5d", points: points("records_per_s"))],
                         width: w, height: h, yLabel: "records / s", yFloorZero: true)
      s += "<p class=\"note\">D3 records (one real and one generated image with their views) per second over all ranks.</p></div>"
    }
    if m["data_wait_s"] != nil {
      s += "<div class=\"card\"><h3>Data wait</h3>"
      s += SVG.lineChart([SVG.Series(name: "data wait", color: "#f28e2b", points: points("data_wait_s"))],
                         width: w, height: h, yLabel: "s / step", yFloorZero: true)
      s += "<p class=\"note\">Time a step waited for its batch; spikes mean the loader fell behind.</p></div>"
    }
    let known: Set<String> = ["loss", "loss_real", "loss_fake", "lr", "records_per_s", "data_wait_s", "epoch", "time", "elapsed_s", "rank"]
    let others = m.names.filter {
      !known.contains($0) && !HTMLReport.isHealthMetric($0) && !$0.hasPrefix("eval") && (m[$0]?.count ?? 0) > 1
    }.prefix(6)
    for name in others {
      s += "<div class=\"card\"><h3>\(SVG.esc(name))</h3>"
      s += SVG.lineChart([SVG.Series(name: name, color: "#5f6b7a", points: points(name))], width: w, height: h, yLabel: name)
      s += "</div>"
    }
    return s + "</section>"
  }

  func detectionSection() -> String {
    guard let e = evaluation, !e.classifiers.isEmpty else {
      return "<h2>Detection</h2><div class=\"card empty\">No eval.json in this run yet (write one with <code>cde eval --output RUN/eval.json</code>).</div>"
    }
    var groups: [String] = []
    for c in e.classifiers { for s in c.subsets.map(\.name) where !groups.contains(s) { groups.append(s) } }
    groups = groups.filter { $0 != "all" } + (groups.contains("all") ? ["all"] : [])
    let series = e.classifiers.map { c in
      (name: HTMLReport.classifierTitles[c.name] ?? c.name, color: HTMLReport.classifierColors[c.name] ?? "#777",
       values: groups.map { c[$0]?.acc })
    }
    var s = "<h2>Detection <span class=\"h2sub\">last evaluation: accuracy on real vs each generator</span></h2><section class=\"grid\">"
    s += "<div class=\"card\"><h3>Accuracy per generator</h3>"
    s += legend(series.map { ($0.name, $0.color) } + [("chance", "repeating-linear-gradient(90deg,#999 0 4px,transparent 4px 7px)")])
    s += SVG.groupedBars(groups: groups, series: series)
    s += "<p class=\"note\">gen_k: the real test images and the images of generator k. all: balanced accuracy, the mean of "
    s += "the accuracy on real images and the accuracy on generated images, each generator weighted equally (a detector "
    s += "that answers \"fake\" for everything scores 50%).</p></div>"
    s += "<div class=\"card\"><h3>Metrics</h3><table class=\"metrics\"><thead><tr><th></th>"
    s += groups.map { "<th>\(SVG.esc($0))</th>" }.joined() + "</tr></thead><tbody>"
    for c in e.classifiers {
      s += "<tr><th><i style=\"background:\(HTMLReport.classifierColors[c.name] ?? "#777")\"></i>\(SVG.esc(HTMLReport.classifierTitles[c.name] ?? c.name))</th>"
      for g in groups {
        guard let m = c[g] else { s += "<td></td>"; continue }
        let acc = m.acc ?? 0
        // Background from red (50% or less) through yellow to green (100%).
        let t = min(max((acc - 0.5) / 0.5, 0), 1)
        let hue = Int(8 + 122 * t)
        s += "<td style=\"background:hsl(\(hue) 62% 92%)\"><b>\(m.acc.map { String(format: "%.1f", 100 * $0) } ?? "–")</b>"
        s += "<small>real \(pct(m.realAcc))<br>fake \(pct(m.fakeAcc))<br>AUC \(m.auc.map { String(format: "%.3f", $0) } ?? "–")</small></td>"
      }
      s += "</tr>"
    }
    s += "</tbody></table><p class=\"note\">Accuracy in %, with the accuracy on real and on fake images and the ROC AUC (fake = positive). "
    s += "In the all column, fake accuracy and AUC are the means over the generators and accuracy the mean of real and fake.</p>"
    if let b = baseline, !b.classifiers.isEmpty {
      let cells = b.classifiers.map { c -> String in
        let acc = c["all"]?.acc.map { String(format: "%.1f%%", 100 * $0) } ?? "–"
        let trained = e[c.name]?["all"]?.acc.map { String(format: "%.1f%%", 100 * $0) } ?? "–"
        return "\(SVG.esc(HTMLReport.classifierTitles[c.name] ?? c.name)) \(acc) (trained \(trained))"
      }
      s += "<p class=\"note\">Random-init baseline (same shape, same probe and test images), balanced accuracy: "
      s += cells.joined(separator: " · ") + ".</p>"
    }
    s += "</div>"
    return s + "</section>"
  }

  func pct(_ v: Double?) -> String { v.map { String(format: "%.0f", 100 * $0) } ?? "–" }

  func embeddingSection() -> String {
    guard let emb = embeddings else {
      return "<h2>Embedding space</h2><div class=\"card empty\">No embeddings-test.safetensors in this run (write one with <code>cde embed</code>).</div>"
    }
    let labelled = emb  // every row, unknown ones in grey
    guard labelled.count >= 3 else {
      return "<h2>Embedding space</h2><div class=\"card empty\">Too few test embeddings to project (\(labelled.count)).</div>"
    }
    let pca = PCA(data: labelled.embeddings, rows: labelled.count, dimension: labelled.dimension)
    // Class-stratified deterministic sample, drawn in an interleaved order so that no
    // class systematically hides another.
    let classes = Array(Set(labelled.labels)).sorted { a, b in a < 0 ? false : (b < 0 ? true : a < b) }
    var byClass: [Int64: [Int]] = [:]
    for (i, l) in labelled.labels.enumerated() { byClass[l, default: []].append(i) }
    let keepFraction = min(1, Double(maxScatterPoints) / Double(labelled.count))
    var chosen: [Int] = []
    for c in classes {
      let rows = byClass[c]!
      let k = max(1, Int((Double(rows.count) * keepFraction).rounded()))
      let stride = Double(rows.count) / Double(k)
      chosen += (0..<k).map { rows[Int(Double($0) * stride)] }
    }
    var rng = SplitMix64(seed: SplitMix64.gamma)
    for i in stride(from: chosen.count - 1, to: 0, by: -1) {
      chosen.swapAt(i, Int(rng.below(UInt64(i + 1))))
    }
    var sub: [Float] = []
    sub.reserveCapacity(chosen.count * labelled.dimension)
    for i in chosen { sub += labelled.embeddings[(i * labelled.dimension)..<((i + 1) * labelled.dimension)] }
    let proj = pca.transform(sub, rows: chosen.count)
    let colorIndex: (Int64) -> Int = { l in l < 0 ? 7 : Int(l) % 7 }
    let pts = chosen.enumerated().map { (k, i) in (x: proj[2 * k], y: proj[2 * k + 1], cls: colorIndex(labelled.labels[i])) }
    let ev = pca.explainedVariance, tot = max(pca.totalVariance, 1e-300)
    let xl = String(format: "PC 1 (%.1f%% of variance)", 100 * ev[0] / tot)
    let yl = String(format: "PC 2 (%.1f%%)", 100 * ev[1] / tot)
    var s = "<h2>Embedding space <span class=\"h2sub\">test embeddings projected on their first two principal components</span></h2>"
    s += "<section class=\"grid\"><div class=\"card wide scatter\"><div>"
    s += legend(classes.map { c in
      ("\(EmbeddingFile.className(c)) (\(byClass[c]!.count))", HTMLReport.classColors[colorIndex(c)])
    })
    s += SVG.scatter(points: pts, colors: HTMLReport.classColors, xLabel: xl, yLabel: yl, width: 760, height: 520)
    s += "</div><div class=\"aside\"><h3>Reading this plot</h3><p>Each dot is one test image, placed by the two directions along which the embeddings vary most. "
    s += "A well-trained CoDE model pulls real images together and pushes generated ones away from them, so the colours separate.</p>"
    s += "<p>\(SVG.groupThousands(chosen.count)) of \(SVG.groupThousands(labelled.count)) embeddings shown; the two components explain "
    s += String(format: "%.1f%%", 100 * (ev[0] + ev[1]) / tot) + " of the variance in \(labelled.dimension) dimensions.</p>"
    s += "<p class=\"note\">A linear projection: classes that overlap here can still be separable by the classifiers above.</p></div></div></section>"
    return s
  }

  func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }

  /// Writes the page to `output` (default RUN/report.html); returns the path.
  @discardableResult
  public static func write(run: String, to output: String? = nil) throws -> String {
    let report = try load(run: run)
    let path = output ?? (run as NSString).appendingPathComponent("report.html")
    do { try Data(report.render().utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
      throw EvaluationError(.io(path: path), "\(path): cannot write: \(error.localizedDescription)")
    }
    return path
  }

  static let css = """
    :root{--ink:#1d232b;--muted:#6b7480;--line:#e6e9ee;--bg:#f4f6f9}
    *{box-sizing:border-box}
    body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
    main{max-width:1200px;margin:0 auto;padding:28px 28px 40px}
    header{display:flex;justify-content:space-between;align-items:flex-end;margin-bottom:18px}
    h1{margin:0;font-size:28px;letter-spacing:-.01em}
    .sub,.gen{color:var(--muted);font-size:13px}
    h2{font-size:19px;margin:30px 0 12px}
    .h2sub{font-weight:400;color:var(--muted);font-size:14px;margin-left:8px}
    h3{margin:0 0 6px;font-size:15px}
    .card{background:#fff;border:1px solid var(--line);border-radius:12px;padding:16px 18px;box-shadow:0 1px 2px rgba(20,30,40,.04)}
    .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:14px}
    .stat .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.06em}
    .stat .value{font-size:28px;font-weight:650;margin:2px 0;font-variant-numeric:tabular-nums}
    .stat .hint{color:var(--muted);font-size:12.5px}
    .grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
    .grid3{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:16px;margin-top:16px}
    .wide{grid-column:1/-1}
    .empty{color:var(--muted)}
    .chart{width:100%;height:auto;display:block;font-family:inherit}
    .chart .grid{stroke:#edf0f4;stroke-width:1}
    .chart .axis{stroke:#9aa3ae;stroke-width:1}
    .chart .sep{stroke:#d5dae1;stroke-width:1;stroke-dasharray:3 3}
    .chart .chance{stroke:#8a939e;stroke-width:1.2;stroke-dasharray:5 4}
    .chart .tick{fill:#6b7480;font-size:11.5px}
    .chart .axislabel{fill:#6b7480;font-size:12px}
    .chart .group{fill:#1d232b;font-size:13px;font-weight:600}
    .chart .barval{fill:#38414c;font-size:11px}
    .chart .plotbg{fill:#fbfcfd;stroke:#eef1f4}
    .legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:13px;color:#38414c;margin:2px 0 6px}
    .legend i,.metrics th i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;vertical-align:-1px}
    .note{color:var(--muted);font-size:12.5px;margin:8px 0 0}
    table.metrics{width:100%;border-collapse:separate;border-spacing:4px;font-variant-numeric:tabular-nums}
    .metrics th{font-size:13px;text-align:left;font-weight:600;white-space:nowrap}
    .metrics thead th{text-align:center;color:var(--muted);font-weight:600}
    .metrics td{text-align:center;border-radius:8px;padding:7px 4px}
    .metrics td b{display:block;font-size:18px}
    .metrics td small{color:#4b5560;font-size:11px;line-height:1.3}
    .scatter{display:grid;grid-template-columns:minmax(0,2.1fr) minmax(0,1fr);gap:22px;align-items:start}
    .aside p{color:#38414c;font-size:14px}
    code{background:#eef1f5;border-radius:4px;padding:1px 5px;font-size:13px}
    footer{margin-top:26px;color:var(--muted);font-size:12.5px}
    @media (max-width:860px){.grid,.grid3{grid-template-columns:1fr}.scatter{grid-template-columns:1fr}}
    """
}
