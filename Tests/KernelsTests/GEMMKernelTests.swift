import CBLAS
import CGEMM
import Foundation
import XCTest
@testable import Kernels

/// cde's AVX2 sgemm kernel (Sources/CGEMM): each element is exactly the chain of fused
/// multiply-adds its contract states (bit for bit, against the same chain written here with
/// `Float.addingProduct`), the chain is the product (against a double-precision loop), rows and
/// columns do not depend on the call around them, and `sgemm` routes the kernel's classes to it.
final class GEMMKernelTests: XCTestCase {
  override func setUpWithError() throws {
    try XCTSkipUnless(GEMMBackend.kernelAvailable, "the CPU lacks AVX2 or FMA")
  }

  override func tearDown() {
    GEMMBackend.install(GEMMPlan())
    Threads.configure(1)
  }

  /// The contract's chain for element (i, j): `s = start; s = fma(op(A)[i,p], op(B)[p,j], s)`
  /// for p = 0, 1, ..., k-1; then `alpha * s` when alpha is not 1.
  func chain(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
             b: UnsafePointer<Float>, ldb: Int, beta: Float, c0: [Float], ldc: Int, bias: [Float]?) -> [Float] {
    var out = c0
    for i in 0..<m {
      for j in 0..<n {
        var s: Float = beta == 0 ? (bias?[j] ?? 0) : beta == 1 ? c0[i * ldc + j] : beta * c0[i * ldc + j]
        for p in 0..<k {
          let x = transA ? a[p * lda + i] : a[i * lda + p]
          let y = transB ? b[j * ldb + p] : b[p * ldb + j]
          s = s.addingProduct(x, y)
        }
        out[i * ldc + j] = alpha == 1 ? s : alpha * s
      }
    }
    return out
  }

