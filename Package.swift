// swift-tools-version:6.0
import Foundation
import PackageDescription

// The CPU the numeric targets are compiled for. By default a portable baseline, so that
// one binary serves every node of a cluster: x86-64-v3 on x86 (AVX2, FMA, BMI1/2, F16C,
// LZCNT, MOVBE; Haswell, Zen 1 and later), the compiler's default elsewhere. With
// CDE_NATIVE=1 in the environment (`make build NATIVE=1`), the CPU of the machine that
// builds. Wider paths (OpenBLAS's AVX-512 kernels, and the AVX-512 copy of the hand-written
// kernels, KernelsAVX512 below) are chosen at run time from cpuid (Kernels/BLASRuntime.swift,
// Kernels/KernelISA.swift), and CSupport checks at start-up that the CPU has what
// CBuildTarget says the build needs.
let native = ProcessInfo.processInfo.environment["CDE_NATIVE"] == "1"
#if arch(x86_64)
let cpu: String? = native ? "native" : "x86-64-v3"
#else
let cpu: String? = native ? "native" : nil
#endif

// Optimisation flags shared by the numeric targets. `-Ounchecked` is not used:
// bounds checks stay on in debug builds and are removed by hand (unsafe
// pointers) only in the hot loops.
// Swift's code generator takes its CPU and features from the Clang importer's target, so
// `-Xcc -march` sets both (`-target-cpu` does not accept the x86-64-vN levels).
// A native build on a CPU with AVX-512F also sets CDE_AVX512, which picks the kernels
// written for 32 vector registers of 16 floats (Kernels/ISA/AttentionTiles.swift); every other
// build uses the ones written for AVX2's 16 registers of 8 in Kernels, and the AVX-512 ones in
// KernelsAVX512.
let avx512 = native && ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" avx512f ") ?? false)
let numeric: [SwiftSetting] = (cpu.map { [.unsafeFlags(["-Xcc", "-march=\($0)"])] } ?? [])
  + (avx512 ? [.define("CDE_AVX512")] : [])
// The instruction-set-dependent kernels (Sources/Kernels/ISA) once more, compiled for
// AVX-512 (x86-64-v4, with CDE_AVX512's tiles): Sources/KernelsAVX512/ISA is a link to
// that folder. A build whose own kernels are not AVX-512 runs this copy on CPUs that have
// it, chosen at run time (Kernels/KernelISA.swift), so the portable binary loses nothing
// there. Elsewhere than x86 the copy is compiled as it is and never chosen.
#if arch(x86_64)
let avx512Copy: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v4"]), .define("CDE_AVX512")]
#else
let avx512Copy: [SwiftSetting] = []
#endif
// CBuildTarget is compiled with the same -march, so its feature macros describe the build.
let buildTarget: [CSetting] =
  [.define("CDE_BUILD_CPU", to: "\"\(cpu ?? "")\"")] + (cpu.map { [.unsafeFlags(["-march=\($0)"])] } ?? [])

