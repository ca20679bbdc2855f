import Kernels
import SafeTensors
import TestSupport
import XCTest

/// Each kernel against PyTorch autograd (fixtures from scripts/fixtures/engine_fixtures.py).
final class KernelParityTests: XCTestCase {
  var f: SafeTensorsFile!
  override func setUpWithError() throws {
    Threads.configure(2)
    f = try SafeTensorsFile(path: fixturePath("Engine", "kernels.safetensors"))
  }
  func t(_ n: String) -> [Float] { try! f.floats(n) }

  func testLinear() {
    let x = t("linear.x"), w = t("linear.w"), b = t("linear.b"), dy = t("linear.dy")
    var y = [Float](repeating: 0, count: 20), dx = [Float](repeating: 0, count: 35)
    var dw = [Float](repeating: 0, count: 28), db = [Float](repeating: 0, count: 4)
    Linear.forward(y: &y, x: x, w: w, b: b, n: 5, inF: 7, outF: 4)
    Linear.backward(dx: &dx, dw: &dw, db: &db, dy: dy, x: x, w: w, n: 5, inF: 7, outF: 4)
    assertClose(y, t("linear.y"), atol: 1e-5, "linear y")
    assertClose(dx, t("linear.dx"), atol: 1e-5, "linear dx")
    assertClose(dw, t("linear.dw"), atol: 1e-5, "linear dw")
    assertClose(db, t("linear.db"), atol: 1e-5, "linear db")
  }

  func testLayerNorm() {
    let x = t("layernorm.x"), w = t("layernorm.w"), b = t("layernorm.b"), dy = t("layernorm.dy")
    var y = [Float](repeating: 0, count: 144), mean = [Float](repeating: 0, count: 6), rstd = mean
    var dx = [Float](repeating: 0, count: 144), dw = [Float](repeating: 0, count: 24), db = dw
    LayerNorm.forward(y: &y, mean: &mean, rstd: &rstd, x: x, w: w, b: b, n: 6, c: 24, eps: 1e-6)
    LayerNorm.backward(dx: &dx, dw: &dw, db: &db, dy: dy, x: x, mean: mean, rstd: rstd, w: w, n: 6, c: 24)
    assertClose(y, t("layernorm.y"), atol: 2e-6, "layernorm y")
    assertClose(dx, t("layernorm.dx"), atol: 1e-5, "layernorm dx")
    assertClose(dw, t("layernorm.dw"), atol: 1e-5, "layernorm dw")
    assertClose(db, t("layernorm.db"), atol: 1e-5, "layernorm db")
  }

  func testGELU() {
    let x = t("gelu.x"), dy = t("gelu.dy")
    var y = [Float](repeating: 0, count: x.count), dx = y
    GELU.forward(y: &y, x: x, count: x.count)
    GELU.backward(dx: &dx, dy: dy, x: x, count: x.count)
    // Relative to the magnitude: erfc's fit has 1.2e-7 fractional error.
    let ry = t("gelu.y"), rdx = t("gelu.dx")
    for i in 0..<x.count {
      XCTAssertEqual(y[i], ry[i], accuracy: 1e-6 * max(1, abs(ry[i])), "gelu(\(x[i]))")
      XCTAssertEqual(dx[i], rdx[i], accuracy: 2e-6 * max(1, abs(rdx[i])), "gelu'(\(x[i]))")
    }
  }

  /// The fused forward that keeps gelu'(x) against the same PyTorch values.
  func testGELUKeepingDerivative() {
    let x = t("gelu.x"), dy = t("gelu.dy")
    var g = [Float](repeating: 0, count: x.count), deriv = g, dx = g
    GELU.forward(g: &g, derivative: &deriv, x: x, count: x.count)
    GELU.backward(dx: &dx, dy: dy, derivative: deriv, count: x.count)
    let ry = t("gelu.y"), rdx = t("gelu.dx")
    for i in 0..<x.count {
      XCTAssertEqual(g[i], ry[i], accuracy: 1e-6 * max(1, abs(ry[i])), "gelu(\(x[i]))")
      XCTAssertEqual(dx[i], rdx[i], accuracy: 2e-6 * max(1, abs(rdx[i])), "gelu'(\(x[i]))")
    }
    // In place (g aliases x), as the model calls it.
    var inPlace = x
    inPlace.withUnsafeMutableBufferPointer { GELU.forward(g: $0.baseAddress!, derivative: &deriv, x: $0.baseAddress!, count: x.count) }
    XCTAssertEqual(inPlace, g)
  }

