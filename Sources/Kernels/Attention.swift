/// Multi-head self-attention core (timm `Attention` between `qkv` and `proj`).
///
/// `qkv [N, T, 3, H, hd]` (rows of `3D`, `D = H hd`) as the qkv Linear writes it;
/// per image n and head h: `S = scale * Q K^T` (`[T,T]`, `scale = 1/sqrt(hd)`),
/// `P = softmax_rows(S)` (saved, `[N, H, T, T]`), `O = P V` written to
/// `out [N, T, D]` at columns `h*hd ..< (h+1)*hd` (heads concatenated).
public enum Attention {
  public static func forward(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    n: Int, t: Int, heads: Int, headDim: Int
  ) {
    let d = heads * headDim
    let scale = 1 / Float(headDim).squareRoot()
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
  /// `scratch` holds `Threads.count * T * T` floats.
  public static func backward(
    dqkv: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, n: Int, t: Int, heads: Int, headDim: Int
  ) {
    let d = heads * headDim
    let scale = 1 / Float(headDim).squareRoot()
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

/// In-place softmax of one row of `n` values: `p_i = exp(x_i - max) / sum_j exp(x_j - max)`.
@inline(__always)
public func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
  var mx = -Float.infinity
  for i in 0..<n { mx = max(mx, x[i]) }
  let m = V16(repeating: mx)
  var acc = V16(repeating: 0)
  var i = 0
  while i + 16 <= n {
    let e = vexp(load16(x + i) - m)
    store16(e, x + i)
    acc += e
    i += 16
  }
  var sum = acc.sum()
  if i < n {
    var v = V16(repeating: -Float.infinity)
    for j in i..<n { v[j - i] = x[j] - mx }
    let e = vexp(v)
    for j in i..<n {
      x[j] = e[j - i]
      sum += e[j - i]
    }
  }
  let inv = 1 / sum
  i = 0
  while i + 16 <= n {
    store16(load16(x + i) * inv, x + i)
    i += 16
  }
  while i < n {
    x[i] *= inv
    i += 1
  }
}

/// `g_i <- scale * p_i * (g_i - sum_j g_j p_j)` for one row (softmax backward).
@inline(__always)
func softmaxBackwardRow(_ g: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ n: Int, _ scale: Float) {
  var dot: Float = 0
  for i in 0..<n { dot += g[i] * p[i] }
  for i in 0..<n { g[i] = scale * p[i] * (g[i] - dot) }
}
