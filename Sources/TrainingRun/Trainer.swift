import Collectives
import Dataset
import Foundation
import Imaging
import Kernels
import SafeTensors
import Training
import ViT

/// What a checkpoint's `trainer.json` holds besides the store's own keys
/// (`step`, `format`, `files`): enough to resume the exact record stream,
/// schedule and optimiser state.
public struct TrainerState: Codable {
  public var epoch: Int
  /// Position of the next batch of the data stream.
  public var dataCursor: DataCursor
  public var schedule: LRSchedule
  public var seed: Int
  public var worldSize: Int
  public var globalBatch: Int
  /// AdamW steps taken (bias-correction counter).
  public var optimizerSteps: Int
  public var config: TrainConfig
  /// Last logged metrics (loss terms, lr, throughput).
  public var metrics: [String: Double]
  public var time: String
  /// Best probe metric, its step and the evaluations since (absent before probe evaluation existed).
  public var earlyStopping: EarlyStopping? = nil
  /// The GEMM plan the run computes with (`GEMMPlan.encoded`; absent before oneDNN, and "" for all OpenBLAS).
  public var gemm: String? = nil
}

/// Why `Trainer.run` returned.
public enum TrainOutcome: Equatable {
  /// Reached the configured number of steps.
  case finished
  /// A stop signal arrived; a checkpoint of the current step was written.
  case stopped(signal: Int32)
  /// `train.early_stop_patience` probe evaluations brought no improvement; a checkpoint was written.
  case earlyStopped
}

public struct TrainError: Error, CustomStringConvertible {
  public let description: String
  /// Process exit status: 1, or `refusalExitCode` when the job refused to start.
  public var exitCode: Int32 = 1
  /// Every rank throws this error (it was broadcast): rank 0 reports it, the others exit quietly.
  public var shared = false
  public init(_ d: String) { description = d }

  /// The job refused to start (run directory in use or unusable, no checkpoint verifies,
  /// the config differs from the checkpoint's): starting again would refuse again, so
  /// the launchers do not restart on this status (sysexits' EX_CONFIG).
  public static let refusalExitCode: Int32 = 78

  public static func refusal(_ d: String) -> TrainError {
    var e = TrainError(d)
    e.exitCode = refusalExitCode
    return e
  }
}

/// How `--resume auto` may depart from exact continuation (`cde train` flags).
public struct ResumePolicy {
  /// `--allow-fresh-start`: train from step 0 when checkpoints/ holds step directories and none verifies.
  public var allowFreshStart = false
  /// `--allow-config-change`: resume although keys that the exact-resume guarantee depends on changed.
  public var allowConfigChange = false
  public init(allowFreshStart: Bool = false, allowConfigChange: Bool = false) {
    self.allowFreshStart = allowFreshStart
    self.allowConfigChange = allowConfigChange
  }
}

/// Control message the coordinator (rank 0) broadcasts before every step.
struct Control {
  var lr: Float = 0
  var weightDecay: Float = 0
  /// 1: write a checkpoint after this step; 2: then stop (signal).
  var checkpoint: Int32 = 0
  var stop: Int32 = 0
  var signal: Int32 = 0
}

/// Distributed CoDE training: every rank is a replica; rank 0 is also the
/// coordinator (schedule, checkpoint and stop decisions, logging).
public final class Trainer {
  public let config: TrainConfig
  public let run: URL
  public let comm: Communicator
  let log: (String) -> Void
  let model: ViTModel
  let step: CoDEStep
  let store: CheckpointStore
  let loader: D3Loader
  let schedule: LRSchedule
  let stepsPerEpoch: Int
  var globalStep = 0
  var lastMetrics: [String: Double] = [:]
  var metricsLog: MetricsLog?
  var tensorboard: TensorBoardWriter?
  lazy var health = TrainingHealth(model: model)
  /// Testing aids read from the environment: CDE_TRACE_RECORDS=FILE appends
  /// "step rank id..." per step (the records this rank trained on) to FILE.rankR;
  /// (FILE.rankR, one file per rank); CDE_FAULT_KILL_AT_STEP=N with CDE_FAULT_RANK=R sends SIGKILL to rank R
  /// when it is about to run step N (a crash at a chosen point).
  let traceRecords: FileHandle?
  let faultStep: Int?
  /// `--dump-views DIR` (Trainer+ViewDump.swift); nil: off.
  var viewDumpDirectory: URL?
  /// Probe evaluation during training (`eval.*`), and its best-metric / patience state.
  let evaluator: ProbeEvaluator?
  var earlyStopping = EarlyStopping()
  /// Lock, start-up checks and status.json of the run directory (rank 0 holds the lock).
  let runDirectory: RunDirectory
  /// Durations of the latest steps (ring buffer) and its sorted copy: the stall watchdog's median.
  var stepTimes: [Double] = []
  var stepTimesSorted: [Double] = []

