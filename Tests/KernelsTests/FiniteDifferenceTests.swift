import Kernels
import Randomness
import TestSupport
import XCTest

/// Finite-difference checks of every kernel's backward pass.
///
/// For a random upstream gradient `dy`, the scalar `L(x) = sum(f(x) * dy)` has
/// gradient `dL/dx` = the kernel's backward output. Each check compares that with
/// the central difference `(L(x + h e_i) - L(x - h e_i)) / 2h` on sampled
/// coordinates; tolerance `2e-2 * max(1, |g|)` absolute covers fp32 rounding
/// at `h = 1e-2`.
final class FiniteDifferenceTests: XCTestCase {
  /// Seeded (a new test object per test method, so each test replays its own draws).
  var rng = SplitMix64(seed: 2024)
  func randn(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in Float.random(in: -1...1, using: &rng) * scale } }

  /// `forward(x) -> y` for the input being varied, `analytic` = backward's gradient for it.
  func check(_ name: String, x: [Float], analytic: [Float], dy: [Float], samples: Int = 24, h: Float = 1e-2,
             forward: ([Float]) -> [Float]) {
    XCTAssertEqual(x.count, analytic.count, name)
    func loss(_ v: [Float]) -> Double {
      let y = forward(v)
      var s = 0.0
      for i in 0..<y.count { s += Double(y[i]) * Double(dy[i]) }
      return s
    }
    let idx = x.count <= samples ? Array(0..<x.count) : (0..<samples).map { _ in Int.random(in: 0..<x.count, using: &rng) }
    for i in idx {
      var xp = x, xm = x
      xp[i] += h; xm[i] -= h
      let num = (loss(xp) - loss(xm)) / Double(2 * h)
      XCTAssertEqual(Double(analytic[i]), num, accuracy: 2e-2 * max(1, abs(num)), "\(name)[\(i)]")
    }
  }

  override func setUp() { Threads.configure(1) }

  func testLinear() {
    let n = 4, i = 6, o = 5
    let x = randn(n * i), w = randn(o * i), b = randn(o), dy = randn(n * o)
    var dx = [Float](repeating: 0, count: n * i), dw = [Float](repeating: 0, count: o * i), db = [Float](repeating: 0, count: o)
    Linear.backward(dx: &dx, dw: &dw, db: &db, dy: dy, x: x, w: w, n: n, inF: i, outF: o)
    func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
      var y = [Float](repeating: 0, count: n * o)
      Linear.forward(y: &y, x: x, w: w, b: b, n: n, inF: i, outF: o)
      return y
    }
    check("linear dx", x: x, analytic: dx, dy: dy) { f($0, w, b) }
    check("linear dw", x: w, analytic: dw, dy: dy) { f(x, $0, b) }
    check("linear db", x: b, analytic: db, dy: dy) { f(x, w, $0) }
  }

  func testLayerNorm() {
    let n = 3, c = 16
    let x = randn(n * c, scale: 2), w = randn(c), b = randn(c), dy = randn(n * c)
    func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> ([Float], [Float], [Float]) {
      var y = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), r = m
      LayerNorm.forward(y: &y, mean: &m, rstd: &r, x: x, w: w, b: b, n: n, c: c, eps: 1e-6)
      return (y, m, r)
    }
    let (_, m, r) = f(x, w, b)
    var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c), db = dw
    LayerNorm.backward(dx: &dx, dw: &dw, db: &db, dy: dy, x: x, mean: m, rstd: r, w: w, n: n, c: c)
    check("layernorm dx", x: x, analytic: dx, dy: dy, h: 5e-3) { f($0, w, b).0 }
    check("layernorm dw", x: w, analytic: dw, dy: dy) { f(x, $0, b).0 }
    check("layernorm db", x: b, analytic: db, dy: dy) { f(x, w, $0).0 }
  }

  func testGELU() {
    let x = randn(64, scale: 4), dy = randn(64)
    var dx = [Float](repeating: 0, count: 64)
    GELU.backward(dx: &dx, dy: dy, x: x, count: 64)
    check("gelu", x: x, analytic: dx, dy: dy, samples: 64) { v in
      var y = [Float](repeating: 0, count: 64)
      GELU.forward(y: &y, x: v, count: 64)
      return y
    }
  }

  func testAttention() {
    let n = 2, t = 7, h = 3, hd = 4, d = h * hd
    let qkv = randn(n * t * 3 * d), dy = randn(n * t * d)
    func f(_ q: [Float]) -> ([Float], [Float]) {
      var out = [Float](repeating: 0, count: n * t * d), p = [Float](repeating: 0, count: n * h * t * t)
      Attention.forward(out: &out, probs: &p, qkv: q, n: n, t: t, heads: h, headDim: hd)
      return (out, p)
    }
    let (_, p) = f(qkv)
    var dq = [Float](repeating: 0, count: qkv.count), scratch = [Float](repeating: 0, count: 4 * t * t)
    Attention.backward(dqkv: &dq, dOut: dy, probs: p, qkv: qkv, scratch: &scratch, n: n, t: t, heads: h, headDim: hd)
    check("attention dqkv", x: qkv, analytic: dq, dy: dy, samples: 48) { f($0).0 }
  }

  func testGELUKeepingDerivative() {
    let x = randn(64, scale: 4), dy = randn(64)
    var g = [Float](repeating: 0, count: 64), deriv = g, dx = g
    GELU.forward(g: &g, derivative: &deriv, x: x, count: 64)
    GELU.backward(dx: &dx, dy: dy, derivative: deriv, count: 64)
    check("gelu (kept derivative)", x: x, analytic: dx, dy: dy, samples: 64) { v in
      var y = [Float](repeating: 0, count: 64), dd = y
      GELU.forward(g: &y, derivative: &dd, x: v, count: 64)
      return y
    }
  }

  /// Class-query attention: gradient for every query, key and value entry
  /// (the query rows other than the class token must get exactly zero).
  func testAttentionClassQuery() {
    let n = 2, t = 7, h = 3, hd = 4, d = h * hd
    let qkv = randn(n * t * 3 * d), dy = randn(n * d)
    func f(_ q: [Float]) -> ([Float], [Float]) {
      var out = [Float](repeating: 0, count: n * d), p = [Float](repeating: 0, count: n * h * t)
      Attention.forwardClassQuery(out: &out, probs: &p, qkv: q, n: n, t: t, heads: h, headDim: hd)
      return (out, p)
    }
    let (_, p) = f(qkv)
    var dq = [Float](repeating: .nan, count: qkv.count), scratch = [Float](repeating: .nan, count: 4 * t)
    Attention.backwardClassQuery(dqkv: &dq, dOut: dy, probs: p, qkv: qkv, scratch: &scratch, n: n, t: t, heads: h, headDim: hd)
    check("attention class-query dqkv", x: qkv, analytic: dq, dy: dy, samples: 64) { f($0).0 }
    for img in 0..<n {
      for r in 1..<t {
        for c in 0..<d { XCTAssertEqual(dq[(img * t + r) * 3 * d + c], 0, "query row \(r) gets no gradient") }
      }
    }
  }

  func testPatchEmbed() {
    let n = 2, c = 3, hh = 32, ww = 16, p = 16, d = 5, rows = n * 2, k = c * p * p
    let img = randn(n * c * hh * ww), w = randn(d * k, scale: 0.1), b = randn(d), dy = randn(rows * d)
    func f(_ w: [Float], _ b: [Float]) -> ([Float], [Float]) {
      var y = [Float](repeating: 0, count: rows * d), cols = [Float](repeating: 0, count: rows * k)
      PatchEmbed.forward(out: &y, cols: &cols, images: img, w: w, b: b, n: n, channels: c, height: hh, width: ww, patch: p, dim: d)
      return (y, cols)
    }
    let (_, cols) = f(w, b)
    var dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: d)
    PatchEmbed.backward(dw: &dw, db: &db, dOut: dy, cols: cols, rows: rows, k: k, dim: d)
    check("patch dw", x: w, analytic: dw, dy: dy) { f($0, b).0 }
    check("patch db", x: b, analytic: db, dy: dy) { f(w, $0).0 }
  }

  func testPosEmbedResample() {
    let d = 2
    for (h, w) in [(6, 6), (3, 5), (9, 9)] {
      let r = PosEmbedResampler(oldH: 7, oldW: 7, newH: h, newW: w)
      let src = randn(49 * d), dy = randn(h * w * d)
      var ds = [Float](repeating: 0, count: src.count)
      r.backward(dSrc: &ds, dDst: dy, dim: d)
      check("resample \(h)x\(w)", x: src, analytic: ds, dy: dy) { s in
        var y = [Float](repeating: 0, count: h * w * d)
        r.forward(dst: &y, src: s, dim: d)
        return y
      }
    }
  }

  func testTokensAndResidual() {
    let n = 2, g = 4, d = 3, t = g + 1
    let patches = randn(n * g * d), cls = randn(d), pos0 = randn(d), grid = randn(g * d), dy = randn(n * t * d)
    func f(_ pa: [Float], _ c: [Float], _ p0: [Float], _ gr: [Float]) -> [Float] {
      var x = [Float](repeating: 0, count: n * t * d)
      Tokens.assemble(x: &x, patches: pa, cls: c, pos0: p0, posGrid: gr, n: n, grid: g, dim: d)
      return x
    }
    var dp = [Float](repeating: 0, count: patches.count), dc = [Float](repeating: 0, count: d), dp0 = dc
    var dg = [Float](repeating: 0, count: g * d)
    Tokens.backward(dPatches: &dp, dCls: &dc, dPos0: &dp0, dPosGrid: &dg, dx: dy, n: n, grid: g, dim: d)
    check("tokens patches", x: patches, analytic: dp, dy: dy) { f($0, cls, pos0, grid) }
    check("tokens cls", x: cls, analytic: dc, dy: dy) { f(patches, $0, pos0, grid) }
    check("tokens pos0", x: pos0, analytic: dp0, dy: dy) { f(patches, cls, $0, grid) }
    check("tokens grid", x: grid, analytic: dg, dy: dy) { f(patches, cls, pos0, $0) }
  }
}

