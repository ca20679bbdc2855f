import CBLAS
import Foundation
import KernelsAVX512

/// Multi-head self-attention core (timm `Attention` between `qkv` and `proj`).
///
/// `qkv [N, T, 3, H, hd]` (rows of `3D`, `D = H hd`) as the qkv Linear writes it;
/// per image n and head h: `S = scale * Q K^T` (`[T,T]`, `scale = 1/sqrt(hd)`),
/// `P = softmax_rows(S)` (saved, `[N, H, T, T]`), `O = P V` written to
/// `out [N, T, D]` at columns `h*hd ..< (h+1)*hd` (heads concatenated).
///
/// Under `GEMMBackend.precision == .bf16` the six products (forward and backward) run on bf16
/// copies of their operands with fp32 sums (Attention+BF16.swift).
public enum Attention {
  /// Floats of scratch per worker thread that `forward` and `backward` need, in either
  /// precision.
  public static func scratchCount(t: Int, heads: Int, headDim: Int) -> Int {
    let tiles = KernelISA.avx512Copy ? KernelsAVX512.HeadTiles.scratchCount(t: t) : HeadTiles.scratchCount(t: t)
    let fp32 = headDim == HeadTiles.width ? max(t * t, tiles) : t * t
    return max(fp32, heads * t * probsStride(t: t, headDim: headDim))
  }

  /// Floats from one row of `probs` to the next: `t`, padded to a multiple of the tiles'
  /// column width when the head width is 64 (the tiled path; 16 or 32 columns, by the copy
  /// `KernelISA.active` runs).
  public static func probsStride(t: Int, headDim: Int) -> Int {
    headDim == HeadTiles.width ? paddedTokens(t) : t
  }

  /// Whether heads of width 64 run on cde's AVX2 GEMM kernel (Attention+Kernel.swift) rather than
  /// the build copy's tiles: where the CPU runs the kernel and the build's copy is active (the
  /// AVX-512 copy keeps its 512-bit tiles). The same bits either way.
  /// `CDE_ATTENTION_TILES=1` keeps the tiles (for comparisons).
  static var headsOnKernel: Bool { GEMMBackend.kernelAvailable && !KernelISA.avx512Copy && !tilesForced }
  static let tilesForced = ProcessInfo.processInfo.environment["CDE_ATTENTION_TILES"] == "1"

  /// `t` padded to the active copy's tile width (`HeadTiles.padded`).
  @inline(__always) static func paddedTokens(_ t: Int) -> Int {
    KernelISA.avx512Copy ? KernelsAVX512.HeadTiles.padded(t) : HeadTiles.padded(t)
  }

  /// Floats of `probs` for `n` images: `[N, H, T, probsStride]`.
  public static func probsCount(n: Int, t: Int, heads: Int, headDim: Int) -> Int {
    n * heads * t * probsStride(t: t, headDim: headDim)
  }

