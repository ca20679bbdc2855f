import Foundation
import Randomness
import XCTest

@testable import Dataset
@testable import Imaging

final class CounterRNGTests: XCTestCase {
  /// Known-answer vectors of Philox4x32-10 from Random123 (kat_vectors).
  func testPhiloxKnownAnswers() {
    let z = CounterRNG.philox4x32(counter: (0, 0, 0, 0), key: (0, 0))
    XCTAssertTrue(z == (0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8), "\(z)")
    let f = CounterRNG.philox4x32(counter: (.max, .max, .max, .max), key: (.max, .max))
    XCTAssertTrue(f == (0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd), "\(f)")
    let p = CounterRNG.philox4x32(counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
    XCTAssertTrue(p == (0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1), "\(p)")
  }

  func testStreamsAreIndependentAndReproducible() {
    var a = CounterRNG(seed: 42, epoch: 3, record: 7, stream: 2)
    var b = CounterRNG(seed: 42, epoch: 3, record: 7, stream: 2)
    var c = CounterRNG(seed: 42, epoch: 3, record: 7, stream: 3)
    var d = CounterRNG(seed: 42, epoch: 4, record: 7, stream: 2)
    let xa = (0..<5).map { _ in a.nextUInt64() }
    XCTAssertEqual(xa, (0..<5).map { _ in b.nextUInt64() })
    XCTAssertNotEqual(xa, (0..<5).map { _ in c.nextUInt64() })
    XCTAssertNotEqual(xa, (0..<5).map { _ in d.nextUInt64() })
  }

  /// Uniform moments and int(below:) frequencies within 5 standard errors.
  func testDistributions() {
    var r = CounterRNG(seed: 1, epoch: 0, record: 0, stream: 0)
    let n = 200_000
    var s = 0.0, s2 = 0.0, counts = [Int](repeating: 0, count: 5), ns = 0.0, ns2 = 0.0
    for _ in 0..<n {
      let u = r.uniform(); s += u; s2 += u * u
      counts[r.int(below: 5)] += 1
      let z = r.normal(); ns += z; ns2 += z * z
    }
    XCTAssertEqual(s / Double(n), 0.5, accuracy: 5 * (1.0 / 12).squareRoot() / Double(n).squareRoot())
    XCTAssertEqual(s2 / Double(n), 1.0 / 3, accuracy: 0.003)
    for c in counts { XCTAssertEqual(Double(c) / Double(n), 0.2, accuracy: 5 * (0.16 / Double(n)).squareRoot()) }
    XCTAssertEqual(ns / Double(n), 0, accuracy: 5 / Double(n).squareRoot())
    XCTAssertEqual(ns2 / Double(n), 1, accuracy: 0.02)
  }
}

final class ViewPipelineTests: XCTestCase {
  /// RandomResizedCrop: accepted rectangles lie inside the image with area fraction and
  /// aspect ratio in range (up to rounding); the fallback is the closed-form centre crop.
  func testRandomResizedCropRanges() {
    var rng = CounterRNG(seed: 5, epoch: 0, record: 0, stream: 0)
    for t in 0..<2000 {
      let W = 50 + t % 300, H = 40 + (t * 7) % 400
      let local = t % 2 == 0
      let sc = local ? (0.05, 0.4) : (0.4, 1.0)
      let r = randomResizedCropRect(width: W, height: H, scale: sc, ratio: (3.0 / 4, 4.0 / 3), rng: &rng)
      XCTAssert(r.x >= 0 && r.y >= 0 && r.x + r.width <= W && r.y + r.height <= H && r.width > 0 && r.height > 0)
      let frac = Double(r.width * r.height) / Double(W * H)
      let isFallback = r.width == W || r.height == H
      if !isFallback || local {
        // Rounding of w and h moves the area by at most about (w + h + 1) / A.
        let slack = Double(r.width + r.height + 1) / Double(W * H)
        XCTAssert(frac >= sc.0 - slack && frac <= sc.1 + slack, "area fraction \(frac) for \(W)x\(H)")
      }
    }
    // Impossible scale (> 1): ten rejections, then the centre crop clamped to the ratio range.
    var r2 = CounterRNG(seed: 1, epoch: 0, record: 0, stream: 0)
    XCTAssertEqual(randomResizedCropRect(width: 300, height: 100, scale: (2, 3), ratio: (0.75, 4.0 / 3), rng: &r2),
                   PixelRect(x: 83, y: 0, width: 133, height: 100))
    XCTAssertEqual(randomResizedCropRect(width: 100, height: 300, scale: (2, 3), ratio: (0.75, 4.0 / 3), rng: &r2),
                   PixelRect(x: 0, y: 83, width: 100, height: 133))
    XCTAssertEqual(randomResizedCropRect(width: 120, height: 100, scale: (2, 3), ratio: (0.75, 4.0 / 3), rng: &r2),
                   PixelRect(x: 0, y: 0, width: 120, height: 100))
  }

  /// Shuffle: a permutation of int(f N) pixels; the rest unchanged (closed form).
  func testShufflePixelsIsAPartialPermutation() {
    var img = RGBImage(width: 37, height: 29)
    for i in 0..<img.count { img.pixels[3 * i] = UInt8(i & 255); img.pixels[3 * i + 1] = UInt8(i >> 8); img.pixels[3 * i + 2] = 7 }
    var rng = CounterRNG(seed: 3, epoch: 0, record: 0, stream: 0)
    for f in TransformOp.grid(0, 0.35) {
      let out = img.shufflePixels(fraction: f, rng: &rng)
      var changed = 0
      var seen = Set<Int>()
      for i in 0..<img.count {
        let id = Int(out.pixels[3 * i]) | Int(out.pixels[3 * i + 1]) << 8
        XCTAssertTrue(seen.insert(id).inserted, "pixel duplicated")
        if id != i { changed += 1 }
      }
      XCTAssertLessThanOrEqual(changed, Int(f * Double(img.count)))
      if f > 0.1 { XCTAssertGreaterThan(changed, Int(f * Double(img.count)) / 2) }
      if f == 0 { XCTAssertEqual(out, img) }
    }
  }

