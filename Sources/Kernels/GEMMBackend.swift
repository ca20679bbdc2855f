import CBLAS
import CDNNL
import CGEMM
import Clock
import Foundation

/// A library that can run `sgemm`, and how it is called.
public enum GEMMLibrary: String, CaseIterable, Sendable {
  case openblas, onednn
  /// oneDNN, one `dnnl_sgemm` per image: a call whose rows are whole images (`rowBlock`
  /// token rows each, `A` not transposed) runs as one oneDNN call of exactly `rowBlock` rows
  /// per image, so every row's bits depend on its image alone, never on the batch around it,
  /// even for the classes whose oneDNN rows are unstable. Calls without whole images run on OpenBLAS.
  case onednnImage = "onednn_image"
  /// cde's own AVX2 + FMA kernel (`Sources/CGEMM`): every element one chain of fused
  /// multiply-adds in `k` order, so its rows are stable by construction. x86 CPUs with AVX2
  /// and FMA only (`GEMMBackend.kernelAvailable`).
  case kernel = "cde_avx2"
}

/// How each GEMM's library is chosen (`--gemm`, `CDE_GEMM`):
/// `auto` times OpenBLAS, oneDNN, oneDNN per image and cde's AVX2 kernel on every GEMM class
/// of the step and keeps the fastest (oneDNN in one call only where its rows are stable, see
/// `GEMMBackend.rowStable`; per image only where `A` is not transposed; the kernel where the
/// CPU has AVX2 and FMA); `openblas` uses OpenBLAS everywhere (the behaviour before oneDNN);
/// `onednn` uses oneDNN for every class where its rows are stable, oneDNN per image where they
/// are not and `A` is not transposed, OpenBLAS for the others; `kernel` uses cde's AVX2 kernel
/// for every class (refused on a CPU without AVX2 and FMA).
public enum GEMMMode: String, CaseIterable, Sendable {
  case auto, openblas, onednn, kernel
}

/// A GEMM class: the transposes and the two dimensions that do not depend on the batch.
/// With `A` not transposed the batch is `M` (rows of `C`) and the class is `(N, K)`; with
/// `A` transposed (weight gradients `dW = dY^T X`) the batch is `K` and the class is `(M, N)`.
public struct GEMMShape: Hashable, Sendable, CustomStringConvertible {
  public var transA: Bool
  public var transB: Bool
  public var d1: Int
  public var d2: Int

  public init(transA: Bool, transB: Bool, d1: Int, d2: Int) {
    self.transA = transA
    self.transB = transB
    self.d1 = d1
    self.d2 = d2
  }

  /// The class of a call `C[m,n] = op(A)[m,k] op(B)[k,n]`.
  @inline(__always) public init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) {
    self.init(transA: transA, transB: transB, d1: transA ? m : n, d2: transA ? n : k)
  }

  /// "NT n=576 k=192" or "TN m=576 n=192".
  public var description: String {
    (transA ? "T" : "N") + (transB ? "T" : "N") + (transA ? " m=\(d1) n=\(d2)" : " n=\(d1) k=\(d2)")
  }

  /// "NT:576x192", the key in `GEMMPlan.encoded`.
  var key: String { (transA ? "T" : "N") + (transB ? "T" : "N") + ":\(d1)x\(d2)" }

  /// (m, n, k) of a call of this class with `batch` rows (or reduction length for `transA`).
  public func dims(batch: Int) -> (m: Int, n: Int, k: Int) {
    transA ? (d1, d2, batch) : (batch, d1, d2)
  }
}

/// The library of each GEMM class; classes not listed run on OpenBLAS.
public struct GEMMPlan: Equatable, Sendable, CustomStringConvertible {
  public var routes: [(shape: GEMMShape, library: GEMMLibrary)]

  public init(routes: [(shape: GEMMShape, library: GEMMLibrary)] = []) { self.routes = routes }

  public static func == (a: GEMMPlan, b: GEMMPlan) -> Bool { a.encoded == b.encoded }

  /// The classes routed to oneDNN (one call).
  public var onednnShapes: [GEMMShape] { routes.filter { $0.library == .onednn }.map(\.shape) }

  /// The classes routed to oneDNN per image.
  public var onednnImageShapes: [GEMMShape] { routes.filter { $0.library == .onednnImage }.map(\.shape) }

