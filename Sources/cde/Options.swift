import ArgumentParser
import CodedError
import Evaluation
import Foundation
import Imaging
import Kernels
import Training
import TrainingRun
import ViT

/// The image-input options of `cde embed` and `cde detect`: how an image becomes the model's
/// input, how many go through one forward pass, and the largest image decoded.
struct ImageOptions: ParsableArguments {
  @Option(help: "center-crop: the authors' inference (centre crop at native resolution, padded if smaller); resize-crop: the training base view (shorter side to S/0.9, bicubic, centre crop S).")
  var preprocess: EmbedPreprocess = .centerCrop

  @Option(help: "Images per forward pass (activations take about 30 MB per ViT-Tiny image at 224).") var batch: Int = 4

  @Option(name: .customLong("max-image-pixels"), help: "Largest image (width x height) decoded; larger ones are skipped (default: Pillow's 89478485).")
  var maxImagePixels: Int = DecodePolicy.pillowMaxPixels

  /// --batch positive and within memory for the smallest possible image (one patch; the
  /// model's own size is checked once it is loaded, by `requireBatchMemory`), and
  /// --max-image-pixels positive.
  func validate() throws {
    if batch < 1 { throw ValidationError("--batch must be at least 1") }
    if maxImagePixels < 1 { throw ValidationError("--max-image-pixels must be at least 1 (got \(maxImagePixels))") }
    try requireMemory("--batch", batch, bytes: Double(batch) * 2 * 3 * 16 * 16 * 4, what: "two input batches of \(batch) images")
  }
}

/// Options shared by the commands that run the model.
struct ComputeOptions: ParsableArguments {
  @Option(help: "Worker threads per process (default: CDE_THREADS, or cores / local ranks).")
  var threads: Int?

  @Option(help: ArgumentHelp(
    "GEMM library: auto (time OpenBLAS, oneDNN and cde's AVX2 kernel per GEMM class at start-up, keep the fastest), openblas, onednn, kernel (cde's AVX2 kernel everywhere) (default: CDE_GEMM, or auto).",
    valueName: "auto|openblas|onednn|kernel"))
  var gemm: GEMMMode?

  @Option(help: ArgumentHelp(
    "Copy of the hand-written kernels (attention, softmax, GELU): auto (the AVX-512 copy when the CPU has x86-64-v4 and the build's own is not AVX-512), build (the build's own), avx512 (default: CDE_KERNELS, or auto).",
    valueName: "auto|build|avx512"))
  var kernels: KernelISA.Choice?

  func validate() throws {
    if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    if gemm == nil, let e = ProcessInfo.processInfo.environment["CDE_GEMM"], GEMMMode(rawValue: e) == nil {
      throw ValidationError("CDE_GEMM=\(e): expected one of auto, openblas, onednn, kernel")
    }
    let mode = gemm ?? ProcessInfo.processInfo.environment["CDE_GEMM"].flatMap(GEMMMode.init)
    if mode == .kernel && !GEMMBackend.kernelAvailable {
      throw ValidationError("\(gemm == nil ? "CDE_GEMM=kernel" : "--gemm kernel"): this CPU lacks AVX2 or FMA, which cde's GEMM kernel needs")
    }
    _ = try kernelCopy()
  }

  /// The copy of the hand-written kernels asked for (`--kernels`, else CDE_KERNELS, else auto) on this CPU.
  func kernelCopy() throws -> KernelISA {
    var choice = KernelISA.Choice.auto, asked = "--kernels avx512"
    if let k = kernels {
      choice = k
    } else if let e = ProcessInfo.processInfo.environment["CDE_KERNELS"] {
      guard let k = KernelISA.Choice(rawValue: e) else {
        throw ValidationError("CDE_KERNELS=\(e): expected one of auto, build, avx512")
      }
      choice = k
      asked = "CDE_KERNELS=avx512"
    }
    let flags = BLASRuntime.cpuFlags()
    guard let isa = KernelISA.resolve(choice, flags: flags) else {
      throw ValidationError("\(asked): this CPU lacks " + KernelISA.missingAVX512(flags: flags).joined(separator: ", "))
    }
    return isa
  }

  /// Applies the thread count: explicit, else CDE_THREADS, else cores divided by the ranks on this node.
  func apply() {
    GEMMBackend.requestedMode = gemm ?? ProcessInfo.processInfo.environment["CDE_GEMM"].flatMap(GEMMMode.init) ?? .auto
    if let isa = try? kernelCopy() { KernelISA.select(isa) }  // validate() has reported a bad choice
    if let t = threads { Threads.configure(t); return }
    if let s = ProcessInfo.processInfo.environment["CDE_THREADS"], let t = Int(s), t > 0 { Threads.configure(t); return }
    Threads.configure(max(1, ProcessInfo.processInfo.activeProcessorCount / max(localRanks(), 1)))
  }
}

