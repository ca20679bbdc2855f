/// The attention core under `optim.precision: bf16` (GEMM+BF16.swift): its six products per
/// head (two forward, four backward) multiply bfloat16 copies of their operands (rounded to
/// nearest even) with fp32 sums, as PyTorch's autocast runs `Q K^T` and `P V` in bf16; the softmax,
/// its backward and every output stay fp32, and `probs` holds the fp32 `P`.
///
/// Per image, one oneDNN matmul call per product, batched over the `H` heads, on one thread:
/// an output element's bits depend only on its image, never on the thread count.
///
/// Forward, per image and head: `S = Q K^T` (`[T, T]`), `P = softmax_rows(scale S)`,
/// `O = bf16(P) V`. Backward: `dP = dO V^T`, `dV = bf16(P)^T dO`,
/// `dS = scale P * (dP - rowsum(dP * P))`, `dQ = bf16(dS) K`, `dK = bf16(dS)^T Q`; `Q`, `K`,
/// `V` and `dO` enter as bf16 copies. The backward rounds `Q`, `K`, `V` and `P` again rather
/// than keeping the forward's bf16 copies, which would cost `N·T·(3D + H·ld)` halves per block.
extension Attention {
  /// bf16 values of per-worker scratch of the bf16 path (in `BF16Scratch` slot 3): the copies
  /// of one image's `qkv` (`T·3D`), of its `dO` (`T·D`) and of its `P` or `dS` (`H·T·ld`,
  /// `ld = probsStride(t:headDim:)`). The fp32 `dP` (`H·T·ld`) is in the caller's `scratch`
  /// (`scratchCount(t:heads:headDim:)`).
  static func bf16ScratchCount(t: Int, heads: Int, headDim: Int) -> Int {
    let d = heads * headDim
    return 4 * t * d + heads * t * probsStride(t: t, headDim: headDim)
  }

  /// One worker's pieces of the bf16 scratch (see `bf16ScratchCount`).
  private struct BF16Work {
    let qkv, dO, square: UnsafeMutablePointer<UInt16>

    init(_ base: UnsafeMutablePointer<UInt16>, t: Int, d: Int) {
      qkv = base
      dO = base + 3 * t * d
      square = base + 4 * t * d
    }
  }

  /// This call's bf16 scratch for `n` images: one `bf16ScratchCount` per worker.
  private static func bf16Scratch(n: Int, t: Int, heads: Int, headDim: Int) -> UnsafeMutablePointer<UInt16> {
    BF16Scratch.buffer(3, min(Threads.count, max(n, 1)) * bf16ScratchCount(t: t, heads: heads, headDim: headDim))
  }

  /// The batched primitive of one product over the heads of an image: per head `i`,
  /// `C_i [m, n] = op(A_i) [m, k] op(B_i) [k, n]`, bf16 `A` and `B`, fp32 `C`; `sa`, `sb`, `sc`
  /// elements from one head's `A`, `B`, `C` to the next.
  private static func headsProduct(
    heads: Int, m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int,
    sa: Int, sb: Int, sc: Int
  ) -> BF16Matmul {
    BF16Matmul.primitive(BF16Matmul.Key(m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, transA: transA, transB: transB,
                                        accumulate: false, batch: heads, strideA: sa, strideB: sb, strideC: sc))
  }

  /// `dst[r * ld ..< r * ld + cols] = bf16(src[r * ld ...])` for `r < rows` (one worker's share).
  @inline(__always) private static func convertRows(
    _ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into dst: UnsafeMutablePointer<UInt16>
  ) {
    for r in 0..<rows { BF16.convertRun(src + r * ld, count: cols, into: dst + r * ld) }
  }