  /// `probs` holds `probsCount(n:t:heads:headDim:)` floats; `scratch` (optional)
  /// `Threads.count * scratchCount(t:heads:headDim:)` floats.
  public static func forward(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    n: Int, t: Int, heads: Int, headDim: Int, scratch: UnsafeMutablePointer<Float>? = nil
  ) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.attentionForward, t0, flop: 4 * Double(n * t * t * heads * headDim)) }
    if GEMMBackend.precision == .bf16 {
      forwardBF16(out: out, probs: probs, qkv: qkv, n: n, t: t, heads: heads, headDim: headDim)
      return
    }
    let d = heads * headDim
    let scale = 1 / Float(headDim).squareRoot()
    if headDim == HeadTiles.width {
      let per = scratchCount(t: t, heads: heads, headDim: headDim), tp = paddedTokens(t)
      let buf = scratch ?? .allocate(capacity: Threads.count * per)
      defer { if scratch == nil { buf.deallocate() } }
      let wide = KernelISA.avx512Copy, onKernel = headsOnKernel
      parallelWorkers(n * heads) { worker, s, e in
        for task in s..<e {
          let img = task / heads, h = task % heads
          let base = qkv + img * t * 3 * d
          let q = base + h * headDim, k = base + d + h * headDim, v = base + 2 * d + h * headDim
          let p = probs + task * t * tp, o = out + img * t * d + h * headDim, w = buf + worker * per
          if wide {
            KernelsAVX512.HeadTiles.forward(q: q, k: k, v: v, ld: 3 * d, p: p, o: o, ldo: d, t: t, scale: scale, scratch: w)
          } else if onKernel {
            HeadKernel.forward(q: q, k: k, v: v, ld: 3 * d, p: p, o: o, ldo: d, t: t, scale: scale)
          } else {
            HeadTiles.forward(q: q, k: k, v: v, ld: 3 * d, p: p, o: o, ldo: d, t: t, scale: scale, scratch: w)
          }
        }
      }
      return
    }
    parallelFor(n * heads) { task in
      let img = task / heads, h = task % heads
      let base = qkv + img * t * 3 * d
      let q = base + h * headDim, k = base + d + h * headDim, v = base + 2 * d + h * headDim
      let p = probs + task * t * t
      sgemm(transB: true, m: t, n: t, k: headDim, alpha: scale, a: q, lda: 3 * d, b: k, ldb: 3 * d,
            c: p, ldc: t, parallel: false)
      for r in 0..<t { softmaxRow(p + r * t, t) }
      sgemm(m: t, n: headDim, k: t, a: p, lda: t, b: v, ldb: 3 * d, c: out + img * t * d + h * headDim,
            ldc: d, parallel: false)
    }
  }

  /// Backward. Given `dOut [N, T, D]`, writes `dqkv [N, T, 3D]` (overwritten):
  /// `dP = dO V^T`, `dV = P^T dO`, `dS = P * (dP - rowsum(dP * P))`,
  /// `dQ = scale dS K`, `dK = scale dS^T Q`.
  /// `scratch` holds `Threads.count * scratchCount(t:heads:headDim:)` floats.
  public static func backward(
    dqkv: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, n: Int, t: Int, heads: Int, headDim: Int
  ) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.attentionBackward, t0, flop: 8 * Double(n * t * t * heads * headDim)) }
    if GEMMBackend.precision == .bf16 {
      backwardBF16(dqkv: dqkv, dOut: dOut, probs: probs, qkv: qkv, scratch: scratch, n: n, t: t, heads: heads,
                   headDim: headDim)
      return
    }
    let d = heads * headDim
    let scale = 1 / Float(headDim).squareRoot()
    if headDim == HeadTiles.width {
      let per = scratchCount(t: t, heads: heads, headDim: headDim), tp = paddedTokens(t)
      let wide = KernelISA.avx512Copy, onKernel = headsOnKernel
      parallelWorkers(n * heads) { worker, s, e in
        for task in s..<e {
          let img = task / heads, h = task % heads
          let base = qkv + img * t * 3 * d, dbase = dqkv + img * t * 3 * d
          let o = h * headDim
          let p = probs + task * t * tp, dO = dOut + img * t * d + o, w = scratch + worker * per
          if wide {
            KernelsAVX512.HeadTiles.backward(q: base + o, k: base + d + o, v: base + 2 * d + o, ld: 3 * d, p: p, dO: dO, ldo: d,
                                             dq: dbase + o, dk: dbase + d + o, dv: dbase + 2 * d + o, t: t, scale: scale,
                                             scratch: w)
          } else if onKernel {
            HeadKernel.backward(q: base + o, k: base + d + o, v: base + 2 * d + o, ld: 3 * d, p: p, dO: dO, ldo: d,
                                dq: dbase + o, dk: dbase + d + o, dv: dbase + 2 * d + o, t: t, scale: scale, ds: w)
          } else {
            HeadTiles.backward(q: base + o, k: base + d + o, v: base + 2 * d + o, ld: 3 * d, p: p, dO: dO, ldo: d,
                               dq: dbase + o, dk: dbase + d + o, dv: dbase + 2 * d + o, t: t, scale: scale, scratch: w)
          }
        }
      }
      return
    }
    parallelWorkers(n * heads) { worker, s, e in
      let dp = scratch + worker * t * t
      for task in s..<e {
        let img = task / heads, h = task % heads
        let base = qkv + img * t * 3 * d
        let q = base + h * headDim, k = base + d + h * headDim, v = base + 2 * d + h * headDim
        let dbase = dqkv + img * t * 3 * d
        let dq = dbase + h * headDim, dk = dbase + d + h * headDim, dv = dbase + 2 * d + h * headDim
        let p = probs + task * t * t
        let dO = dOut + img * t * d + h * headDim
        // dP = dO V^T ; dV = P^T dO
        sgemm(transB: true, m: t, n: t, k: headDim, a: dO, lda: d, b: v, ldb: 3 * d, c: dp, ldc: t, parallel: false)
        sgemm(transA: true, m: t, n: headDim, k: t, a: p, lda: t, b: dO, ldb: d, c: dv, ldc: 3 * d, parallel: false)
        // dS = P * (dP - sum(dP * P)) * scale, in place in dp.
        for r in 0..<t { softmaxBackwardRow(dp + r * t, p + r * t, t, scale) }
        sgemm(m: t, n: headDim, k: t, a: dp, lda: t, b: k, ldb: 3 * d, c: dq, ldc: 3 * d, parallel: false)
        sgemm(transA: true, m: t, n: headDim, k: t, a: dp, lda: t, b: q, ldb: 3 * d, c: dk, ldc: 3 * d, parallel: false)
      }
    }
  }
}

