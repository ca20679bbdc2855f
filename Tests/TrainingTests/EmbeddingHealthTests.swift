import Foundation
import Randomness
import XCTest
import ViT
@testable import Training
@testable import TrainingRun

/// The health figures against closed forms on constructed embeddings, the loss terms
/// against a direct InfoNCE, the gradient norms against sums of squares of a constructed
/// gradient, and the plateau rule on a constructed sequence of logs.
final class EmbeddingHealthTests: XCTestCase {
  func normal(_ n: Int, seed: UInt64) -> [Float] {
    var r = SplitMix64(seed: seed)
    return (0..<n).map { _ in Float(r.normal()) }
  }

  func meter(real: [Float], fake: [Float], d: Int) -> EmbeddingHealthMeter.Figures {
    let m = EmbeddingHealthMeter()
    m.reset(dimension: d)
    real.withUnsafeBufferPointer { m.add($0.baseAddress!, rows: real.count / d, real: true) }
    fake.withUnsafeBufferPointer { m.add($0.baseAddress!, rows: fake.count / d, real: false) }
    return m.figures()
  }

  /// Runs the loss on one rank (B = G) with every view's embeddings given.
  func loss(_ v: [[Float]], g: Int, d: Int, perm: [Int]) -> CoDELoss.Value {
    let l = CoDELoss(temperature: 0.1)
    let p = v.map { _ in UnsafeMutablePointer<Float>.allocate(capacity: g * d) }
    defer { p.forEach { $0.deallocate() } }
    for i in 0..<8 { p[i].initialize(from: v[i], count: g * d) }
    let dp = (0..<8).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: g * d) }
    defer { dp.forEach { $0.deallocate() } }
    let r = l.compute(
      queries: .init(real: p[0], fake: p[1], localReal: p[6], localFake: p[7]),
      keys: .init(augReal: p[2], augFake: p[3], globalReal: p[4], globalFake: p[5]),
      local: g, global: g, offset: 0, dim: d, perm: perm,
      dQueries: .init(real: dp[0], fake: dp[1], localReal: dp[6], localFake: dp[7]),
      dKeys: .init(augReal: dp[2], augFake: dp[3], globalReal: dp[4], globalFake: dp[5]))
    return r
  }

  /// All embeddings equal: mean cosine 1, centroid cosine 1, dim std 0, and every InfoNCE
  /// term at ln(1 + G) (one positive and G negatives, all logits equal).
  func testConstantEmbeddingIsTheCollapseValue() {
    let g = 6, d = 16
    let x = normal(d, seed: 7)
    let rows = (0..<g).flatMap { _ in x }
    // Different raw scales of the same direction normalise to the same vector.
    let scaled = (0..<g).flatMap { i in x.map { $0 * Float(1 + i) } }
    let views = [rows, scaled, rows, scaled, rows, rows, scaled, rows]
    let v = loss(views, g: g, d: d, perm: derangement(g, seed: 3))
    let c = CoDELoss.collapseValue(globalBatch: g)
    XCTAssertEqual(c, log(7.0), accuracy: 1e-15)
    // The loss normalises into Float rows: logits z.z / t = 10 are equal to about 1e-6.
    for (name, t) in zip(CoDELoss.LossTerms.names, v.terms.values) { XCTAssertEqual(t, c, accuracy: 5e-6, name) }
    XCTAssertEqual(v.total, 2 * c, accuracy: 1e-5)
    let f = meter(real: rows + scaled, fake: scaled + rows, d: d)
    XCTAssertEqual(f.meanCos, 1, accuracy: 1e-12)
    XCTAssertEqual(f.centroidCos, 1, accuracy: 1e-12)
    XCTAssertEqual(f.dimStd, 0, accuracy: 1e-7)
    let r = CoDEStep.Result(loss: v.total, lossReal: v.real, lossFake: v.fake, terms: v.terms)
    let m = CoDEStep.lossMetrics(r, globalBatch: g)
    XCTAssertEqual(m["loss_collapse"]!, c, accuracy: 1e-15)
    XCTAssertEqual(m["loss_collapse_ratio"]!, 1, accuracy: 5e-6)
  }

  /// Real = +u, fake = -u (any positive scales): centroid cosine -1; of the n (n - 1)
  /// ordered pairs, n (n/2 - 1) are of one class (cosine 1) and n^2/2 across (-1), so the
  /// mean cosine is -1 / (n - 1); per dimension the values are +-u_c with mean 0, so the
  /// std is |u_c| and dim std is mean_c |u_c|.
  func testOppositeClusters() {
    let d = 12, half = 5
    let raw = normal(d, seed: 11)
    let norm = raw.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
    let u = raw.map { Double($0) / norm }
    let real = (0..<half).flatMap { i in raw.map { $0 * Float(0.5 + Double(i)) } }
    let fake = (0..<half).flatMap { i in raw.map { -$0 * Float(2 + Double(i)) } }
    let f = meter(real: real, fake: fake, d: d)
    XCTAssertEqual(f.centroidCos, -1, accuracy: 1e-12)
    XCTAssertEqual(f.meanCos, -1 / Double(2 * half - 1), accuracy: 1e-12)
    XCTAssertEqual(f.dimStd, u.map(abs).reduce(0, +) / Double(d), accuracy: 1e-7)
  }

  /// Rows e_0, e_1 (real) and e_2, e_3 (fake) in 4 dimensions: each dimension holds one 1
  /// and three 0s, std sqrt(1/4 - 1/16) = sqrt(3)/4; orthogonal rows, mean cosine 0;
  /// centroids e_0 + e_1 and e_2 + e_3 are orthogonal, centroid cosine 0.
  func testDimStdOfBasisVectors() {
    let e: [[Float]] = (0..<4).map { k in (0..<4).map { $0 == k ? 3 : 0 } }
    let f = meter(real: e[0] + e[1], fake: e[2] + e[3], d: 4)
    XCTAssertEqual(f.dimStd, 3.0.squareRoot() / 4, accuracy: 1e-12)
    XCTAssertEqual(f.meanCos, 0, accuracy: 1e-15)
    XCTAssertEqual(f.centroidCos, 0, accuracy: 1e-15)
  }

  /// Random rows: the figures against direct formulas (every pair, centroids of the
  /// normalised rows, per-dimension std from the deviations).
  func testRandomRowsAgainstDirectFormulas() {
    let d = 9, nr = 7, nf = 4
    let real = normal(nr * d, seed: 21).map { $0 + 0.7 }, fake = normal(nf * d, seed: 22)
    let f = meter(real: real, fake: fake, d: d)
    func z(_ x: [Float], _ i: Int) -> [Double] {
      let r = (0..<d).map { Double(x[i * d + $0]) }
      let n = r.map { $0 * $0 }.reduce(0, +).squareRoot()
      return r.map { $0 / n }
    }
    let zs = (0..<nr).map { z(real, $0) } + (0..<nf).map { z(fake, $0) }
    let n = zs.count
    var pairs = 0.0
    for i in 0..<n { for j in 0..<n where i != j { pairs += zip(zs[i], zs[j]).map(*).reduce(0, +) } }
    XCTAssertEqual(f.meanCos, pairs / Double(n * (n - 1)), accuracy: 1e-12)
    let cr = (0..<d).map { c in zs[0..<nr].map { $0[c] }.reduce(0, +) / Double(nr) }
    let cf = (0..<d).map { c in zs[nr...].map { $0[c] }.reduce(0, +) / Double(nf) }
    let dot = zip(cr, cf).map(*).reduce(0, +)
    let cos = dot / (cr.map { $0 * $0 }.reduce(0, +).squareRoot() * cf.map { $0 * $0 }.reduce(0, +).squareRoot())
    XCTAssertEqual(f.centroidCos, cos, accuracy: 1e-12)
    var std = 0.0
    for c in 0..<d {
      let mean = zs.map { $0[c] }.reduce(0, +) / Double(n)
      std += (zs.map { ($0[c] - mean) * ($0[c] - mean) }.reduce(0, +) / Double(n)).squareRoot()
    }
    XCTAssertEqual(f.dimStd, std / Double(d), accuracy: 1e-12)
  }

  /// The four terms of random embeddings against InfoNCE written out directly (double
  /// precision, every query against its positive and the G negatives), and their split:
  /// L_real = (global_real + multiscale_real) / 2, L_fake likewise.
  func testLossTermsAgainstDirectInfoNCE() {
    let g = 5, d = 8
    let views = (0..<8).map { normal(g * d, seed: 100 + UInt64($0)) }
    let perm = derangement(g, seed: 9)
    let v = loss(views, g: g, d: d, perm: perm)
    func z(_ x: [Float], _ i: Int) -> [Double] {
      let r = (0..<d).map { Double(x[i * d + $0]) }
      let n = r.map { $0 * $0 }.reduce(0, +).squareRoot()
      return r.map { $0 / n }
    }
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }
    func infoNCE(_ q: [Float], _ p: [Float], _ rows: [Int], _ neg: [Float]) -> Double {
      var s = 0.0
      for i in 0..<g {
        let pos = exp(dot(z(q, i), z(p, rows[i])) / 0.1)
        let negs = (0..<g).map { exp(dot(z(q, i), z(neg, $0)) / 0.1) }.reduce(0, +)
        s += -log(pos / (pos + negs))
      }
      return s / Double(g)
    }
    let direct = Array(0..<g)
    // Views: 0 real, 1 fake, 2 aug_real, 3 aug_fake, 4 global_real, 5 global_fake, 6 local_real, 7 local_fake.
    let want = [infoNCE(views[0], views[2], perm, views[3]), infoNCE(views[1], views[3], perm, views[2]),
                infoNCE(views[6], views[4], direct, views[5]), infoNCE(views[7], views[5], direct, views[4])]
    for (k, (got, ref)) in zip(v.terms.values, want).enumerated() {
      XCTAssertEqual(got, ref, accuracy: 1e-5 * ref, CoDELoss.LossTerms.names[k])
    }
    XCTAssertEqual((v.terms.globalReal + v.terms.multiscaleReal) / 2, v.real, accuracy: 1e-12)
    XCTAssertEqual((v.terms.globalFake + v.terms.multiscaleFake) / 2, v.fake, accuracy: 1e-12)
  }

  /// A gradient holding k + 1 in every entry of block k, 0.5 in the patch embedding group and
  /// 2 in the final norm: each group's norm is value * sqrt(entries).
  func testGradientNormsPerBlock() throws {
    let cfg = ViTConfig(width: 8, depth: 3, heads: 2, mlpRatio: 2, patch: 4, imageSize: 8)
    let layout = ParameterLayout(config: cfg)
    let g = [Float](unsafeUninitializedCapacity: layout.total) { buf, n in
      for e in layout.entries {
        let v: Float = e.name.hasPrefix("blocks.") ? Float(Int(String(e.name.split(separator: ".")[1]))! + 1)
          : (e.name.hasPrefix("norm.") ? 2 : 0.5)
        for i in 0..<e.count { buf[e.offset + i] = v }
      }
      n = layout.total
    }
    let norms = GradientNorms(layout: layout, depth: 3)
    XCTAssertEqual(norms.names, ["grad_norm_patch_embed", "grad_norm_block_0", "grad_norm_block_1", "grad_norm_block_2",
                                 "grad_norm_final_norm", "grad_norm"])
    let got = g.withUnsafeBufferPointer { norms.measure($0.baseAddress!) }
    let block = layout.entries.filter { $0.name.hasPrefix("blocks.0.") }.map(\.count).reduce(0, +)
    let embed = layout.entries.filter { !$0.name.hasPrefix("blocks.") && !$0.name.hasPrefix("norm.") }.map(\.count).reduce(0, +)
    XCTAssertEqual(embed, 1 * 8 + 5 * 8 + 8 * 3 * 16 + 8)  // cls, pos (1 + 2x2 tokens), patch weight, patch bias
    let want = [0.5 * Double(embed).squareRoot()] + (1...3).map { Double($0) * Double(block).squareRoot() } + [2 * 4.0]
    for (a, b) in zip(got, want) { XCTAssertEqual(a, b, accuracy: 1e-9 * b) }
    XCTAssertEqual(got.last!, want.map { $0 * $0 }.reduce(0, +).squareRoot(), accuracy: 1e-9)
    var params = [Float](repeating: 0, count: layout.total)
    for i in 0..<8 { params[layout.offset("norm.weight") + i] = Float(i) }
    let lnw = params.withUnsafeBufferPointer { GradientNorms.finalNormWeightNorm(params: $0.baseAddress!, layout: layout) }
    XCTAssertEqual(lnw, (0..<8).map { Double($0 * $0) }.reduce(0, +).squareRoot(), accuracy: 1e-12)
  }

  /// The plateau rule: a warning at the third consecutive log on the plateau, none for the
  /// rest of the episode (also not for logs in the margin between the entry and exit
  /// thresholds), a new episode only after a log below an exit threshold.
  func testPlateauWarnsOncePerEpisode() {
    var p = PlateauDetector()
    func log(_ step: Int, _ ratio: Double, _ cos: Double) -> Bool {
      p.observe(step: step, metrics: ["loss": 6.9 * ratio, "loss_collapse": 3.45, "loss_collapse_ratio": ratio, "emb_mean_cos": cos]) != nil
    }
    // (ratio, cos) per log and whether it warns.
    let seq: [(Double, Double, Bool)] = [
      (0.99, 0.99, false), (0.99, 0.99, false), (0.99, 0.90, false),  // cos too low: the count restarts
      (0.99, 0.99, false), (0.98, 0.97, false), (0.99, 0.98, true),   // third in a row: episode 1
      (0.99, 0.99, false), (0.96, 0.93, false), (0.99, 0.99, false),  // margin: still in episode 1
      (0.99, 0.99, false), (0.94, 0.99, false),                       // leaves (ratio < 0.95)
      (0.99, 0.99, false), (.nan, 0.99, false),                       // NaN: not on the plateau
      (0.99, 0.99, false), (0.99, 0.99, false), (0.99, 0.99, true),   // episode 2
      (0.99, 0.85, false), (0.99, 0.99, false), (0.99, 0.99, false), (0.99, 0.99, true),  // left via cos; episode 3
    ]
    for (i, s) in seq.enumerated() { XCTAssertEqual(log(25 * (i + 1), s.0, s.1), s.2, "log \(i)") }
    XCTAssertEqual(p.episodes, 3)
    let w = PlateauDetector.message(step: 150, firstStep: 100, logs: 3, metrics: [
      "loss": 6.98, "loss_collapse": 3.4965, "loss_collapse_ratio": 0.998, "emb_mean_cos": 0.999,
      "loss_global_real": 3.4965, "loss_global_fake": 3.4965, "loss_multiscale_real": 3.49, "loss_multiscale_fake": 3.48,
      "emb_centroid_cos": 0.9999, "emb_dim_std": 0.002])
    XCTAssertTrue(w.hasPrefix("warning: collapse plateau: 3 consecutive logs (steps 100-150) with loss 6.9800 = 0.998 x 2 ln(1+G)"), w)
    XCTAssertFalse(w.contains("\n"))
  }
}
