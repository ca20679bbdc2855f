import CSupport
import Kernels
import XCTest

/// bf16 rounding against the nearest-even rule worked out in Double, and the bf16 GEMMs and
/// Linear layer against closed-form sums in Double of the bf16-rounded operands.
final class BF16Tests: XCTestCase {
  /// The bf16 nearest to `x`, ties to the even mantissa, by comparing the distances in Double
  /// to the two bf16 values around it (an overflow rounds as if the exponent went on: to inf
  /// from 2^128 - 2^119 on). A subnormal `x` gives a zero of its sign, as VCVTNEPS2BF16 does.
  /// NaN: any NaN.
  static func reference(_ x: Float) -> UInt16? {
    if x.isNaN { return nil }
    if x.isInfinite { return x < 0 ? 0xff80 : 0x7f80 }
    let sign: UInt16 = x.sign == .minus ? 0x8000 : 0
    if x.isSubnormal { return sign }
    let mag = abs(x)
    let lo = UInt16(truncatingIfNeeded: mag.bitPattern >> 16)  // toward zero
    let hi = lo + 1
    let vlo = Double(BF16.float(lo))
    let vhi = hi == 0x7f80 ? 0x1p128 : Double(BF16.float(hi))
    let d = Double(mag)
    let pick: UInt16
    if d - vlo < vhi - d { pick = lo } else if d - vlo > vhi - d { pick = hi } else { pick = lo & 1 == 0 ? lo : hi }
    return sign | pick
  }

  static let edgeCases: [UInt32] = [
    0, 0x8000_0000, 0x3f80_0000, 0x3f80_8000, 0x3f81_8000, 0x3f80_8001, 0x3f80_7fff, 0xbf80_8000, 0xbf81_8000,
    0x0000_0001, 0x0000_8000, 0x0001_8000, 0x007f_ffff, 0x0080_0000, 0x7f7f_0000, 0x7f7f_7fff, 0x7f7f_8000,
    0x7f7f_ffff, 0xff7f_ffff, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f80_0001, 0xff80_0001, 0x7fff_ffff,
  ]

  func testRoundingIsNearestEven() {
    var bits = Self.edgeCases
    var s: UInt64 = 0x9e37_79b9_7f4a_7c15
    for _ in 0..<200_000 {
      s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      bits.append(UInt32(truncatingIfNeeded: s >> 32))
    }
    let src = bits.map { Float(bitPattern: $0) }
    var dst = [UInt16](repeating: 0, count: src.count)
    BF16.convert(src, rows: 1, cols: src.count, ld: src.count, into: &dst)
    for (i, x) in src.enumerated() {
      let scalar = BF16.round(x)
      if let r = Self.reference(x) {
        XCTAssertEqual(scalar, r, "round(\(String(x.bitPattern, radix: 16)))")
        XCTAssertEqual(dst[i], r, "convert(\(String(x.bitPattern, radix: 16)))")
      } else {
        XCTAssertTrue(BF16.float(scalar).isNaN && BF16.float(dst[i]).isNaN, "NaN stays NaN: \(String(x.bitPattern, radix: 16))")
        XCTAssertEqual(dst[i] & 0x8000, UInt16(truncatingIfNeeded: x.bitPattern >> 16) & 0x8000, "NaN sign")
      }
      if i < 400 && !x.isNaN { XCTAssertEqual(dst[i], scalar) }
    }
  }

  /// Every length from 0 to 80 (the vector body and its masked tails), rows with a stride.
  func testConvertLengthsAndStrides() {
    for n in 0...80 {
      let src = (0..<n).map { Float($0) * 1.000123 - 17.3 }
      var dst = [UInt16](repeating: 0xabcd, count: n + 3)
      BF16.convert(src, rows: 1, cols: n, ld: n, into: &dst)
      XCTAssertEqual(Array(dst[0..<n]), src.map(BF16.round), "length \(n)")
      XCTAssertEqual(Array(dst[n...]), [0xabcd, 0xabcd, 0xabcd], "no write past \(n)")
    }
    let rows = 5, cols = 37, ld = 41
    let src = (0..<rows * ld).map { Float($0) * 0.37 - 9 }
    var dst = [UInt16](repeating: 0, count: rows * cols)
    BF16.convert(src, rows: rows, cols: cols, ld: ld, into: &dst)
    for r in 0..<rows { for c in 0..<cols { XCTAssertEqual(dst[r * cols + c], BF16.round(src[r * ld + c])) } }
  }

