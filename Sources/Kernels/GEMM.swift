import CBLAS

/// Row-major single-precision GEMM on OpenBLAS (or oneDNN or cde's AVX2 kernel for the classes
/// `GEMMBackend.plan` routes there; the kernel takes calls with `alpha == 1` or `beta == 0`):
/// `C[M,N] = alpha * op(A) * op(B) + beta * C`, where `op(A)` is `[M,K]`
/// (`A` stored `[M,K]`, or `[K,M]` when `transA`) and `op(B)` is `[K,N]`
/// (`B` stored `[K,N]`, or `[N,K]` when `transB`). Leading dimensions are the
/// row strides of the stored matrices.
///
/// With more than one worker the M output rows are split into contiguous
/// chunks, one single-threaded OpenBLAS call each.
///
/// `rowBlock > 0` says that the M rows are whole images of `rowBlock` token rows each,
/// which lets a class planned `.onednnImage` run on oneDNN one image per call.
@inline(__always)
public func sgemm(
  transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
  b: UnsafePointer<Float>, ldb: Int,
  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
  parallel: Bool = true, rowBlock: Int = 0
) {
  if m == 0 || n == 0 { return }
  switch GEMMBackend.route(transA: transA, transB: transB, m: m, n: n, k: k, rowBlock: rowBlock) {  // GEMMBackend.swift
  case .onednn:
    GEMMBackend.onednnSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
                            ldb: ldb, beta: beta, c: c, ldc: ldc, parallel: parallel)
    return
  case .onednnImage:
    GEMMBackend.onednnImageSgemm(transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                                 beta: beta, c: c, ldc: ldc, rowBlock: rowBlock, parallel: parallel)
    return
  case .kernel where GEMMBackend.kernelTakes(alpha: alpha, beta: beta):
    GEMMBackend.kernelSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
                            ldb: ldb, beta: beta, c: c, ldc: ldc, parallel: parallel)
    return
  case .openblas, .kernel:
    break
  }
  let ta = transA ? CblasTrans : CblasNoTrans
  let tb = transB ? CblasTrans : CblasNoTrans
  if !splitsRows(parallel: parallel, m: m, n: n, k: k) {
    cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                beta, c, Int32(ldc))
    return
  }
  // Chunk boundaries on multiples of the kernel's row group keep every row's rounding (see `blasRowGroup`).
  parallelChunks(m, align: blasRowGroup == 1 ? 16 : 48, minChunk: 16) { s, e in
    let aOff = transA ? s : s * lda
    cblas_sgemm(CblasRowMajor, ta, tb, Int32(e - s), Int32(n), Int32(k), alpha, a + aOff, Int32(lda), b,
                Int32(ldb), beta, c + s * ldc, Int32(ldc))
  }
}

/// Whether an `sgemm` call splits its rows over the workers (every library): only when asked,
/// with more than one worker, and when each chunk keeps a useful amount of work.
@inline(__always) func splitsRows(parallel: Bool, m: Int, n: Int, k: Int) -> Bool {
  parallel && Threads.count > 1 && 2 * m * n * k >= 4_000_000 && m >= 32
}

/// Output rows that the running OpenBLAS sgemm kernel computes as one group (row-major `C`,
/// `A` not transposed). OpenBLAS's AVX2 kernel (cores Haswell and Zen) works on groups of 12
/// rows and rounds a row differently depending on its position in its group (and the last
/// `m % 12` rows differently again), so a row's value depends on where it sits in the call:
/// splitting a call is exact only at multiples of 12. The other kernels measured (SkylakeX,
/// Cooperlake, Sandybridge, Prescott, ...) round every row alike (group 1).
public let blasRowGroup: Int = {
  switch BLASRuntime.coreName.lowercased() {
  case "haswell", "zen": return 12
  default: return 1
  }
}()

/// Rows below which `sgemmRows` pads the call (see there).
public let rowStableMinRows = 64

/// `sgemm` with `A` not transposed, whose row `i` of `C` is the same number
/// whatever `m` is. OpenBLAS switches to a "small matrix" kernel with a
/// different rounding when the problem is small, so a call with few rows
/// (a small batch, e.g. one rank's share of it) would round differently from
/// a large one; calls with `m < rowStableMinRows` therefore run on copies
/// padded with zero rows to `rowStableMinRows` (temporary buffers: only tiny
/// models and batches get there). With `rowBlock` (see `sgemm`), a call that goes to
/// oneDNN per image needs no padding: each image is its own call; nor does a call to cde's
/// AVX2 kernel, whose rows never depend on `m`.
public func sgemmRows(
  transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
  b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, rowBlock: Int = 0
) {
  if m == 0 || n == 0 { return }
  let library = GEMMBackend.route(transA: false, transB: transB, m: m, n: n, k: k, rowBlock: rowBlock)
  if m >= rowStableMinRows || library == .onednnImage || (library == .kernel && GEMMBackend.kernelTakes(alpha: alpha, beta: beta)) {
    sgemm(transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
          rowBlock: rowBlock)
    return
  }
  let mp = rowStableMinRows
  let ap = UnsafeMutablePointer<Float>.allocate(capacity: mp * k)
  let cp = UnsafeMutablePointer<Float>.allocate(capacity: mp * n)
  defer {
    ap.deallocate()
    cp.deallocate()
  }
  ap.initialize(repeating: 0, count: mp * k)
  cp.initialize(repeating: 0, count: mp * n)
  for r in 0..<m {
    (ap + r * k).update(from: a + r * lda, count: k)
    if beta != 0 { (cp + r * n).update(from: c + r * ldc, count: n) }
  }
  sgemm(transB: transB, m: mp, n: n, k: k, alpha: alpha, a: ap, lda: k, b: b, ldb: ldb, beta: beta, c: cp, ldc: n,
        parallel: false)
  for r in 0..<m { (c + r * ldc).update(from: cp + r * n, count: n) }
}