  /// T: n in {0, 1, 2}, distinct ops in list order, grid values from the grids, all
  /// 19 ops reachable, and n uniform.
  func testTransformDraws() {
    let t = TransformOperator(numTransform: 2)
    let img = RGBImage(width: 20, height: 16, fill: (90, 120, 200))
    var nCount = [0, 0, 0], opSeen = Set<TransformOp>()
    for rec in 0..<1500 {
      var rng = CounterRNG(seed: 9, epoch: 0, record: rec, stream: 2)
      let (_, d) = t.apply(img, rng: &rng)
      nCount[d.ops.count] += 1
      XCTAssertEqual(d.ops, d.ops.sorted { $0.rawValue < $1.rawValue })
      XCTAssertEqual(Set(d.ops).count, d.ops.count)
      for (op, v) in zip(d.ops, d.values) {
        opSeen.insert(op)
        if let (a, b) = op.range {
          if op.isContinuous { XCTAssert(v >= a && v < b, "\(op) \(v)") } else {
            let g = TransformOp.grid(a, b).map { [.jpeg, .resize, .randomCrop].contains(op) ? Double(Int($0)) : $0 }
            XCTAssert(g.contains(v), "\(op) \(v)")
          }
        }
      }
    }
    XCTAssertEqual(opSeen.count, 19)
    for c in nCount { XCTAssertEqual(Double(c) / 1500, 1.0 / 3, accuracy: 0.06) }
  }

  /// The eight views of a record are byte-identical whatever the number of threads.
  func testViewsIdenticalAcrossThreadCounts() throws {
    let spec = ViewSpec(imageSize: 64, localSize: 32)
    let maker = CoDEViewMaker(spec: spec)
    let n = 6
    let recs = (0..<n).map { i -> (RGBImage, RGBImage) in
      let r = SyntheticD3.record(seed: 11, index: i)
      let k = drawGenerator(seed: 11, epoch: 2, record: i)
      return (try! ImageCodec.decode(r.real.data, name: "real"), try! ImageCodec.decode(r.gens[k].data, name: "gen"))
    }
    func run(threads: Int) -> [[Float]] {
      let batch = ViewBatch(records: n, imageSize: spec.imageSize, localSize: spec.localSize)
      if threads == 1 {
        for i in 0..<n { maker.make(real: recs[i].0, fake: recs[i].1, seed: 11, epoch: 2, record: i, into: batch, slot: i) }
      } else {
        DispatchQueue.concurrentPerform(iterations: n) { i in
          maker.make(real: recs[i].0, fake: recs[i].1, seed: 11, epoch: 2, record: i, into: batch, slot: i)
        }
      }
      return CoDEView.allCases.map { v in Array(UnsafeBufferPointer(start: batch.view(v, slot: 0), count: n * batch.sampleCount(v))) }
    }
    let a = run(threads: 1), b = run(threads: 4)
    for v in 0..<8 {
      XCTAssertEqual(a[v].map(\.bitPattern), b[v].map(\.bitPattern), "view \(v)")
    }
    // Views differ across epochs (fresh randomness) but base views do not.
    let batch = ViewBatch(records: 1, imageSize: spec.imageSize, localSize: spec.localSize)
    maker.make(real: recs[0].0, fake: recs[0].1, seed: 11, epoch: 3, record: 0, into: batch, slot: 0)
    let base = Array(UnsafeBufferPointer(start: batch.view(.real, slot: 0), count: batch.sampleCount(.real)))
    XCTAssertEqual(base, Array(a[0][0..<batch.sampleCount(.real)]))
    let local = Array(UnsafeBufferPointer(start: batch.view(.localReal, slot: 0), count: batch.sampleCount(.localReal)))
    XCTAssertNotEqual(local, Array(a[6][0..<batch.sampleCount(.localReal)]))
  }

  func testGeneratorDrawIsUniform() {
    var c = [0, 0, 0, 0]
    for r in 0..<8000 { c[drawGenerator(seed: 42, epoch: 1, record: r)] += 1 }
    for x in c { XCTAssertEqual(Double(x) / 8000, 0.25, accuracy: 0.025) }
  }

  func testDecodeErrorsNameTheInput() {
    XCTAssertThrowsError(try ImageCodec.decode(Data([1, 2, 3, 4, 5]), name: "shard-3/key.real.jpg")) { e in
      XCTAssertTrue("\(e)".hasPrefix("shard-3/key.real.jpg: "), "\(e)")
      XCTAssertFalse("\(e)".contains("\n"))
    }
    XCTAssertThrowsError(try ImageCodec.decode(Data(), name: "empty.png")) { XCTAssertTrue("\($0)".hasPrefix("empty.png: ")) }
    // A truncated JPEG.
    let jpg = try! ImageCodec.encode(RGBImage(width: 16, height: 16, fill: (1, 2, 3)), format: .jpeg, quality: 90)
    XCTAssertThrowsError(try ImageCodec.decode(jpg.prefix(40), name: "cut.jpg")) { XCTAssertTrue("\($0)".hasPrefix("cut.jpg: ")) }
  }
}
