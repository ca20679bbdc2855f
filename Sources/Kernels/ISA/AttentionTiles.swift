/// Register-tiled products for attention heads of width 64 (ViT-Tiny/S/B),
/// used instead of one OpenBLAS call per head, whose fixed costs (packing,
/// edge tiles of T = 197) dominate at these sizes.
///
/// Every output element is one fused multiply-add chain over the inner index
/// in increasing order, so results do not depend on the thread count, nor on
/// which of the two tile sets below the build uses (both give the same bits).
///
/// Two tile sets, chosen when the file is compiled (`CDE_AVX512`, set by Package.swift
/// for `KernelsAVX512`, the AVX-512 copy of this folder, and for a native build on a CPU
/// with AVX-512F): 512-bit tiles on `SIMD16<Float>` (16 accumulator vectors need the 32
/// registers of AVX-512), and 256-bit tiles on `SIMD8<Float>` for AVX2's 16 registers,
/// where the 512-bit tiles spill and ran at a third of the rate. `KernelISA` picks the
/// copy at run time.
package enum HeadTiles {
  package static let width = 64

  /// Floats of per-worker scratch `forward`/`backward` need for `t` tokens.
  package static func scratchCount(t: Int) -> Int {
    let tp = padded(t)
    return width * tp + t * tp
  }

  /// Columns of one output tile of `abT`: two vectors.
  #if CDE_AVX512
  package static let columnTile = 32
  #else
  package static let columnTile = 16
  #endif

  /// `t` rounded up to a multiple of `columnTile`.
  @inline(__always) package static func padded(_ t: Int) -> Int { (t + columnTile - 1) / columnTile * columnTile }

  /// `bt[c, j] = b[j, c]` for `j < n`, 0 for `n <= j < padded(n)`: `bt [64, padded(n)]`.
  @inline(__always)
  static func transpose64(_ b: UnsafePointer<Float>, ldb: Int, n: Int, into bt: UnsafeMutablePointer<Float>) {
    let np = padded(n)
    for j in 0..<n {
      let row = b + j * ldb
      for c in 0..<width { bt[c * np + j] = row[c] }
    }
    if np > n { for c in 0..<width { (bt + c * np + n).update(repeating: 0, count: np - n) } }
  }

  #if CDE_AVX512
  /// `C[m, 0..<padded(n)] = scale * A[m, 64] B^T` with `B^T` given as `bt [64, padded(n)]`
  /// (`transpose64`); columns `n..<padded(n)` of C receive 0.
  /// Tiles of 8 rows x 32 columns: 16 accumulators, 2 vector loads and 8 broadcasts
  /// per 16 FMAs (4-row tiles ran at half this rate, bound by loads and FMA latency).
  static func abT(_ a: UnsafePointer<Float>, lda: Int, bt: UnsafePointer<Float>, n: Int, m: Int, scale: Float,
                  c: UnsafeMutablePointer<Float>, ldc: Int) {
    let np = padded(n)
    let sv = V16(repeating: scale)
    var i0 = 0
    while i0 < m {
      let rows = min(8, m - i0)
      let a0 = a + i0 * lda
      let a1 = a + min(i0 + 1, m - 1) * lda, a2 = a + min(i0 + 2, m - 1) * lda, a3 = a + min(i0 + 3, m - 1) * lda
      let a4 = a + min(i0 + 4, m - 1) * lda, a5 = a + min(i0 + 5, m - 1) * lda, a6 = a + min(i0 + 6, m - 1) * lda
      let a7 = a + min(i0 + 7, m - 1) * lda
      var j0 = 0
      while j0 < np {
        let z = V16(repeating: 0)
        var c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z
        var c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z
        var kb = bt + j0
        for k in 0..<width {
          let b0 = load16(kb), b1 = load16(kb + 16)
          var x = V16(repeating: a0[k]); c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
          x = V16(repeating: a1[k]); c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
          x = V16(repeating: a2[k]); c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
          x = V16(repeating: a3[k]); c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
          x = V16(repeating: a4[k]); c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
          x = V16(repeating: a5[k]); c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
          x = V16(repeating: a6[k]); c60 = c60.addingProduct(x, b0); c61 = c61.addingProduct(x, b1)
          x = V16(repeating: a7[k]); c70 = c70.addingProduct(x, b0); c71 = c71.addingProduct(x, b1)
          kb += np
        }
        var r = c + i0 * ldc + j0
        store16(c00 * sv, r); store16(c01 * sv, r + 16)
        if rows > 1 { r += ldc; store16(c10 * sv, r); store16(c11 * sv, r + 16) }
        if rows > 2 { r += ldc; store16(c20 * sv, r); store16(c21 * sv, r + 16) }
        if rows > 3 { r += ldc; store16(c30 * sv, r); store16(c31 * sv, r + 16) }
        if rows > 4 { r += ldc; store16(c40 * sv, r); store16(c41 * sv, r + 16) }
        if rows > 5 { r += ldc; store16(c50 * sv, r); store16(c51 * sv, r + 16) }
        if rows > 6 { r += ldc; store16(c60 * sv, r); store16(c61 * sv, r + 16) }
        if rows > 7 { r += ldc; store16(c70 * sv, r); store16(c71 * sv, r + 16) }
        j0 += 32
      }
      i0 += 8
    }
  }

  /// `C[m, 64] = A[m, k] B[k, 64]`, element `A[r, j]` at `a[r * lda + j * acs]`
  /// (`acs = 1`: A row-major; `lda = 1, acs = stride`: A given transposed).
  /// Tiles of 6 rows x 64 columns: 24 accumulators, 4 loads and 6 broadcasts per 24 FMAs.
  /// (`bp` is not used by these tiles.)
  static func ab(_ a: UnsafePointer<Float>, lda: Int, acs: Int = 1, b: UnsafePointer<Float>, ldb: Int, m: Int, k: Int,
                 c: UnsafeMutablePointer<Float>, ldc: Int, bp: UnsafeMutablePointer<Float>) {
    var i0 = 0
    while i0 < m {
      let rows = min(6, m - i0)
      let a0 = a + i0 * lda, a1 = a + min(i0 + 1, m - 1) * lda, a2 = a + min(i0 + 2, m - 1) * lda
      let a3 = a + min(i0 + 3, m - 1) * lda, a4 = a + min(i0 + 4, m - 1) * lda, a5 = a + min(i0 + 5, m - 1) * lda
      let z = V16(repeating: 0)
      var c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z
      var c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z
      var c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z
      var br = b
      var ja = 0
      for _ in 0..<k {
        let b0 = load16(br), b1 = load16(br + 16), b2 = load16(br + 32), b3 = load16(br + 48)
        var x = V16(repeating: a0[ja])
        c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1); c02 = c02.addingProduct(x, b2); c03 = c03.addingProduct(x, b3)
        x = V16(repeating: a1[ja])
        c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1); c12 = c12.addingProduct(x, b2); c13 = c13.addingProduct(x, b3)
        x = V16(repeating: a2[ja])
        c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1); c22 = c22.addingProduct(x, b2); c23 = c23.addingProduct(x, b3)
        x = V16(repeating: a3[ja])
        c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1); c32 = c32.addingProduct(x, b2); c33 = c33.addingProduct(x, b3)
        x = V16(repeating: a4[ja])
        c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1); c42 = c42.addingProduct(x, b2); c43 = c43.addingProduct(x, b3)
        x = V16(repeating: a5[ja])
        c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1); c52 = c52.addingProduct(x, b2); c53 = c53.addingProduct(x, b3)
        ja += acs
        br += ldb
      }
      var r = c + i0 * ldc
      store16(c00, r); store16(c01, r + 16); store16(c02, r + 32); store16(c03, r + 48)
      if rows > 1 { r += ldc; store16(c10, r); store16(c11, r + 16); store16(c12, r + 32); store16(c13, r + 48) }
      if rows > 2 { r += ldc; store16(c20, r); store16(c21, r + 16); store16(c22, r + 32); store16(c23, r + 48) }
      if rows > 3 { r += ldc; store16(c30, r); store16(c31, r + 16); store16(c32, r + 32); store16(c33, r + 48) }
      if rows > 4 { r += ldc; store16(c40, r); store16(c41, r + 16); store16(c42, r + 32); store16(c43, r + 48) }
      if rows > 5 { r += ldc; store16(c50, r); store16(c51, r + 16); store16(c52, r + 32); store16(c53, r + 48) }
      i0 += 6
    }
  }

  #else
  /// `C[m, 0..<padded(n)] = scale * A[m, 64] B^T` with `B^T` given as `bt [64, padded(n)]`
  /// (`transpose64`); columns `n..<padded(n)` of C receive 0.
  /// Tiles of 6 rows x 16 columns: 12 accumulators, 2 vector loads and 6 broadcasts per 12 FMAs.
  static func abT(_ a: UnsafePointer<Float>, lda: Int, bt: UnsafePointer<Float>, n: Int, m: Int, scale: Float,
                  c: UnsafeMutablePointer<Float>, ldc: Int) {
    let np = padded(n)
    let sv = V8(repeating: scale)
    var i0 = 0
    while i0 < m {
      let rows = min(6, m - i0)
      let a0 = a + i0 * lda
      let a1 = a + min(i0 + 1, m - 1) * lda, a2 = a + min(i0 + 2, m - 1) * lda, a3 = a + min(i0 + 3, m - 1) * lda
      let a4 = a + min(i0 + 4, m - 1) * lda, a5 = a + min(i0 + 5, m - 1) * lda
      var j0 = 0
      while j0 < np {
        let z = V8(repeating: 0)
        var c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z
        var c40 = z, c41 = z, c50 = z, c51 = z
        var kb = bt + j0
        for k in 0..<width {
          let b0 = load8(kb), b1 = load8(kb + 8)
          var x = V8(repeating: a0[k]); c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
          x = V8(repeating: a1[k]); c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
          x = V8(repeating: a2[k]); c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
          x = V8(repeating: a3[k]); c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
          x = V8(repeating: a4[k]); c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
          x = V8(repeating: a5[k]); c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
          kb += np
        }
        var r = c + i0 * ldc + j0
        store8(c00 * sv, r); store8(c01 * sv, r + 8)
        if rows > 1 { r += ldc; store8(c10 * sv, r); store8(c11 * sv, r + 8) }
        if rows > 2 { r += ldc; store8(c20 * sv, r); store8(c21 * sv, r + 8) }
        if rows > 3 { r += ldc; store8(c30 * sv, r); store8(c31 * sv, r + 8) }
        if rows > 4 { r += ldc; store8(c40 * sv, r); store8(c41 * sv, r + 8) }
        if rows > 5 { r += ldc; store8(c50 * sv, r); store8(c51 * sv, r + 8) }
        j0 += 16
      }
      i0 += 6
    }
  }

  /// `C[m, 64] = A[m, k] B[k, 64]`, element `A[r, j]` at `a[r * lda + j * acs]`
  /// (`acs = 1`: A row-major; `lda = 1, acs = stride`: A given transposed).
  /// B is first copied into `bp` (`k * 64` floats) as four column blocks `[k, 16]`: its
  /// rows lie `ldb` floats apart (576 in ViT-Tiny), which maps them onto a few L1 sets.
  /// Tiles of 4 rows x 16 columns: 8 accumulators, 2 loads and 4 broadcasts per 8 FMAs
  /// (6-row tiles left the compiler short of registers: it spilled 3 accumulators).
  static func ab(_ a: UnsafePointer<Float>, lda: Int, acs: Int = 1, b: UnsafePointer<Float>, ldb: Int, m: Int, k: Int,
                 c: UnsafeMutablePointer<Float>, ldc: Int, bp: UnsafeMutablePointer<Float>) {
    for r in 0..<k {
      let src = b + r * ldb
      for blk in 0..<4 {
        let dst = bp + (blk * k + r) * 16
        store8(load8(src + blk * 16), dst)
        store8(load8(src + blk * 16 + 8), dst + 8)
      }
    }
    for blk in 0..<4 {
      let j0 = blk * 16
      var i0 = 0
      while i0 < m {
        let rows = min(4, m - i0)
        let a0 = a + i0 * lda, a1 = a + min(i0 + 1, m - 1) * lda, a2 = a + min(i0 + 2, m - 1) * lda
        let a3 = a + min(i0 + 3, m - 1) * lda
        let z = V8(repeating: 0)
        var c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z
        var br = UnsafePointer(bp + blk * k * 16)
        var ja = 0
        for _ in 0..<k {
          let b0 = load8(br), b1 = load8(br + 8)
          var x = V8(repeating: a0[ja]); c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
          x = V8(repeating: a1[ja]); c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
          x = V8(repeating: a2[ja]); c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
          x = V8(repeating: a3[ja]); c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
          ja += acs
          br += 16
        }
        var r = c + i0 * ldc + j0
        store8(c00, r); store8(c01, r + 8)
        if rows > 1 { r += ldc; store8(c10, r); store8(c11, r + 8) }
        if rows > 2 { r += ldc; store8(c20, r); store8(c21, r + 8) }
        if rows > 3 { r += ldc; store8(c30, r); store8(c31, r + 8) }
        i0 += 4
      }
    }
  }

  #endif

  /// One head forward: `P = softmax(scale Q K^T)` into `p [t, padded(t)]` (row stride
  /// `padded(t)`), `O = P V` into `o` (row stride `ldo`). `q, k, v` rows have stride `ld`.
  package static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                      p: UnsafeMutablePointer<Float>, o: UnsafeMutablePointer<Float>, ldo: Int, t: Int, scale: Float,
                      scratch: UnsafeMutablePointer<Float>) {
    let tp = padded(t)
    let kt = scratch
    transpose64(k, ldb: ld, n: t, into: kt)
    abT(q, lda: ld, bt: kt, n: t, m: t, scale: scale, c: p, ldc: tp)
    for r in 0..<t { softmaxRowLoop(p + r * tp, t) }
    // K^T is no longer needed: its scratch takes the packed V.
    ab(p, lda: tp, b: v, ldb: ld, m: t, k: t, c: o, ldc: ldo, bp: kt)
  }

  /// One head backward (see `Attention.backward`) with `p` as `forward` wrote it:
  /// writes `dq, dk, dv` (row stride `ld`).
  package static func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                       p: UnsafePointer<Float>, dO: UnsafePointer<Float>, ldo: Int,
                       dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                       t: Int, scale: Float, scratch: UnsafeMutablePointer<Float>) {
    let tp = padded(t)
    let bt = scratch, ds = scratch + width * tp
    // dP = dO V^T, then dS = scale P * (dP - rowsum(dP P)) in place.
    transpose64(v, ldb: ld, n: t, into: bt)
    abT(dO, lda: ldo, bt: bt, n: t, m: t, scale: 1, c: ds, ldc: tp)
    for r in 0..<t { softmaxBackwardRowLoop(ds + r * tp, p + r * tp, t, scale) }
    // dQ = dS K, dK = dS^T Q, dV = P^T dO (the transposed factors read with swapped strides;
    // V^T's scratch takes the packed right-hand factor).
    ab(ds, lda: tp, b: k, ldb: ld, m: t, k: t, c: dq, ldc: ld, bp: bt)
    ab(ds, lda: 1, acs: tp, b: q, ldb: ld, m: t, k: t, c: dk, ldc: ld, bp: bt)
    ab(p, lda: 1, acs: tp, b: dO, ldb: ldo, m: t, k: t, c: dv, ldc: ld, bp: bt)
  }
}
