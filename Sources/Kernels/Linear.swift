/// Fully connected layer, `y = x W^T + b` (PyTorch `nn.Linear`).
///
/// Shapes: `x [N, I]`, `W [O, I]`, `b [O]`, `y [N, O]`.
public enum Linear {
  /// `y[N,O] = x[N,I] W[O,I]^T + b[O]` (bias broadcast first, then one GEMM with beta 1).
  public static func forward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
    b: UnsafePointer<Float>?, n: Int, inF: Int, outF: Int
  ) {
    if let b {
      parallelChunks(n, minChunk: 64) { s, e in
        for r in s..<e { (y + r * outF).update(from: b, count: outF) }
      }
    }
    sgemm(transB: true, m: n, n: outF, k: inF, a: x, lda: inF, b: w, ldb: inF, beta: b == nil ? 0 : 1,
          c: y, ldc: outF)
  }

  /// Backward of `forward`:
  /// `dx[N,I] (=|+=) dy[N,O] W[O,I]` (overwritten unless `accumulateInput`),
  /// `dW[O,I] += dy^T[O,N] x[N,I]`, `db[O] += sum_n dy[n,:]`.
  public static func backward(
    dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
    n: Int, inF: Int, outF: Int, accumulateInput: Bool = false
  ) {
    if let dx {
      sgemm(m: n, n: inF, k: outF, a: dy, lda: outF, b: w, ldb: inF, beta: accumulateInput ? 1 : 0, c: dx, ldc: inF)
    }
    sgemm(transA: true, m: outF, n: inF, k: n, a: dy, lda: outF, b: x, ldb: inF, beta: 1, c: dw, ldc: inF)
    if let db { columnSums(dy, rows: n, cols: outF, into: db) }
  }
}

/// Reduction block used by every row reduction: partial sums over fixed
/// blocks of rows, then the blocks added in order. Independent of the thread count.
public let reductionBlock = 64

/// `out[c] += sum_r a[r, c]` for `a [rows, cols]`, deterministic for any thread count.
public func columnSums(_ a: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
  let blocks = (rows + reductionBlock - 1) / reductionBlock
  if blocks <= 1 {
    for r in 0..<rows {
      let row = a + r * cols
      for c in 0..<cols { out[c] += row[c] }
    }
    return
  }
  let partial = UnsafeMutablePointer<Float>.allocate(capacity: blocks * cols)
  defer { partial.deallocate() }
  parallelChunks(blocks) { s, e in
    for blk in s..<e {
      let p = partial + blk * cols
      p.initialize(repeating: 0, count: cols)
      for r in (blk * reductionBlock)..<min(rows, (blk + 1) * reductionBlock) {
        let row = a + r * cols
        for c in 0..<cols { p[c] += row[c] }
      }
    }
  }
  for blk in 0..<blocks {
    let p = partial + blk * cols
    for c in 0..<cols { out[c] += p[c] }
  }
}
