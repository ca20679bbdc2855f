// swift-tools-version:6.0
import PackageDescription

// Optimisation flags shared by the numeric targets. `-Ounchecked` is not used:
// bounds checks stay on in debug builds and are removed by hand (unsafe
// pointers) only in the hot loops.
let numeric: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "native", "-Xcc", "-march=native"])]

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
    // Small C helpers that Swift cannot express safely (async-signal-safe handlers, the FMA-peak loop).
    .target(name: "CSupport"),

    // Tensor files (safetensors), no dependencies.
    .target(name: "SafeTensors"),
    // Forward/backward kernels over flat fp32 buffers.
    .target(name: "Kernels", dependencies: ["CBLAS", "CDNNL", "CSupport"], swiftSettings: numeric),
    // The ViT model: parameter layout, init, forward/backward, weights I/O.
    .target(name: "ViT", dependencies: ["Kernels", "SafeTensors"], swiftSettings: numeric),
    // Images: decoding, geometry, the transform operator T, views.
    .target(name: "Imaging", dependencies: ["CVips"], swiftSettings: numeric),
    // D3 on disk: tar shards, records, sampling, loader, synthetic D3.
    .target(name: "Dataset", dependencies: ["Imaging", "SafeTensors"], swiftSettings: numeric),
    // Communicator protocol with MPI and single-process implementations.
    .target(name: "Collectives", dependencies: ["CMPI"]),
    // Loss, optimiser, schedule, trainer, coordinator, checkpoints, metrics.
    .target(name: "Training",
            dependencies: ["Kernels", "ViT", "Dataset", "Collectives", "SafeTensors", "COpenSSL", "CSupport",
                           .product(name: "Yams", package: "Yams")],
            swiftSettings: numeric),
    // Embeddings, classifiers, per-generator evaluation.
    .target(name: "Evaluation",
            dependencies: ["Kernels", "ViT", "Dataset", "SafeTensors", "CBLAS", "CLinear", "CSVM"],
            swiftSettings: numeric),
    .executableTarget(
      name: "cde",
      dependencies: ["Kernels", "ViT", "Imaging", "Dataset", "Collectives", "Training", "Evaluation",
                     "SafeTensors", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

    .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"]),
    // Helpers shared by the numeric tests (fixture paths, error measures).
    .target(name: "TestSupport", path: "Tests/TestSupport"),
    .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CSupport", "SafeTensors", "TestSupport"]),
    .testTarget(name: "ViTTests", dependencies: ["ViT", "Kernels", "SafeTensors", "Training", "TestSupport"]),
    .testTarget(name: "ImagingTests", dependencies: ["Imaging", "SafeTensors"]),
    .testTarget(name: "DatasetTests", dependencies: ["Dataset", "Imaging", "SafeTensors"]),
    .testTarget(name: "CollectivesTests", dependencies: ["Collectives"]),
    .testTarget(name: "TrainingTests", dependencies: ["Training", "ViT", "Kernels", "SafeTensors", "Collectives"]),
    .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "ViT", "SafeTensors"]),
  ],
  swiftLanguageModes: [.v5]
)
