import Foundation

/// The report's view of the training health figures that `cde train` logs
/// (Sources/Training/EmbeddingHealth.swift, GradientNorms.swift, CoDELoss.LossTerms):
/// the four InfoNCE terms against their collapse value `ln(1 + G)`, the embedding
/// figures, the final LayerNorm weight norm and the gradient norm per block.
extension HTMLReport {
  static let termSeries: [(key: String, title: String, color: String)] = [
    ("loss_global_real", "global, real", "#2f6db5"), ("loss_global_fake", "global, fake", "#d64541"),
    ("loss_multiscale_real", "multi-scale, real", "#8fb3e0"), ("loss_multiscale_fake", "multi-scale, fake", "#eb9a94"),
  ]
  static let collapseColor = "#7a828c"

  /// Metrics drawn by the health charts (left out of the generic charts).
  static func isHealthMetric(_ name: String) -> Bool {
    name.hasPrefix("loss_") || name.hasPrefix("emb_") || name.hasPrefix("grad_norm") || name == "final_ln_weight_norm"
      || name == "health_s"
  }

  /// The summary card: the last loss against the collapse value and the last mean cosine.
  func collapseCard(_ m: RunMetrics) -> (String, String, String)? {
    guard let r = m["loss_collapse_ratio"]?.last?.value else { return nil }
    var hint = "loss / 2 ln(1+G); 1 is the collapse plateau"
    if let c = m["emb_mean_cos"]?.last?.value { hint += String(format: "; embedding cosine %.2f", c) }
    return ("Loss vs collapse", String(format: "%.3f×", r), hint)
  }

  /// The dashed collapse line of the total loss, `2 ln(1 + G)`, when logged.
  func totalCollapseSeries() -> [SVG.Series] {
    guard let c = metrics?["loss_collapse"], !c.isEmpty else { return [] }
    return [SVG.Series(name: "collapse 2 ln(1+G)", color: HTMLReport.collapseColor,
                       points: c.map { ($0.step, 2 * $0.value) }, smooth: false, dashed: true)]
  }

  /// Loss terms against the collapse line, embedding figures, LayerNorm weight and gradient
  /// norms; "" when the run logged none of them (older runs).
  func healthSection(_ m: RunMetrics) -> String {
    var s = ""
    let terms = HTMLReport.termSeries.filter { m[$0.key] != nil }
    if !terms.isEmpty {
      var series = terms.map { SVG.Series(name: $0.title, color: $0.color, points: points($0.key)) }
      var items = terms.map { ($0.title, $0.color) }
      if m["loss_collapse"] != nil {
        series.append(SVG.Series(name: "collapse ln(1+G)", color: HTMLReport.collapseColor, points: points("loss_collapse"),
                                 smooth: false, dashed: true))
        items.append(("collapse ln(1+G)", "repeating-linear-gradient(90deg,\(HTMLReport.collapseColor) 0 4px,transparent 4px 7px)"))
      }
      s += "<section class=\"grid\"><div class=\"card wide\"><h3>Loss terms against collapse</h3>"
      s += legend(items)
      s += SVG.lineChart(series, width: 1100, height: 280, yLabel: "InfoNCE", yFloorZero: true)
      s += "<p class=\"note\">Each InfoNCE term is a mean over the G records of the global batch: global = a base view "
      s += "against another record's augmented view of the same class, multi-scale = a local crop against its own "
      s += "record's global view. When every embedding is the same vector (CoDE's collapse plateau) each term equals "
      s += "ln(1+G), the dashed line; a term below it tells its positive from the negatives.</p></div></section>"
    }
    var cards: [String] = []
    let w = 400.0, h = 240.0
    let cos = [("emb_mean_cos", "mean pairwise", "#222831"), ("emb_centroid_cos", "real vs fake centroid", "#8e6cbf")]
      .filter { m[$0.0] != nil }
    if !cos.isEmpty {
      var c = "<div class=\"card\"><h3>Embedding cosines</h3>" + legend(cos.map { ($0.1, $0.2) })
      c += SVG.lineChart(cos.map { SVG.Series(name: $0.1, color: $0.2, points: points($0.0)) }, width: w, height: h, yLabel: "cosine")
      c += "<p class=\"note\">Of the normalised embeddings of the gathered key views (r', r_g, f', f_g of every record). "
      c += "Mean pairwise 1: all embeddings equal (collapse). Centroid cosine 1: real and generated images on average in the same direction.</p></div>"
      cards.append(c)
    }
    /// A card with one metric's curve (y axis from 0), when the metric was logged.
    func single(_ title: String, _ key: String, series: String, color: String, yLabel: String, note: String) {
      guard m[key] != nil else { return }
      var c = "<div class=\"card\"><h3>\(title)</h3>"
      c += SVG.lineChart([SVG.Series(name: series, color: color, points: points(key))],
                         width: w, height: h, yLabel: yLabel, yFloorZero: true)
      cards.append(c + "<p class=\"note\">\(note)</p></div>")
    }
    single("Embedding spread", "emb_dim_std", series: "per-dimension std", color: "#3a9d5d", yLabel: "mean per-dimension std",
           note: "Standard deviation of each dimension of the normalised embeddings over the batch, averaged "
             + "over dimensions; 0 when all embeddings are equal.")
    single("Final LayerNorm weight", "final_ln_weight_norm", series: "|norm.weight|", color: "#f28e2b", yLabel: "L2 norm",
           note: "L2 norm of the final LayerNorm's weight, the per-dimension scale of every embedding.")
    let blockNames = m.names.filter { $0.hasPrefix("grad_norm_block_") }
      .sorted { (Int($0.dropFirst(16)) ?? 0) < (Int($1.dropFirst(16)) ?? 0) }
    var grad: [SVG.Series] = []
    if m["grad_norm"] != nil { grad.append(SVG.Series(name: "total", color: "#222831", points: points("grad_norm"))) }
    if m["grad_norm_patch_embed"] != nil {
      grad.append(SVG.Series(name: "patch embedding", color: "#f28e2b", points: points("grad_norm_patch_embed")))
    }
    for (i, n) in blockNames.enumerated() {
      let t = blockNames.count > 1 ? Double(i) / Double(blockNames.count - 1) : 0
      grad.append(SVG.Series(name: "block \(n.dropFirst(16))", color: HTMLReport.ramp(t), points: points(n)))
    }
    if m["grad_norm_final_norm"] != nil {
      grad.append(SVG.Series(name: "final norm", color: "#3a9d5d", points: points("grad_norm_final_norm")))
    }
    if !grad.isEmpty {
      var c = "<div class=\"card\"><h3>Gradient norms</h3>" + legend(grad.map { ($0.name, $0.color) })
      c += SVG.lineChart(grad, width: w, height: h, yLabel: "L2 norm", yFloorZero: true)
      c += "<p class=\"note\">Of the gradient of the global batch's loss (after the all-reduce), by part of the ViT.</p></div>"
      cards.append(c)
    }
    if !cards.isEmpty { s += "<section class=\"grid3\">" + cards.joined() + "</section>" }
    return s
  }

  /// Blue (t = 0, first block) to red (t = 1, last block).
  static func ramp(_ t: Double) -> String {
    let a = (0x2f, 0x6d, 0xb5), b = (0xd6, 0x45, 0x41)
    func mix(_ x: Int, _ y: Int) -> Int { Int((Double(x) + (Double(y) - Double(x)) * min(max(t, 0), 1)).rounded()) }
    return String(format: "#%02x%02x%02x", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
  }
}
