import Training
import Collectives
import Dataset
import Foundation
import Imaging
import ViT

/// The parts of `Trainer.init`, in the order it runs them: take the run directory and choose
/// the checkpoint (rank 0), share the outcome, check that the config may resume it, load or
/// initialise parameters and moments, configure the loader, open the run's outputs (rank 0).
extension Trainer {
  /// Rank 0: locks `directory`, checks that the run and checkpoint directories are writable
  /// and have room, removes leftovers of an interrupted save, and chooses the checkpoint
  /// `resume` names ("auto": the newest that verifies; a path: that checkpoint or run; nil: none).
  static func takeRunDirectory(_ directory: RunDirectory, store: CheckpointStore, resume: String?, policy: ResumePolicy,
                               parameters: Int, log: @escaping (String) -> Void) throws -> (Checkpoint, TrainerState)? {
    var restored: (Checkpoint, TrainerState)? = nil
    try directory.lock()
    try directory.requireWritable(directory.url, what: "run directory")
    try directory.requireWritable(store.directory, what: "checkpoint directory")
    try directory.requireSpace(store.directory, checkpointBytes: checkpointBytes(parameters: parameters))
    store.cleanLeftovers()
    if resume == "auto" {
      var skipped: [String] = []
      store.warn = { skipped.append($0) }
      if let c = store.latestValid() {
        for w in skipped { log("warning: " + w) }
        restored = (c, try c.state(TrainerState.self))
      } else if !skipped.isEmpty {
        let present = store.list().count
        guard policy.allowFreshStart else {
          throw TrainError.refusal(.noVerifiedCheckpoint, "--resume auto: \(store.directory.path) holds \(present) checkpoint(s) and none verifies "
            + "(newest: \(skipped[0].replacingOccurrences(of: "skipping checkpoint ", with: ""))); not starting over "
            + "(--allow-fresh-start trains from step 0)")
        }
        for w in skipped { log("warning: " + w) }
        log("warning: no checkpoint of \(present) verifies; training from step 0 (--allow-fresh-start)")
      }
      store.warn = { log("warning: " + $0) }
    } else if let resume {
      let c = try CheckpointStore.load(path: resume, warn: { log("warning: " + $0) })
      restored = (c, try c.state(TrainerState.self))
    }
    return restored
  }

  /// Every rank: rank 0's error (thrown everywhere, `shared`), or its trainer state and step
  /// (nil and 0: a fresh start).
  static func shareRestore(_ restored: (Checkpoint, TrainerState)?, error restoreError: TrainError?,
                           communicator comm: Communicator) throws -> (state: TrainerState?, startStep: Int) {
    let err = comm.broadcast(data: restoreError.map { Data("\($0.exitCode) \($0.description)".utf8) } ?? Data(), root: 0)
    if !err.isEmpty {
      let text = String(decoding: err, as: UTF8.self)
      let space = text.firstIndex(of: " ")!
      // Rank 0 keeps the error it broadcast (and its kind); the others rebuild it from the text.
      var e = restoreError ?? TrainError(.fromRank0, String(text[text.index(after: space)...]))
      e.exitCode = Int32(text[..<space]) ?? 1
      e.shared = true
      throw e
    }
    let stateData = comm.broadcast(data: restored.map { (try? JSONEncoder().encode($0.1)) ?? Data() } ?? Data(), root: 0)
    var state: TrainerState? = nil
    var startStep = 0
    if !stateData.isEmpty {
      state = try JSONDecoder().decode(TrainerState.self, from: stateData)
      var s = Int64(restored?.0.step ?? 0)
      comm.broadcast(&s, root: 0)
      startStep = Int(s)
    }
    return (state, startStep)
  }

