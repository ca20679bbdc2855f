import Foundation
import CGEMM
import CSupport
import XCTest
@testable import Kernels

/// The oneDNN route of `sgemm`: right products (against a double-precision loop), rows that do
/// not depend on the batch or the thread count, single-threaded OpenMP, and the plan's encoding.
final class GEMMBackendTests: XCTestCase {
  /// ViT-Tiny's classes (width 192, MLP 768, patch 768) as `ViTConfig.gemmShapes` lists them.
  let tinyShapes: [GEMMShape] = {
    var out: [GEMMShape] = []
    for (i, o) in [(192, 576), (192, 192), (192, 768), (768, 192)] {
      out.append(GEMMShape(transA: false, transB: true, d1: o, d2: i))
      out.append(GEMMShape(transA: false, transB: false, d1: i, d2: o))
      out.append(GEMMShape(transA: true, transB: false, d1: o, d2: i))
    }
    return out
  }()

  override func tearDown() {
    GEMMBackend.install(GEMMPlan())
    Threads.configure(1)
  }

  /// `C = op(A) op(B)` in double precision, row-major, packed.
  func reference(_ s: GEMMShape, m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
      for j in 0..<n {
        var acc = 0.0
        for p in 0..<k {
          let x = s.transA ? a[p * m + i] : a[i * k + p]
          let y = s.transB ? b[j * k + p] : b[p * n + j]
          acc += Double(x) * Double(y)
        }
        c[i * n + j] = acc
      }
    }
    return c
  }

  func testOneDNNComputesTheProduct() {
    for s in [GEMMShape(transA: false, transB: true, d1: 48, d2: 40), GEMMShape(transA: false, transB: false, d1: 40, d2: 48),
              GEMMShape(transA: true, transB: false, d1: 48, d2: 40), GEMMShape(transA: true, transB: true, d1: 33, d2: 17)] {
      let (m, n, k) = s.dims(batch: 70)
      let a = randomMatrix(m * k, seed: 1), b = randomMatrix(k * n, seed: 2)
      defer { a.deallocate(); b.deallocate() }
      var c = [Float](repeating: 0, count: m * n)
      c.withUnsafeMutableBufferPointer { GEMMBackend.call(.onednn, s, m: m, n: n, k: k, a: a, b: b, c: $0.baseAddress!) }
      let ref = reference(s, m: m, n: n, k: k, a, b)
      var worst = 0.0
      for i in 0..<(m * n) { worst = max(worst, abs(Double(c[i]) - ref[i])) }
      // |error| <= k * eps * sum |a||b| <= k * 2^-23 * k (entries in [-1, 1)).
      XCTAssertLessThan(worst, Double(k * k) * 0x1p-23, "\(s)")
      XCTAssertGreaterThan(ref.map(abs).max()!, 1, "\(s): the product is not trivial")
    }
  }

  func testSgemmGoesWhereThePlanSays() {
    let s = GEMMShape(transA: false, transB: true, d1: 64, d2: 96)
    let (m, n, k) = s.dims(batch: 300)
    let a = randomMatrix(m * k, seed: 3), b = randomMatrix(k * n, seed: 4)
    defer { a.deallocate(); b.deallocate() }
    func run(_ f: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
      var c = [Float](repeating: 0, count: m * n)
      c.withUnsafeMutableBufferPointer { f($0.baseAddress!) }
      return c
    }
    let viaDNNL = run { GEMMBackend.call(.onednn, s, m: m, n: n, k: k, a: a, b: b, c: $0) }
    let viaBLAS = run { GEMMBackend.call(.openblas, s, m: m, n: n, k: k, a: a, b: b, c: $0) }
    let routed = { run { sgemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: $0, ldc: n) } }
    XCTAssertEqual(routed(), viaBLAS, "no plan: OpenBLAS")
    GEMMBackend.install(GEMMPlan(routes: [(s, .onednn)]))
    XCTAssertEqual(routed(), viaDNNL, "planned: oneDNN")
    GEMMBackend.install(GEMMPlan(routes: [(GEMMShape(transA: false, transB: false, d1: 64, d2: 96), .onednn)]))
    XCTAssertEqual(routed(), viaBLAS, "another class planned: OpenBLAS")
  }

  /// Every class that `onednn` mode routes to oneDNN gives each row of `C` the same bits
  /// through `sgemmRows` / `sgemm` whatever the batch (a rank's or a chunk's share starting at
  /// any image) and the thread count; the classes it refuses are really unstable.
  func testRoutedClassesAreRowStableAcrossBatchesAndThreads() throws {
    let (plan, ms) = GEMMBackend.decide(tinyShapes, batch: 400, mode: .onednn)
    GEMMBackend.install(plan)
    for x in ms where !x.onednnRowStable { XCTAssertFalse(GEMMBackend.rowStable(.onednn, x.shape, batch: 400, seed: 9), "\(x.shape)") }
    let tokens = 37, images = 12, rows = tokens * images
    for s in plan.onednnShapes {
      let (m, n, k) = s.dims(batch: rows)
      let a = randomMatrix(m * k, seed: 7), b = randomMatrix(k * n, seed: 8)
      defer { a.deallocate(); b.deallocate() }
      // Shares of the batch: whole images (a rank's records), one image, the worker split's 16-row units.
      let shares = s.transA ? [(0, 16), (16, m), (32, 64)]
                            : [(0, 5 * tokens), (5 * tokens, m), (7 * tokens, 8 * tokens), (3 * tokens, 11 * tokens)]
      assertRowsStable("\(s)", m: m, n: n, shares: shares) { lo, hi, c in
        if s.transA && (lo, hi) == (0, m) {
          sgemm(transA: true, transB: s.transB, m: m, n: n, k: k, a: a, lda: m, b: b, ldb: s.transB ? k : n, c: c, ldc: n)
        } else if s.transA {
          // A share of a weight gradient's rows is only ever computed inside the routed call (the worker split).
          GEMMBackend.onednnSgemm(transA: true, transB: s.transB, m: hi - lo, n: n, k: k, alpha: 1, a: a + lo, lda: m, b: b,
                                  ldb: s.transB ? k : n, beta: 0, c: c, ldc: n, parallel: true)
        } else {
          sgemmRows(transB: s.transB, m: hi - lo, n: n, k: k, a: a + lo * k, lda: k, b: b, ldb: s.transB ? k : n, c: c, ldc: n)
        }
      }
    }
  }

  /// With an image size, `onednn` mode runs the classes whose oneDNN rows are unstable on oneDNN
  /// one image per call (`A` not transposed): each image's rows then have the same bits whatever
  /// share of the batch holds it and whatever the thread count, equal to oneDNN on that image
  /// alone, and they are the product (against a double-precision loop).
  func testPerImageRoutesAreStableAcrossBatchesAndThreads() throws {
    let tokens = 37, images = 12, rows = tokens * images
    let (plan, ms) = GEMMBackend.decide(tinyShapes, batch: rows, imageRows: tokens, mode: .onednn)
    for x in ms {
      XCTAssertEqual(x.choice, x.onednnRowStable ? .onednn : (x.shape.transA ? .openblas : .onednnImage), "\(x.shape)")
    }
    GEMMBackend.install(plan)
    XCTAssertEqual(GEMMPlan(encoded: plan.encoded), plan)
    try XCTSkipIf(plan.onednnImageShapes.isEmpty, "oneDNN keeps the rows of every class stable on this CPU")
    for s in plan.onednnImageShapes {
      let (m, n, k) = s.dims(batch: rows)
      let ldb = s.transB ? k : n
      let a = randomMatrix(m * k, seed: 11), b = randomMatrix(k * n, seed: 12)
      defer { a.deallocate(); b.deallocate() }
      let whole = assertRowsStable("\(s)", m: m, n: n,
                                   shares: [(0, 5 * tokens), (5 * tokens, m), (7 * tokens, 8 * tokens), (3 * tokens, 11 * tokens)]) { lo, hi, c in
        sgemmRows(transB: s.transB, m: hi - lo, n: n, k: k, a: a + lo * k, lda: k, b: b, ldb: ldb, c: c, ldc: n, rowBlock: tokens)
      }
      var alone = [Float](repeating: 0, count: tokens * n)
      alone.withUnsafeMutableBufferPointer { cp in
        GEMMBackend.dnnl(transA: false, transB: s.transB, m: tokens, n: n, k: k, alpha: 1, a: a + 3 * tokens * k, lda: k, b: b,
                         ldb: ldb, beta: 0, c: cp.baseAddress!, ldc: n)
      }
      XCTAssertEqual(alone, Array(whole[(3 * tokens * n)..<(4 * tokens * n)]), "\(s): image 3 alone on oneDNN")
      let ref = reference(s, m: m, n: n, k: k, a, b)
      var worst = 0.0
      for i in 0..<(m * n) { worst = max(worst, abs(Double(whole[i]) - ref[i])) }
      XCTAssertLessThan(worst, Double(k * k) * 0x1p-23, "\(s)")
      // Rows that are not whole images (the last block's class rows) go to OpenBLAS.
      XCTAssertEqual(GEMMBackend.route(transA: false, transB: s.transB, m: m - 1, n: n, k: k, rowBlock: tokens), .openblas)
      XCTAssertEqual(GEMMBackend.route(transA: false, transB: s.transB, m: m, n: n, k: k, rowBlock: 0), .openblas)
    }
  }

  /// oneDNN's OpenMP runtime starts no team: a oneDNN call adds no thread to the process.
  func testOneDNNStartsNoOpenMPThreads() throws {
    func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1 }
    let s = GEMMShape(transA: false, transB: false, d1: 256, d2: 256)
    let (m, n, k) = s.dims(batch: 512)
    let a = randomMatrix(m * k, seed: 1), b = randomMatrix(k * n, seed: 2), c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    GEMMBackend.call(.onednn, s, m: m, n: n, k: k, a: a, b: b, c: c)
    let before = threads()
    for _ in 0..<3 { GEMMBackend.call(.onednn, s, m: m, n: n, k: k, a: a, b: b, c: c) }
    XCTAssertEqual(threads(), before)
    XCTAssertNotNil(GEMMBackend.ompSetNumThreads, "oneDNN's OpenMP runtime is loaded")
    let getMax = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_get_max_threads").map {
      unsafeBitCast($0, to: (@convention(c) () -> Int32).self)
    }
    XCTAssertEqual(getMax?(), 1, "team size on the calling thread after a oneDNN call")
  }

  func testPlanEncodingRoundTrips() {
    let p = GEMMPlan(routes: [(GEMMShape(transA: false, transB: true, d1: 576, d2: 192), .onednn),
                              (GEMMShape(transA: true, transB: false, d1: 768, d2: 192), .openblas)])
    XCTAssertEqual(p.encoded, "NT:576x192=onednn,TN:768x192=openblas")
    XCTAssertEqual(GEMMPlan(encoded: p.encoded), p)
    XCTAssertEqual(GEMMPlan(encoded: "")?.routes.count, 0)
    for bad in ["NT:576x192", "NX:1x2=onednn", "NT:576=onednn", "NT:0x2=onednn", "NT:5x2=mkl"] {
      XCTAssertNil(GEMMPlan(encoded: bad), bad)
    }
    XCTAssertEqual(GEMMPlan(encoded: p.encoded)?.onednnShapes, [GEMMShape(transA: false, transB: true, d1: 576, d2: 192)])
    let q = GEMMPlan(routes: [(GEMMShape(transA: false, transB: false, d1: 192, d2: 768), .onednnImage)])
    XCTAssertEqual(q.encoded, "NN:192x768=onednn_image")
    XCTAssertEqual(GEMMPlan(encoded: q.encoded)?.onednnImageShapes, [GEMMShape(transA: false, transB: false, d1: 192, d2: 768)])
    XCTAssertEqual(q.description, "oneDNN per image for NN n=192 k=768; OpenBLAS for the rest")
  }

  /// The FMA loop does the operations it counts: its result equals `x <- fma(x, 0.999999, 1e-6)`
  /// iterated here from each accumulator's start value (0, 1, 2, ...), summed over accumulators and lanes.
  func testFMALoopComputesItsChains() throws {
    let n: Int64 = 100_000
    var tested = 0
    for isa in FMAPeak.ISA.allCases where isa.supported && !isa.isBF16 {
      let (acc, lanes) = isa == .avx2 ? (12, 8) : (24, 16)
      var sink: Float = 0
      let flops = cde_fma_loop(isa.rawValue, n, &sink)
      XCTAssertEqual(flops, Double(n) * Double(acc * lanes * 2), isa.name)
      let m: Float = 0.999999, c: Float = 1e-6
      var want = 0.0
      for i in 0..<acc {
        var x = Float(i)
        for _ in 0..<n { x = c.addingProduct(x, m) }  // one rounding, as _mm*_fmadd_ps
        want += Double(lanes) * Double(x)
      }
      XCTAssertEqual(Double(sink), want, accuracy: 1e-5 * want, isa.name)
      tested += 1
    }
    if tested == 0 { throw XCTSkip("no AVX2 / AVX-512 on this CPU") }
  }

  /// The bf16 dot loop does the operations it counts: each of its 24 accumulators (start values
  /// 0, 1, ..., 23) gains 1 * 2^-18 twice per iteration (two bf16 products per fp32 lane), sums
  /// exact in fp32 at this length, so the sink is 16 lanes x sum_i (i + 2 n 2^-18).
  func testBF16DotLoopComputesItsChains() throws {
    guard FMAPeak.ISA.avx512BF16.supported else { throw XCTSkip("no AVX512_BF16 on this CPU") }
    let n: Int64 = 100_000
    var sink: Float = 0
    let flops = cde_fma_loop(FMAPeak.ISA.avx512BF16.rawValue, n, &sink)
    XCTAssertEqual(flops, Double(n) * 24 * 16 * 4)
    let gain: Double = 2 * Double(n) * 0x1p-18  // per accumulator lane
    var want = 0.0
    for i in 0..<24 { want += 16 * (Double(i) + gain) }
    XCTAssertEqual(Double(sink), want, accuracy: 1e-5 * want)  // the final float sum rounds
    // One product per lane instead of two would leave it 16 x 24 x gain / 2 short.
    XCTAssertGreaterThan(Double(sink), want - 0.5 * 16 * 24 * gain / 2)
  }

  /// The micro-kernel loop does the operations it counts: each call runs 256 products of
  /// 2^-10 x 2^-8 into every element of the 6 x 16 tile, exact in fp32 while the sum stays
  /// below 64, so the sink is calls x 256 x 2^-18 exactly; a call skipped, or a chain cut short,
  /// leaves it below.
  func testMicroKernelLoopComputesItsTile() throws {
    guard GEMMBackend.kernelAvailable else { throw XCTSkip("cde's AVX2 kernel is not available on this CPU") }
    let calls: Int64 = 10_000
    var sink: Float = 0
    let flops = cde_sgemm_avx2_microkernel_loop(calls, &sink)
    XCTAssertEqual(flops, Double(calls) * 2 * 6 * 16 * 256)
    XCTAssertEqual(sink, Float(Double(calls) * 256 * 0x1p-18))
    XCTAssertGreaterThan(FMAPeak.microKernel(calls: 1_000, repetitions: 1) ?? 0, 0)
  }
}