/// The vectorised exp against libm, and determinism across thread counts.
final class VectorMathTests: XCTestCase {
  func testExpAccuracy() {
    var worst: Float = 0
    var x: Float = -80
    while x < 80 {
      let e = scalarExp(x), r = Float(Foundation.exp(Double(x)))
      worst = max(worst, abs(e - r) / r)
      x += 0.0137
    }
    XCTAssertLessThan(worst, 4e-7, "relative error of vexp")
  }

  /// A row of `Linear` output and input gradient is the same number whatever
  /// the batch size (OpenBLAS rounds small problems differently; `sgemmRows` pads them).
  func testLinearRowsDoNotDependOnBatchSize() {
    let i = 32, o = 32, big = 100
    let x = (0..<(big * i)).map { Float(sin(Double($0) * 0.37)) }, w = (0..<(o * i)).map { Float(cos(Double($0) * 0.11)) }
    let b = (0..<o).map { Float($0) * 0.01 }, dy = (0..<(big * o)).map { Float(sin(Double($0) * 0.23)) }
    func run(_ n: Int) -> ([Float], [Float]) {
      var y = [Float](repeating: 0, count: n * o), dx = [Float](repeating: 0, count: n * i)
      var dw = [Float](repeating: 0, count: o * i), db = [Float](repeating: 0, count: o)
      Linear.forward(y: &y, x: Array(x[0..<(n * i)]), w: w, b: b, n: n, inF: i, outF: o)
      Linear.backward(dx: &dx, dw: &dw, db: &db, dy: Array(dy[0..<(n * o)]), x: Array(x[0..<(n * i)]), w: w, n: n, inF: i, outF: o)
      return (y, dx)
    }
    Threads.configure(1)
    let (yBig, dxBig) = run(big)
    for n in [1, 3, 6, 24, 40] {
      let (y, dx) = run(n)
      XCTAssertEqual(y, Array(yBig[0..<(n * o)]), "y rows, batch \(n)")
      XCTAssertEqual(dx, Array(dxBig[0..<(n * i)]), "dx rows, batch \(n)")
    }
  }

