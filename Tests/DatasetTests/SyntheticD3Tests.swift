import Foundation
import Randomness
import TestSupport
import XCTest

@testable import Dataset
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

  /// `scene: .layout`: every generated image re-renders the real image's scene at its size, so it
  /// correlates strongly with the real image; under `.theme` the layouts are independent. Both
  /// modes are deterministic.
  func testSharedLayoutTwinsTheRealScene() throws {
    func luma(_ img: RGBImage) -> [Double] {
      var v: [Double] = []
      for y in 0..<img.height { for x in 0..<img.width { let (r, g, b) = img[x, y]; v.append((Double(r) + Double(g) + Double(b)) / 3) } }
      return v
    }
    func corr(_ a: [Double], _ b: [Double]) -> Double {
      let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
      var ab = 0.0, aa = 0.0, bb = 0.0
      for i in 0..<a.count { ab += (a[i] - ma) * (b[i] - mb); aa += (a[i] - ma) * (a[i] - ma); bb += (b[i] - mb) * (b[i] - mb) }
      return ab / (aa * bb).squareRoot()
    }
    for i in 0..<3 {
      let twin = SyntheticD3.record(seed: 11, index: i, strength: 1, scene: .layout)
      XCTAssertEqual(twin.real.data, SyntheticD3.record(seed: 11, index: i, strength: 1, scene: .layout).real.data)
      let real = try ImageCodec.decode(twin.real.data, name: "real")
      let own = SyntheticD3.record(seed: 11, index: i, strength: 1, scene: .theme)
      for k in 0..<4 {
        let g = try ImageCodec.decode(twin.gens[k].data, name: "gen_\(k)")
        // gen_3's coarse stage rounds the size down to a multiple of 4.
        XCTAssertEqual(g.width, k == 3 ? real.width / 4 * 4 : real.width)
        XCTAssertEqual(g.height, k == 3 ? real.height / 4 * 4 : real.height)
        if k != 3 { XCTAssertGreaterThan(corr(luma(real), luma(g)), 0.6, "record \(i) gen_\(k) is not the real scene") }
        let independent = try ImageCodec.decode(own.gens[k].data, name: "gen_\(k)")
        if independent.width == real.width && independent.height == real.height {
          XCTAssertLessThan(corr(luma(real), luma(independent)), 0.6)
        }
      }
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
      // gen_2's grade at strength 4 (saturation x1.16).
      var r1 = CounterRNG(seed: 3, epoch: SyntheticD3.epochTag, record: i, stream: SyntheticD3.genStream + 2)
      var r2 = r1
      let t = Theme(seed: 3, index: i)
      let g2 = SyntheticD3.generatedImage(generator: 2, theme: t, rng: &r1, strength: 4)
      let g2n = SyntheticD3.generatedImage(generator: 2, theme: t, rng: &r2, fingerprint: false)
      XCTAssertGreaterThan(saturation(g2), 1.08 * saturation(g2n), "gen_2 saturation")
      let g1 = SyntheticD3.generatedImage(generator: 1, seed: 3, index: i)
      let g1n = SyntheticD3.generatedImage(generator: 1, seed: 3, index: i, fingerprint: false)
      let d1 = RGBImage.difference(g1, g1n)!
      // Sinusoids, the 1-px blur (largest at edges) and the luma field (sigma 0.03, about 8 grey levels).
      XCTAssert(d1.meanAbs > 0.5 && d1.maxAbs < 60, "gen_1 sinusoids and field: \(d1)")
      XCTAssertGreaterThan(periodic8Energy(g0), periodic8Energy(SyntheticD3.realImage(seed: 3, index: i)))
    }
  }

  /// The coarse components against their closed forms, on a flat grey canvas (no clipping).
  func testCoarseComponentsClosedForm() {
    let (W, H) = (640, 360)
    func grey() -> Canvas { var c = Canvas(width: W, height: H); for i in 0..<c.p.count { c.p[i] = 0.5 }; return c }
    let n = W * H
    // gen_0 seams: peak on the tile boundaries (u = 0 is one), zero between them.
    var s = grey(); s.addSeamGrid(amplitude: 0.05)
    let xSeam = W / 2, ySeam = H / 2  // pixel centres at u, v = 0.5 / H: 1/124 sigma away is far, nearly the peak
    XCTAssertEqual(s.p[ySeam * W + xSeam] - 0.5, 0.05, accuracy: 0.002)
    let mid = Int((Double(W) / 2 + Double(H) / 16).rounded())  // u = 1/16: the middle of a tile, v = 1/16 too
    let midY = Int((Double(H) / 2 + Double(H) / 16).rounded())
    XCTAssertEqual(s.p[midY * W + mid] - 0.5, 0, accuracy: 1e-4)
    XCTAssertEqual(s.p[n + midY * W + mid], s.p[midY * W + mid])  // luma: all channels alike
    // gen_3 block shading: +a at the grid centre, -a half a period away along both axes.
    var b = grey(); b.addBlockShading(amplitude: 0.04)
    let (u0, v0) = Canvas.centred(W / 2, H / 2, W, H)
    let expect0 = 0.04 * 0.5 * (cos(2 * Double.pi * 8 * u0) + cos(2 * Double.pi * 8 * v0))
    XCTAssertEqual(Double(b.p[(H / 2) * W + W / 2]) - 0.5, expect0, accuracy: 1e-5)
    XCTAssertEqual(Double(b.p[(H / 2) * W + W / 2]) - 0.5, 0.04, accuracy: 0.001)
    // Fixed fields: mean 0, standard deviation = amplitude over the image; chroma: +R, -B, G unchanged.
    for chroma in [false, true] {
      var f = grey(); f.addFixedField(amplitude: 0.03, seed: 77, chroma: chroma)
      let r = (0..<n).map { Double(f.p[$0]) - 0.5 }
      let mean = r.reduce(0, +) / Double(n)
      let sd = (r.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)).squareRoot()
      XCTAssertEqual(mean, 0, accuracy: 0.006)
      XCTAssertEqual(sd, 0.03, accuracy: 0.006)
      for k in stride(from: 0, to: n, by: 997) {
        if chroma {
          XCTAssertEqual(f.p[n + k], 0.5); XCTAssertEqual(f.p[2 * n + k] - 0.5, -(f.p[k] - 0.5), accuracy: 1e-6)
        } else {
          XCTAssertEqual(f.p[n + k], f.p[k]); XCTAssertEqual(f.p[2 * n + k], f.p[k])
        }
      }
    }
    // The field is image-independent: the same (u, v) gives the same value at another size.
    let terms = Canvas.fieldTerms(seed: 77)
    var a = Canvas(width: 256, height: 256); a.addFixedField(amplitude: 1, seed: 77, chroma: false)
    let (ua, va) = Canvas.centred(100, 60, 256, 256)
    // Evaluated once per 2 x 2 px block, at the block's centre.
    XCTAssertEqual(Double(a.p[60 * 256 + 100]), Canvas.field(terms, ua + 0.5 / 256, va + 0.5 / 256), accuracy: 1e-5)
    XCTAssertEqual(a.p[61 * 256 + 101], a.p[60 * 256 + 100])
  }

  /// gen_2's colour grade on a known colour: saturation about the luma, then the S-curve, then the cast.
  func testColourGradeClosedForm() {
    var c = Canvas(width: 1, height: 1)
    c.p = [0.6, 0.4, 0.3]
    c.colourGrade(saturation: 1.2, contrast: 0.3, warm: 0.05)
    let l: Float = 0.299 * 0.6 + 0.587 * 0.4 + 0.114 * 0.3
    func curve(_ v: Float) -> Float { v + 0.3 * v * (1 - v) * (2 * v - 1) * 1.5 }
    let r = l + (0.6 - l) * 1.2, g = l + (0.4 - l) * 1.2, bl = l + (0.3 - l) * 1.2
    XCTAssertEqual(c.p[0], curve(r) * 1.05, accuracy: 1e-6)
    XCTAssertEqual(c.p[1], curve(g), accuracy: 1e-6)
    XCTAssertEqual(c.p[2], curve(bl) * 0.95, accuracy: 1e-6)
  }

  /// `fingerprint: false` removes the fingerprints, the coarse components included, and
  /// ignores `strength`.
  func testCoarseComponentsAbsentWithoutFingerprint() {
    for k in 0..<4 {
      let img = SyntheticD3.generatedImage(generator: k, seed: 9, index: 0)
      let clean = SyntheticD3.generatedImage(generator: k, seed: 9, index: 0, fingerprint: false)
      XCTAssertEqual(img.width, clean.width); XCTAssertEqual(img.height, clean.height)
      XCTAssertNotEqual(img.pixels, clean.pixels, "gen_\(k)")
    }
    // gen_3 without the fingerprint: the same as rendering with strength 0 (no block shading, no noise).
    var r1 = CounterRNG(seed: 9, epoch: SyntheticD3.epochTag, record: 0, stream: SyntheticD3.genStream + 3)
    var r2 = r1
    let t = Theme(seed: 9, index: 0)
    let a = SyntheticD3.generatedImage(generator: 3, theme: t, rng: &r1, fingerprint: false)
    let b = SyntheticD3.generatedImage(generator: 3, theme: t, rng: &r2, fingerprint: false, strength: 4)
    XCTAssertEqual(a.pixels, b.pixels)
    // gen_0 at strength 0 is its fingerprint-free self (tile and seams scale with strength).
    var g1 = CounterRNG(seed: 9, epoch: SyntheticD3.epochTag, record: 1, stream: SyntheticD3.genStream)
    var g2 = g1
    let t1 = Theme(seed: 9, index: 1)
    let off = SyntheticD3.generatedImage(generator: 0, theme: t1, rng: &g1, fingerprint: false)
    let zero = SyntheticD3.generatedImage(generator: 0, theme: t1, rng: &g2, fingerprint: true, strength: 0)
    XCTAssertEqual(off.pixels, zero.pixels)
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
  /// Checks that every phase did work (time passed in each) and that the rate is records over
  /// the decode and view time.
  func testBenchmarkReport() throws {
    let n = Int(ProcessInfo.processInfo.environment["CDE_BENCH_RECORDS"] ?? "") ?? 2
    let local = Int(ProcessInfo.processInfo.environment["CDE_BENCH_LOCAL"] ?? "") ?? 96
    let r = try ViewBenchmark.run(records: n, spec: ViewSpec(imageSize: 224, localSize: local))
    print(r)
    XCTAssertEqual(r.records, n)
    XCTAssertGreaterThan(r.synthSeconds, 0)
    XCTAssertGreaterThan(r.decodeSeconds, 0)
    XCTAssertGreaterThan(r.viewSeconds, 0)
    XCTAssertEqual(r.recordsPerSecond, Double(n) / (r.decodeSeconds + r.viewSeconds), accuracy: 1e-9 * r.recordsPerSecond)
  }
}