/// Runs `product(lo, hi, c)`, which writes rows lo..<hi of an m x n product into the zeroed
/// `c`, for the whole product and for each share on 1 and 2 threads: every run's rows must
/// equal the whole product's on 1 thread, bit for bit. Returns that whole product.
@discardableResult
func assertRowsStable(_ what: String, m: Int, n: Int, shares: [(Int, Int)],
                      file: StaticString = #filePath, line: UInt = #line,
                      _ product: (_ lo: Int, _ hi: Int, _ c: UnsafeMutablePointer<Float>) -> Void) -> [Float] {
  func run(_ lo: Int, _ hi: Int, threads: Int) -> [Float] {
    Threads.configure(threads)
    var c = [Float](repeating: 0, count: (hi - lo) * n)
    c.withUnsafeMutableBufferPointer { product(lo, hi, $0.baseAddress!) }
    return c
  }
  let whole = run(0, m, threads: 1)
  XCTAssertEqual(run(0, m, threads: 2), whole, "\(what): 2 threads", file: file, line: line)
  for (lo, hi) in shares where hi <= m {
    for t in [1, 2] {
      XCTAssertEqual(run(lo, hi, threads: t), Array(whole[(lo * n)..<(hi * n)]), "\(what): rows \(lo)..<\(hi), \(t) thread(s)",
                     file: file, line: line)
    }
  }
  return whole
}
