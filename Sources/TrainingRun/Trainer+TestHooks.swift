import Training
import Foundation

/// The trainer's testing aids (scripts/test-train.sh), read from the environment:
/// - `CDE_TRACE_RECORDS=FILE`: every step appends "step rank id..." (the records this rank
///   trained on) to FILE.rankR, one file per rank R;
/// - `CDE_FAULT_KILL_AT_STEP=N` with `CDE_FAULT_RANK=R` (default 0): rank R sends itself
///   SIGKILL when it is about to run step N (a crash at a chosen point).
/// Both unset: no hook (`TestHooks()`).
struct TestHooks {
  /// Where this rank appends its record trace; nil: off.
  var traceRecords: FileHandle? = nil
  /// The step before which this rank kills itself; nil: off.
  var killAtStep: Int? = nil

  /// The hooks `environment` asks of rank `rank` (opens, creating it, the trace file).
  static func fromEnvironment(_ environment: [String: String], rank: Int) -> TestHooks {
    var hooks = TestHooks()
    if let base = environment["CDE_TRACE_RECORDS"] {
      let path = base + ".rank\(rank)"
      if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
      hooks.traceRecords = FileHandle(forWritingAtPath: path)
      _ = try? hooks.traceRecords?.seekToEnd()
    }
    if (environment["CDE_FAULT_RANK"].flatMap(Int.init) ?? 0) == rank {
      hooks.killAtStep = environment["CDE_FAULT_KILL_AT_STEP"].flatMap(Int.init)
    }
    return hooks
  }

  /// Before step `step` runs: the fault, if it is due.
  func beforeStep(_ step: Int) {
    if let f = killAtStep, f == step { kill(getpid(), SIGKILL) }
  }

  /// After the batch of step `step` is read: its record ids, if tracing (`records` is read
  /// only then: `ViewBatch.recordIDs` copies).
  func trace(step: Int, rank: Int, records: @autoclosure () -> [Int]) {
    guard let t = traceRecords else { return }
    t.write(Data(("\(step) \(rank) " + records().map(String.init).joined(separator: " ") + "\n").utf8))
  }
}
