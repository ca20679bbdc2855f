import Dataset
import Foundation
import SafeTensors
import Training

/// `cde train --dump-views DIR`: what every step trained on, so that another
/// implementation can replay the run (scripts/parity_train.py does, in PyTorch).
///
/// Files in DIR:
/// - `init.safetensors` (rank 0, before the first step; `resume-SSSSSSSS.safetensors` when the run
///   resumed at step S): the parameters the run starts from, F32, timm state-dict names.
/// - `step-SSSSSSSS.rankR.safetensors`, one per step S (0-based: the step that used `lr(S)`) and rank R:
///   - `real`, `fake`, `aug_real`, `aug_fake`, `global_real`, `global_fake` `[B, 3, S, S]` and
///     `local_real`, `local_fake` `[B, 3, L, L]`: rank R's B = G/N records' views as the network sees
///     them (F32, ImageNet-normalised; the view names of `cde step`);
///   - `record_ids`, `generators` `[B]` (I64): the record of each slot and the generator k of its fake;
///   - `perm` `[G]` (I64): the step's derangement of the global batch (query i's positive is row perm[i]);
///   - `offset` `[1]` (I64): the global row of this rank's first record (R * B);
///   - `lr`, `weight_decay` `[1]` (F32): the values the coordinator broadcast for the AdamW update;
///   - `loss`, `loss_real`, `loss_fake` `[1]` (F64): the step's loss over the global batch.
///
/// Writing reads the batch and the result only: training is the same with and without the dump.
extension Trainer {
  /// Turns the dump on (every rank calls this): creates `directory`, writes the starting parameters.
  public func startViewDump(directory: String) throws {
    let dir = URL(fileURLWithPath: directory, isDirectory: true)
    var failure = ""
    if isCoordinator {
      do {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
      } catch {
        failure = "--dump-views \(directory): cannot create directory: \(error.localizedDescription)"
      }
      if failure.isEmpty {
        var w = SafeTensorsWriter(metadata: ["format": "pt", "producer": "cde train --dump-views", "step": "\(globalStep)"])
        model.addTensors(to: &w)
        let name = globalStep == 0 ? "init.safetensors" : String(format: "resume-%08d.safetensors", globalStep)
        do { try w.write(to: dir.appendingPathComponent(name).path) } catch { failure = "--dump-views: \(error)" }
      }
    }
    let err = comm.broadcast(data: Data(failure.utf8), root: 0)
    if !err.isEmpty { throw TrainError(.viewDump, String(decoding: err, as: UTF8.self)) }
    // Other ranks may sit on nodes without the coordinator's file system.
    if !isCoordinator { try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
    viewDumpDirectory = dir
  }

  /// Writes this rank's file of step `globalStep` (called after the step ran, before `globalStep` advances).
  func dumpStep(batch: ViewBatch, perm: [Int], lr: Float, weightDecay: Float, result r: CoDEStep.Result) throws {
    guard let dir = viewDumpDirectory else { return }
    let b = batch.records, s = batch.imageSize, l = batch.localSize
    var w = SafeTensorsWriter(metadata: ["producer": "cde train --dump-views", "step": "\(globalStep)",
                                         "rank": "\(comm.rank)", "world_size": "\(comm.size)"])
    // The views as the views file of `cde step` holds them; perm follows, over the global batch.
    let views = CoDEViewsFile(global: Array(UnsafeBufferPointer(start: batch.global, count: batch.globalCount)),
                              local: Array(UnsafeBufferPointer(start: batch.local, count: batch.localCount)),
                              perm: perm, records: b, channels: 3, imageSize: s, localSize: l)
    views.addViews(to: &w)
    w.add("record_ids", int64: batch.recordIDs.map { Int64($0) }, shape: [b])
    w.add("generators", int64: batch.generators.map { Int64($0) }, shape: [b])
    w.add("perm", int64: perm.map { Int64($0) }, shape: [perm.count])
    w.add("offset", int64: [Int64(comm.rank * b)], shape: [1])
    w.add("lr", floats: [lr], shape: [1])
    w.add("weight_decay", floats: [weightDecay], shape: [1])
    for (n, x) in [("loss", r.loss), ("loss_real", r.lossReal), ("loss_fake", r.lossFake)] {
      w.add(n, dtype: .f64, shape: [1], bytes: withUnsafeBytes(of: x.bitPattern.littleEndian) { Data($0) })
    }
    let path = dir.appendingPathComponent(String(format: "step-%08d.rank%d.safetensors", globalStep, comm.rank)).path
    do { try w.write(to: path) } catch { throw TrainError(.viewDump, "--dump-views: \(error)") }
  }
}