  /// Class-token attention equals row 0 of the full attention (PyTorch fixture),
  /// and its probabilities equal the first row of every head's probabilities.
  func testAttentionClassQuery() {
    let n = 2, tt = 5, h = 2, hd = 4, d = h * hd
    let qkv = t("attention.qkv"), ref = t("attention.out")
    var out = [Float](repeating: .nan, count: n * d), probs = [Float](repeating: .nan, count: n * h * tt)
    Attention.forwardClassQuery(out: &out, probs: &probs, qkv: qkv, n: n, t: tt, heads: h, headDim: hd)
    for img in 0..<n {
      for c in 0..<d { XCTAssertEqual(out[img * d + c], ref[img * tt * d + c], accuracy: 1e-5, "out[\(img), \(c)]") }
    }
    var full = [Float](repeating: 0, count: n * tt * d), fullP = [Float](repeating: 0, count: n * h * tt * tt)
    Attention.forward(out: &full, probs: &fullP, qkv: qkv, n: n, t: tt, heads: h, headDim: hd)
    for task in 0..<(n * h) {
      for j in 0..<tt { XCTAssertEqual(probs[task * tt + j], fullP[task * tt * tt + j], accuracy: 1e-6) }
    }
  }

  func testAttention() {
    let n = 2, tt = 5, h = 2, hd = 4, d = h * hd
    let qkv = t("attention.qkv"), dout = t("attention.dout")
    var out = [Float](repeating: 0, count: n * tt * d), probs = [Float](repeating: 0, count: n * h * tt * tt)
    var dqkv = [Float](repeating: 0, count: n * tt * 3 * d), scratch = [Float](repeating: 0, count: 8 * tt * tt)
    Attention.forward(out: &out, probs: &probs, qkv: qkv, n: n, t: tt, heads: h, headDim: hd)
    Attention.backward(dqkv: &dqkv, dOut: dout, probs: probs, qkv: qkv, scratch: &scratch, n: n, t: tt, heads: h, headDim: hd)
    assertClose(out, t("attention.out"), atol: 1e-5, "attention out")
    assertClose(dqkv, t("attention.dqkv"), atol: 1e-5, "attention dqkv")
  }

  func testPatchEmbed() {
    let img = t("patch.images"), w = t("patch.w"), b = t("patch.b"), dy = t("patch.dy")
    let rows = 2 * 2 * 3, k = 3 * 16 * 16
    var y = [Float](repeating: 0, count: rows * 8), cols = [Float](repeating: 0, count: rows * k)
    var dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: 8)
    PatchEmbed.forward(out: &y, cols: &cols, images: img, w: w, b: b, n: 2, channels: 3, height: 32, width: 48, patch: 16, dim: 8)
    PatchEmbed.backward(dw: &dw, db: &db, dOut: dy, cols: cols, rows: rows, k: k, dim: 8)
    assertClose(y, t("patch.y"), atol: 1e-4, "patch y")
    assertClose(dw, t("patch.dw"), atol: 1e-4, "patch dw")
    assertClose(db, t("patch.db"), atol: 1e-4, "patch db")
  }

  /// Resampling 14x14 -> (h, w) at the sizes the local views use (6x6 at 96 px,
  /// identity at 224) and a few others, upsampling included. Tolerance 1e-5
  /// absolute on values of order 1: fp32 rounding of the weights and the order of
  /// the separable passes differ from PyTorch (measured error up to 3.4e-6).
  func testPosEmbedResample() {
    let grid = t("posres.grid")
    let d = 3
    let src = Array(grid[d...])  // drop the class-token row
    for (h, w) in [(6, 6), (14, 14), (3, 3), (20, 20), (5, 9), (2, 2)] {
      let r = PosEmbedResampler(oldH: 14, oldW: 14, newH: h, newW: w)
      var y = [Float](repeating: 0, count: h * w * d)
      r.forward(dst: &y, src: src, dim: d)
      let ref = t("posres.\(h)x\(w).y")
      assertClose(y, Array(ref[d...]), atol: 1e-5, "resample \(h)x\(w)")
      XCTAssertEqual(Array(ref[0..<d]), Array(grid[0..<d]), "class-token row is passed through")
      let dy = t("posres.\(h)x\(w).dy")
      var dsrc = [Float](repeating: 0, count: 196 * d)
      r.backward(dSrc: &dsrc, dDst: Array(dy[d...]), dim: d)
      assertClose(dsrc, Array(t("posres.\(h)x\(w).dgrid")[d...]), atol: 1e-5, "resample \(h)x\(w) backward")
    }
  }
}