  /// The classes routed to cde's AVX2 kernel.
  public var kernelShapes: [GEMMShape] { routes.filter { $0.library == .kernel }.map(\.shape) }

  /// "NT:576x192=onednn,NN:192x576=openblas" (stored in checkpoints, broadcast by rank 0); "" for all OpenBLAS.
  public var encoded: String { routes.map { "\($0.shape.key)=\($0.library.rawValue)" }.joined(separator: ",") }

  /// Parses `encoded`; nil for a malformed string.
  public init?(encoded: String) {
    var r: [(GEMMShape, GEMMLibrary)] = []
    for item in encoded.split(separator: ",") {
      let kv = item.split(separator: "=")
      guard kv.count == 2, let lib = GEMMLibrary(rawValue: String(kv[1])) else { return nil }
      let sd = kv[0].split(separator: ":")
      guard sd.count == 2, sd[0].count == 2, let t = Optional(Array(sd[0])), t.allSatisfy({ $0 == "N" || $0 == "T" })
      else { return nil }
      let dd = sd[1].split(separator: "x").compactMap { Int($0) }
      guard dd.count == 2, dd[0] > 0, dd[1] > 0 else { return nil }
      r.append((GEMMShape(transA: t[0] == "T", transB: t[1] == "T", d1: dd[0], d2: dd[1]), lib))
    }
    routes = r
  }

  /// One line for logs: "oneDNN for NT n=576 k=192, ...; OpenBLAS for the rest".
  /// "oneDNN per image for NN n=192 k=768, ...", "cde_avx2 for TN m=576 n=192, ...": those
  /// parts only when there are such classes.
  public var description: String {
    let o = onednnShapes, i = onednnImageShapes, h = kernelShapes
    if o.isEmpty && i.isEmpty && h.isEmpty { return "OpenBLAS for every GEMM" }
    var parts: [String] = []
    if !h.isEmpty { parts.append("cde_avx2 for " + h.map(\.description).joined(separator: ", ")) }
    if !o.isEmpty { parts.append("oneDNN for " + o.map(\.description).joined(separator: ", ")) }
    if !i.isEmpty { parts.append("oneDNN per image for " + i.map(\.description).joined(separator: ", ")) }
    return parts.joined(separator: "; ") + "; OpenBLAS for the rest"
  }
}

/// Routes `sgemm` calls to OpenBLAS or oneDNN by GEMM class (`GEMMPlan`).
///
/// oneDNN (`dnnl_sgemm`, row-major) runs single-threaded per call like OpenBLAS: the
/// kernels split rows over `Threads.count` workers themselves. Debian's oneDNN uses
/// OpenMP, whose team size is a per-thread setting (`nthreads-var`), so every oneDNN
/// call first sets it to 1 on the calling thread (`omp_set_num_threads(1)`, looked up
/// at run time: no team, no spinning OpenMP threads).
public enum GEMMBackend {
  /// The classes that run on oneDNN, in one call or per image (both empty: everything on
  /// OpenBLAS). Written only by `install`.
  nonisolated(unsafe) static var onednnShapes: [GEMMShape] = []
  nonisolated(unsafe) static var onednnImageShapes: [GEMMShape] = []
  nonisolated(unsafe) static var kernelShapes: [GEMMShape] = []
  nonisolated(unsafe) public private(set) static var plan = GEMMPlan()
  /// The mode asked for (`--gemm`, `CDE_GEMM`); read by the commands that run the step.
  nonisolated(unsafe) public static var requestedMode: GEMMMode = .auto

  /// Makes `plan` the routing of every following `sgemm` call (not while GEMMs run). On a CPU
  /// without AVX2 and FMA (a plan from a checkpoint written elsewhere) the kernel's classes run
  /// on OpenBLAS.
  public static func install(_ p: GEMMPlan) {
    plan = p
    onednnShapes = p.onednnShapes
    onednnImageShapes = p.onednnImageShapes
    kernelShapes = kernelAvailable ? p.kernelShapes : []
  }

  /// True when the CPU runs cde's AVX2 kernel (x86 with AVX2 and FMA).
  public static let kernelAvailable: Bool = {
    #if arch(x86_64)
    let f = BLASRuntime.cpuFlags()
    return f.contains("avx2") && f.contains("fma")
    #else
    return false
    #endif
  }()

