import CBLAS

/// Row-major single-precision GEMM on OpenBLAS:
/// `C[M,N] = alpha * op(A) * op(B) + beta * C`, where `op(A)` is `[M,K]`
/// (`A` stored `[M,K]`, or `[K,M]` when `transA`) and `op(B)` is `[K,N]`
/// (`B` stored `[K,N]`, or `[N,K]` when `transB`). Leading dimensions are the
/// row strides of the stored matrices.
///
/// With more than one worker the M output rows are split into contiguous
/// chunks, one single-threaded OpenBLAS call each.
@inline(__always)
public func sgemm(
  transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
  b: UnsafePointer<Float>, ldb: Int,
  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
  parallel: Bool = true
) {
  if m == 0 || n == 0 { return }
  let ta = transA ? CblasTrans : CblasNoTrans
  let tb = transB ? CblasTrans : CblasNoTrans
  // Split only when each chunk keeps a useful amount of work.
  let flops = 2 * m * n * k
  if !parallel || Threads.count <= 1 || flops < 4_000_000 || m < 32 {
    cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                beta, c, Int32(ldc))
    return
  }
  parallelChunks(m, align: 16, minChunk: 16) { s, e in
    let aOff = transA ? s : s * lda
    cblas_sgemm(CblasRowMajor, ta, tb, Int32(e - s), Int32(n), Int32(k), alpha, a + aOff, Int32(lda), b,
                Int32(ldb), beta, c + s * ldc, Int32(ldc))
  }
}
