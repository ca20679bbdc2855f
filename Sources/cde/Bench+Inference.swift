import Clock
import Collectives
import Foundation
import JSONOutput
import Kernels
import Randomness
import ViT

extension Bench {
  /// `--inference`: forward passes only, as `cde embed` runs them (no gradients, the last
  /// block on the class token), of `records` random images at the model's resolution per
  /// rank; images/s summed over ranks. Model GFLOP/s count `ViTConfig.forwardFLOPs` of every
  /// token (what a plain ViT forward computes), so they compare with other implementations.
  func runInference(_ comm: Communicator, _ cfg: ViTConfig, gemmLine: String) throws {
    let n = records, s = cfg.imageSize, c = cfg.channels
    let model = try ViTModel(config: cfg)
    model.initialize(seed: 42)
    var rng = SplitMix64(seed: 11 &+ UInt64(comm.rank))
    let images = (0..<(n * c * s * s)).map { _ in Float(rng.normal()) }
    let acts = try model.makeActivations(batch: n, height: s, width: s)
    var times: [Double] = []
    for i in 0..<(warmup + steps) {
      if i == warmup {
        KernelProfiler.reset()
        KernelProfiler.enabled = profile
      }
      comm.barrier()
      let t0 = MonotonicClock.seconds()
      images.withUnsafeBufferPointer { model.forward($0.baseAddress!, acts) }
      if i >= warmup { times.append(MonotonicClock.seconds(since: t0)) }
    }
    KernelProfiler.enabled = false
    times.sort()
    let median = times[times.count / 2]
    let flopPerImage = cfg.forwardFLOPs(tokens: cfg.grid * cfg.grid + 1)
    var sums = [Double(n) / median, Double(n) * flopPerImage / median / 1e9]
    comm.allReduce(&sums, op: .sum)
    guard comm.rank == 0 else { return }
    if json {
      let r: [String: Any] = [
        "images_per_s": sums[0], "gflop_per_s": sums[1], "images": n, "image_size": s, "ranks": comm.size,
        "threads": Threads.count, "steps": steps, "pass_s_median": median, "peak_rss_mib": peakRSSMiB(),
        "blas_core": BLASRuntime.coreName, "kernels": KernelISA.active.rawValue, "build_cpu": BLASRuntime.buildTarget, "gemm_plan": GEMMBackend.plan.encoded, "gemm": gemmLine,
      ]
      print(try JSONOutput.string(r))
      return
    }
    print(String(format: "inference, %d images x %d rank(s) at %d px, threads %d: median pass %.3f s, %.1f images/s, %.1f model GFLOP/s",
                 n, comm.size, s, Threads.count, median, sums[0], sums[1]))
    print("  OpenBLAS kernel: \(BLASRuntime.kernelDescription); kernels \(KernelISA.active); \(gemmLine)")
    if profile {
      for p in KernelProfiler.totals {
        let rate = p.flop > 0 ? String(format: "%9.1f", p.flop / p.seconds / 1e9) : ""
        print(String(format: "  %@ %7.3f s/pass %@", p.slot.name.padding(toLength: 26, withPad: " ", startingAt: 0) as NSString,
                     p.seconds / Double(steps), rate as NSString))
      }
    }
  }
}