extension Attention {
  /// Attention output of the class token (query row 0) only, for the last
  /// block whose other tokens feed nothing: per image n and head h,
  /// `p = softmax(scale * K q_0)` (`[T]`, saved in `probs [N, H, T]`) and
  /// `out[n, h*hd ..< (h+1)*hd] = V^T p` (`out [N, D]`), keys and values of all
  /// T tokens from `qkv [N, T, 3D]`.
  public static func forwardClassQuery(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    n: Int, t: Int, heads: Int, headDim: Int
  ) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.attentionForward, t0, flop: 4 * Double(n * t * heads * headDim)) }
    let d = heads * headDim
    let scale = 1 / Float(headDim).squareRoot()
    parallelChunks(n * heads) { s, e in
      for task in s..<e {
        let img = task / heads, h = task % heads
        let base = qkv + img * t * 3 * d
        let q = base + h * headDim, k = base + d + h * headDim, v = base + 2 * d + h * headDim
        let p = probs + task * t, o = out + img * d + h * headDim
        // Outputs zeroed first: gemv scales y by beta 0, which keeps stale NaNs.
        p.update(repeating: 0, count: t)
        o.update(repeating: 0, count: headDim)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(t), Int32(headDim), scale, k, Int32(3 * d), q, 1, 0, p, 1)
        softmaxRow(p, t)
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(t), Int32(headDim), 1, v, Int32(3 * d), p, 1, 0, o, 1)
      }
    }
  }

  /// Backward of `forwardClassQuery`: given `dOut [N, D]`, writes all of
  /// `dqkv [N, T, 3D]`: `dp = V dO`, `ds = scale p * (dp - p.dp)`,
  /// `dq_0 = K^T ds` (other query rows 0), `dK = ds q_0^T`, `dV = p dO^T`.
  /// `scratch` holds `Threads.count * T` floats.
  public static func backwardClassQuery(
    dqkv: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, n: Int, t: Int, heads: Int, headDim: Int
  ) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.attentionBackward, t0, flop: 8 * Double(n * t * heads * headDim)) }
    let d = heads * headDim
    let scale = 1 / Float(headDim).squareRoot()
    // Query gradients of the non-class rows are zero.
    parallelChunks(n) { s, e in
      for img in s..<e {
        for r in 1..<max(t, 1) { (dqkv + (img * t + r) * 3 * d).update(repeating: 0, count: d) }
      }
    }
    parallelWorkers(n * heads) { worker, s, e in
      let dp = scratch + worker * t
      for task in s..<e {
        let img = task / heads, h = task % heads
        let base = qkv + img * t * 3 * d
        let q = base + h * headDim, k = base + d + h * headDim, v = base + 2 * d + h * headDim
        let dbase = dqkv + img * t * 3 * d
        let dq = dbase + h * headDim, dk = dbase + d + h * headDim, dv = dbase + 2 * d + h * headDim
        let p = probs + task * t
        let dO = dOut + img * d + h * headDim
        dp.update(repeating: 0, count: t)
        dq.update(repeating: 0, count: headDim)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(t), Int32(headDim), 1, v, Int32(3 * d), dO, 1, 0, dp, 1)
        softmaxBackwardRow(dp, p, t, scale)
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(t), Int32(headDim), 1, k, Int32(3 * d), dp, 1, 0, dq, 1)
        for j in 0..<t {
          let dkj = dk + j * 3 * d, dvj = dv + j * 3 * d
          let sj = dp[j], pj = p[j]
          for c in 0..<headDim {
            dkj[c] = sj * q[c]
            dvj[c] = pj * dO[c]
          }
        }
      }
    }
  }
}

/// In-place softmax of one row of `n` values scaled by `scale > 0`:
/// `p_i = exp(scale (x_i - max)) / sum_j exp(scale (x_j - max))` (`scale` 1: the same bits
/// as without it), in the copy `KernelISA.active` runs (ISA/Softmax.swift).
@inline(__always)
public func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int, scale: Float = 1) {
  if KernelISA.avx512Copy { KernelsAVX512.softmaxRowLoop(x, n, scale: scale) } else { softmaxRowLoop(x, n, scale: scale) }
}

/// `g_i <- scale * p_i * (g_i - sum_j g_j p_j)` for one row (softmax backward), in the active copy.
@inline(__always)
func softmaxBackwardRow(_ g: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ n: Int, _ scale: Float) {
  if KernelISA.avx512Copy {
    KernelsAVX512.softmaxBackwardRowLoop(g, p, n, scale)
  } else {
    softmaxBackwardRowLoop(g, p, n, scale)
  }
}
