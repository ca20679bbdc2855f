import Foundation
import XCTest

@testable import Imaging

final class SyntheticD3Tests: XCTestCase {
  /// Records decode, have D3's sizes and encodings, and are a pure function of (seed, index).
  func testRecordsDecodeWithD3SizesAndAreDeterministic() throws {
    for i in 0..<3 {
      let r = SyntheticD3.record(seed: 7, index: i)
      XCTAssertFalse(r.caption.isEmpty)
      let real = try ImageCodec.decode(r.real.data, name: "real")
      XCTAssertEqual(min(real.width, real.height) >= 200, true)
      XCTAssertNotNil(ImageFormat(fileExtension: r.real.fileExtension))
      for g in r.gens {
        let img = try ImageCodec.decode(g.data, name: "gen")
        XCTAssertTrue(SyntheticD3.generatedSizes.contains { $0 == (img.width, img.height) }, "\(img.width)x\(img.height)")
      }
      let again = SyntheticD3.record(seed: 7, index: i)
      XCTAssertEqual(again.real.data, r.real.data)
      XCTAssertEqual(again.gens.map(\.data), r.gens.map(\.data))
    }
  }

  /// Mean energy of the 8x8-periodic component of the high-pass residual: large for
  /// gen_0 (its decoder tile), small for real images.
  func periodic8Energy(_ img: RGBImage) -> Double {
    let W = img.width, H = img.height
    var sums = [Double](repeating: 0, count: 64), counts = [Double](repeating: 0, count: 64)
    for y in 1..<(H - 1) {
      for x in 1..<(W - 1) {
        var l = 0.0, nb = 0.0
        for dy in -1...1 { for dx in -1...1 {
          let (r, g, b) = img[x + dx, y + dy]
          let v = (Double(r) + Double(g) + Double(b)) / 3
          if dx == 0 && dy == 0 { l = v } else { nb += v }
        } }
        sums[(y & 7) * 8 + (x & 7)] += l - nb / 8
        counts[(y & 7) * 8 + (x & 7)] += 1
      }
    }
    let means = zip(sums, counts).map { $0 / $1 }
    let m = means.reduce(0, +) / 64
    return means.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 64
  }

  /// Each documented fingerprint is present: the same image with and without it.
  func testFingerprintsPresent() {
    for i in 0..<2 {
      let g0 = SyntheticD3.generatedImage(generator: 0, seed: 3, index: i)
      let g0n = SyntheticD3.generatedImage(generator: 0, seed: 3, index: i, fingerprint: false)
      XCTAssertGreaterThan(periodic8Energy(g0), 0.5 + 4 * periodic8Energy(g0n), "gen_0 8-px tile")
      let g2 = SyntheticD3.generatedImage(generator: 2, seed: 3, index: i)
      let g2n = SyntheticD3.generatedImage(generator: 2, seed: 3, index: i, fingerprint: false)
      XCTAssertGreaterThan(saturation(g2), 1.1 * saturation(g2n), "gen_2 saturation")
      let g1 = SyntheticD3.generatedImage(generator: 1, seed: 3, index: i)
      let g1n = SyntheticD3.generatedImage(generator: 1, seed: 3, index: i, fingerprint: false)
      let d1 = diff(g1, g1n)!
      XCTAssert(d1.meanAbs > 0.5 && d1.maxAbs < 40, "gen_1 sinusoids: \(d1)")
      XCTAssertGreaterThan(periodic8Energy(g0), periodic8Energy(SyntheticD3.realImage(seed: 3, index: i)))
    }
  }

  func saturation(_ img: RGBImage) -> Double {
    var s = 0.0
    for i in 0..<img.count {
      let r = Double(img.pixels[3 * i]), g = Double(img.pixels[3 * i + 1]), b = Double(img.pixels[3 * i + 2])
      s += max(r, g, b) - min(r, g, b)
    }
    return s / Double(img.count)
  }

  /// Not separable from one pixel: a nearest-class-mean classifier on single RGB
  /// values (real vs all generated) stays close to chance (measured 0.65 at this size;
  /// photos are darker at the corners from vignetting, gen_2 is warmer).
  func testSinglePixelIsNotEnough() {
    var sums = [[Double]](repeating: [0, 0, 0], count: 2), n = [0.0, 0.0]
    var samples: [([Double], Int)] = []
    var rng = CounterRNG(seed: 1, epoch: 0, record: 0, stream: 0)
    for i in 0..<4 {
      let imgs: [(RGBImage, Int)] = [(SyntheticD3.realImage(seed: 5, index: i), 0),
                                     (SyntheticD3.generatedImage(generator: i % 4, seed: 5, index: i), 1)]
      for (img, label) in imgs {
        for _ in 0..<400 {
          let (r, g, b) = img[rng.int(below: img.width), rng.int(below: img.height)]
          let v = [Double(r), Double(g), Double(b)]
          samples.append((v, label))
          for c in 0..<3 { sums[label][c] += v[c] }
          n[label] += 1
        }
      }
    }
    let means = (0..<2).map { l in sums[l].map { $0 / n[l] } }
    var correct = 0
    for (v, l) in samples {
      var d: [Double] = [0, 0]
      for k in 0..<2 {
        for c in 0..<3 {
          let e: Double = v[c] - means[k][c]
          d[k] += e * e
        }
      }
      if (d[1] < d[0] ? 1 : 0) == l { correct += 1 }
    }
    XCTAssertLessThan(Double(correct) / Double(samples.count), 0.70)
  }
}

final class ViewBenchmarkTests: XCTestCase {
  /// Prints the per-thread view throughput (no timed assertion). CDE_BENCH_RECORDS sets the count.
  func testBenchmarkReport() throws {
    let n = Int(ProcessInfo.processInfo.environment["CDE_BENCH_RECORDS"] ?? "") ?? 2
    let local = Int(ProcessInfo.processInfo.environment["CDE_BENCH_LOCAL"] ?? "") ?? 96
    let r = try ViewBenchmark.run(records: n, spec: ViewSpec(imageSize: 224, localSize: local))
    print(r)
    XCTAssertEqual(r.records, n)
  }
}

final class SyntheticPreview: XCTestCase {
  /// With CDE_SYNTH_PREVIEW=DIR, writes a few records' files there (for looking at them).
  func testWritePreviewWhenRequested() throws {
    guard let dir = ProcessInfo.processInfo.environment["CDE_SYNTH_PREVIEW"] else { return }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for i in 0..<3 {
      let r = SyntheticD3.record(seed: 42, index: i)
      try r.real.data.write(to: URL(fileURLWithPath: "\(dir)/\(i).real.\(r.real.fileExtension)"))
      for (k, g) in r.gens.enumerated() { try g.data.write(to: URL(fileURLWithPath: "\(dir)/\(i).gen_\(k).\(g.fileExtension)")) }
      print(i, r.caption)
    }
  }
}
