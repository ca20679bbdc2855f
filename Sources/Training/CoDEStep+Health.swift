import Foundation

extension CoDEStep {
  /// `EmbeddingHealthMeter` figures of the last `forwardLoss`: the four gathered key views
  /// of every record of the global batch, `[4, G, D]` in the order aug_real, aug_fake,
  /// global_real, global_fake (real: aug_real and global_real; fake: aug_fake and
  /// global_fake). The same on every rank. Reads the buffers the loss already has: no
  /// forward pass and no communication.
  public func embeddingHealth(meter: EmbeddingHealthMeter) -> EmbeddingHealthMeter.Figures {
    let d = model.config.width
    meter.reset(dimension: d)
    let gd = keyAll.count / 4
    guard gd > 0 else { return meter.figures() }
    keyAll.withUnsafeBufferPointer { k in
      let p = k.baseAddress!, g = gd / d
      meter.add(p, rows: g, real: true)            // aug_real r'
      meter.add(p + gd, rows: g, real: false)      // aug_fake f'
      meter.add(p + 2 * gd, rows: g, real: true)   // global_real r_g
      meter.add(p + 3 * gd, rows: g, real: false)  // global_fake f_g
    }
    return meter.figures()
  }

  /// Every health figure of the last step (loss terms and their collapse value, embedding
  /// figures, gradient norms after the all-reduce, final LayerNorm weight norm) by metric
  /// name. `result` is what `forwardLoss`, `forwardBackward` or `run` returned; call it
  /// after `backward` (gradient norms) and before the next `forwardLoss`.
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
