import Clock
import Collectives
import Foundation
import Training

/// Probe evaluation during training (`eval.*`), best checkpoint and early stopping.
///
/// After step s (s a multiple of `eval.every_steps`, and the last step) every rank
/// embeds its share of the probe and test images with the current parameters (no
/// gradients): the evaluator's units u (batches) are dealt as contiguous ranges,
/// rank q taking [q U / N, (q + 1) U / N). Rows are gathered to rank 0 in unit order,
/// so the classifiers see the same rows in the same order for any N. Rank 0 fits and
/// scores them, updates `EarlyStopping` with `eval.best_metric`, and broadcasts its
/// decision; every rank then resumes training at step s + 1 (or stops).
extension Trainer {
  /// True when a probe evaluation follows the step that brought `globalStep` to `step`.
  func evaluationDue(_ step: Int, total: Int) -> Bool {
    let every = config.eval.everySteps
    return evaluator != nil && every > 0 && (step % every == 0 || step == total)
  }

  /// Runs the probe evaluation when one is due after the current step (collective);
  /// writes RUN/checkpoints/best on an improvement. Returns true when early stopping
  /// says to stop.
  func evaluateIfDue(total: Int) throws -> Bool {
    guard evaluationDue(globalStep, total: total), let ev = evaluator else { return false }
    // Rank 0 fits the classifiers alone, for as long as that takes: no stall watchdog meanwhile.
    comm.armStallWatchdog(timeout: nil, step: globalStep)
    defer { comm.armStallWatchdog(timeout: stallTimeout(), step: globalStep) }
    let t0 = MonotonicClock.seconds()
    let gathered = try gatherProbeEmbeddings(ev)
    var scores: [String: Double] = [:]
    var value: Double? = nil
    var decision = EvalDecision()
    if isCoordinator, let g = gathered {
      scores = try ev.score(embeddings: g.embeddings, valid: g.valid)
      value = ProbeMetric(config.eval.bestMetric)?.value(in: scores)
      let d = earlyStopping.record(value, step: globalStep, patience: config.train.earlyStopPatience)
      decision = EvalDecision(improved: d.improved, stop: d.stop)
    }
    ev.release()
    let seconds = MonotonicClock.seconds(since: t0)
    let state = comm.broadcast(data: (try? JSONEncoder().encode(earlyStopping)) ?? Data(), root: 0)
    if let s = try? JSONDecoder().decode(EarlyStopping.self, from: state) { earlyStopping = s }
    decision = comm.broadcast(decision, root: 0)
    if isCoordinator, let g = gathered {
      reportEvaluation(scores, value: value, seconds: seconds, failed: g.valid.filter { !$0 }.count, summary: ev.summary)
    }
    if decision.improved { try saveCheckpoint(best: true) }
    return decision.stop
  }

  /// Every rank embeds its units; rank 0 receives all rows in unit order (nil elsewhere).
  func gatherProbeEmbeddings(_ ev: ProbeEvaluator) throws -> (embeddings: [Float], valid: [Bool])? {
    let rows = ev.unitRows, u = rows.count, n = comm.size, d = ev.dimension
    func units(_ q: Int) -> Range<Int> { (q * u / n)..<((q + 1) * u / n) }
    let rowsOf = (0..<n).map { q in units(q).reduce(0) { $0 + rows[$1] } }
    // Each gathered row: D floats, then 1 (embedded) or 0 (left out); padded to the largest share.
    let width = d + 1, slots = max(1, rowsOf.max() ?? 0)
    var local = [Float](repeating: 0, count: rowsOf[comm.rank] * d)
    let failures = try local.withUnsafeMutableBufferPointer { buf in
      try ev.embed(units: units(comm.rank), parameters: model.params, into: buf.baseAddress!)
    }
    precondition(failures.count == rowsOf[comm.rank], "probe evaluator returned \(failures.count) rows for \(rowsOf[comm.rank])")
    for f in failures.compactMap({ $0 }).prefix(5) { log("warning: evaluation: " + f) }
    var send = [Float](repeating: 0, count: slots * width)
    for i in 0..<rowsOf[comm.rank] {
      for j in 0..<d { send[i * width + j] = local[i * d + j] }
      send[i * width + d] = failures[i] == nil ? 1 : 0
    }
    var all = [Float](repeating: 0, count: n * slots * width)
    send.withUnsafeBufferPointer { s in
      all.withUnsafeMutableBufferPointer { comm.allGather(s.baseAddress!, count: slots * width, into: $0.baseAddress!) }
    }
    guard isCoordinator else { return nil }
    var embeddings: [Float] = [], valid: [Bool] = []
    embeddings.reserveCapacity(rows.reduce(0, +) * d)
    for q in 0..<n {
      for i in 0..<rowsOf[q] {
        let o = (q * slots + i) * width
        embeddings += all[o..<(o + d)]
        valid.append(all[o + d] != 0)
      }
    }
    return (embeddings, valid)
  }

