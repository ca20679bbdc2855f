import Clock
import Collectives
import Training

/// What the trainer accumulates over the steps between two log lines (`train.log_every`),
/// and the windowed metrics it gives: throughput, data wait, the MPI share and its spread
/// over ranks, the gradient all-reduce's overlap, the share of deduplicated views.
struct MetricWindow {
  /// Records of the global batch trained on (G per step).
  var records = 0
  /// Seconds of the steps (loader, step, bookkeeping).
  var seconds = 0.0
  /// Seconds this rank waited for the loader.
  var dataWait = 0.0
  /// Seconds this rank was blocked in MPI.
  var comm = 0.0
  /// Per step: seconds blocked in MPI, then seconds waiting for the gradient all-reduce.
  var stepComm: [Double] = []
  /// Views of this rank skipped as bit-identical to another view.
  var duplicateViews = 0
  /// When the window began, with the machine's steal counter then.
  var start = StealClock.mark()

  /// Adds one step of `globalBatch` records.
  mutating func add(globalBatch: Int, seconds dt: Double, dataWait wait: Double, comm: Double, gradientWait: Double,
                    duplicateViews dup: Int) {
    records += globalBatch
    seconds += dt
    dataWait += wait
    self.comm += comm
    stepComm.append(comm)
    stepComm.append(gradientWait)
    duplicateViews += dup
  }

  /// Empties the window (after a log line), keeping the capacity of `stepComm`.
  mutating func reset() {
    records = 0; seconds = 0; dataWait = 0; comm = 0; duplicateViews = 0
    start = StealClock.mark()
    stepComm.removeAll(keepingCapacity: true)
  }

  /// The windowed metrics, with G = `globalBatch`, B = G / ranks records per rank, T the window's seconds:
  /// `records_per_s` = records / T, `data_wait_s`, `data_wait_frac` = wait / T, `comm_frac` = MPI / T,
  /// `views_deduplicated_frac` = skipped / (8 B steps), `step_s` = T / steps; with several ranks
  /// (collective: every rank calls it) `comm_frac_min` / `comm_frac_max` (per step, the rank that
  /// waited least arrived last), `allreduce_alone_s` (`allReduceAlone`), `allreduce_wait_s` (mean
  /// per step of the least wait) and `allreduce_overlap` = clamp(1 - wait / alone, 0, 1);
  /// `host_steal_frac`, the share of its machine's CPU time the hypervisor gave to other guests over
  /// the window (steal seconds / (wall seconds x CPUs); the most over the ranks' machines; left out
  /// where no rank's machine counts steal).
  func metrics(globalBatch g: Int, comm: Communicator, allReduceAlone: Double) -> [String: Double] {
    let b = g / comm.size
    var m: [String: Double] = [:]
    var steal = [StealClock.share(since: start) ?? -1]  // -1: not known here
    if comm.size > 1 { comm.allReduce(&steal, op: .max) }
    if steal[0] >= 0 { m["host_steal_frac"] = steal[0] }
    m["records_per_s"] = Double(records) / max(seconds, 1e-9)
    m["data_wait_s"] = dataWait
    m["data_wait_frac"] = dataWait / max(seconds, 1e-9)
    m["comm_frac"] = self.comm / max(seconds, 1e-9)
    if comm.size > 1 {
      // Step by step, the rank that waited least arrived last: its blocked time is communication that
      // compute did not hide; what the others waited beyond it is load imbalance between the ranks.
      let steps = Double(stepComm.count / 2)
      var lo = stepComm, hi = stepComm
      comm.allReduce(&lo, op: .min)
      comm.allReduce(&hi, op: .max)
      let sum = { (v: [Double], k: Int) in stride(from: k, to: v.count, by: 2).reduce(0.0) { $0 + v[$1] } }
      m["comm_frac_min"] = sum(lo, 0) / max(seconds, 1e-9)
      m["comm_frac_max"] = sum(hi, 0) / max(seconds, 1e-9)
      // The gradient all-reduce: alone (blocking, measured at start) and the wait left after backward.
      let gradWait = sum(lo, 1) / max(steps, 1)
      m["allreduce_alone_s"] = allReduceAlone
      m["allreduce_wait_s"] = gradWait
      m["allreduce_overlap"] = max(0, min(1, 1 - gradWait / max(allReduceAlone, 1e-9)))
    }
    // Share of this rank's views that were bit-identical to another view and skipped.
    m["views_deduplicated_frac"] = Double(duplicateViews) / Double(8 * b * max(1, records / g))
    m["step_s"] = seconds / Double(records / g)
    return m
  }
}