  // MARK: - GEMMs

  func requireBF16() throws {
    if let why = GEMMBackend.bf16Unavailable { throw XCTSkip("no bf16 GEMMs here: \(why)") }
  }

  static func matrix(_ count: Int, seed: Double) -> [Float] {
    (0..<count).map { i in
      let x = Double(i) * 0.6180339887498949 + seed * 0.7548776662466927
      return Float((x - x.rounded(.down)) * 2 - 1)
    }
  }

  /// `C[m,n] = C0 + sum_k A[m,k] B[k,n]` in Double on the bf16 values, and sum |A||B| for the bound.
  static func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: [UInt16], b: [UInt16], c0: [Float]?)
    -> (c: [Double], bound: [Double])
  {
    var c = [Double](repeating: 0, count: m * n), bound = c
    for i in 0..<m {
      for j in 0..<n {
        var s = c0.map { Double($0[i * n + j]) } ?? 0, t = abs(s)
        for p in 0..<k {
          let x = Double(BF16.float(transA ? a[p * m + i] : a[i * k + p]))
          let y = Double(BF16.float(transB ? b[j * k + p] : b[p * n + j]))
          s += x * y
          t += abs(x * y)
        }
        c[i * n + j] = s
        bound[i * n + j] = t
      }
    }
    return (c, bound)
  }

  /// All four transposes, overwrite and accumulate, per image, per row and in row blocks:
  /// within fp32 summation error (k+1 roundings of at most 2^-24 relative each) of the sum in
  /// Double; products of bf16 values are exact in fp32.
  func testGEMMMatchesDoubleSumsOfBF16Operands() throws {
    try requireBF16()
    // m: six images of 37 rows, and more than bf16RowBlock rows for the row blocks of transA (a block and a tail).
    let (m, n, k) = (6 * 37, 24, 70)
    XCTAssertGreaterThan(m, GEMMBackend.bf16RowBlock)
    for transA in [false, true] {
      for transB in [false, true] {
        for accumulate in [false, true] {
          for rowBlock in transA ? [0] : [0, 37] {
            let a = Self.matrix(m * k, seed: 1).map(BF16.round), b = Self.matrix(k * n, seed: 2).map(BF16.round)
            let c0 = Self.matrix(m * n, seed: 3)
            var c = c0
            GEMMBackend.bf16gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: transA ? m : k,
                                 b: b, ldb: transB ? k : n, accumulate: accumulate, c: &c, ldc: n, rowBlock: rowBlock)
            let (ref, bound) = Self.reference(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b,
                                              c0: accumulate ? c0 : nil)
            var worst = 0.0
            for i in 0..<m * n { worst = max(worst, abs(Double(c[i]) - ref[i]) / (Double(k + 1) * 0x1p-24 * bound[i] + 1e-30)) }
            XCTAssertLessThanOrEqual(worst, 1, "transA \(transA) transB \(transB) accumulate \(accumulate) rowBlock \(rowBlock)")
          }
        }
      }
    }
  }

  /// A row's bits do not depend on the rows around it or on the thread count: an image computed
  /// among others equals the image alone, and a weight gradient is the same on 1 and 2 threads.
  func testRowsIndependentOfBatchAndThreads() throws {
    try requireBF16()
    defer { Threads.configure(1) }
    let (t, n, k) = (37, 48, 64)
    let a = Self.matrix(5 * t * k, seed: 4).map(BF16.round), b = Self.matrix(n * k, seed: 5).map(BF16.round)
    var outs: [[Float]] = []
    for threads in [1, 2] {
      Threads.configure(threads)
      var all = [Float](repeating: 0, count: 5 * t * n)
      GEMMBackend.bf16gemm(transA: false, transB: true, m: 5 * t, n: n, k: k, a: a, lda: k, b: b, ldb: k,
                           accumulate: false, c: &all, ldc: n, rowBlock: t)
      outs.append(all)
      var one = [Float](repeating: 0, count: t * n)
      a.withUnsafeBufferPointer { ap in
        GEMMBackend.bf16gemm(transA: false, transB: true, m: t, n: n, k: k, a: ap.baseAddress! + 3 * t * k, lda: k, b: b,
                             ldb: k, accumulate: false, c: &one, ldc: n, rowBlock: t)
      }
      XCTAssertEqual(one, Array(all[(3 * t * n)..<(4 * t * n)]), "image 3 alone, \(threads) thread(s)")
      // Weight gradient dW[o, k] += dY^T[o, 5t] X[5t, k], o output rows: two blocks and a tail.
      let o = 2 * GEMMBackend.bf16RowBlock + 40
      let dy = Self.matrix(5 * t * o, seed: 6).map(BF16.round)
      var dw = Self.matrix(o * k, seed: 7)
      GEMMBackend.bf16gemm(transA: true, transB: false, m: o, n: k, k: 5 * t, a: dy, lda: o, b: a, ldb: k,
                           accumulate: true, c: &dw, ldc: k)
      outs.append(dw)
    }
    XCTAssertEqual(outs[0], outs[2], "forward rows, 1 and 2 threads")
    XCTAssertEqual(outs[1], outs[3], "weight gradient, 1 and 2 threads")
  }

  /// `Linear.forward` and `backward` under bf16: the closed forms on bf16-rounded operands,
  /// the bias (and residual) added in fp32 and the bias gradient summed from the fp32 `dy`.
  func testLinearUnderBF16() throws {
    try requireBF16()
    GEMMBackend.precision = .bf16
    defer { GEMMBackend.precision = .fp32 }
    let (rows, inF, outF) = (2 * 37, 40, 56)
    let x = Self.matrix(rows * inF, seed: 8), w = Self.matrix(outF * inF, seed: 9), bias = Self.matrix(outF, seed: 10)
    let res = Self.matrix(rows * outF, seed: 11), dy = Self.matrix(rows * outF, seed: 12)
    var y = [Float](repeating: 0, count: rows * outF)
    Linear.forward(y: &y, x: x, w: w, b: bias, n: rows, inF: inF, outF: outF, residual: res, rowBlock: 37)
    let xb = x.map(BF16.round), wb = w.map(BF16.round), dyb = dy.map(BF16.round)
    let c0 = (0..<rows * outF).map { res[$0] + bias[$0 % outF] }
    let (yr, yb) = Self.reference(transA: false, transB: true, m: rows, n: outF, k: inF, a: xb, b: wb, c0: c0)
    for i in 0..<y.count { XCTAssertEqual(Double(y[i]), yr[i], accuracy: Double(inF + 2) * 0x1p-24 * yb[i], "y[\(i)]") }

    var dx = [Float](repeating: 0, count: rows * inF), dw = Self.matrix(outF * inF, seed: 13), db = [Float](repeating: 0.5, count: outF)
    let dw0 = dw
    Linear.backward(dx: &dx, dw: &dw, db: &db, dy: dy, x: x, w: w, n: rows, inF: inF, outF: outF, rowBlock: 37)
    let (dxr, dxb) = Self.reference(transA: false, transB: false, m: rows, n: inF, k: outF, a: dyb, b: wb, c0: nil)
    for i in 0..<dx.count { XCTAssertEqual(Double(dx[i]), dxr[i], accuracy: Double(outF + 1) * 0x1p-24 * dxb[i], "dx[\(i)]") }
    let (dwr, dwb) = Self.reference(transA: true, transB: false, m: outF, n: inF, k: rows, a: dyb, b: xb, c0: dw0)
    for i in 0..<dw.count { XCTAssertEqual(Double(dw[i]), dwr[i], accuracy: Double(rows + 1) * 0x1p-24 * dwb[i], "dW[\(i)]") }
    for o in 0..<outF {
      let s = 0.5 + (0..<rows).reduce(0.0) { $0 + Double(dy[$1 * outF + o]) }
      XCTAssertEqual(Double(db[o]), s, accuracy: 1e-5, "db[\(o)] from the fp32 dy")
    }
  }

  /// The refusal reason names what is missing, and is nil exactly when the CPU has a bf16 instruction set.
  func testAvailabilityFollowsTheCPU() {
    let flags = BLASRuntime.cpuFlags()
    let hasBF16 = flags.contains("avx512_bf16") || flags.contains("amx_bf16")
    if !hasBF16 { XCTAssertEqual(GEMMBackend.bf16Unavailable, "this CPU has neither avx512_bf16 nor amx_bf16") }
    if GEMMBackend.bf16Unavailable == nil { XCTAssertTrue(hasBF16) }
  }
}