  public var isCoordinator: Bool { comm.rank == 0 }

  /// Builds the model, restores a checkpoint when `resume` says so ("auto":
  /// the newest that verifies, if any; a path: that checkpoint or run), and
  /// opens the data stream at the restored cursor.
  public init(config: TrainConfig, runDirectory: String, resume: String?, communicator: Communicator,
              evaluator: ProbeEvaluator? = nil, policy: ResumePolicy = ResumePolicy(),
              log: @escaping (String) -> Void) throws {
    self.config = config
    self.evaluator = evaluator
    if config.evaluates && evaluator == nil { throw TrainError("eval.every_steps is set but no probe evaluator was given") }
    comm = communicator
    self.log = log
    run = URL(fileURLWithPath: runDirectory, isDirectory: true)
    try config.validate(worldSize: comm.size)
    let vit = try ViTModel(config: config.model.vit)
    model = vit
    step = CoDEStep(model: vit, temperature: Float(config.loss.temperature),
                    betas: (Float(config.optim.betas[0]), Float(config.optim.betas[1])), eps: Float(config.optim.eps),
                    communicator: comm)
    step.chunkRecords = config.optim.gradCacheChunk
    step.deduplicateViews = config.optim.deduplicateViews
    store = CheckpointStore(runDirectory: run, keep: max(1, config.checkpoint.keep))

    // Rank 0 takes the run directory (lock, start-up checks, leftovers of an interrupted
    // save) and chooses the checkpoint; every rank learns the outcome and its step.
    var restored: (Checkpoint, TrainerState)? = nil
    var restoreError: TrainError? = nil
    let directory = RunDirectory(run)
    self.runDirectory = directory
    if comm.rank == 0 {
      do {
        try directory.lock()
        try directory.requireWritable(run, what: "run directory")
        try directory.requireWritable(store.directory, what: "checkpoint directory")
        try directory.requireSpace(store.directory, checkpointBytes: Self.checkpointBytes(parameters: vit.layout.total))
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
              throw TrainError.refusal("--resume auto: \(store.directory.path) holds \(present) checkpoint(s) and none verifies "
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
      } catch let e as TrainError {
        restoreError = e
      } catch {
        restoreError = TrainError.refusal("\(error)")
      }
    }
    let err = comm.broadcast(data: restoreError.map { Data("\($0.exitCode) \($0.description)".utf8) } ?? Data(), root: 0)
    if !err.isEmpty {
      let text = String(decoding: err, as: UTF8.self)
      let space = text.firstIndex(of: " ")!
      var e = TrainError(String(text[text.index(after: space)...]))
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
    earlyStopping = state?.earlyStopping ?? EarlyStopping()
    if let state, state.config.model != config.model {
      var e = TrainError.refusal("checkpoint model shape differs from the config's model section; resume with the same model.* settings")
      e.shared = true
      throw e
    }
    if let state {
      let changed = config.resumeDifferences(from: state.config)
      if !changed.isEmpty {
        let list = changed.joined(separator: ", ")
        if !policy.allowConfigChange {
          var e = TrainError.refusal("--resume: the config differs from the checkpoint of step \(startStep) in \(list); "
                                     + "exact resume needs the same values (--allow-config-change resumes anyway)")
          e.shared = true
          throw e
        }
        log("warning: resuming with a config that differs from the checkpoint of step \(startStep) in \(list) (--allow-config-change): not an exact continuation")
      }
    }

    // Parameters and moments: rank 0 loads or initialises, then broadcasts.
    if comm.rank == 0 {
      if let (c, st) = restored {
        try vit.load(path: c.file("model.safetensors").path)
        let opt = try SafeTensorsFile(path: c.file("optimizer.safetensors").path)
        for e in vit.layout.entries {
          try opt.read("exp_avg.\(e.name)", into: step.optimizer.m + e.offset, shape: e.shape)
          try opt.read("exp_avg_sq.\(e.name)", into: step.optimizer.v + e.offset, shape: e.shape)
        }
        step.optimizer.restore(stepCount: st.optimizerSteps)
        log("resuming from \(c.url.path) (step \(c.step), epoch \(st.dataCursor.epoch))")
      } else {
        vit.initialize(seed: UInt64(config.train.seed))
      }
    }
    let n = vit.layout.total
    comm.broadcast(UnsafeMutableRawPointer(vit.params), bytes: n * 4, root: 0)
    comm.broadcast(UnsafeMutableRawPointer(step.optimizer.m), bytes: n * 4, root: 0)
    comm.broadcast(UnsafeMutableRawPointer(step.optimizer.v), bytes: n * 4, root: 0)
    var adamSteps = Int64(state?.optimizerSteps ?? 0)
    comm.broadcast(&adamSteps, root: 0)
    step.optimizer.restore(stepCount: Int(adamSteps))
    globalStep = startStep
    let gemmLine = GEMMSelection.setUp(model: config.model.vit, mode: GEMMBackend.requestedMode, communicator: comm,
                                       stored: state?.gemm)
    if comm.rank == 0 { log(gemmLine) }

    // Data stream at the restored cursor.
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
    loader = try D3Loader(config: lc, cursor: state?.dataCursor ?? DataCursor())
    stepsPerEpoch = config.train.stepsPerEpoch ?? loader.stepsPerEpoch
    let resolved = config.schedule(records: loader.stepsPerEpoch * config.train.globalBatch)
    guard resolved.totalSteps > 0 else { throw TrainError("config: set train.steps or train.epochs") }
    schedule = LRSchedule(base: config.optim.lr, warmupSteps: resolved.warmupSteps, totalSteps: resolved.totalSteps,
                          warmupInit: config.optim.warmupLrInit, minLR: config.optim.minLr)

    let env = ProcessInfo.processInfo.environment
    if let base = env["CDE_TRACE_RECORDS"] {
      let path = base + ".rank\(comm.rank)"
      if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
      traceRecords = FileHandle(forWritingAtPath: path)
      _ = try? traceRecords?.seekToEnd()
    } else {
      traceRecords = nil
    }
    faultStep = (env["CDE_FAULT_RANK"].flatMap(Int.init) ?? 0) == comm.rank ? env["CDE_FAULT_KILL_AT_STEP"].flatMap(Int.init) : nil

    if comm.rank == 0 {
      try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
      metricsLog = try MetricsLog(url: run.appendingPathComponent("metrics.jsonl"), resumeStep: state == nil ? nil : startStep)
      let tb = try TensorBoardWriter(directory: run)
      if state != nil { tb.addSessionStart(step: startStep) }
      tensorboard = tb
      try config.toYAML().write(to: run.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
      directory.writeStatus("running", step: startStep)
    }
  }

  /// Bytes of one checkpoint of `parameters` fp32 parameters: the model, the two AdamW
  /// moments, headers and trainer.json (generously 64 KiB).
  static func checkpointBytes(parameters: Int) -> Int { 3 * 4 * parameters + 64 << 10 }

  /// Trains until the configured step count or a stop signal. An error on rank 0 is
  /// recorded in RUN/status.json as {"state": "failed", "reason": ...}.
  public func train() throws -> TrainOutcome {
    do {
      return try trainSteps()
    } catch {
      if isCoordinator { writeStatus("failed", reason: "\(error)") }
      throw error
    }
  }

  /// The stall watchdog's timeout: `train.stall_timeout_s`, else max(300 s, 10 x the median
  /// of the latest step times); nil: off.
  func stallTimeout() -> Double? {
    if let t = config.train.stallTimeoutS { return t > 0 ? t : nil }
    guard !stepTimesSorted.isEmpty else { return 300 }
    return max(300, 10 * stepTimesSorted[stepTimesSorted.count / 2])
  }

  /// Records a completed step's duration (ring of 64, median refreshed every 16 steps) and re-arms the watchdog.
  func stepCompleted(seconds: Double) {
    if stepTimes.count < 64 { stepTimes.append(seconds) } else { stepTimes[globalStep % 64] = seconds }
    if stepTimesSorted.count != stepTimes.count || globalStep % 16 == 0 {
      stepTimesSorted = stepTimes
      stepTimesSorted.sort()
    }
    comm.armStallWatchdog(timeout: stallTimeout(), step: globalStep)
  }

  func trainSteps() throws -> TrainOutcome {
    let total = schedule.totalSteps
    let b = config.train.globalBatch / comm.size, g = config.train.globalBatch
    let s = config.model.imageSize, l = config.data.localSize
    if isCoordinator {
      log("training \(model.parameterCount) parameters on \(comm.size) rank(s) x \(Threads.count) thread(s) "
          + "(OpenBLAS \(BLASRuntime.kernelDescription)), "
          + "global batch \(g) (\(b) per rank), \(loader.recordCount) records, \(stepsPerEpoch) steps per epoch, "
          + "steps \(globalStep)..<\(total); run \(run.path)")
    }
    if earlyStopping.shouldStop(patience: config.train.earlyStopPatience) { return finishEarly() }
    stepTimes.reserveCapacity(64)
    stepTimesSorted.reserveCapacity(64)
    comm.armStallWatchdog(timeout: stallTimeout(), step: globalStep)
    let wall0 = monotonic()
    let allReduceAlone = comm.size > 1 ? timeGradientAllReduce() : 0
    var recordsSinceLog = 0, timeSinceLog = 0.0, waitSinceLog = 0.0, commSinceLog = 0.0
    // Per step of the log window: seconds blocked in MPI, then seconds waiting for the gradient all-reduce.
    var stepComm: [Double] = []
    var dupSinceLog = 0
    var lastWait = loader.stats.waitSeconds
    while globalStep < total {
      // Stop requests from any rank.
      let localSignal = Double(StopSignal.received ?? 0)
      let anySignal = Int32(comm.allReduce(localSignal, op: .max))
      var control = Control()
      if isCoordinator {
        control.lr = Float(schedule.lr(step: globalStep))
        control.weightDecay = Float(config.optim.weightDecay)
        let every = config.checkpoint.everySteps
        let periodic = every > 0 && (globalStep + 1) % every == 0
        let last = globalStep + 1 == total
        control.checkpoint = (periodic || last) ? 1 : 0
        if anySignal != 0 {
          control.stop = 1
          control.signal = anySignal
        }
      }
      comm.broadcast(&control, root: 0)
      if control.stop != 0 {
        // Checkpoint the current state (all completed steps), then stop.
        try saveCheckpoint()
        comm.barrier()
        if isCoordinator {
          writeStatus("stopped")
          log("stopped on \(StopSignal.name(control.signal)) at step \(globalStep); checkpoint written")
        }
        return .stopped(signal: control.signal)
      }

      if let f = faultStep, f == globalStep { kill(getpid(), SIGKILL) }
      let t0 = monotonic()
      let batch = try loader.next()
      if let t = traceRecords {
        t.write(Data(("\(globalStep) \(comm.rank) " + batch.recordIDs.map(String.init).joined(separator: " ") + "\n").utf8))
      }
      let perm = derangement(g, seed: stepSeed(globalStep))
      let r = try step.run(global: batch.global, local: batch.local, records: b, imageSize: s, localSize: l, perm: perm,
                           lr: control.lr, weightDecay: control.weightDecay, unchangedAugmented: batch.unchangedAugmented)
      try dumpStep(batch: batch, perm: perm, lr: control.lr, weightDecay: control.weightDecay, result: r)
      guard r.loss.isFinite else {
        // Parameters are already updated from a non-finite gradient: keep the last good checkpoint.
        throw TrainError("loss is \(r.loss) at step \(globalStep); stopping without a checkpoint (the last good one stays valid)")
      }
      globalStep += 1
      let dt = monotonic() - t0
      stepCompleted(seconds: dt)
      let wait = loader.stats.waitSeconds
      recordsSinceLog += g
      timeSinceLog += dt
      waitSinceLog += wait - lastWait
      lastWait = wait
      commSinceLog += r.commSeconds
      stepComm.append(r.commSeconds)
      stepComm.append(r.gradientWaitSeconds)
      dupSinceLog += step.lastDuplicateViews
      lastMetrics = [
        "loss": r.loss, "loss_real": r.lossReal, "loss_fake": r.lossFake, "lr": Double(control.lr),
        "epoch": Double(loader.cursor.epoch),
      ]
      addLossTermMetrics(r)

      if globalStep % max(1, config.train.logEvery) == 0 || globalStep == total {
        let rps = Double(recordsSinceLog) / max(timeSinceLog, 1e-9)
        lastMetrics["records_per_s"] = rps
        lastMetrics["data_wait_s"] = waitSinceLog
        lastMetrics["data_wait_frac"] = waitSinceLog / max(timeSinceLog, 1e-9)
        lastMetrics["comm_frac"] = commSinceLog / max(timeSinceLog, 1e-9)
        if comm.size > 1 {
          // Step by step, the rank that waited least arrived last: its blocked time is communication that
          // compute did not hide; what the others waited beyond it is load imbalance between the ranks.
          let steps = Double(stepComm.count / 2)
          var lo = stepComm, hi = stepComm
          comm.allReduce(&lo, op: .min)
          comm.allReduce(&hi, op: .max)
          let sum = { (v: [Double], k: Int) in stride(from: k, to: v.count, by: 2).reduce(0.0) { $0 + v[$1] } }
          lastMetrics["comm_frac_min"] = sum(lo, 0) / max(timeSinceLog, 1e-9)
          lastMetrics["comm_frac_max"] = sum(hi, 0) / max(timeSinceLog, 1e-9)
          // The gradient all-reduce: alone (blocking, measured at start) and the wait left after backward.
          let gradWait = sum(lo, 1) / max(steps, 1)
          lastMetrics["allreduce_alone_s"] = allReduceAlone
          lastMetrics["allreduce_wait_s"] = gradWait
          lastMetrics["allreduce_overlap"] = max(0, min(1, 1 - gradWait / max(allReduceAlone, 1e-9)))
        }
        // Share of this rank's views that were bit-identical to another view and skipped.
        lastMetrics["views_deduplicated_frac"] = Double(dupSinceLog) / Double(8 * b * max(1, recordsSinceLog / g))
        lastMetrics["step_s"] = timeSinceLog / Double(recordsSinceLog / g)
        if isCoordinator {
          addHealthMetrics(r)
          report(total: total, wall0: wall0)
        }
        recordsSinceLog = 0; timeSinceLog = 0; waitSinceLog = 0; commSinceLog = 0; dupSinceLog = 0
        stepComm.removeAll(keepingCapacity: true)
      }
      let stopEarly = try evaluateIfDue(total: total)
      if control.checkpoint != 0 || stopEarly { try saveCheckpoint() }
      let every = config.train.consistencyCheckEvery
      if comm.size > 1, every > 0, globalStep % every == 0 {
        if !comm.replicasIdentical(model.params, count: model.parameterCount) {
          throw TrainError("replicas hold different parameters at step \(globalStep); stopping (the last checkpoint stays valid)")
        }
      }
      if stopEarly { return finishEarly() }
    }
    if isCoordinator {
      tensorboard?.flush()
      writeStatus("finished")
    }
    return .finished
  }

  /// Seconds of one blocking all-reduce of a gradient-sized buffer (median of 3, after a barrier):
  /// what the all-reduce would cost if the backward pass did not hide it.
  func timeGradientAllReduce() -> Double {
    let n = model.parameterCount
    let buf = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { buf.deallocate() }
    buf.initialize(repeating: 0, count: n)
    var times: [Double] = []
    for _ in 0..<3 {
      comm.barrier()
      let t = monotonic()
      comm.allReduceSum(buf, count: n)
      times.append(monotonic() - t)
    }
    return times.sorted()[1]
  }

  /// RUN/status.json: {"state": "running" | "finished" | "stopped" | "early-stopped" | "failed", "step": N,
  /// "reason": ... (failed)}; the launchers restart or requeue unless finished, stopped or early-stopped.
  func writeStatus(_ state: String, reason: String? = nil) {
    runDirectory.writeStatus(state, step: globalStep, reason: reason)
  }

  /// The permutation seed of a step: a function of (seed, step) only.
  func stepSeed(_ s: Int) -> UInt64 {
    UInt64(truncatingIfNeeded: config.train.seed) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(s) &* 0xD1B5_4A32_D192_ED03
  }

  func report(total: Int, wall0: Double) {
    let m = lastMetrics
    let elapsed = monotonic() - wall0
    let rps = m["records_per_s"] ?? 0
    let remaining = Double(total - globalStep) * Double(config.train.globalBatch) / max(rps, 1e-9)
    let commMin = m["comm_frac_min"].map { String(format: " (last rank %.0f%%)", 100 * $0) } ?? ""
    log(String(format: "step %d/%d  loss %.4f (real %.4f, fake %.4f%@)  lr %.2e  %.1f rec/s  data wait %.0f%%  comm %.0f%%%@  elapsed %@  ETA %@",
               globalStep, total, m["loss"] ?? .nan, m["loss_real"] ?? .nan, m["loss_fake"] ?? .nan,
               healthSummary() as NSString, m["lr"] ?? 0, rps,
               100 * (m["data_wait_frac"] ?? 0), 100 * (m["comm_frac"] ?? 0), commMin as NSString, duration(elapsed),
               duration(remaining)))
    metricsLog?.append(step: globalStep, m)
    tensorboard?.add(scalars: m.sorted { $0.key < $1.key }.map { ("train/" + $0.key, $0.value) }, step: globalStep)
    tensorboard?.flush()
    checkPlateau()
  }

  /// Rank 0 writes model, optimiser and trainer state (as RUN/checkpoints/best when `best`); other ranks wait.
  func saveCheckpoint(best: Bool = false) throws {
    comm.armStallWatchdog(timeout: stallTimeout(), step: globalStep)
    if isCoordinator {
      var mw = SafeTensorsWriter(metadata: ["format": "pt", "producer": "cde train", "step": "\(globalStep)"])
      model.addTensors(to: &mw)
      var ow = SafeTensorsWriter(metadata: ["optimizer": "AdamW", "step": "\(step.optimizer.stepCount)"])
      model.addTensors(to: &ow, from: step.optimizer.m, prefix: "exp_avg.")
      model.addTensors(to: &ow, from: step.optimizer.v, prefix: "exp_avg_sq.")
      let state = TrainerState(
        epoch: loader.cursor.epoch, dataCursor: loader.cursor, schedule: schedule, seed: config.train.seed,
        worldSize: comm.size, globalBatch: config.train.globalBatch, optimizerSteps: step.optimizer.stepCount,
        config: config, metrics: lastMetrics.filter { $0.value.isFinite }, time: ISO8601DateFormatter().string(from: Date()),
        earlyStopping: earlyStopping, gemm: GEMMBackend.plan.encoded)
      let files: [(name: String, data: Data)] = [("model.safetensors", mw.serialized()), ("optimizer.safetensors", ow.serialized())]
      let url = best ? try store.saveBest(step: globalStep, files: files, state: state)
                     : try store.save(step: globalStep, files: files, state: state)
      log((best ? "best checkpoint " : "checkpoint ") + url.path)
    }
    comm.barrier()
  }

  func duration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
  }

  public func close() { loader.close() }
}


/// Ranks on this node (Open MPI / Slurm environment), 1 when unknown.
public func localRanks() -> Int {
  let env = ProcessInfo.processInfo.environment
  return Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "1") ?? 1
}

extension ModelConfig {
  /// The ViT shape this section describes.
  public var vit: ViTConfig {
    ViTConfig(width: width, depth: depth, heads: heads, mlpRatio: mlpRatio, patch: patch, imageSize: imageSize,
              lnEps: Float(lnEps))
  }
}