  /// Rank 0: a progress line, a metrics.jsonl row {"step", "time", "eval": {classifier:
  /// {subset: {metric: value}}} (the structure of `cde eval --json`, "all" with "balanced": true), "eval_s",
  /// "eval_metric", "eval_best", "eval_best_step", "eval_stale", "eval_failed"} and
  /// TensorBoard scalars eval/CLASSIFIER/SUBSET/METRIC.
  func reportEvaluation(_ scores: [String: Double], value: Double?, seconds: Double, failed: Int, summary: String) {
    let name = config.eval.bestMetric
    var nested: [String: [String: [String: Any]]] = [:]
    for (key, v) in scores {
      let p = key.split(separator: ".", maxSplits: 2).map(String.init)
      guard p.count == 3 else { continue }
      nested[p[0], default: [:]][p[1], default: [:]][p[2]] = v.isFinite ? v : NSNull()
    }
    // As in `cde eval --json`: the "all" subset is the balanced figure (EvaluationReport).
    for c in nested.keys where nested[c]?["all"] != nil { nested[c]?["all"]?["balanced"] = true }
    func json(_ v: Double?) -> Any { if let v, v.isFinite { return v } else { return NSNull() } }
    let row: [String: Any] = [
      "step": globalStep, "time": Date().timeIntervalSince1970, "eval": nested, "eval_s": seconds,
      "eval_metric": json(value), "eval_best": json(earlyStopping.best), "eval_best_step": earlyStopping.bestStep.map { $0 as Any } ?? NSNull(),
      "eval_stale": earlyStopping.stale, "eval_failed": failed,
    ]
    do { try metricsLog?.append(object: row) } catch { log("warning: metrics.jsonl: cannot write the evaluation row: \(error)") }
    var tb = scores.filter { $0.value.isFinite }.sorted { $0.key < $1.key }
      .map { ("eval/" + $0.key.replacingOccurrences(of: ".", with: "/"), $0.value) }
    tb.append(("eval/seconds", seconds))
    if let value, scores[name] == nil { tb.append(("eval/" + name.replacingOccurrences(of: ".", with: "/"), value)) }
    if let best = earlyStopping.best { tb.append(("eval/best", best)) }
    tensorboard?.add(scalars: tb, step: globalStep)
    tensorboard?.flush()

    func means(_ c: String) -> String {
      let v = ProbeMetric("\(c).mean.acc")?.value(in: scores)
      return "\(c) " + (v.map { String(format: "%.3f", $0) } ?? "-")
    }
    let patience = config.train.earlyStopPatience
    let best = earlyStopping.best.map { String(format: "%.4f at step %d", $0, earlyStopping.bestStep ?? 0) } ?? "-"
    log(String(format: "eval step %d: mean accuracy over generators %@; %@ %@, best %@%@; %.1f s (%@%@)",
               globalStep, config.eval.classifiers.map(means).joined(separator: ", ") as NSString, name as NSString,
               value.map { String(format: "%.4f", $0) } ?? "-", best as NSString,
               (patience > 0 ? ", \(earlyStopping.stale)/\(patience) without improvement" : "") as NSString, seconds,
               summary as NSString, (failed > 0 ? ", \(failed) unreadable left out" : "") as NSString))
  }

  /// Ends the run after early stopping (the checkpoint of this step is written).
  func finishEarly() -> TrainOutcome {
    if isCoordinator {
      tensorboard?.flush()
      writeStatus("early-stopped")
      let best = earlyStopping.best.map { String(format: "%.4f at step %d", $0, earlyStopping.bestStep ?? 0) } ?? "-"
      log("early stop at step \(globalStep): \(config.eval.bestMetric) did not improve in \(earlyStopping.stale) evaluations "
          + "(train.early_stop_patience \(config.train.earlyStopPatience)); best \(best) in \(store.bestURL.path)")
    }
    return .earlyStopped
  }
}
