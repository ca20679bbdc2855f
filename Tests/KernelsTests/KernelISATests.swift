import Randomness
import XCTest
@testable import Kernels
import KernelsAVX512

/// The two copies of the instruction-set-dependent kernels (Kernels/KernelISA.swift): the
/// build's own (`Kernels`, x86-64-v3 in the portable build) and the AVX-512 one
/// (`KernelsAVX512`) give the same bits on the same inputs, so the copy a rank runs never
/// changes a result. Each copy is checked against timm by KernelParityTests when it is the
/// active one; this compares them with each other, element by element, on CPUs that can run both.
final class KernelISATests: XCTestCase {
  func requireBoth() throws {
    let missing = KernelISA.missingAVX512(flags: BLASRuntime.cpuFlags())
    if !missing.isEmpty { throw XCTSkip("this CPU lacks \(missing.joined(separator: ", ")): only the build's copy runs") }
  }

  func random(_ n: Int, seed: UInt64, scale: Double = 1) -> [Float] {
    var g = SplitMix64(seed: seed)
    return (0..<n).map { _ in Float(g.normal() * scale) }
  }

  /// Asserts `a == b` bit for bit, naming the first differing index.
  func assertSameBits(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    if let i = a.indices.first(where: { a[$0].bitPattern != b[$0].bitPattern }) {
      XCTFail("\(what): element \(i) differs: \(a[i]) against \(b[i])", file: file, line: line)
    }
  }

  /// One attention head, forward and backward, token counts with and without tile tails.
  func testAttentionTilesGiveTheSameBits() throws {
    let copies = [0] + (KernelISA.missingAVX512(flags: BLASRuntime.cpuFlags()).isEmpty ? [1] : [])
      + (GEMMBackend.kernelAvailable ? [2] : [])
    try XCTSkipIf(copies.count < 2, "only the build's tiles run on this CPU")
    let w = Kernels.HeadTiles.width
    XCTAssertEqual(KernelsAVX512.HeadTiles.width, w)
    XCTAssertEqual(KernelsAVX512.HeadTiles.columnTile, 32)
    for t in [1, 5, 37, 50, 197, 401] {
      let ld = 3 * w + 8  // q, k, v side by side, rows padded as in a qkv buffer
      let qkv = random(t * ld, seed: UInt64(t)), dO = random(t * w, seed: UInt64(1000 + t))
      let scale = 1 / Float(w).squareRoot()
      // forward (0) and backward (1) with the build's copy, then the AVX-512 copy, then (on CPUs
      // with AVX2 and FMA) cde's GEMM kernel (Attention+Kernel.swift): P's first t columns, O, dQ,
      // dK, dV.
      var results: [[[Float]]] = []
      for copy in copies {
        let tp = copy != 1 ? Kernels.HeadTiles.padded(t) : KernelsAVX512.HeadTiles.padded(t)
        let scratchCount = copy != 1 ? Kernels.HeadTiles.scratchCount(t: t) : KernelsAVX512.HeadTiles.scratchCount(t: t)
        var p = [Float](repeating: .nan, count: t * tp), o = [Float](repeating: .nan, count: t * w)
        var dqkv = [Float](repeating: .nan, count: t * ld), scratch = [Float](repeating: 0, count: scratchCount)
        qkv.withUnsafeBufferPointer { x in
          let q = x.baseAddress!, k = q + w, v = q + 2 * w
          p.withUnsafeMutableBufferPointer { pb in
            o.withUnsafeMutableBufferPointer { ob in
              scratch.withUnsafeMutableBufferPointer { sb in
                if copy == 0 {
                  Kernels.HeadTiles.forward(q: q, k: k, v: v, ld: ld, p: pb.baseAddress!, o: ob.baseAddress!, ldo: w, t: t,
                                            scale: scale, scratch: sb.baseAddress!)
                } else if copy == 2 {
                  Kernels.HeadKernel.forward(q: q, k: k, v: v, ld: ld, p: pb.baseAddress!, o: ob.baseAddress!, ldo: w, t: t,
                                             scale: scale)
                  let tp = Kernels.HeadTiles.padded(t)
                  for r in 0..<t { for c in t..<tp { XCTAssertEqual(pb[r * tp + c], 0, "padding of P") } }
                } else {
                  KernelsAVX512.HeadTiles.forward(q: q, k: k, v: v, ld: ld, p: pb.baseAddress!, o: ob.baseAddress!, ldo: w,
                                                  t: t, scale: scale, scratch: sb.baseAddress!)
                }
              }
            }
          }
          p.withUnsafeBufferPointer { pb in
            dO.withUnsafeBufferPointer { gb in
              dqkv.withUnsafeMutableBufferPointer { db in
                scratch.withUnsafeMutableBufferPointer { sb in
                  let d = db.baseAddress!
                  if copy == 0 {
                    Kernels.HeadTiles.backward(q: q, k: k, v: v, ld: ld, p: pb.baseAddress!, dO: gb.baseAddress!, ldo: w,
                                               dq: d, dk: d + w, dv: d + 2 * w, t: t, scale: scale, scratch: sb.baseAddress!)
                  } else if copy == 2 {
                    Kernels.HeadKernel.backward(q: q, k: k, v: v, ld: ld, p: pb.baseAddress!, dO: gb.baseAddress!, ldo: w,
                                                dq: d, dk: d + w, dv: d + 2 * w, t: t, scale: scale, ds: sb.baseAddress!)
                  } else {
                    KernelsAVX512.HeadTiles.backward(q: q, k: k, v: v, ld: ld, p: pb.baseAddress!, dO: gb.baseAddress!,
                                                     ldo: w, dq: d, dk: d + w, dv: d + 2 * w, t: t, scale: scale,
                                                     scratch: sb.baseAddress!)
                  }
                }
              }
            }
          }
        }
        let probs = (0..<t).flatMap { r in p[(r * tp)..<(r * tp + t)] }
        let grads = (0..<t).flatMap { r in dqkv[(r * ld)..<(r * ld + 3 * w)] }
        XCTAssertFalse(probs.contains { !$0.isFinite } || o.contains { !$0.isFinite } || grads.contains { !$0.isFinite })
        results.append([probs, o, grads])
      }
      for other in 1..<results.count {
        let which = copies[other] == 1 ? "AVX-512 tiles" : "GEMM kernel"
        assertSameBits(results[0][0], results[other][0], "P, t = \(t), \(which)")
        assertSameBits(results[0][1], results[other][1], "O, t = \(t), \(which)")
        assertSameBits(results[0][2], results[other][2], "dQ, dK, dV, t = \(t), \(which)")
      }
    }
  }