  func testGEMMSplitIsThreadCountIndependent() {
    let m = 200, n = 96, k = 130
    let a = (0..<(m * k)).map { Float(sin(Double($0))) }, b = (0..<(k * n)).map { Float(cos(Double($0) * 0.7)) }
    var c1 = [Float](repeating: 0, count: m * n), c2 = c1
    Threads.configure(1)
    sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c1, ldc: n)
    Threads.configure(2)
    sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c2, ldc: n)
    Threads.configure(1)
    XCTAssertEqual(c1, c2)
  }
}
import Foundation

/// The register-tiled attention path (head width 64) against a direct
/// double-precision evaluation of the same formulas, under each copy of the ISA kernels this
/// CPU runs (the build's copy runs the heads on cde's GEMM kernel where the CPU has AVX2 and FMA).
final class AttentionTilesTests: XCTestCase {
  func testHeadWidth64MatchesDoublePrecision() {
    let n = 2, t = 37, h = 2, hd = 64, d = h * hd
    var rng = SplitMix64(seed: 37)
    let qkv = (0..<(n * t * 3 * d)).map { _ in Float.random(in: -1...1, using: &rng) }
    let dOut = (0..<(n * t * d)).map { _ in Float.random(in: -1...1, using: &rng) }
    let before = KernelISA.active
    defer { KernelISA.select(before) }
    let copies: [KernelISA] = [.build] + (KernelISA.resolve(.avx512, flags: BLASRuntime.cpuFlags()).map { [$0] } ?? [])
    for (isa, threads) in copies.flatMap({ c in [1, 2].map { (c, $0) } }) {
      KernelISA.select(isa)
      Threads.configure(threads)
      var out = [Float](repeating: .nan, count: n * t * d)
      var probs = [Float](repeating: .nan, count: Attention.probsCount(n: n, t: t, heads: h, headDim: hd))
      let tp = probs.count / (n * h * t)
      XCTAssertGreaterThanOrEqual(tp, t)
      var dqkv = [Float](repeating: .nan, count: qkv.count)
      var scratch = [Float](repeating: .nan, count: threads * Attention.scratchCount(t: t, heads: h, headDim: hd))
      Attention.forward(out: &out, probs: &probs, qkv: qkv, n: n, t: t, heads: h, headDim: hd, scratch: &scratch)
      Attention.backward(dqkv: &dqkv, dOut: dOut, probs: probs, qkv: qkv, scratch: &scratch, n: n, t: t, heads: h, headDim: hd)
      let scale = 1 / Double(hd).squareRoot()
      var worst = 0.0
      for img in 0..<n {
        for head in 0..<h {
          func q(_ i: Int, _ c: Int) -> Double { Double(qkv[(img * t + i) * 3 * d + head * hd + c]) }
          func k(_ i: Int, _ c: Int) -> Double { Double(qkv[(img * t + i) * 3 * d + d + head * hd + c]) }
          func v(_ i: Int, _ c: Int) -> Double { Double(qkv[(img * t + i) * 3 * d + 2 * d + head * hd + c]) }
          func g(_ i: Int, _ c: Int) -> Double { Double(dOut[(img * t + i) * d + head * hd + c]) }
          var p = [[Double]](repeating: [Double](repeating: 0, count: t), count: t)
          for i in 0..<t {
            let s = (0..<t).map { j in scale * (0..<hd).reduce(0.0) { $0 + q(i, $1) * k(j, $1) } }
            let mx = s.max()!
            let e = s.map { Foundation.exp($0 - mx) }
            let z = e.reduce(0, +)
            p[i] = e.map { $0 / z }
          }
          var ds = p
          for i in 0..<t {
            let dp = (0..<t).map { j in (0..<hd).reduce(0.0) { $0 + g(i, $1) * v(j, $1) } }
            let dot = (0..<t).reduce(0.0) { $0 + dp[$1] * p[i][$1] }
            for j in 0..<t { ds[i][j] = scale * p[i][j] * (dp[j] - dot) }
          }
          for i in 0..<t {
            for j in 0..<t { worst = max(worst, abs(Double(probs[((img * h + head) * t + i) * tp + j]) - p[i][j])) }
            for c in 0..<hd {
              let o = (0..<t).reduce(0.0) { $0 + p[i][$1] * v($1, c) }
              let dq = (0..<t).reduce(0.0) { $0 + ds[i][$1] * k($1, c) }
              let dk = (0..<t).reduce(0.0) { $0 + ds[$1][i] * q($1, c) }
              let dv = (0..<t).reduce(0.0) { $0 + p[$1][i] * g($1, c) }
              let row = (img * t + i) * 3 * d + head * hd + c
              worst = max(worst, abs(Double(out[(img * t + i) * d + head * hd + c]) - o))
              worst = max(worst, abs(Double(dqkv[row]) - dq), abs(Double(dqkv[row + d]) - dk), abs(Double(dqkv[row + 2 * d]) - dv))
            }
          }
        }
      }
      XCTAssertLessThan(worst, 2e-5, "\(isa), threads \(threads)")
    }
    Threads.configure(1)
  }
}