final class SyntheticPreview: XCTestCase {
  /// Writes a few records' files (to CDE_SYNTH_PREVIEW=DIR when set, for looking at them;
  /// otherwise to a temporary directory), then reads them back: each file holds its image's
  /// bytes and decodes to the size the record says.
  func testWritePreview() throws {
    let dir = ProcessInfo.processInfo.environment["CDE_SYNTH_PREVIEW"] ?? temporaryDirectory(self, prefix: "dataset")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var written: [(path: String, image: SyntheticImage)] = []
    for i in 0..<3 {
      let r = SyntheticD3.record(seed: 42, index: i)
      let real = "\(dir)/\(i).real.\(r.real.fileExtension)"
      try r.real.data.write(to: URL(fileURLWithPath: real))
      written.append((real, r.real))
      for (k, g) in r.gens.enumerated() {
        let path = "\(dir)/\(i).gen_\(k).\(g.fileExtension)"
        try g.data.write(to: URL(fileURLWithPath: path))
        written.append((path, g))
      }
      print(i, r.caption)
    }
    XCTAssertEqual(written.count, 15)
    for (path, image) in written {
      let back = try Data(contentsOf: URL(fileURLWithPath: path))
      XCTAssertEqual(back, image.data, path)
      let img = try ImageCodec.decode(back, name: path)
      XCTAssertEqual(img.width, image.width, path)
      XCTAssertEqual(img.height, image.height, path)
    }
  }
}