  /// Every rank: refuses (`shared`) a checkpoint of another model shape, and one whose config
  /// differs in keys that exact resume depends on unless `policy.allowConfigChange` (then a warning).
  static func checkResumable(_ config: TrainConfig, from state: TrainerState, startStep: Int, policy: ResumePolicy,
                             log: (String) -> Void) throws {
    if state.config.model != config.model {
      var e = TrainError.refusal(.modelShapeChanged, "checkpoint model shape differs from the config's model section; resume with the same model.* settings")
      e.shared = true
      throw e
    }
    let changed = config.resumeDifferences(from: state.config)
    if !changed.isEmpty {
      let list = changed.joined(separator: ", ")
      if !policy.allowConfigChange {
        var e = TrainError.refusal(.configChanged, "--resume: the config differs from the checkpoint of step \(startStep) in \(list); "
                                   + "exact resume needs the same values (--allow-config-change resumes anyway)")
        e.shared = true
        throw e
      }
      log("warning: resuming with a config that differs from the checkpoint of step \(startStep) in \(list) (--allow-config-change): not an exact continuation")
    }
  }

  /// Rank 0 loads parameters and moments from the restored checkpoint, or initialises the
  /// parameters from `train.seed`; then every rank receives parameters, moments and step count.
  static func loadOrInitialise(_ vit: ViTModel, _ optimizer: AdamW, restored: (Checkpoint, TrainerState)?, state: TrainerState?,
                               config: TrainConfig, communicator comm: Communicator, log: (String) -> Void) throws {
    if comm.rank == 0 {
      if let (c, st) = restored {
        try vit.load(path: c.file("model.safetensors").path)
        try optimizer.loadState(path: c.file("optimizer.safetensors").path, stepCount: st.optimizerSteps)
        log("resuming from \(c.url.path) (step \(c.step), epoch \(st.dataCursor.epoch))")
      } else {
        vit.initialize(seed: UInt64(config.train.seed))
      }
    }
    let n = vit.layout.total
    comm.broadcast(UnsafeMutableRawPointer(vit.params), bytes: n * 4, root: 0)
    comm.broadcast(UnsafeMutableRawPointer(optimizer.m), bytes: n * 4, root: 0)
    comm.broadcast(UnsafeMutableRawPointer(optimizer.v), bytes: n * 4, root: 0)
    var adamSteps = Int64(state?.optimizerSteps ?? 0)
    comm.broadcast(&adamSteps, root: 0)
    optimizer.restore(stepCount: Int(adamSteps))
  }

  /// This rank's loader: its share of the global batch, the view spec, threads (`data.loader_threads`,
  /// else the cores over the ranks of the node), prefetch, sampling and decode policy.
  static func loaderConfig(_ config: TrainConfig, communicator comm: Communicator, log: @escaping (String) -> Void) -> LoaderConfig {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    var lc = LoaderConfig(
      paths: config.data.train, seed: UInt64(config.train.seed), globalBatch: config.train.globalBatch,
      rank: comm.rank, worldSize: comm.size,
      spec: ViewSpec(imageSize: config.model.imageSize, localSize: config.data.localSize,
                     numTransform: config.data.numTransform),
      threads: config.data.loaderThreads > 0 ? config.data.loaderThreads : max(1, cores / max(1, localRanks())),
      prefetch: config.data.prefetch,
      sampling: config.data.sampling == .global ? .global : .shardLocal)
    lc.warn = { log("warning: " + $0) }
    lc.info = { log($0) }
    lc.decodePolicy = DecodePolicy(maxPixels: config.data.maxImagePixels)
    if config.data.sampling == .shardLocal, let spe = config.train.stepsPerEpoch { lc.stepsPerEpoch = spe }
    return lc
  }

  /// Rank 0: metrics.jsonl (truncated to `startStep` on resume), TensorBoard events (a session
  /// start on resume), config.yaml and status.json "running".
  func openRunOutputs(resumed: Bool, startStep: Int) throws {
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    metricsLog = try MetricsLog(url: run.appendingPathComponent("metrics.jsonl"), resumeStep: resumed ? startStep : nil)
    let tb = try TensorBoardWriter(directory: run)
    if resumed { tb.addSessionStart(step: startStep) }
    tensorboard = tb
    try config.toYAML().write(to: run.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
    runDirectory.writeStatus("running", step: startStep)
  }
}