  /// Shapes with tails in every direction, one k block (k <= 384), several (k <= 1024: op(B)
  /// packed for all of k), and k blocked with C revisited (k > 1024); leading dimensions wider
  /// than the matrices; each start (0, C, beta * C, bias) and a scaled product.
  func testEveryElementIsItsFMAChain() {
    let cases: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (6, 16, 8), (13, 37, 5), (25, 50, 300), (7, 200, 700), (19, 21, 1100)]
    var checked = 0
    for (m, n, k) in cases {
      for transA in [false, true] {
        for transB in [false, true] {
          let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 2
          let a = randomMatrix((transA ? k : m) * lda, seed: 21), b = randomMatrix((transB ? n : k) * ldb, seed: 22)
          defer { a.deallocate(); b.deallocate() }
          let cInit = (0..<(m * ldc)).map { Float(($0 * 7919) % 201) / 100 - 1 }
          let bias = (0..<n).map { Float(($0 * 131) % 17) / 8 - 1 }
          for (alpha, beta, withBias) in [(Float(1), Float(0), false), (1, 1, false), (1, 0.5, false), (1, 0, true), (0.125, 0, false)] {
            let want = chain(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                             beta: beta, c0: cInit, ldc: ldc, bias: withBias ? bias : nil)
            var got = cInit
            let st = got.withUnsafeMutableBufferPointer { cp in
              bias.withUnsafeBufferPointer { bp in
                cde_sgemm_avx2(transA ? 1 : 0, transB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb),
                               beta, cp.baseAddress!, Int64(ldc), withBias ? bp.baseAddress! : nil)
              }
            }
            XCTAssertEqual(st, 0)
            let label = "\(transA ? "T" : "N")\(transB ? "T" : "N") \(m)x\(n)x\(k) alpha \(alpha) beta \(beta) bias \(withBias)"
            XCTAssertTrue(got.map(\.bitPattern) == want.map(\.bitPattern), label)
            // The padding columns of C (ldc > n) are left alone.
            for i in 0..<m { for j in n..<ldc { XCTAssertEqual(got[i * ldc + j], cInit[i * ldc + j], label) } }
            checked += 1
          }
        }
      }
    }
    XCTAssertEqual(checked, 6 * 4 * 5)
  }

  /// The chains are the product: against a double-precision loop, within the bound of a
  /// k-term fp32 sum of products of entries in [-1, 1).
  func testKernelComputesTheProduct() {
    for s in [GEMMShape(transA: false, transB: true, d1: 576, d2: 192), GEMMShape(transA: false, transB: false, d1: 192, d2: 768),
              GEMMShape(transA: true, transB: false, d1: 192, d2: 768)] {
      let (m, n, k) = s.dims(batch: s.transA ? 1500 : 70)
      let a = randomMatrix(m * k, seed: 1), b = randomMatrix(k * n, seed: 2)
      defer { a.deallocate(); b.deallocate() }
      var c = [Float](repeating: .nan, count: m * n)
      c.withUnsafeMutableBufferPointer { GEMMBackend.call(.kernel, s, m: m, n: n, k: k, a: a, b: b, c: $0.baseAddress!) }
      var worst = 0.0, largest = 0.0
      for i in stride(from: 0, to: m, by: 7) {
        for j in stride(from: 0, to: n, by: 5) {
          var acc = 0.0
          for p in 0..<k {
            acc += Double(s.transA ? a[p * m + i] : a[i * k + p]) * Double(s.transB ? b[j * k + p] : b[p * n + j])
          }
          worst = max(worst, abs(Double(c[i * n + j]) - acc))
          largest = max(largest, abs(acc))
        }
      }
      XCTAssertLessThan(worst, Double(k * k) * 0x1p-23, "\(s)")
      XCTAssertGreaterThan(largest, 1, "\(s): the product is not trivial")
    }
  }

  /// The combinations outside the contract are refused and leave C alone.
  func testUnsupportedStartsAreRefused() {
    var a: [Float] = [1, 2], b: [Float] = [3, 4], c: [Float] = [5], bias: [Float] = [1]
    for (alpha, beta, withBias) in [(Float(2), Float(1), false), (2, 0, true), (1, 1, true)] {
      let st = cde_sgemm_avx2(0, 0, 1, 1, 2, alpha, &a, 2, &b, 1, beta, &c, 1, withBias ? bias : nil)
      XCTAssertEqual(st, -1)
      XCTAssertEqual(c, [5])
    }
  }

  /// Every class of ViT-Tiny passes the row-stability probe that `decide` runs, and `sgemm`
  /// gives the kernel's classes the kernel's bits whatever the thread count and the share of
  /// the batch a call covers (no padding of short calls, no alignment of the worker split).
  func testRoutedKernelRowsAreStableAcrossBatchesAndThreads() {
    var shapes: [GEMMShape] = []
    for (i, o) in [(192, 576), (192, 192), (192, 768), (768, 192)] {
      shapes += [GEMMShape(transA: false, transB: true, d1: o, d2: i), GEMMShape(transA: false, transB: false, d1: i, d2: o),
                 GEMMShape(transA: true, transB: false, d1: o, d2: i)]
    }
    let (plan, ms) = GEMMBackend.decide(shapes, batch: 400, mode: .kernel)
    XCTAssertEqual(plan.kernelShapes, shapes)
    for x in ms { XCTAssertTrue(x.kernelRowStable, "\(x.shape)") }
    GEMMBackend.install(plan)
    let rows = 37 * 12
    for s in shapes where !s.transA {
      let (m, n, k) = s.dims(batch: rows)
      let ldb = s.transB ? k : n
      let a = randomMatrix(m * k, seed: 7), b = randomMatrix(k * n, seed: 8)
      defer { a.deallocate(); b.deallocate() }
      var whole = [Float](repeating: 0, count: m * n)
      whole.withUnsafeMutableBufferPointer { GEMMBackend.call(.kernel, s, m: m, n: n, k: k, a: a, b: b, c: $0.baseAddress!) }
      for threads in [1, 2, 3] {
        Threads.configure(threads)
        for (lo, hi) in [(0, m), (5, 5 + 17), (37, m - 3), (100, 333)] {
          var part = [Float](repeating: 0, count: (hi - lo) * n)
          part.withUnsafeMutableBufferPointer { cp in
            sgemmRows(transB: s.transB, m: hi - lo, n: n, k: k, a: a + lo * k, lda: k, b: b, ldb: ldb, c: cp.baseAddress!, ldc: n)
          }
          XCTAssertTrue(part == Array(whole[(lo * n)..<(hi * n)]), "\(s) rows \(lo)..<\(hi), \(threads) threads")
        }
      }
    }
    // Weight gradients: the worker split of the rows of dW gives the single-threaded bits.
    for s in shapes where s.transA {
      let (m, n, k) = s.dims(batch: rows)
      let a = randomMatrix(m * k, seed: 9), b = randomMatrix(k * n, seed: 10)
      defer { a.deallocate(); b.deallocate() }
      func run() -> [Float] {
        var c = [Float](repeating: 0.25, count: m * n)
        c.withUnsafeMutableBufferPointer { sgemm(transA: true, m: m, n: n, k: k, a: a, lda: m, b: b, ldb: n, beta: 1, c: $0.baseAddress!, ldc: n) }
        return c
      }
      Threads.configure(1)
      let one = run()
      Threads.configure(3)
      XCTAssertTrue(run() == one, "\(s), 3 threads")
    }
  }

  /// `sgemm` sends a planned class to the kernel and other classes elsewhere; calls the kernel
  /// cannot take (alpha and beta both set) go to OpenBLAS.
  func testSgemmGoesToTheKernelWherePlanned() {
    let s = GEMMShape(transA: false, transB: true, d1: 64, d2: 96)
    let (m, n, k) = s.dims(batch: 300)
    let a = randomMatrix(m * k, seed: 3), b = randomMatrix(k * n, seed: 4)
    defer { a.deallocate(); b.deallocate() }
    func run(_ f: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
      var c = [Float](repeating: 1, count: m * n)
      c.withUnsafeMutableBufferPointer { f($0.baseAddress!) }
      return c
    }
    let viaKernel = run { GEMMBackend.call(.kernel, s, m: m, n: n, k: k, a: a, b: b, c: $0) }
    let viaBLAS = run { GEMMBackend.call(.openblas, s, m: m, n: n, k: k, a: a, b: b, c: $0) }
    let routed = { run { sgemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: $0, ldc: n) } }
    GEMMBackend.install(GEMMPlan(routes: [(s, .kernel)]))
    XCTAssertEqual(GEMMBackend.plan.description, "cde_avx2 for NT n=64 k=96; OpenBLAS for the rest")
    XCTAssertEqual(GEMMBackend.route(transA: false, transB: true, m: m, n: n, k: k, rowBlock: 0), .kernel)
    XCTAssertTrue(routed() == viaKernel, "planned: the kernel")
    let both = run { sgemm(transB: true, m: m, n: n, k: k, alpha: 0.5, a: a, lda: k, b: b, ldb: k, beta: 1, c: $0, ldc: n) }
    let blasBoth = run {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 0.5, a, Int32(k), b, Int32(k), 1, $0, Int32(n))
    }
    XCTAssertTrue(both == blasBoth, "alpha and beta: OpenBLAS")
    GEMMBackend.install(GEMMPlan(routes: [(GEMMShape(transA: false, transB: false, d1: 64, d2: 96), .kernel)]))
    XCTAssertEqual(GEMMBackend.route(transA: false, transB: true, m: m, n: n, k: k, rowBlock: 0), .openblas)
    XCTAssertTrue(routed() == viaBLAS, "another class planned: OpenBLAS")
    XCTAssertEqual(GEMMPlan(encoded: "NT:64x96=cde_avx2")?.kernelShapes, [s])
  }

  /// `Linear.forward` on a class planned for the kernel starts the chains from the bias inside the
  /// GEMM: the same bits as the bias broadcast then beta 1 (the path with a residual of zeros,
  /// `0 + b == b`), and the layer's product (against a double-precision loop).
  func testLinearForwardFusesTheBias() {
    let n = 75, inF = 40, outF = 56
    let x = randomMatrix(n * inF, seed: 31), w = randomMatrix(outF * inF, seed: 32), b = randomMatrix(outF, seed: 33)
    defer { x.deallocate(); w.deallocate(); b.deallocate() }
    GEMMBackend.install(GEMMPlan(routes: [(GEMMShape(transA: false, transB: true, d1: outF, d2: inF), .kernel)]))
    let zeros = [Float](repeating: 0, count: n * outF)
    var fused = [Float](repeating: .nan, count: n * outF), prefilled = fused
    for threads in [1, 2] {
      Threads.configure(threads)
      fused.withUnsafeMutableBufferPointer { Linear.forward(y: $0.baseAddress!, x: x, w: w, b: b, n: n, inF: inF, outF: outF) }
      prefilled.withUnsafeMutableBufferPointer { y in
        zeros.withUnsafeBufferPointer { r in
          Linear.forward(y: y.baseAddress!, x: x, w: w, b: b, n: n, inF: inF, outF: outF, residual: r.baseAddress!)
        }
      }
      XCTAssertTrue(fused.map(\.bitPattern) == prefilled.map(\.bitPattern), "\(threads) threads")
    }
    var worst = 0.0
    for i in 0..<n {
      for o in 0..<outF {
        var acc = Double(b[o])
        for p in 0..<inF { acc += Double(x[i * inF + p]) * Double(w[o * inF + p]) }
        worst = max(worst, abs(acc - Double(fused[i * outF + o])))
      }
    }
    XCTAssertLessThan(worst, Double(inF * inF) * 0x1p-23)
  }
}