  /// Forward on bf16 products (see the type's notes); arguments as `forward`'s.
  static func forwardBF16(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    n: Int, t: Int, heads: Int, headDim: Int
  ) {
    let d = heads * headDim, ld = probsStride(t: t, headDim: headDim), hd = headDim
    let scale = 1 / Float(headDim).squareRoot()
    // S_h = Q_h K_h^T: Q [T, hd] and K [T, hd] at ld 3D, head h at column h hd; S [T, T] at ld `ld`.
    let scores = headsProduct(heads: heads, m: t, n: t, k: hd, transA: false, transB: true, lda: 3 * d, ldb: 3 * d,
                              ldc: ld, sa: hd, sb: hd, sc: t * ld)
    // O_h = P_h V_h: P [T, T] at ld `ld`, V [T, hd] at ld 3D, O [T, hd] at ld D.
    let mix = headsProduct(heads: heads, m: t, n: hd, k: t, transA: false, transB: false, lda: ld, ldb: 3 * d, ldc: d,
                           sa: t * ld, sb: hd, sc: hd)
    let halves = bf16Scratch(n: n, t: t, heads: heads, headDim: headDim)
    let per = bf16ScratchCount(t: t, heads: heads, headDim: headDim)
    let work = BF16Scratch.prepare(workers: min(Threads.count, n), bytes: max(scores.scratchBytes, mix.scratchBytes))
    parallelWorkers(n) { w, s, e in
      GEMMBackend.ompSetNumThreads?(1)
      let stream = work.streams[w]!, pad = work.pads[w]
      let b = BF16Work(halves + w * per, t: t, d: d)
      for img in s..<e {
        let x = qkv + img * t * 3 * d, p = probs + img * heads * t * ld
        BF16.convertRun(x, count: t * 3 * d, into: b.qkv)
        scores.run(stream, a: b.qkv, b: b.qkv + d, c: p, scratch: pad)
        for r in 0..<(heads * t) { softmaxRow(p + r * ld, t, scale: scale) }
        convertRows(p, rows: heads * t, cols: t, ld: ld, into: b.square)
        mix.run(stream, a: b.square, b: b.qkv + 2 * d, c: out + img * t * d, scratch: pad)
      }
    }
  }

  /// Backward on bf16 products (see the type's notes); arguments as `backward`'s (`scratch`
  /// holds `dP`).
  static func backwardBF16(
    dqkv: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, n: Int, t: Int, heads: Int, headDim: Int
  ) {
    let d = heads * headDim, ld = probsStride(t: t, headDim: headDim), hd = headDim
    let scale = 1 / Float(headDim).squareRoot()
    // dP_h = dO_h V_h^T: dO [T, hd] at ld D, V [T, hd] at ld 3D; dP [T, T] at ld `ld`.
    let dP = headsProduct(heads: heads, m: t, n: t, k: hd, transA: false, transB: true, lda: d, ldb: 3 * d, ldc: ld,
                          sa: hd, sb: hd, sc: t * ld)
    // dV_h = P_h^T dO_h (and dK_h = dS_h^T Q_h with B at ld 3D): results at ld 3D.
    let dV = headsProduct(heads: heads, m: t, n: hd, k: t, transA: true, transB: false, lda: ld, ldb: d, ldc: 3 * d,
                          sa: t * ld, sb: hd, sc: hd)
    let dK = headsProduct(heads: heads, m: t, n: hd, k: t, transA: true, transB: false, lda: ld, ldb: 3 * d,
                          ldc: 3 * d, sa: t * ld, sb: hd, sc: hd)
    // dQ_h = dS_h K_h.
    let dQ = headsProduct(heads: heads, m: t, n: hd, k: t, transA: false, transB: false, lda: ld, ldb: 3 * d,
                          ldc: 3 * d, sa: t * ld, sb: hd, sc: hd)
    let halves = bf16Scratch(n: n, t: t, heads: heads, headDim: headDim)
    let per = bf16ScratchCount(t: t, heads: heads, headDim: headDim), perFloats = scratchCount(t: t, heads: heads, headDim: headDim)
    let bytes = max(dP.scratchBytes, dV.scratchBytes, dK.scratchBytes, dQ.scratchBytes)
    let work = BF16Scratch.prepare(workers: min(Threads.count, n), bytes: bytes)
    parallelWorkers(n) { w, s, e in
      GEMMBackend.ompSetNumThreads?(1)
      let stream = work.streams[w]!, pad = work.pads[w]
      let b = BF16Work(halves + w * per, t: t, d: d), gradP = scratch + w * perFloats
      for img in s..<e {
        let p = probs + img * heads * t * ld, g = dqkv + img * t * 3 * d
        BF16.convertRun(qkv + img * t * 3 * d, count: t * 3 * d, into: b.qkv)
        BF16.convertRun(dOut + img * t * d, count: t * d, into: b.dO)
        dP.run(stream, a: b.dO, b: b.qkv + 2 * d, c: gradP, scratch: pad)
        convertRows(p, rows: heads * t, cols: t, ld: ld, into: b.square)
        dV.run(stream, a: b.square, b: b.dO, c: g + 2 * d, scratch: pad)
        for r in 0..<(heads * t) { softmaxBackwardRow(gradP + r * ld, p + r * ld, t, scale) }
        convertRows(gradP, rows: heads * t, cols: t, ld: ld, into: b.square)
        dQ.run(stream, a: b.square, b: b.qkv + d, c: g, scratch: pad)
        dK.run(stream, a: b.square, b: b.qkv, c: g + d, scratch: pad)
      }
    }
  }
}
