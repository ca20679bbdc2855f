import ArgumentParser
import Collectives
import Foundation
import Imaging
import Kernels
import Training
import TrainingRun

/// `cde train`: distributed CoDE training (one rank alone, or N ranks under mpirun).
struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a CoDE ViT from a YAML config (alone, or under mpirun as N data-parallel ranks).",
    discussion: """
      Rank 0 coordinates: learning-rate schedule, checkpoints (RUN/checkpoints/step-NNNNNNNN), \
      progress lines, RUN/metrics.jsonl and TensorBoard event files in RUN. SIGTERM, SIGUSR1 or \
      SIGINT on any rank writes a checkpoint of the current step and stops with status 0; \
      `--resume auto` then continues exactly where the run stopped. With eval.every_steps, \
      eval.probe and eval.test, the ranks embed the probe and test images every K steps, rank 0 \
      fits the probe classifiers and logs per-generator accuracy (metrics.jsonl \"eval\", \
      TensorBoard eval/...), keeps the best model in RUN/checkpoints/best and stops after \
      train.early_stop_patience evaluations without improvement (status.json: early-stopped). \
      Rank 0 locks RUN (RUN/lock) for the life of the job; a job that cannot start (RUN in use, not \
      writable or short of space, no checkpoint verifies, config changed) exits with status 78 and \
      one line. A rank that waits longer than train.stall_timeout_s for a step ends the job with one \
      line naming the ranks that did not arrive.
      """)

  @Option(help: "YAML config (configs/smoke.yaml, configs/d3-vit-tiny.yaml).") var config: String
  @Option(name: .customLong("set"), help: "Override a config key: --set optim.lr=0.001 (repeatable).")
  var overrides: [String] = []
  @Option(help: "Run directory (checkpoints, metrics, TensorBoard events).") var out: String
  @Option(help: "auto: continue from the newest valid checkpoint in --out if any; or a checkpoint/run path.")
  var resume: String?
  @Flag(name: .customLong("allow-fresh-start"), help: """
    With --resume auto: train from step 0 when checkpoints/ holds checkpoints and none verifies \
    (without it the job refuses to start).
    """)
  var allowFreshStart = false
  @Flag(name: .customLong("allow-config-change"), help: """
    Resume although the config differs from the checkpoint's in keys exact resume depends on \
    (batch, seed, data, schedule, optimiser, loss); without it the job refuses to start.
    """)
  var allowConfigChange = false
  @Option(name: .customLong("dump-views"), help: ArgumentHelp(
    "Write per step and rank the views trained on, record ids, permutation, lr and weight decay to DIR (parity checks).",
    valueName: "DIR"))
  var dumpViews: String?
  @OptionGroup var compute: ComputeOptions

  func run() throws {
    StopSignal.install()
    compute.apply()
    let comm = makeCommunicator()
    let log: (String) -> Void = { line in
      if comm.rank == 0 {
        print(line)
        fflush(stdout)
      }
    }
    do {
      let cfg = try TrainConfig.load(path: config, overrides: overrides)
      ImageCodec.policy = DecodePolicy(maxPixels: cfg.data.maxImagePixels)  // also for the probe evaluations
      if cfg.evaluates { quietImageWarnings() }
      let probes = cfg.evaluates ? try TrainingProbes(config: cfg) : nil
      let policy = ResumePolicy(allowFreshStart: allowFreshStart, allowConfigChange: allowConfigChange)
      let trainer = try Trainer(config: cfg, runDirectory: out, resume: resume, communicator: comm, evaluator: probes,
                                policy: policy, log: log)
      if let dumpViews { try trainer.startViewDump(directory: dumpViews) }
      let outcome = try trainer.train()
      trainer.close()
      if comm.rank == 0 {
        let state: String
        switch outcome {
        case .finished: state = "finished"
        case .stopped(let s): state = "stopped (\(StopSignal.name(s)))"
        case .earlyStopped: state = "early-stopped"
        }
        let ckpt = URL(fileURLWithPath: out).appendingPathComponent("checkpoints").path
        print("run \(state): \(out) (checkpoints in \(ckpt), metrics in \(out)/metrics.jsonl)")
      }
      comm.finalize()
    } catch let e as TrainError where e.shared {
      // Every rank holds this error (rank 0 broadcast it): one line from rank 0, every rank exits.
      if comm.rank == 0 { printErr("error: \(e)") }
      comm.finalize()
      throw ExitCode(e.exitCode)
    } catch {
      // One line on the rank that failed; end every rank (a lone failure must not leave others waiting).
      printErr("error: \(error)" + (comm.size > 1 ? " (rank \(comm.rank))" : ""))
      let code = (error as? TrainError)?.exitCode ?? 1
      if comm.size > 1 { comm.abort(code) }
      throw ExitCode(code)
    }
  }
}
