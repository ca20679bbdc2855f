import Clock
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

/// A training-run problem: a `kind` that callers and tests can tell apart, a description of
/// one line, and the exit status it ends the job with.
public struct TrainError: Error, CustomStringConvertible {
  /// The failure cases of a training run.
  public enum Kind: Equatable, Sendable {
    /// The run directory (or a directory in it) at `path` cannot be created, locked or
    /// written, or has too little free space.
    case runDirectory(path: String)
    /// The run directory at `path` is locked by another job.
    case runDirectoryInUse(path: String)
    /// `--resume auto` found checkpoints and none verifies.
    case noVerifiedCheckpoint
    /// The checkpoint cannot be taken (the error of reading it, made a refusal).
    case unusableCheckpoint
    /// The checkpoint's model shape differs from the config's.
    case modelShapeChanged
    /// The config differs from the checkpoint's in keys that exact resume depends on.
    case configChanged
    /// The error rank 0 broadcast, as the other ranks receive it (its kind stays on rank 0).
    case fromRank0
    /// The run's settings cannot be used (no length, evaluation without an evaluator).
    case config
    /// A views file (`cde step`) at `path` that is not a CoDE batch.
    case viewsFile(path: String)
    /// `--dump-views` could not write its files.
    case viewDump
    /// The loss is not finite at `step`.
    case nonFiniteLoss(step: Int)
    /// The replicas' parameters differ at `step`.
    case replicasDiverged(step: Int)
  }

  public let kind: Kind
  public let description: String
  /// Process exit status: 1, or `refusalExitCode` when the job refused to start.
  public var exitCode: Int32 = 1
  /// Every rank throws this error (it was broadcast): rank 0 reports it, the others exit quietly.
  public var shared = false

  public init(_ kind: Kind, _ d: String) {
    self.kind = kind
    description = d
  }

  /// The job refused to start (run directory in use or unusable, no checkpoint verifies,
  /// the config differs from the checkpoint's): starting again would refuse again, so
  /// the launchers do not restart on this status (sysexits' EX_CONFIG).
  public static let refusalExitCode: Int32 = 78