  func testSoftmaxRowsGiveTheSameBits() throws {
    try requireBoth()
    for n in [1, 7, 16, 37, 197, 208] {
      for scale: Float in [1, 0.125] {
        let x = random(n, seed: UInt64(n), scale: 4), g = random(n, seed: UInt64(n + 99))
        var a = x, b = x
        a.withUnsafeMutableBufferPointer { Kernels.softmaxRowLoop($0.baseAddress!, n, scale: scale) }
        b.withUnsafeMutableBufferPointer { KernelsAVX512.softmaxRowLoop($0.baseAddress!, n, scale: scale) }
        assertSameBits(a, b, "softmax, n = \(n), scale \(scale)")
        var ga = g, gb = g
        ga.withUnsafeMutableBufferPointer { Kernels.softmaxBackwardRowLoop($0.baseAddress!, a, n, scale) }
        gb.withUnsafeMutableBufferPointer { KernelsAVX512.softmaxBackwardRowLoop($0.baseAddress!, a, n, scale) }
        assertSameBits(ga, gb, "softmax backward, n = \(n), scale \(scale)")
      }
    }
  }

  /// GELU's three loops over ranges with and without a tail, on inputs that reach the
  /// tails of Phi (|x| up to about 12).
  func testGELULoopsGiveTheSameBits() throws {
    try requireBoth()
    let n = 1000
    let x = random(n, seed: 7, scale: 3) + [0, -0.0, 12, -12, 40, -40, .infinity, -.infinity]
    let dy = random(x.count, seed: 8)
    for (s, e) in [(0, x.count), (3, 19), (5, 6), (16, 48), (7, 7 + 2 * 256 + 20)] {
      var ya = [Float](repeating: 0, count: x.count), yb = ya, ga = ya, gb = ya, da = ya, db = ya, ba = ya, bb = ya
      x.withUnsafeBufferPointer { xp in
        let xs = xp.baseAddress!
        Kernels.GELULoops.forward(y: &ya, x: xs, s, e)
        KernelsAVX512.GELULoops.forward(y: &yb, x: xs, s, e)
        Kernels.GELULoops.forward(g: &ga, derivative: &da, x: xs, s, e)
        KernelsAVX512.GELULoops.forward(g: &gb, derivative: &db, x: xs, s, e)
        Kernels.GELULoops.backward(dx: &ba, dy: dy, x: xs, s, e)
        KernelsAVX512.GELULoops.backward(dx: &bb, dy: dy, x: xs, s, e)
      }
      assertSameBits(ya, yb, "gelu \(s)..<\(e)")
      assertSameBits(ga, gb, "gelu kept \(s)..<\(e)")
      assertSameBits(da, db, "gelu derivative \(s)..<\(e)")
      assertSameBits(ba, bb, "gelu backward \(s)..<\(e)")
      assertSameBits(ya, ga, "gelu against gelu kept \(s)..<\(e)")  // the two forwards agree with each other too
      // The kept derivative (blocks of GELULoops.block in three loops) is the backward's formula
      // at dy = 1, and g may overwrite x.
      var oa = [Float](repeating: 0, count: x.count), inPlace = x, dIn = oa
      x.withUnsafeBufferPointer { Kernels.GELULoops.backward(dx: &oa, dy: [Float](repeating: 1, count: x.count), x: $0.baseAddress!, s, e) }
      assertSameBits(da, oa, "gelu derivative against backward \(s)..<\(e)")
      inPlace.withUnsafeMutableBufferPointer { Kernels.GELULoops.forward(g: $0.baseAddress!, derivative: &dIn, x: $0.baseAddress!, s, e) }
      assertSameBits(Array(inPlace[s..<e]), Array(ga[s..<e]), "gelu kept in place \(s)..<\(e)")
      assertSameBits(dIn, da, "gelu derivative in place \(s)..<\(e)")
    }
  }

