import Foundation

extension CoDEStep {
  /// `EmbeddingHealthMeter` figures of the last forward pass: the four gathered key views
  /// of every record of the global batch, aug_real, aug_fake, global_real, global_fake
  /// (real: aug_real and global_real; fake: aug_fake and global_fake), each in global row
  /// order. The same on every rank. Reads the keys the loss already has (rank-major
  /// `[N, 4, B, D]`): no forward pass and no communication.
  public func embeddingHealth(meter: EmbeddingHealthMeter) -> EmbeddingHealthMeter.Figures {
    let d = model.config.width, n = comm.size
    meter.reset(dimension: d)
    let bd = keysGathered.count / (4 * n)
    guard bd > 0 else { return meter.figures() }
    let p = UnsafePointer(keysGathered.pointer), b = bd / d
    for k in 0..<4 {  // r', f', r_g, f_g: the real views are the even ones
      for r in 0..<n { meter.add(p + (r * 4 + k) * bd, rows: b, real: k % 2 == 0) }
    }
    return meter.figures()
  }

  /// Every health figure of the last step (loss terms and their collapse value, embedding
  /// figures, gradient norms after the all-reduce, final LayerNorm weight norm) by metric
  /// name. `result` is what `forwardBackward` or `run` returned; call it
  /// after it (gradient norms) and before the next step.
  public func healthMetrics(_ result: Result, globalBatch g: Int, meter: EmbeddingHealthMeter,
                            norms: GradientNorms) -> [String: Double] {
    var m = Self.lossMetrics(result, globalBatch: g)
    let e = embeddingHealth(meter: meter)
    for (k, v) in zip(EmbeddingHealthMeter.Figures.names, e.values) { m[k] = v }
    for (k, v) in zip(norms.names, norms.measure(model.grads)) { m[k] = v }
    m["final_ln_weight_norm"] = GradientNorms.finalNormWeightNorm(params: model.params, layout: model.layout)
    return m
  }

  /// The four loss terms, `loss_collapse = ln(1 + G)` (each term's value at a constant
  /// embedding) and `loss_collapse_ratio = L / (2 ln(1 + G))` (1 on the collapse plateau).
  public static func lossMetrics(_ r: Result, globalBatch g: Int) -> [String: Double] {
    let c = CoDELoss.collapseValue(globalBatch: g)
    var m: [String: Double] = ["loss_collapse": c, "loss_collapse_ratio": r.loss / (2 * c)]
    for (k, v) in zip(CoDELoss.LossTerms.names, r.terms.values) { m[k] = v }
    return m
  }
}