  /// Where a call goes: `.onednnImage` only for a class planned so whose `m` rows are whole
  /// images of `rowBlock` rows (`A` not transposed), else OpenBLAS for that class.
  @inline(__always) static func route(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, rowBlock: Int) -> GEMMLibrary {
    if onednnShapes.isEmpty && onednnImageShapes.isEmpty && kernelShapes.isEmpty { return .openblas }
    let s = GEMMShape(transA: transA, transB: transB, m: m, n: n, k: k)
    for x in kernelShapes where x == s { return .kernel }
    for x in onednnShapes where x == s { return .onednn }
    if rowBlock > 0 && !transA && m % rowBlock == 0 {
      for x in onednnImageShapes where x == s { return .onednnImage }
    }
    return .openblas
  }

  /// `omp_set_num_threads`, when oneDNN's OpenMP runtime is loaded.
  static let ompSetNumThreads: (@convention(c) (Int32) -> Void)? = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads") else { return nil }
    return unsafeBitCast(sym, to: (@convention(c) (Int32) -> Void).self)
  }()

  /// One single-threaded `dnnl_sgemm`, same arguments as `cblas_sgemm` (row-major).
  @inline(__always) static func dnnl(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    ompSetNumThreads?(1)
    let st = dnnl_sgemm(CChar(transA ? 84 : 78), CChar(transB ? 84 : 78), Int64(m), Int64(n), Int64(k), alpha, a,
                        Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
    precondition(st == dnnl_success, "dnnl_sgemm failed (status \(st.rawValue)) for \(m)x\(n)x\(k)")
  }

  /// Whether cde's kernel takes a call with these `alpha` and `beta` (`cde_sgemm_avx2`'s contract;
  /// the others go to OpenBLAS).
  @inline(__always) static func kernelTakes(alpha: Float, beta: Float) -> Bool { alpha == 1 || beta == 0 }

  /// One single-threaded call of cde's AVX2 kernel, `cblas_sgemm`'s arguments (row-major) and an
  /// optional bias that starts every chain (then `beta` is 0). Needs `alpha == 1` or `beta == 0`.
  @inline(__always) static func kernelCall(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil
  ) {
    let st = cde_sgemm_avx2(transA ? 1 : 0, transB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb),
                            beta, c, Int64(ldc), bias)
    precondition(st == 0, "cde_sgemm_avx2: unsupported alpha \(alpha), beta \(beta), bias \(bias != nil)")
  }

  /// `sgemm` on cde's AVX2 kernel: rows split over the workers (any split: every row's bits are
  /// its own), one single-threaded call per chunk.
  static func kernelSgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil,
    parallel: Bool
  ) {
    if !splitsRows(parallel: parallel, m: m, n: n, k: k) {
      kernelCall(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
                 c: c, ldc: ldc, bias: bias)
      return
    }
    parallelChunks(m, align: 6, minChunk: 12) { s, e in
      kernelCall(transA: transA, transB: transB, m: e - s, n: n, k: k, alpha: alpha, a: a + (transA ? s : s * lda), lda: lda,
                 b: b, ldb: ldb, beta: beta, c: c + s * ldc, ldc: ldc, bias: bias)
    }
  }

  /// `sgemm` on oneDNN: rows split over the workers as for OpenBLAS, one single-threaded call per chunk.
  static func onednnSgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool
  ) {
    if !splitsRows(parallel: parallel, m: m, n: n, k: k) {
      dnnl(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
           c: c, ldc: ldc)
      return
    }
    parallelChunks(m, align: 16, minChunk: 16) { s, e in
      dnnl(transA: transA, transB: transB, m: e - s, n: n, k: k, alpha: alpha, a: a + (transA ? s : s * lda), lda: lda,
           b: b, ldb: ldb, beta: beta, c: c + s * ldc, ldc: ldc)
    }
  }

  /// `sgemm` (`A` not transposed) on oneDNN per image: one single-threaded call of exactly
  /// `rowBlock` rows for each of the `m / rowBlock` images, the images split over the workers.
  static func onednnImageSgemm(
    transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, rowBlock: Int, parallel: Bool
  ) {
    let images = m / rowBlock
    let run = { (s: Int, e: Int) in
      for i in s..<e {
        dnnl(transA: false, transB: transB, m: rowBlock, n: n, k: k, alpha: alpha, a: a + i * rowBlock * lda, lda: lda,
             b: b, ldb: ldb, beta: beta, c: c + i * rowBlock * ldc, ldc: ldc)
      }
    }
    if !parallel || Threads.count <= 1 || images < 2 { run(0, images); return }
    parallelChunks(images) { s, e in run(s, e) }
  }

  /// Calls `library` once, single-threaded, for `C[m,n] = op(A) op(B)` (packed leading dimensions;
  /// `.onednnImage`: images of `imageRows` rows when they divide `m`, else one call).
  static func call(_ library: GEMMLibrary, _ s: GEMMShape, m: Int, n: Int, k: Int, a: UnsafePointer<Float>,
                   b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, imageRows: Int = 0) {
    let lda = s.transA ? m : k, ldb = s.transB ? k : n
    switch library {
    case .onednnImage where !s.transA && imageRows > 0 && m % imageRows == 0:
      onednnImageSgemm(transB: s.transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c, ldc: n,
                       rowBlock: imageRows, parallel: false)
    case .onednnImage:
      dnnl(transA: s.transA, transB: s.transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c,
           ldc: n)
    case .openblas:
      cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans, Int32(m),
                  Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc(n)))
    case .onednn:
      dnnl(transA: s.transA, transB: s.transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c,
           ldc: n)
    case .kernel:
      kernelCall(transA: s.transA, transB: s.transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c,
                 ldc: n)
    }
  }
  @inline(__always) static func ldc(_ n: Int) -> Int { n }

  /// Row ranges `[s, e)` of a `rows`-row call that `rowStable` recomputes alone: sub-calls at
  /// unaligned offsets and lengths (a rank's or a chunk's share of a batch starts anywhere),
  /// tails, and the worker split's 16-row boundaries (weight gradients: shares of 16 and 32
  /// rows and halves, as the worker split cuts them); none shorter than `rowStableMinRows`
  /// (`sgemmRows` pads shorter calls). oneDNN 2.6's AVX2 kernels round a 32-row share of a
  /// weight gradient differently from the whole call, which (32, 64) catches.
  static func probeRanges(rows: Int, transA: Bool) -> [(Int, Int)] {
    let r = rowStableMinRows
    var out: [(Int, Int)] = transA
      ? [(0, 16), (16, rows), (32, 48), (32, 64), (0, rows / 32 * 16), (rows / 32 * 16, rows)]
      : [(0, r), (5, 5 + r), (197, rows - 3), (rows / 2 + 7, rows), (37, 37 + 2 * r + 11), (rows - r, rows)]
    out = out.filter { $0.0 >= 0 && $0.1 <= rows && $0.0 < $0.1 }
    return out
  }

  /// True when every row of `library`'s `C` is the same number whether computed in one call of
  /// `batch` rows or in sub-calls starting at other rows (`probeRanges`), bit for bit, on random
  /// data: the property that makes N ranks equal one rank and the result independent of the
  /// thread count (`sgemmRows`).
  public static func rowStable(_ library: GEMMLibrary, _ s: GEMMShape, batch: Int, seed: UInt64 = 1) -> Bool {
    let (m, n, k) = s.dims(batch: batch)
    let a = randomMatrix(m * k, seed: seed), b = randomMatrix(k * n, seed: seed &+ 1)
    defer { a.deallocate(); b.deallocate() }
    let full = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    let part = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    defer { full.deallocate(); part.deallocate() }
    call(library, s, m: m, n: n, k: k, a: a, b: b, c: full)
    let lda = s.transA ? m : k
    for (lo, hi) in probeRanges(rows: m, transA: s.transA) {
      let rows = hi - lo
      let ap = a + (s.transA ? lo : lo * lda)
      let ldb = s.transB ? k : n
      switch library {
      case .openblas:
        cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans, Int32(rows),
                    Int32(n), Int32(k), 1, ap, Int32(lda), b, Int32(ldb), 0, part, Int32(n))
      case .onednn, .onednnImage:
        dnnl(transA: s.transA, transB: s.transB, m: rows, n: n, k: k, alpha: 1, a: ap, lda: lda, b: b, ldb: ldb, beta: 0,
             c: part, ldc: n)
      case .kernel:
        kernelCall(transA: s.transA, transB: s.transB, m: rows, n: n, k: k, alpha: 1, a: ap, lda: lda, b: b, ldb: ldb, beta: 0,
                   c: part, ldc: n)
      }
      if memcmp(part, full + lo * n, rows * n * 4) != 0 { return false }
    }
    return true
  }

  /// Seconds of thread CPU time per call of `library` on `s` with `batch` rows, the calls summed
  /// (CPU time, so that preemption on a shared machine does not count). With `evict`, each call
  /// first writes over that buffer, untimed, so that the call finds its operands out of the L1
  /// and L2 caches as in a training step, where the kernels in between have used them.
  static func seconds(_ library: GEMMLibrary, _ s: GEMMShape, batch: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                      c: UnsafeMutablePointer<Float>, calls: Int, imageRows: Int = 0,
                      evict: UnsafeMutableBufferPointer<Float>? = nil) -> Double {
    let (m, n, k) = s.dims(batch: batch)
    guard let evict else {
      let t0 = CPUClock.threadSeconds()
      for _ in 0..<calls { call(library, s, m: m, n: n, k: k, a: a, b: b, c: c, imageRows: imageRows) }
      return (CPUClock.threadSeconds() - t0) / Double(calls)
    }
    var total = 0.0
    for _ in 0..<calls {
      for i in stride(from: 0, to: evict.count, by: 16) { evict[i] += 1 }
      let t0 = CPUClock.threadSeconds()
      call(library, s, m: m, n: n, k: k, a: a, b: b, c: c, imageRows: imageRows)
      total += CPUClock.threadSeconds() - t0
    }
    return total / Double(calls)
  }

  /// Floats that `decide` writes over before each timed call: 8 MiB, several L2 caches' worth.
  static let evictionFloats = 2 << 20

  /// One class's measurement: rows stable (oneDNN, the kernel), single-thread GFLOP/s of each library, the choice.
  public struct Measurement: Sendable {
    public var shape: GEMMShape
    public var batch: Int
    public var onednnRowStable: Bool
    public var openblasGFLOPs: Double
    public var onednnGFLOPs: Double
    /// oneDNN per image (`imageRows` rows per call); 0 when not timed (`A` transposed, or no image size given).
    public var onednnImageGFLOPs: Double
    /// cde's AVX2 kernel; 0 when not timed (no AVX2 and FMA).
    public var kernelGFLOPs: Double
    /// Whether the kernel's rows came out stable (they are by construction; checked like oneDNN's).
    public var kernelRowStable: Bool
    public var choice: GEMMLibrary
  }

  /// A library must beat OpenBLAS by this factor to be chosen (timing noise must not flip a tie).
  public static let margin = 1.03

  /// The plan for `shapes` under `mode`, and what was measured (`auto`: timings; `onednn`,
  /// `kernel`: row stability only, timings 0). Each class is timed at `batch` rows (reduction
  /// length for weight gradients), OpenBLAS, oneDNN, (with `imageRows > 0` dividing `batch`, `A`
  /// not transposed) oneDNN per image of `imageRows` rows and (AVX2 and FMA) the kernel,
  /// alternating `rounds` times, best of each, every call with its operands out of the L2 cache
  /// (`seconds`' `evict`: in the step they come from L3 or memory, which ranks libraries
  /// differently from repeated calls on hot operands). oneDNN in one call and the kernel are candidates
  /// only where their rows are stable; the fastest candidate must beat OpenBLAS by `margin`.
  public static func decide(_ shapes: [GEMMShape], batch: Int, imageRows: Int = 0, mode: GEMMMode, rounds: Int = 3)
    -> (GEMMPlan, [Measurement])
  {
    if mode == .openblas { return (GEMMPlan(), []) }
    var routes: [(shape: GEMMShape, library: GEMMLibrary)] = []
    var out: [Measurement] = []
    let probeRows = max(batch, 2 * rowStableMinRows + 64)
    let ev = UnsafeMutableBufferPointer<Float>.allocate(capacity: mode == .auto ? evictionFloats : 0)
    ev.initialize(repeating: 0)
    defer { ev.deallocate() }
    for s in shapes where !routes.contains(where: { $0.shape == s }) {
      let stable = rowStable(.onednn, s, batch: probeRows)
      let kernelStable = kernelAvailable && rowStable(.kernel, s, batch: probeRows)
      let perImage = !s.transA && imageRows > 0 && batch % imageRows == 0
      var ob = 0.0, od = 0.0, oi = 0.0, ok = 0.0, pick = GEMMLibrary.openblas
      if mode == .auto {
        let (m, n, k) = s.dims(batch: batch)
        let a = randomMatrix(m * k, seed: 5), b = randomMatrix(k * n, seed: 6)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        let flop = 2 * Double(m) * Double(n) * Double(k)
        let calls = max(1, Int(2e8 / flop))
        var tb = Double.infinity, td = Double.infinity, ti = Double.infinity, tk = Double.infinity
        _ = seconds(.onednn, s, batch: batch, a: a, b: b, c: c, calls: 1)  // oneDNN generates its kernel on the first call
        if perImage { _ = seconds(.onednnImage, s, batch: batch, a: a, b: b, c: c, calls: 1, imageRows: imageRows) }
        if kernelStable { _ = seconds(.kernel, s, batch: batch, a: a, b: b, c: c, calls: 1) }  // its scratch
        for _ in 0..<rounds {
          tb = min(tb, seconds(.openblas, s, batch: batch, a: a, b: b, c: c, calls: calls, evict: ev))
          td = min(td, seconds(.onednn, s, batch: batch, a: a, b: b, c: c, calls: calls, evict: ev))
          if perImage {
            ti = min(ti, seconds(.onednnImage, s, batch: batch, a: a, b: b, c: c, calls: calls, imageRows: imageRows, evict: ev))
          }
          if kernelStable { tk = min(tk, seconds(.kernel, s, batch: batch, a: a, b: b, c: c, calls: calls, evict: ev)) }
        }
        ob = flop / tb / 1e9
        od = flop / td / 1e9
        oi = perImage ? flop / ti / 1e9 : 0
        ok = kernelStable ? flop / tk / 1e9 : 0
        let candidates: [(Double, GEMMLibrary)] = [(stable ? td : .infinity, .onednn), (ti, .onednnImage), (tk, .kernel)]
        let best = candidates.min { $0.0 < $1.0 }!
        if best.0 * margin < tb { pick = best.1 }
      } else if mode == .kernel {
        precondition(kernelAvailable, "--gemm kernel needs AVX2 and FMA (checked by the commands)")
        pick = .kernel
      } else if stable {
        pick = .onednn
      } else if perImage {
        pick = .onednnImage
      }
      routes.append((s, pick))
      out.append(Measurement(shape: s, batch: batch, onednnRowStable: stable, openblasGFLOPs: ob, onednnGFLOPs: od,
                             onednnImageGFLOPs: oi, kernelGFLOPs: ok, kernelRowStable: kernelStable, choice: pick))
    }
    return (GEMMPlan(routes: routes), out)
  }

  /// The oneDNN version, "2.6.3".
  public static var onednnVersion: String {
    guard let v = dnnl_version()?.pointee else { return "?" }
    return "\(v.major).\(v.minor).\(v.patch)"
  }

  /// The CPU instruction set oneDNN dispatches to ("avx512_core", "avx2", ...), from `ONEDNN_MAX_CPU_ISA` and the CPU.
  public static var onednnISA: String {
    switch dnnl_get_effective_cpu_isa() {
    case dnnl_cpu_isa_sse41: return "sse41"
    case dnnl_cpu_isa_avx: return "avx"
    case dnnl_cpu_isa_avx2: return "avx2"
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic"
    case dnnl_cpu_isa_avx512_core: return "avx512_core"
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
    default: return "other"
    }
  }
}

/// `count` floats in [-1, 1) spread like uniform noise: the Weyl sequence
/// `frac((i + seed) * golden ratio) * 2 - 1` (no rounding coincidences between rows); caller deallocates.
func randomMatrix(_ count: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
  let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
  let g = 0.6180339887498949, o = Double(seed) * 0.7548776662466927
  for i in 0..<count {
    let x = Double(i) * g + o
    p[i] = Float((x - x.rounded(.down)) * 2 - 1)
  }
  return p
}
