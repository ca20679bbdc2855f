import ArgumentParser
import Foundation
import Kernels
import Training
import ViT

/// `cde bench`: training-step throughput on random views.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the full CoDE training step (8 views per record, forward, loss, backward, AdamW) on random views.")

  @Option(help: "Records per step (per rank).") var records: Int = 8
  @Option(name: .customLong("local-size"), help: "Side of the local views in pixels.") var localSize: Int = 96
  @Option(help: "Timed steps.") var steps: Int = 5
  @Option(help: "Untimed warm-up steps.") var warmup: Int = 1
  @Option(help: "YAML config whose model: section gives a non-default ViT shape.") var config: String?
  @Flag(help: "Print one JSON object.") var json = false
  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    if records < 2 { throw ValidationError("--records must be at least 2 (negatives come from the other records)") }
    if steps < 1 { throw ValidationError("--steps must be at least 1") }
    if localSize < 16 { throw ValidationError("--local-size must be at least one patch") }
  }

  func run() throws {
    compute.apply()
    let cfg = try loadModelConfig(config)
    guard localSize % cfg.patch == 0 else { throw CLIError("--local-size \(localSize) is not a multiple of the patch size \(cfg.patch)") }
    let model = try ViTModel(config: cfg)
    model.initialize(seed: 42)
    let b = records, s = cfg.imageSize, l = localSize, c = cfg.channels
    var rng = SplitMix64(seed: 7)
    let global = (0..<(6 * b * c * s * s)).map { _ in Float(rng.normal()) }
    let local = (0..<(2 * b * c * l * l)).map { _ in Float(rng.normal()) }
    let perm = derangement(b, seed: 1)
    let step = CoDEStep(model: model)
    var times: [Double] = []
    for i in 0..<(warmup + steps) {
      let t0 = DispatchTime.now().uptimeNanoseconds
      try step.run(global: global, local: local, records: b, imageSize: s, localSize: l, perm: perm, lr: 1e-4, weightDecay: 0)
      let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
      if i >= warmup { times.append(dt) }
    }
    times.sort()
    let median = times[times.count / 2]
    let g = cfg.grid, lg = l / cfg.patch
    let flop = 3 * (6 * Double(b) * cfg.forwardFLOPs(tokens: g * g + 1) + 2 * Double(b) * cfg.forwardFLOPs(tokens: lg * lg + 1))
    let result: [String: Any] = [
      "records_per_s": Double(b) / median, "gflop_per_s": flop / median / 1e9, "step_s_median": median,
      "step_s_min": times.first!, "step_s_max": times.last!, "peak_rss_mib": peakRSSMiB(), "records": b,
      "local_size": l, "threads": Threads.count, "steps": steps, "ranks": 1,
    ]
    if json {
      let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
      print(String(data: data, encoding: .utf8)!)
    } else {
      print(String(format: "records %d, local %d px, threads %d: median step %.3f s, %.2f records/s, %.1f GFLOP/s, peak RSS %.0f MiB",
                   b, l, Threads.count, median, Double(b) / median, flop / median / 1e9, peakRSSMiB()))
    }
  }
}