let package = Package(
  name: "cde",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "cde", targets: ["cde"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
  ],
  targets: [
    // C libraries, each wrapped with a shim header.
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
    .systemLibrary(name: "CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
    .systemLibrary(name: "CLinear", providers: [.apt(["liblinear-dev"])]),
    .systemLibrary(name: "CSVM", providers: [.apt(["libsvm-dev"])]),
    // oneDNN: dnnl_sgemm for the GEMM classes where it beats OpenBLAS (Kernels/GEMMBackend.swift).
    .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
    // OpenSSL's libcrypto: SHA-256 of checkpoint files.
    .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
    // What the build targets (data only, compiled with the numeric targets' -march).
    .target(name: "CBuildTarget", cSettings: buildTarget),
    // Small C helpers that Swift cannot express safely (async-signal-safe handlers, cpuid
    // and the start-up CPU check, the FMA-peak loop). Compiled without -march: it runs on
    // any x86-64 (the FMA loop picks its instructions with target attributes).
    .target(name: "CSupport", dependencies: ["CBuildTarget"]),
    // The hand-written sgemm kernel for AVX2 + FMA (Kernels/GEMMBackend.swift chooses it by
    // measurement). Compiled without -march like CSupport: its functions carry target attributes.
    .target(name: "CGEMM"),

    // The one error shape of the modules: a kind of their own and a one-line description, no dependencies.
    .target(name: "CodedError"),
    // Tensor files (safetensors).
    .target(name: "SafeTensors", dependencies: ["CodedError"]),
    // The on-disk layout of a run's checkpoints (step-N names, file names, trainer.json's model section), no dependencies.
    .target(name: "CheckpointLayout"),
    // Seeded random numbers (SplitMix64, Philox CounterRNG), no dependencies.
    .target(name: "Randomness"),
    // The monotonic clock and the CPU-time clocks, no dependencies.
    .target(name: "Clock"),
    // The one JSON writer of the outputs (JSONSerialization, keys sorted), no dependencies.
    .target(name: "JSONOutput"),
    // The AVX-512 copy of Kernels/ISA (see avx512Copy above), no dependencies.
    .target(name: "KernelsAVX512", swiftSettings: avx512Copy),
    // Forward/backward kernels over flat fp32 buffers.
    .target(name: "Kernels", dependencies: ["CBLAS", "CDNNL", "CGEMM", "CSupport", "Clock", "KernelsAVX512"], swiftSettings: numeric),
    // The ViT model: parameter layout, init, forward/backward, weights I/O.
    .target(name: "ViT", dependencies: ["Kernels", "SafeTensors", "Randomness", "CodedError"], swiftSettings: numeric),
    // Images: decoding, resampling, Pillow-exact ops, the AugLy ops and the transform operator T.
    .target(name: "Imaging", dependencies: ["CVips", "Randomness", "CodedError"], swiftSettings: numeric),
    // D3 on disk and the CoDE data recipe: tar shards, records, sampling, the eight views,
    // the generator draw, loader, synthetic D3, the loader benchmark.
    .target(name: "Dataset", dependencies: ["Imaging", "Randomness", "Clock", "JSONOutput", "CodedError"], swiftSettings: numeric),
    // Communicator protocol with MPI and single-process implementations.
    .target(name: "Collectives", dependencies: ["CMPI", "Clock"]),
    // The numerics of one step: loss, optimiser, schedule, step, gradient norms, embedding health.
    .target(name: "Training", dependencies: ["Kernels", "ViT", "Collectives", "SafeTensors", "Randomness", "Clock"], swiftSettings: numeric),
    // One training run: trainer, config, checkpoints, metrics, TensorBoard, signals, run directory.
    .target(name: "TrainingRun",
            dependencies: ["Training", "Kernels", "ViT", "Imaging", "Dataset", "Collectives", "SafeTensors",
                           "Clock", "JSONOutput", "CheckpointLayout", "CodedError", "COpenSSL", "CSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: numeric),
    // Embeddings, classifiers, per-generator evaluation.
    .target(name: "Evaluation",
            dependencies: ["ViT", "Imaging", "Dataset", "SafeTensors", "Randomness", "JSONOutput", "CheckpointLayout", "CodedError", "CBLAS", "CLinear", "CSVM"],
            swiftSettings: numeric),
    .executableTarget(
      name: "cde",
      dependencies: ["Kernels", "ViT", "Imaging", "Dataset", "Collectives", "Training", "TrainingRun", "Evaluation",
                     "SafeTensors", "Randomness", "Clock", "JSONOutput", "CodedError", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

    .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "TestSupport"]),
    // Helpers shared by the test targets (repository and fixture paths, closeness assertions).
    .target(name: "TestSupport", path: "Tests/TestSupport"),
    .testTarget(name: "KernelsTests", dependencies: ["Kernels", "KernelsAVX512", "CBLAS", "CGEMM", "CSupport", "SafeTensors", "Randomness", "TestSupport"]),
    .testTarget(name: "ViTTests", dependencies: ["ViT", "SafeTensors", "TestSupport"]),
    .testTarget(name: "CheckpointLayoutTests", dependencies: ["CheckpointLayout", "ViT"]),
    .testTarget(name: "ImagingTests", dependencies: ["Imaging", "SafeTensors", "Randomness", "TestSupport"]),
    .testTarget(name: "DatasetTests", dependencies: ["Dataset", "Imaging", "SafeTensors", "Randomness", "TestSupport"]),
    .testTarget(name: "CollectivesTests", dependencies: ["Collectives"]),
    .testTarget(name: "ClockTests", dependencies: ["Clock"]),
    .testTarget(name: "RandomnessTests", dependencies: ["Randomness"]),
    .testTarget(name: "JSONOutputTests", dependencies: ["JSONOutput"]),
    .testTarget(name: "TrainingTests",
                dependencies: ["Training", "TrainingRun", "ViT", "Dataset", "Kernels", "SafeTensors", "Randomness", "TestSupport"]),
    .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "ViT", "SafeTensors", "TestSupport"]),
  ],
  swiftLanguageModes: [.v5]
)
