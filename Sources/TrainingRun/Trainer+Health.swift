import Clock
import Foundation
import Training
import ViT

/// What the trainer keeps for the health figures: the meter's accumulators, the gradient
/// groups of the model and the plateau watch (rank 0).
final class TrainingHealth {
  let meter = EmbeddingHealthMeter()
  let norms: GradientNorms
  var plateau = PlateauDetector()
  init(model: ViTModel) { norms = GradientNorms(layout: model.layout, depth: model.config.depth) }
}

extension Trainer {
  /// Per step: the four loss terms, `loss_collapse` and `loss_collapse_ratio` into `lastMetrics`.
  func addLossTermMetrics(_ r: CoDEStep.Result) {
    for (k, v) in CoDEStep.lossMetrics(r, globalBatch: config.train.globalBatch) { lastMetrics[k] = v }
  }

  /// On log steps, rank 0 only (every rank holds the same gathered keys and all-reduced
  /// gradients): the embedding figures, gradient norms and final LayerNorm weight norm of
  /// the step just run (`CoDEStep.healthMetrics`). About O(4 G D + parameters) flops, once per
  /// log, outside the timed step; `health_s` is the seconds it took.
  func addHealthMetrics(_ r: CoDEStep.Result) {
    let t0 = MonotonicClock.seconds()
    let m = step.healthMetrics(r, globalBatch: config.train.globalBatch, meter: health.meter, norms: health.norms)
    for (k, v) in m { lastMetrics[k] = v }
    lastMetrics["health_s"] = MonotonicClock.seconds(since: t0)
  }

  /// The health part of the progress line: collapse ratio and mean embedding cosine.
  func healthSummary() -> String {
    let m = lastMetrics
    guard let ratio = m["loss_collapse_ratio"] else { return "" }
    var s = String(format: "; %.3fx collapse", ratio)
    if let c = m["emb_mean_cos"] { s += String(format: ", emb cos %.3f", c) }
    if let g = m["grad_norm"] { s += String(format: ", |g| %.2e", g) }
    return s
  }

  /// Feeds the logged figures to the plateau watch; logs its warning when an episode starts.
  func checkPlateau() {
    if let w = health.plateau.observe(step: globalStep, metrics: lastMetrics) { log(w) }
  }
}
