import Clock
import Collectives
import Foundation
import Kernels
import ViT

/// Chooses the GEMM library of every GEMM class of the step once per run and installs it
/// (`GEMMBackend`): rank 0 decides, every rank installs rank 0's plan, so all ranks compute
/// alike.
public enum GEMMSelection {
  /// Rows at which `auto` times a class: a batch of 8 records' 224 px views (about 1,600 token
  /// rows; oneDNN per image in calls of the model's token count, 197 for ViT-Tiny).
  public static let timingRows = 1576

  /// The run directory's copy of the plan the run started with, written by rank 0 at every
  /// start: a restart before the first checkpoint (`--resume auto`, no checkpoint yet) reads it
  /// and computes as the first start did.
  public static let runFileName = "gemm.txt"

  /// The plan in `RUN/gemm.txt`, or nil when the file is missing or does not parse.
  public static func readRunFile(_ run: URL) -> String? {
    guard let data = FileManager.default.contents(atPath: run.appendingPathComponent(runFileName).path) else { return nil }
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return GEMMPlan(encoded: text) == nil ? nil : text
  }

  /// Writes the installed plan to `RUN/gemm.txt` (atomically).
  public static func writeRunFile(_ run: URL) throws {
    try Data((GEMMBackend.plan.encoded + "\n").utf8).write(to: run.appendingPathComponent(runFileName), options: .atomic)
  }

  /// Decides (rank 0) and installs (every rank) the plan for `model` under `mode`, and returns
  /// one log line. `stored` is the plan the run started with (from its checkpoint, or from
  /// `RUN/gemm.txt` on a restart before the first checkpoint, as `storedFrom` says): under
  /// `auto` it is reused, so a restarted run computes as the uninterrupted run did; a forced
  /// mode that differs from it is used and said.
  @discardableResult
  public static func setUp(model: ViTConfig, mode: GEMMMode, communicator comm: Communicator,
                           stored: String? = nil, storedFrom: String = "its checkpoint") -> String {
    var line = ""
    var encoded = ""
    if comm.rank == 0 {
      if mode == .auto, let stored, let p = GEMMPlan(encoded: stored) {
        encoded = p.encoded
        line = "gemm: \(p) (the plan this run started with, from \(storedFrom))"
      } else {
        let t0 = MonotonicClock.seconds()
        let t = model.grid * model.grid + 1  // tokens of one image at the training resolution
        let (p, ms) = GEMMBackend.decide(model.gemmShapes, batch: max(1, timingRows / t) * t, imageRows: t, mode: mode)
        encoded = p.encoded
        let dt = MonotonicClock.seconds(since: t0)
        line = "gemm \(mode.rawValue): \(p)"
        if mode == .auto {
          line += String(format: " (timed in %.1f s on rank 0: ", dt)
            + ms.map { String(format: "%@ %.0f/%.0f/%.0f/%.0f GFLOP/s%@", $0.shape.description, $0.openblasGFLOPs, $0.onednnGFLOPs,
                              $0.onednnImageGFLOPs, $0.kernelGFLOPs, $0.onednnRowStable ? "" : " oneDNN rows unstable") }.joined(separator: ", ")
            + " OpenBLAS/oneDNN/oneDNN per image/cde_avx2)"
        }
        if let stored, stored != encoded {
          line += "; differs from the plan in \(storedFrom) (\(GEMMPlan(encoded: stored)?.description ?? stored)): "
            + "the resumed run is not bit-identical to an uninterrupted one"
        }
      }
    }
    let data = comm.broadcast(data: Data(encoded.utf8), root: 0)
    let plan = GEMMPlan(encoded: String(decoding: data, as: UTF8.self)) ?? GEMMPlan()
    GEMMBackend.install(plan)
    return line
  }

  /// True on every rank when every rank has rank 0's plan installed (a collective call).
  public static func ranksAgree(_ comm: Communicator) -> Bool {
    let mine = Data(GEMMBackend.plan.encoded.utf8)
    return comm.allTrue(comm.broadcast(data: mine, root: 0) == mine)
  }
}
