import ArgumentParser
import Dataset
import Foundation
import Imaging

/// `cde shards preview`: the eight CoDE views of the first records of a step, as one PNG.
struct Preview: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write the eight training views of a few records as one PNG grid (one row per record).",
    discussion: "Columns: real, fake, aug_real, aug_fake, global_real, global_fake, local_real, local_fake.")

  @Argument(help: "Shards, globs or folders.") var paths: [String]
  @Option(help: "Output PNG.") var out: String
  @Option(help: "Records (rows).") var records: Int = 4
  @Option(name: .customLong("image-size")) var imageSize: Int = 224
  @Option(name: .customLong("local-size")) var localSize: Int = 96
  @Option(name: .customLong("num-transform")) var numTransform: Int = 2
  @Option var seed: UInt64 = 42
  @Option var epoch: Int = 0

  func run() throws {
    let spec = ViewSpec(imageSize: imageSize, localSize: localSize, numTransform: numTransform)
    let loader = try D3Loader(config: LoaderConfig(paths: paths, seed: seed, globalBatch: records, spec: spec, prefetch: 1),
                              cursor: DataCursor(epoch: epoch, step: 0))
    defer { loader.close() }
    let batch = try loader.next()
    let s = imageSize, l = localSize, b = records
    let width = 6 * s + 2 * l, height = b * s
    var img = RGBImage(width: width, height: height, fill: (255, 255, 255))
    let mean = [spec.mean.0, spec.mean.1, spec.mean.2], std = [spec.std.0, spec.std.1, spec.std.2]
    func paint(_ src: UnsafePointer<Float>, size: Int, x0: Int, y0: Int) {
      for c in 0..<3 {
        for y in 0..<size {
          for x in 0..<size {
            let v = (src[(c * size + y) * size + x] * std[c] + mean[c]) * 255
            img.pixels[((y0 + y) * width + x0 + x) * 3 + c] = UInt8(max(0, min(255, v.rounded())))
          }
        }
      }
    }
    for r in 0..<b {
      for v in 0..<6 { paint(batch.global + (v * b + r) * 3 * s * s, size: s, x0: v * s, y0: r * s) }
      for v in 0..<2 { paint(batch.local + (v * b + r) * 3 * l * l, size: l, x0: 6 * s + v * l, y0: r * s) }
    }
    try ImageCodec.encode(img, format: .png).write(to: URL(fileURLWithPath: out))
    print("wrote \(out): \(b) records, generators \(batch.generators)")
  }
}