  public static func refusal(_ kind: Kind, _ d: String) -> TrainError {
    var e = TrainError(kind, d)
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
  /// Testing aids read from the environment (Trainer+TestHooks.swift).
  let testHooks: TestHooks
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
    if config.evaluates && evaluator == nil { throw TrainError(.config, "eval.every_steps is set but no probe evaluator was given") }
    comm = communicator
    self.log = log
    run = URL(fileURLWithPath: runDirectory, isDirectory: true)
    try config.validate(worldSize: comm.size)
    GEMMBackend.precision = config.optim.precision
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
        restored = try Self.takeRunDirectory(directory, store: store, resume: resume, policy: policy,
                                             parameters: vit.layout.total, log: log)
      } catch let e as TrainError {
        restoreError = e
      } catch {
        restoreError = TrainError.refusal(.unusableCheckpoint, "\(error)")
      }
    }
    let (state, startStep) = try Self.shareRestore(restored, error: restoreError, communicator: comm)
    earlyStopping = state?.earlyStopping ?? EarlyStopping()
    if let state { try Self.checkResumable(config, from: state, startStep: startStep, policy: policy, log: log) }

    // Parameters and moments: rank 0 loads or initialises, then broadcasts.
    try Self.loadOrInitialise(vit, step.optimizer, restored: restored, state: state, config: config, communicator: comm, log: log)
    globalStep = startStep
    // The GEMM plan: the checkpoint's; on a restart before the first checkpoint, the one the
    // first start wrote to RUN/gemm.txt; else timed afresh (rank 0, broadcast).
    var storedPlan = state?.gemm
    var storedFrom = "its checkpoint"
    if storedPlan == nil, resume == "auto", comm.rank == 0, let p = GEMMSelection.readRunFile(run) {
      storedPlan = p
      storedFrom = "RUN/\(GEMMSelection.runFileName), written when it first started"
    }
    let gemmLine = GEMMSelection.setUp(model: config.model.vit, mode: GEMMBackend.requestedMode, communicator: comm,
                                       stored: storedPlan, storedFrom: storedFrom)
    if comm.rank == 0 {
      log(gemmLine)
      do { try GEMMSelection.writeRunFile(run) } catch {
        log("warning: \(run.appendingPathComponent(GEMMSelection.runFileName).path): cannot write the GEMM plan "
          + "(\(RunDirectory.reason(error))); a restart before the first checkpoint would time its GEMMs afresh")
      }
    }

    // Data stream at the restored cursor.
    loader = try D3Loader(config: Self.loaderConfig(config, communicator: comm, log: log), cursor: state?.dataCursor ?? DataCursor())
    stepsPerEpoch = config.train.stepsPerEpoch ?? loader.stepsPerEpoch
    let resolved = config.schedule(records: loader.stepsPerEpoch * config.train.globalBatch)
    guard resolved.totalSteps > 0 else { throw TrainError(.config, "config: set train.steps or train.epochs") }
    schedule = LRSchedule(base: config.optim.lr, warmupSteps: resolved.warmupSteps, totalSteps: resolved.totalSteps,
                          warmupInit: config.optim.warmupLrInit, minLR: config.optim.minLr)
    testHooks = TestHooks.fromEnvironment(ProcessInfo.processInfo.environment, rank: comm.rank)

    if comm.rank == 0 { try openRunOutputs(resumed: state != nil, startStep: startStep) }
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

  /// The step loop: per step the coordinator's control message, the step, its metrics, and
  /// after it the log line, evaluation, checkpoint and replica check when due.
  func trainSteps() throws -> TrainOutcome {
    let total = schedule.totalSteps
    logStart(total: total)
    if earlyStopping.shouldStop(patience: config.train.earlyStopPatience) { return finishEarly() }
    stepTimes.reserveCapacity(64)
    stepTimesSorted.reserveCapacity(64)
    comm.armStallWatchdog(timeout: stallTimeout(), step: globalStep)
    let wall0 = MonotonicClock.seconds()
    let allReduceAlone = comm.size > 1 ? timeGradientAllReduce() : 0
    var window = MetricWindow()
    var lastWait = loader.stats.waitSeconds
    while globalStep < total {
      let control = comm.broadcast(coordinatorControl(total: total), root: 0)
      if control.stop { return try stopOnSignal(control) }

      testHooks.beforeStep(globalStep)
      let t0 = MonotonicClock.seconds()
      let r = try runStep(control)
      globalStep += 1
      let dt = MonotonicClock.seconds(since: t0)
      stepCompleted(seconds: dt)
      let wait = loader.stats.waitSeconds
      window.add(globalBatch: config.train.globalBatch, seconds: dt, dataWait: wait - lastWait, comm: r.commSeconds,
                 gradientWait: r.gradientWaitSeconds, duplicateViews: step.lastDuplicateViews)
      lastWait = wait
      lastMetrics = [
        "loss": r.loss, "loss_real": r.lossReal, "loss_fake": r.lossFake, "lr": Double(control.lr),
        "epoch": Double(loader.cursor.epoch),
      ]
      addLossTermMetrics(r)

      if globalStep % max(1, config.train.logEvery) == 0 || globalStep == total {
        logWindow(&window, result: r, allReduceAlone: allReduceAlone, total: total, wall0: wall0)
      }
      let stopEarly = try evaluateIfDue(total: total)
      if control.checkpoint || stopEarly { try saveCheckpoint() }
      try checkReplicasIfDue()
      if stopEarly { return finishEarly() }
    }
    if isCoordinator {
      tensorboard?.flush()
      writeStatus("finished")
    }
    return .finished
  }

  /// Rank 0: the line that opens training (model, ranks, threads, batch, data, steps, run).
  func logStart(total: Int) {
    guard isCoordinator else { return }
    let b = config.train.globalBatch / comm.size, g = config.train.globalBatch
    log("training \(model.parameterCount) parameters on \(comm.size) rank(s) x \(Threads.count) thread(s) "
        + "(OpenBLAS \(BLASRuntime.kernelDescription); kernels \(KernelISA.active)), "
        + "global batch \(g) (\(b) per rank), \(loader.recordCount) records, \(stepsPerEpoch) steps per epoch, "
        + "steps \(globalStep)..<\(total); run \(run.path)")
  }

  /// Stop requests from any rank (collective), and on rank 0 the control message of the next
  /// step: its lr and weight decay, whether a checkpoint follows it, whether to stop.
  func coordinatorControl(total: Int) -> Control {
    let localSignal = Double(StopSignal.received ?? 0)
    let anySignal = Int32(comm.allReduce(localSignal, op: .max))
    var control = Control()
    if isCoordinator {
      control.lr = Float(schedule.lr(step: globalStep))
      control.weightDecay = Float(config.optim.weightDecay)
      let every = config.checkpoint.everySteps
      let periodic = every > 0 && (globalStep + 1) % every == 0
      let last = globalStep + 1 == total
      control.checkpoint = periodic || last
      if anySignal != 0 {
        control.stop = true
        control.signal = anySignal
      }
    }
    return control
  }

  /// Checkpoints the current state (all completed steps), then stops.
  func stopOnSignal(_ control: Control) throws -> TrainOutcome {
    try saveCheckpoint()
    comm.barrier()
    if isCoordinator {
      writeStatus("stopped")
      log("stopped on \(StopSignal.name(control.signal)) at step \(globalStep); checkpoint written")
    }
    return .stopped(signal: control.signal)
  }

  /// Step `globalStep`: the next batch, the step's derangement, forward, backward and update
  /// (`CoDEStep.run`), the view dump; throws on a non-finite loss.
  func runStep(_ control: Control) throws -> CoDEStep.Result {
    let b = config.train.globalBatch / comm.size, g = config.train.globalBatch
    let s = config.model.imageSize, l = config.data.localSize
    let batch = try loader.next()
    testHooks.trace(step: globalStep, rank: comm.rank, records: batch.recordIDs)
    let perm = derangement(g, seed: stepSeed(globalStep))
    let r = try step.run(global: batch.global, local: batch.local, records: b, imageSize: s, localSize: l, perm: perm,
                         lr: control.lr, weightDecay: control.weightDecay, unchangedAugmented: batch.unchangedAugmented)
    try dumpStep(batch: batch, perm: perm, lr: control.lr, weightDecay: control.weightDecay, result: r)
    guard r.loss.isFinite else {
      // Parameters are already updated from a non-finite gradient: keep the last good checkpoint.
      throw TrainError(.nonFiniteLoss(step: globalStep), "loss is \(r.loss) at step \(globalStep); stopping without a checkpoint (the last good one stays valid)")
    }
    return r
  }

  /// On log steps (collective): the window's metrics into `lastMetrics`, then on rank 0 the
  /// health figures of step `r` and the log line; empties the window.
  func logWindow(_ window: inout MetricWindow, result r: CoDEStep.Result, allReduceAlone: Double, total: Int, wall0: Double) {
    for (k, v) in window.metrics(globalBatch: config.train.globalBatch, comm: comm, allReduceAlone: allReduceAlone) {
      lastMetrics[k] = v
    }
    if isCoordinator {
      addHealthMetrics(r)
      report(total: total, wall0: wall0)
    }
    window.reset()
  }

  /// Every `train.consistency_check_every` steps with several ranks (collective): throws when
  /// the replicas' parameters differ.
  func checkReplicasIfDue() throws {
    let every = config.train.consistencyCheckEvery
    if comm.size > 1, every > 0, globalStep % every == 0 {
      if !comm.replicasIdentical(model.params, count: model.parameterCount) {
        throw TrainError(.replicasDiverged(step: globalStep), "replicas hold different parameters at step \(globalStep); stopping (the last checkpoint stays valid)")
      }
    }
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
      let t = MonotonicClock.seconds()
      comm.allReduceSum(buf, count: n)
      times.append(MonotonicClock.seconds(since: t))
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
    let elapsed = MonotonicClock.seconds(since: wall0)
    let rps = m["records_per_s"] ?? 0
    let remaining = Double(total - globalStep) * Double(config.train.globalBatch) / max(rps, 1e-9)
    var commTail = m["comm_frac_min"].map { String(format: " (last rank %.0f%%)", 100 * $0) } ?? ""
    // The host's share of the cores, when it is more than a trace (on a dedicated machine, 0).
    if let st = m["host_steal_frac"], st >= 0.01 { commTail += String(format: "  host steal %.0f%%", 100 * st) }
    log(String(format: "step %d/%d  loss %.4f (real %.4f, fake %.4f%@)  lr %.2e  %.1f rec/s  data wait %.0f%%  comm %.0f%%%@  elapsed %@  ETA %@",
               globalStep, total, m["loss"] ?? .nan, m["loss_real"] ?? .nan, m["loss_fake"] ?? .nan,
               healthSummary() as NSString, m["lr"] ?? 0, rps,
               100 * (m["data_wait_frac"] ?? 0), 100 * (m["comm_frac"] ?? 0), commTail as NSString, duration(elapsed),
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
      let state = TrainerState(
        epoch: loader.cursor.epoch, dataCursor: loader.cursor, schedule: schedule, seed: config.train.seed,
        worldSize: comm.size, globalBatch: config.train.globalBatch, optimizerSteps: step.optimizer.stepCount,
        config: config, metrics: lastMetrics.filter { $0.value.isFinite }, time: ISO8601DateFormatter().string(from: Date()),
        earlyStopping: earlyStopping, gemm: GEMMBackend.plan.encoded)
      let files: [(name: String, data: Data)] = [("model.safetensors", mw.serialized()), ("optimizer.safetensors", step.optimizer.serializedState(model: model))]
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