  /// `Attention.forward` / `backward` through the dispatch (the stride of the saved `P`
  /// follows the copy): the same outputs under either copy.
  func testAttentionThroughEitherCopy() throws {
    try requireBoth()
    let before = KernelISA.active
    defer { KernelISA.select(before) }
    let n = 3, t = 37, h = 3, hd = 64, d = h * hd
    let qkv = random(n * t * 3 * d, seed: 21), dOut = random(n * t * d, seed: 22)
    var outs: [[Float]] = []
    for isa in [KernelISA.build, .avx512] {
      KernelISA.select(isa)
      var out = [Float](repeating: .nan, count: n * t * d), dqkv = [Float](repeating: .nan, count: n * t * 3 * d)
      var probs = [Float](repeating: .nan, count: Attention.probsCount(n: n, t: t, heads: h, headDim: hd))
      var scratch = [Float](repeating: 0, count: Threads.count * Attention.scratchCount(t: t, heads: h, headDim: hd))
      Attention.forward(out: &out, probs: &probs, qkv: qkv, n: n, t: t, heads: h, headDim: hd)
      Attention.backward(dqkv: &dqkv, dOut: dOut, probs: probs, qkv: qkv, scratch: &scratch, n: n, t: t, heads: h, headDim: hd)
      outs.append(out + dqkv)
    }
    XCTAssertEqual(Attention.probsStride(t: t, headDim: hd), 64)  // the AVX-512 copy's 32-column tiles
    assertSameBits(outs[0], outs[1], "attention out and dqkv")
  }

  /// The choice, on flag sets of known CPUs.
  func testResolve() {
    let v3: Set<String> = ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe"]
    let v4 = v3.union(["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"])
    XCTAssertEqual(KernelISA.resolve(.build, flags: v4), .build)
    XCTAssertEqual(KernelISA.resolve(.avx512, flags: v4), .avx512)
    XCTAssertNil(KernelISA.resolve(.avx512, flags: v3))
    XCTAssertEqual(KernelISA.resolve(.auto, flags: v3), .build)
    // auto takes the AVX-512 copy only when the build's own is not AVX-512 already.
    XCTAssertEqual(KernelISA.resolve(.auto, flags: v4), KernelISA.buildIsAVX512 ? .build : .avx512)
    // Knights Landing: AVX-512 F and CD without BW, DQ, VL.
    XCTAssertEqual(KernelISA.missingAVX512(flags: v3.union(["avx512f", "avx512cd"])), ["avx512bw", "avx512dq", "avx512vl"])
    XCTAssertEqual(KernelISA.resolve(.auto, flags: v3.union(["avx512f", "avx512cd"])), .build)
  }
}
