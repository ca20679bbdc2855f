import ArgumentParser
import Clock
import Collectives
import Foundation
import JSONOutput
import Kernels
import Randomness
import Training
import TrainingRun
import ViT

/// `cde bench`: training-step throughput on random views, single rank or under
/// mpirun (one JSON object / line for the whole job, from rank 0).
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the full CoDE training step (8 views per record, forward, loss, backward, AdamW) on random views.",
    discussion: """
      Under mpirun every rank runs the distributed step on its own records; rank 0 prints the job's figures \
      (records/s and GFLOP/s summed over ranks). --profile adds the time per kernel family (rank 0).
      """)

  @Option(help: "Records per step (per rank).") var records: Int = 8
  @Option(name: .customLong("local-size"), help: "Side of the local views in pixels.") var localSize: Int = 96
  @Option(help: "Timed steps.") var steps: Int = 5
  @Option(help: "Untimed warm-up steps.") var warmup: Int = 1
  @Option(help: "YAML config whose model: section gives a non-default ViT shape.") var config: String?
  @Flag(help: "Print one JSON object.") var json = false
  @Option(name: .customLong("grad-cache-chunk"), help: "Gradient caching: records per forward/backward chunk (0: off).")
  var gradCacheChunk: Int = 0
  @Flag(help: "Time each kernel family during the timed steps and print the breakdown.") var profile = false
  @Flag(name: .customLong("distinct-views"), help: """
    Make every view distinct. By default, as in training, the aug_real / aug_fake view of a record equals its \
    real / fake view at the rate at which T draws no operation (1/3 with num_transform 2), and the step \
    runs such views through the network once.
    """)
  var distinctViews = false
  @Flag(help: .hidden) var sgemm = false
  @Option(name: .customLong("sgemm-size"), help: .hidden) var sgemmSize: Int = 2048
  @Flag(name: .customLong("fma-peak"), help: .hidden) var fmaPeak = false  // Bench+Peak.swift
  @Flag(name: .customLong("gemm-shapes"), help: .hidden) var gemmShapes = false  // Bench+Peak.swift
  @Flag(help: """
    Time inference instead (Bench+Inference.swift): forward passes of --records random images at the model's \
    resolution, as `cde embed` runs them; images/s.
    """)
  var inference = false
  @OptionGroup var precisionOption: PrecisionOption
  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    if records < 2 { throw ValidationError("--records must be at least 2 (negatives come from the other records)") }
    if steps < 1 { throw ValidationError("--steps must be at least 1") }
    if localSize < 16 { throw ValidationError("--local-size must be at least one patch") }
    if sgemmSize < 16 { throw ValidationError("--sgemm-size must be at least 16") }
    if warmup < 0 { throw ValidationError("--warmup must not be negative") }
    if gradCacheChunk < 0 { throw ValidationError("--grad-cache-chunk must not be negative") }
    // Sizes against memory before anything is allocated (Double: no overflow).
    let cfg = (try? loadModelConfig(config)) ?? .tiny
    let s = Double(cfg.imageSize), l = Double(localSize), c = Double(cfg.channels)
    let views = Double(records) * c * 4 * (6 * s * s + 2 * l * l)
    let chunk = Double(gradCacheChunk > 0 ? min(gradCacheChunk, records) : records)
    let acts = chunk * (6 * vitActivationBytes(cfg, imageSize: cfg.imageSize) + 2 * vitActivationBytes(cfg, imageSize: min(localSize, 1 << 20)))
    try requireMemory("--records", records, bytes: views + acts, what: "the eight views and the activations of \(records) records")
    if sgemm {
      let n = Double(sgemmSize)
      try requireMemory("--sgemm-size", sgemmSize, bytes: 3 * n * n * 4, what: "three \(sgemmSize)x\(sgemmSize) matrices")
    }
  }

  func run() throws {
    compute.apply()
    precisionOption.apply()
    let comm = makeCommunicator()
    defer { comm.finalize() }
    if sgemm { return try runSGEMM(comm) }
    if fmaPeak { return try runFMAPeak(comm) }
    let cfg = try loadModelConfig(config)
    if gemmShapes { return try runGEMMShapes(comm, cfg) }
    let gemmLine = GEMMSelection.setUp(model: cfg, mode: GEMMBackend.requestedMode, communicator: comm)
    if inference { return try runInference(comm, cfg, gemmLine: gemmLine) }
    guard localSize % cfg.patch == 0 else { throw CLIError(.invalidArgument, "--local-size \(localSize) is not a multiple of the patch size \(cfg.patch)") }
    let model = try ViTModel(config: cfg)
    model.initialize(seed: 42)
    let batch = randomBatch(cfg, rank: comm.rank)
    let perm = derangement(comm.size * records, seed: 1)
    let step = CoDEStep(model: model, communicator: comm)
    step.chunkRecords = gradCacheChunk
    let timing = try timeSteps(step, batch, cfg, perm: perm, comm: comm)
    try report(timing, step: step, cfg: cfg, comm: comm, gemmLine: gemmLine)
  }

  /// This rank's random views: standard-normal pixels (SplitMix64 seeded 7 + rank), global
  /// `[6, B, C, S, S]` then local `[2, B, C, L, L]`, with training's share of augmented views
  /// equal to their base view unless `--distinct-views`.
  struct RandomBatch {
    var global: [Float]
    let local: [Float]
    let unchanged: [Bool]
  }

  func randomBatch(_ cfg: ViTConfig, rank: Int) -> RandomBatch {
    let b = records, s = cfg.imageSize, l = localSize, c = cfg.channels
    var rng = SplitMix64(seed: 7 &+ UInt64(rank))
    var global = (0..<(6 * b * c * s * s)).map { _ in Float(rng.normal()) }
    let local = (0..<(2 * b * c * l * l)).map { _ in Float(rng.normal()) }
    let duplicates = distinctViews ? 0 : DuplicateViews.trainingCount(records: b)
    let unchanged = DuplicateViews.make(duplicates, in: &global, records: b, perView: c * s * s)
    return RandomBatch(global: global, local: local, unchanged: unchanged)
  }

  /// Wall time of each timed step (sorted), per-phase sums over them, and this rank's CPU
  /// seconds per timed step.
  struct Timing {
    var times: [Double] = []
    // forward+loss, backward, optimizer, blocked in MPI, of which after the forward pass (the gradient all-reduce)
    var phases = [Double](repeating: 0, count: 5)
    var cpuPerStep = 0.0
    /// Share of this machine's CPU time the hypervisor took (steal) from the first timed step
    /// to the last one's end; nil without the counter (StealClock).
    var stealShare: Double?
    var median: Double { times[times.count / 2] }
    /// This rank's seconds per step not blocked in MPI (the mean step minus the mean time blocked):
    /// its own work. Ranks with equal work and unequal figures ran on unequal cores.
    var computePerStep: Double { (times.reduce(0, +) - phases[3]) / Double(times.count) }
  }

  /// Runs `warmup` untimed and `steps` timed steps (a barrier before each), the kernel
  /// profiler on during the timed ones when `--profile`.
  func timeSteps(_ step: CoDEStep, _ batch: RandomBatch, _ cfg: ViTConfig, perm: [Int], comm: Communicator) throws -> Timing {
    var t = Timing()
    var cpu0 = 0.0, steal0 = StealClock.mark()
    // Test hook (scripts/test-mpi.sh): seconds this rank sleeps at the start of each step, work that
    // the other ranks do not have.
    let extra = ProcessInfo.processInfo.environment["CDE_BENCH_EXTRA_S"].flatMap(Double.init) ?? 0
    for i in 0..<(warmup + steps) {
      if i == warmup {
        KernelProfiler.reset()
        KernelProfiler.enabled = profile
        cpu0 = CPUClock.processSeconds()
        steal0 = StealClock.mark()
      }
      comm.barrier()
      let t0 = MonotonicClock.seconds()
      if extra > 0 { usleep(UInt32(extra * 1e6)) }
      let r = try step.run(global: batch.global, local: batch.local, records: records, imageSize: cfg.imageSize,
                           localSize: localSize, perm: perm, lr: 1e-4, weightDecay: 0, unchangedAugmented: batch.unchanged)
      let dt = MonotonicClock.seconds(since: t0)
      if i >= warmup {
        t.times.append(dt)
        t.phases[0] += r.forwardSeconds
        t.phases[1] += r.backwardSeconds
        t.phases[2] += r.optimizerSeconds
        t.phases[3] += r.commSeconds
        t.phases[4] += r.gradientWaitSeconds
      }
    }
    KernelProfiler.enabled = false
    t.cpuPerStep = (CPUClock.processSeconds() - cpu0) / Double(steps)  // this rank's CPU time: robust to a shared machine
    t.stealShare = StealClock.share(since: steal0)
    t.times.sort()
    return t
  }

  /// Job figures (sums over ranks of each rank's records / median step; collectives, every
  /// rank calls it), then rank 0 prints them: one JSON object with `--json`, else text.
  func report(_ t: Timing, step: CoDEStep, cfg: ViTConfig, comm: Communicator, gemmLine: String) throws {
    let b = records, l = localSize, ranks = comm.size
    let median = t.median, times = t.times, phases = t.phases
    let flopPerRecord = cfg.trainingFLOPsPerRecord(localSize: l)
    // FLOPs actually executed: without the forward and backward passes of the skipped views.
    let skipped = cfg.skippedViewFLOPs(views: step.lastDuplicateViews)
    var sums = [Double(b) / median, Double(b) * flopPerRecord / median / 1e9, peakRSSMiB(),
                (Double(b) * flopPerRecord - skipped) / median / 1e9, Double(step.lastDuplicateViews)]
    comm.allReduce(&sums, op: .sum)
    var slowest = [median]
    comm.allReduce(&slowest, op: .max)
    // Least and most over the ranks, in one min and one max: seconds per step blocked in MPI, not
    // blocked (compute) and on the CPU, and the share of the rank's machine the host took (-1: not
    // known, never the max unless no rank knows it). With equal work, unequal compute seconds mean
    // unequal cores (a shared host): the ranks that finish first wait, blocked in MPI, for the last.
    var highs = [phases[3] / Double(steps), t.computePerStep, t.cpuPerStep, t.stealShare ?? -1], lows = highs
    comm.allReduce(&highs, op: .max)
    comm.allReduce(&lows, op: .min)
    let gemmAgree = GEMMSelection.ranksAgree(comm)
    guard comm.rank == 0 else { return }
    let k = Double(steps)
    var result: [String: Any] = [
      "records_per_s": sums[0], "gflop_per_s": sums[1], "step_s_median": median, "step_s_median_slowest_rank": slowest[0],
      "step_s_min": times.first!, "step_s_max": times.last!, "peak_rss_mib": peakRSSMiB(), "peak_rss_mib_all_ranks": sums[2],
      "records": b, "records_per_step_job": b * ranks, "local_size": l, "threads": Threads.count, "steps": steps,
      "ranks": ranks, "forward_s": phases[0] / k, "backward_s": phases[1] / k, "optimizer_s": phases[2] / k,
      "comm_blocked_s": phases[3] / k, "comm_blocked_s_min_rank": lows[0], "comm_blocked_s_max_rank": highs[0],
      "gradient_wait_s": phases[4] / k, "blas_core": BLASRuntime.coreName, "kernels": KernelISA.active.rawValue,
      "build_cpu": BLASRuntime.buildTarget, "gflop_per_s_executed": sums[3], "views_deduplicated_per_step_job": Int(sums[4]),
      "gemm_plan": GEMMBackend.plan.encoded, "gemm": gemmLine, "precision": precisionOption.precision.rawValue, "gemm_plan_ranks_identical": gemmAgree,
      "cpu_s_per_step_rank0": t.cpuPerStep, "cpu_s_per_step_min_rank": lows[2], "cpu_s_per_step_max_rank": highs[2],
      "compute_s": t.computePerStep, "compute_s_min_rank": lows[1], "compute_s_max_rank": highs[1],
    ]
    if highs[3] >= 0 { result["host_steal_share"] = highs[3] }  // the most over the ranks' machines
    let prof = KernelProfiler.totals
    if profile {
      var rows: [[String: Any]] = []
      for p in prof {
        var row: [String: Any] = ["kernel": p.slot.name, "s_per_step": p.seconds / k, "calls_per_step": Double(p.calls) / k,
                                  "share": p.seconds / k / median]
        if p.flop > 0 { row["gflop_per_s"] = p.flop / p.seconds / 1e9 }
        rows.append(row)
      }
      result["profile"] = rows
    }
    if json {
      print(try JSONOutput.string(result))
      return
    }
    printText(t, sums: sums, gemmLine: gemmLine, ranks: ranks, blocked: (lows[0], highs[0]),
              compute: (lows[1], highs[1]), steal: highs[3] >= 0 ? highs[3] : nil)
  }

  /// The text report of rank 0 (without `--json`).
  func printText(_ t: Timing, sums: [Double], gemmLine: String, ranks: Int, blocked: (min: Double, max: Double),
                 compute: (min: Double, max: Double), steal: Double?) {
    let k = Double(steps), median = t.median, phases = t.phases
    print(String(format: "records %d x %d rank(s), local %d px, threads %d: median step %.3f s, %.2f records/s, %.1f GFLOP/s, peak RSS %.0f MiB/rank",
                 records, ranks, localSize, Threads.count, median, sums[0], sums[1], peakRSSMiB()))
    print("  OpenBLAS kernel: \(BLASRuntime.kernelDescription); kernels \(KernelISA.active); \(gemmLine)"
          + (precisionOption.precision == .bf16 ? "; Linear GEMMs in bf16 (oneDNN matmul, fp32 sums)" : ""))
    print(String(format: "  forward+loss %.3f s, backward %.3f s, adamw %.3f s, blocked in MPI %.3f s, %.3f s of it after the forward pass (means per step, rank 0)",
                 phases[0] / k, phases[1] / k, phases[2] / k, phases[3] / k, phases[4] / k)
          + (ranks > 1 ? String(format: "; blocked in MPI over the ranks %.3f-%.3f s", blocked.min, blocked.max) : ""))
    var balance: [String] = []
    if ranks > 1 { balance.append(String(format: "compute (not blocked in MPI) over the ranks %.3f-%.3f s per step", compute.min, compute.max)) }
    if let steal { balance.append(String(format: "the host took %.1f%% of the machine's CPU time (steal) during the timed steps", 100 * steal)) }
    if !balance.isEmpty { print("  " + balance.joined(separator: "; ")) }
    if profile {
      print("  kernel                      s/step   share   GFLOP/s")
      var covered = 0.0
      for p in KernelProfiler.totals {
        covered += p.seconds / k
        let rate = p.flop > 0 ? String(format: "%9.1f", p.flop / p.seconds / 1e9) : ""
        let name = p.slot.name.padding(toLength: 26, withPad: " ", startingAt: 0)
        print(String(format: "  %@ %7.3f  %5.1f%%  %@", name as NSString, p.seconds / k,
                     100 * p.seconds / k / median, rate as NSString))
      }
      print(String(format: "  %@ %7.3f  %5.1f%%", "other (loss, comm, adamw)".padding(toLength: 26, withPad: " ", startingAt: 0) as NSString, median - covered,
                   100 * (median - covered) / median))
    }
  }

  /// `--sgemm`: the OpenBLAS rate of one square `C = A B` per rank with this
  /// rank's worker threads (rows split as the kernels split them), all ranks
  /// at once; rank 0 prints the sum.
  func runSGEMM(_ comm: Communicator) throws {
    let n = sgemmSize
    var rng = SplitMix64(seed: 3 &+ UInt64(comm.rank))
    let a = (0..<(n * n)).map { _ in Float(rng.normal()) }, bm = (0..<(n * n)).map { _ in Float(rng.normal()) }
    var c = [Float](repeating: 0, count: n * n)
    var times: [Double] = []
    for i in 0..<(warmup + steps) {
      comm.barrier()
      let t0 = MonotonicClock.seconds()
      a.withUnsafeBufferPointer { pa in
        bm.withUnsafeBufferPointer { pb in
          c.withUnsafeMutableBufferPointer { pc in
            Kernels.sgemm(m: n, n: n, k: n, a: pa.baseAddress!, lda: n, b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n)
          }
        }
      }
      if i >= warmup { times.append(MonotonicClock.seconds(since: t0)) }
    }
    times.sort()
    let rate = 2 * Double(n) * Double(n) * Double(n) / times[times.count / 2] / 1e9
    var sums = [rate]
    comm.allReduce(&sums, op: .sum)
    guard comm.rank == 0 else { return }
    if json {
      let r: [String: Any] = ["sgemm_gflop_per_s": sums[0], "rank0_gflop_per_s": rate, "ranks": comm.size,
                              "threads": Threads.count, "size": n, "blas_core": BLASRuntime.coreName]
      print(try JSONOutput.string(r))
    } else {
      print(String(format: "sgemm %d^3, %d rank(s) x %d thread(s), OpenBLAS %@: %.1f GFLOP/s (rank 0: %.1f)", n, comm.size,
                   Threads.count, BLASRuntime.kernelDescription as NSString, sums[0], rate))
    }
  }
}
