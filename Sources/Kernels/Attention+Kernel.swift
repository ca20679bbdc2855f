import CGEMM

/// One attention head of width 64 on cde's AVX2 GEMM kernel (Sources/CGEMM) instead of the
/// AVX2 attention tiles (ISA/AttentionTiles.swift): the kernel keeps 12 accumulators where the
/// tiles of `HeadTiles.ab` keep 8 (6-row tiles spilled in Swift), and needs no transposed copy of
/// K or V. Both compute every element as one fused multiply-add chain over the inner index in
/// increasing order from 0 (times the scale at the end), so they give the same bits
/// (`KernelISATests.testAttentionTilesGiveTheSameBits`); the saved probabilities keep the
/// tiles' layout (row stride `HeadTiles.padded(t)`, padding columns 0).
enum HeadKernel {
  /// `P = softmax(scale Q K^T)` into `p [t, padded(t)]`, `O = P V` into `o` (row stride `ldo`);
  /// `q, k, v` rows have stride `ld`.
  static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                      p: UnsafeMutablePointer<Float>, o: UnsafeMutablePointer<Float>, ldo: Int, t: Int, scale: Float) {
    let tp = HeadTiles.padded(t), w = HeadTiles.width
    gemm(false, true, t, t, w, scale, q, ld, k, ld, p, tp)
    for r in 0..<t {
      let row = p + r * tp
      if tp > t { (row + t).update(repeating: 0, count: tp - t) }
      softmaxRowLoop(row, t)
    }
    gemm(false, false, t, w, t, 1, p, tp, v, ld, o, ldo)
  }

  /// Backward of `forward` (see `Attention.backward`) with `p` as `forward` wrote it: writes
  /// `dq, dk, dv` (row stride `ld`); `ds` holds `t * padded(t)` floats of scratch.
  static func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                       p: UnsafePointer<Float>, dO: UnsafePointer<Float>, ldo: Int,
                       dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                       t: Int, scale: Float, ds: UnsafeMutablePointer<Float>) {
    let tp = HeadTiles.padded(t), w = HeadTiles.width
    // dP = dO V^T, then dS = scale P * (dP - rowsum(dP P)) in place.
    gemm(false, true, t, t, w, 1, dO, ldo, v, ld, ds, tp)
    for r in 0..<t { softmaxBackwardRowLoop(ds + r * tp, p + r * tp, t, scale) }
    // dQ = dS K, dK = dS^T Q, dV = P^T dO.
    gemm(false, false, t, w, t, 1, ds, tp, k, ld, dq, ld)
    gemm(true, false, t, w, t, 1, ds, tp, q, ld, dk, ld)
    gemm(true, false, t, w, t, 1, p, tp, dO, ldo, dv, ld)
  }

  /// `C[m, n] = alpha op(A) op(B)` on the kernel, row-major with the given leading dimensions.
  @inline(__always)
  private static func gemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: UnsafePointer<Float>,
                           _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    let st = cde_sgemm_avx2(ta ? 1 : 0, tb ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb), 0, c,
                            Int64(ldc), nil)
    precondition(st == 0, "cde_sgemm_avx2 refused an attention product")
  }
}
