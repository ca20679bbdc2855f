import Collectives
import Foundation
import JSONOutput
import Kernels
import Training
import TrainingRun
import ViT

extension Bench {
  /// `--fma-peak`: the FMA peak of this CPU (`FMAPeak`), per core and for all cores, for every
  /// instruction set the CPU has; `best` is the fastest fp32 loop (the bf16 dot loop, where the
  /// CPU has AVX512_BF16, is reported beside it), and the rate of cde's AVX2 GEMM micro-kernel
  /// alone with its operands in L1 (`FMAPeak.microKernel`), the kernel's ceiling against the
  /// AVX2 loop. Rank 0 only (a machine property).
  func runFMAPeak(_ comm: Communicator) throws {
    guard comm.rank == 0 else { return }
    let results = FMAPeak.ISA.allCases.compactMap { FMAPeak.measure($0, repetitions: max(steps, 1)) }
    guard let best = results.filter({ !$0.isa.isBF16 }).max(by: { $0.perCore < $1.perCore }) else {
      throw CLIError(.unsupportedCPU, "--fma-peak: this CPU has neither AVX2 + FMA nor AVX-512")
    }
    // The AVX2 GEMM kernel's ceiling, beside the AVX2 loop it is compared with.
    let micro = FMAPeak.microKernel(repetitions: max(steps, 1))
    if json {
      var r: [String: Any] = ["per_core_gflop_per_s": best.perCore, "all_cores_gflop_per_s": best.allCores,
                              "cores": best.cores, "isa": best.isa.name]
      for x in results {
        r["\(x.isa.name)_per_core_gflop_per_s"] = x.perCore
        r["\(x.isa.name)_all_cores_gflop_per_s"] = x.allCores
      }
      if let micro { r["cde_avx2_microkernel_gflop_per_s"] = micro }
      print(try JSONOutput.string(r))
      return
    }
    for x in results {
      print(String(format: "%@ %@: %.1f GFLOP/s per core (CPU time), %.1f on %d cores at once (wall time)",
                   (x.isa.isBF16 ? "bf16 dot peak" : "FMA peak") as NSString, x.isa.name as NSString, x.perCore,
                   x.allCores, x.cores))
    }
    if let micro, let avx2 = results.first(where: { $0.isa == .avx2 }) {
      print(String(format: "GEMM micro-kernel cde_avx2 (6 x 16 tile, k 256, operands in L1): %.1f GFLOP/s per core (CPU time), %.0f%% of the avx2 loop",
                   micro, 100 * micro / avx2.perCore))
    }
  }

  /// `--gemm-shapes`: every GEMM class of the step timed single-threaded on OpenBLAS, oneDNN
  /// and oneDNN per image (`GEMMBackend.decide` in `auto` mode, rank 0), with oneDNN's row
  /// stability and the choice `auto` makes.
  func runGEMMShapes(_ comm: Communicator, _ cfg: ViTConfig) throws {
    guard comm.rank == 0 else { return }
    let t = cfg.grid * cfg.grid + 1
    let (plan, ms) = GEMMBackend.decide(cfg.gemmShapes, batch: max(1, GEMMSelection.timingRows / t) * t, imageRows: t, mode: .auto,
                                        rounds: max(steps, 1))
    if json {
      let rows: [[String: Any]] = ms.map {
        let (m, n, k) = $0.shape.dims(batch: $0.batch)
        return ["shape": $0.shape.description, "m": m, "n": n, "k": k, "openblas_gflop_per_s": $0.openblasGFLOPs,
                "onednn_gflop_per_s": $0.onednnGFLOPs, "onednn_image_gflop_per_s": $0.onednnImageGFLOPs, "onednn_rows_stable": $0.onednnRowStable,
                "kernel_gflop_per_s": $0.kernelGFLOPs, "kernel_rows_stable": $0.kernelRowStable, "choice": $0.choice.rawValue]
      }
      let r: [String: Any] = ["shapes": rows, "plan": plan.encoded, "blas_core": BLASRuntime.coreName,
                              "onednn": GEMMBackend.onednnVersion, "onednn_isa": GEMMBackend.onednnISA]
      print(try JSONOutput.string(r))
      return
    }
    print("GEMM classes, one thread, CPU time (OpenBLAS \(BLASRuntime.coreName), oneDNN \(GEMMBackend.onednnVersion) \(GEMMBackend.onednnISA)):")
    for x in ms {
      let (m, n, k) = x.shape.dims(batch: x.batch)
      let perImage = x.onednnImageGFLOPs > 0 ? String(format: "%6.1f", x.onednnImageGFLOPs) : "     -"
      let kernel = x.kernelGFLOPs > 0 ? String(format: "%6.1f", x.kernelGFLOPs) : "     -"
      print(String(format: "  %@ %5d x %4d x %4d  OpenBLAS %6.1f  oneDNN %6.1f  per image %@  cde_avx2 %@ GFLOP/s  oneDNN rows %@  -> %@",
                   x.shape.description.padding(toLength: 16, withPad: " ", startingAt: 0) as NSString, m, n, k,
                   x.openblasGFLOPs, x.onednnGFLOPs, perImage as NSString, kernel as NSString,
                   (x.onednnRowStable ? "stable" : "UNSTABLE") as NSString, x.choice.rawValue as NSString))
    }
  }
}