/// `--precision fp32|bf16` of the commands that run the model outside training (`bench`,
/// `step`, and `embed`, `eval`, `detect`, whose forward passes it speeds up on bf16 CPUs at the
/// cost of embeddings that differ from fp32's, about 3e-4 relative on ViT-Tiny); `cde train`
/// takes `optim.precision` from its config.
struct PrecisionOption: ParsableArguments {
  @Option(help: ArgumentHelp(
    "The GEMMs of the Linear layers and attention, as optim.precision in training: fp32, or bf16 (bf16 operands, fp32 sums; needs avx512_bf16 or amx_bf16).",
    valueName: "fp32|bf16"))
  var precision: GEMMPrecision = .fp32

  func validate() throws {
    if precision == .bf16, let why = GEMMBackend.bf16Unavailable {
      throw ValidationError("--precision bf16 needs a CPU with avx512_bf16 or amx_bf16; \(why)")
    }
  }

  /// Makes `precision` the precision of every following step.
  func apply() { GEMMBackend.precision = precision }
}

/// A user-facing error: a `kind` the command line can tell apart, printed as its one-line
/// `description`, exit status 1.
typealias CLIError = CodedError<CLIErrorKind>

/// The failure cases of the command line itself.
enum CLIErrorKind: Equatable, Sendable {
  /// An option or setting (flag, config key, environment variable) that cannot be used.
  case invalidArgument
  /// No images, records or classes to work on.
  case noData
  /// Embeddings and a classifier (or two classifiers) of different dimensions.
  case dimensionMismatch
  /// A file or directory at `path` that cannot be created.
  case io(path: String)
  /// A Python helper that cannot be found or run, or whose output is malformed.
  case pythonTool
  /// This CPU lacks what the command needs.
  case unsupportedCPU
}

/// The ViT shape of the `model:` section of a config file (`TrainConfig.loadModel`, the
/// rules of `cde train`); ViT-Tiny without a file.
func loadModelConfig(_ path: String?) throws -> ViTConfig {
  guard let path else { return .tiny }
  return try TrainConfig.loadModel(path: path).vit
}

/// Peak resident set size of this process in MiB (getrusage).
func peakRSSMiB() -> Double {
  var u = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
  return Double(u.ru_maxrss) / 1024
}

func printErr(_ s: String) {
  FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// `--preprocess center-crop|resize-crop` for embed and detect.
extension EmbedPreprocess: ExpressibleByArgument {}
extension GEMMMode: ExpressibleByArgument {}
extension KernelISA.Choice: ExpressibleByArgument {}
extension GEMMPrecision: ExpressibleByArgument {}

/// Bytes this process may still allocate: MemAvailable of /proc/meminfo, or the cgroup v2
/// limit minus current usage when that is lower; nil when neither can be read.
func availableMemoryBytes() -> Double? {
  var best: Double? = nil
  if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
    for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
      let f = line.split(separator: " ")
      if f.count >= 2, let kb = Double(f[1]) { best = kb * 1024 }
    }
  }
  func read(_ p: String) -> Double? {
    (try? String(contentsOfFile: p, encoding: .utf8)).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
  }
  if let limit = read("/sys/fs/cgroup/memory.max"), let used = read("/sys/fs/cgroup/memory.current") {
    best = min(best ?? .infinity, max(0, limit - used))
  }
  return best
}

/// Throws a `ValidationError` naming `option` when `bytes` (a lower-bound estimate of
/// what the value makes the command allocate) exceed the available memory. Sizes are
/// checked before anything is allocated, so that a mistyped size is one line, not an
/// allocation failure with a backtrace.
func requireMemory(_ option: String, _ value: Int, bytes: Double, what: String) throws {
  guard let avail = availableMemoryBytes(), bytes > avail else { return }
  func gib(_ b: Double) -> String { String(format: "%.1f GiB", b / 1_073_741_824) }
  throw ValidationError("\(option) \(value): \(what) need at least \(gib(bytes)), more than the \(gib(avail)) of memory available")
}

/// Lower bound of the activation bytes of one image through a ViT forward pass:
/// tokens x width floats for each of the ~4 tensors every block keeps (LN, attention
/// output, MLP in and out), over all blocks.
func vitActivationBytes(_ c: ViTConfig, imageSize s: Int) -> Double {
  let tokens = Double((s / max(c.patch, 1)) * (s / max(c.patch, 1)) + 1)
  return tokens * Double(c.width) * 4 * Double(c.depth) * 4
}
