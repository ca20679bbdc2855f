/// Fully connected layer, `y = x W^T + b` (PyTorch `nn.Linear`).
///
/// Shapes: `x [N, I]`, `W [O, I]`, `b [O]`, `y [N, O]`.
/// Under `GEMMBackend.precision == .bf16` the three GEMMs take bf16 copies of their operands
/// and sum in fp32 (GEMM+BF16.swift); the outputs, bias and gradients stay fp32.
public enum Linear {
  /// Every row of `y` (and of `dx` in `backward`) is independent of `N` (`sgemmRows`).
  /// `rowBlock` (see `sgemm`): the `N` rows are whole images of that many tokens.
  ///
  /// `y[N,O] = r[N,O] + b[O] + x[N,I] W[O,I]^T`: `y` is first set to the bias
  /// broadcast (plus the residual `r` when given, the pre-norm block's skip
  /// connection), then one GEMM accumulates with beta 1, so the result is
  /// written in a single pass over `y` besides the GEMM itself. Without a residual, a class
  /// routed to cde's AVX2 kernel starts its chains from the bias inside the GEMM instead (same
  /// bits, no pass).
  public static func forward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
    b: UnsafePointer<Float>?, n: Int, inF: Int, outF: Int, residual: UnsafePointer<Float>? = nil, rowBlock: Int = 0
  ) {
    let bf16 = GEMMBackend.precision == .bf16
    var xb: UnsafeMutablePointer<UInt16>?, wb: UnsafeMutablePointer<UInt16>?
    if bf16 {  // GEMM+BF16.swift: x and W rounded to bf16 copies
      let tc = KernelProfiler.start()
      xb = BF16Scratch.buffer(0, n * inF)
      wb = BF16Scratch.buffer(1, outF * inF)
      BF16.convert(x, rows: n, cols: inF, ld: inF, into: xb!)
      BF16.convert(w, rows: outF, cols: inF, ld: inF, into: wb!)
      KernelProfiler.stop(.bf16Convert, tc)
    }
    let t0 = KernelProfiler.start()
    if !bf16, residual == nil, let b,
       GEMMBackend.route(transA: false, transB: true, m: n, n: outF, k: inF, rowBlock: rowBlock) == .kernel {
      // cde's kernel starts every chain from the bias itself: the same bits as the bias
      // broadcast below followed by beta 1, without the pass over `y`.
      GEMMBackend.kernelSgemm(transA: false, transB: true, m: n, n: outF, k: inF, alpha: 1, a: x, lda: inF, b: w, ldb: inF,
                              beta: 0, c: y, ldc: outF, bias: b, parallel: true)
      KernelProfiler.stop(.linearForward, t0, flop: 2 * Double(n) * Double(inF) * Double(outF))
      return
    }
    if let r = residual {
      parallelChunks(n, minChunk: 64) { s, e in
        for row in s..<e {
          let yr = y + row * outF, rr = r + row * outF
          if let b {
            for c in 0..<outF { yr[c] = rr[c] + b[c] }
          } else if yr != UnsafeMutablePointer(mutating: rr) {
            yr.update(from: rr, count: outF)
          }
        }
      }
    } else if let b {
      parallelChunks(n, minChunk: 64) { s, e in
        for r in s..<e { (y + r * outF).update(from: b, count: outF) }
      }
    }
    if let xb, let wb {
      GEMMBackend.bf16gemm(transA: false, transB: true, m: n, n: outF, k: inF, a: xb, lda: inF, b: wb, ldb: inF,
                           accumulate: b != nil || residual != nil, c: y, ldc: outF, rowBlock: rowBlock)
    } else {
      sgemmRows(transB: true, m: n, n: outF, k: inF, a: x, lda: inF, b: w, ldb: inF,
                beta: b == nil && residual == nil ? 0 : 1, c: y, ldc: outF, rowBlock: rowBlock)
    }
    KernelProfiler.stop(.linearForward, t0, flop: 2 * Double(n) * Double(inF) * Double(outF))
  }

  /// Floats of `partial` scratch that `backward` needs for the bias gradient.
  public static func scratchCount(n: Int, outF: Int) -> Int { (n + reductionBlock - 1) / reductionBlock * outF }

  /// Backward of `forward`:
  /// `dx[N,I] (=|+=) dy[N,O] W[O,I]` (overwritten unless `accumulateInput`),
  /// `dW[O,I] += dy^T[O,N] x[N,I]`, `db[O] += sum_n dy[n,:]`.
  /// `partial` (optional, `scratchCount(n:outF:)` floats) avoids an allocation.
  /// `dxRows >= n` (default `n`) computes `dx` for that many rows of `dy`
  /// (padding rows, see ViTActivations) while the weight and bias gradients sum
  /// the first `n` rows only. `rowBlock` (see `sgemm`): the rows are whole images of that many tokens.
  public static func backward(
    dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
    n: Int, inF: Int, outF: Int, accumulateInput: Bool = false, partial: UnsafeMutablePointer<Float>? = nil,
    dxRows: Int? = nil, rowBlock: Int = 0
  ) {
    if GEMMBackend.precision == .bf16 {
      backwardBF16(dx: dx, dw: dw, dy: dy, x: x, w: w, n: n, inF: inF, outF: outF, accumulateInput: accumulateInput,
                   dxRows: dxRows, rowBlock: rowBlock)
    } else {
      backwardFP32(dx: dx, dw: dw, dy: dy, x: x, w: w, n: n, inF: inF, outF: outF, accumulateInput: accumulateInput,
                   dxRows: dxRows, rowBlock: rowBlock)
    }
    if let db {
      let t2 = KernelProfiler.start()
      columnSums(dy, rows: n, cols: outF, into: db, partial: partial)
      KernelProfiler.stop(.biasGradient, t2)
    }
  }

  /// `dx` and `dW` of `backward` in fp32 (`sgemmRows`, `sgemm`).
  static func backwardFP32(
    dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
    w: UnsafePointer<Float>, n: Int, inF: Int, outF: Int, accumulateInput: Bool, dxRows: Int?, rowBlock: Int
  ) {
    let flop = 2 * Double(n) * Double(inF) * Double(outF)
    if let dx {
      let t0 = KernelProfiler.start()
      sgemmRows(m: max(n, dxRows ?? n), n: inF, k: outF, a: dy, lda: outF, b: w, ldb: inF, beta: accumulateInput ? 1 : 0, c: dx, ldc: inF,
                rowBlock: rowBlock)
      KernelProfiler.stop(.linearBackwardInput, t0, flop: flop)
    }
    let t1 = KernelProfiler.start()
    sgemm(transA: true, m: outF, n: inF, k: n, a: dy, lda: outF, b: x, ldb: inF, beta: 1, c: dw, ldc: inF)
    KernelProfiler.stop(.linearBackwardWeight, t1, flop: flop)
  }

  /// `dx` and `dW` of `backward` in mixed precision (`optim.precision: bf16`, GEMM+BF16.swift):
  /// `dy`, `W` and `x` rounded to bf16 copies, products summed in fp32 into the fp32 `dx` and `dW`.
  static func backwardBF16(
    dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
    w: UnsafePointer<Float>, n: Int, inF: Int, outF: Int, accumulateInput: Bool, dxRows: Int?, rowBlock: Int
  ) {
    let flop = 2 * Double(n) * Double(inF) * Double(outF)
    let rows = dx == nil ? n : max(n, dxRows ?? n)
    let tc = KernelProfiler.start()
    let dyb = BF16Scratch.buffer(0, rows * outF), xb = BF16Scratch.buffer(2, n * inF)
    BF16.convert(dy, rows: rows, cols: outF, ld: outF, into: dyb)
    BF16.convert(x, rows: n, cols: inF, ld: inF, into: xb)
    let wb = dx == nil ? nil : BF16Scratch.buffer(1, outF * inF)
    if let wb { BF16.convert(w, rows: outF, cols: inF, ld: inF, into: wb) }
    KernelProfiler.stop(.bf16Convert, tc)
    if let dx, let wb {
      let t0 = KernelProfiler.start()
      GEMMBackend.bf16gemm(transA: false, transB: false, m: rows, n: inF, k: outF, a: dyb, lda: outF, b: wb, ldb: inF,
                           accumulate: accumulateInput, c: dx, ldc: inF, rowBlock: rowBlock)
      KernelProfiler.stop(.linearBackwardInput, t0, flop: flop)
    }
    let t1 = KernelProfiler.start()
    GEMMBackend.bf16gemm(transA: true, transB: false, m: outF, n: inF, k: n, a: dyb, lda: outF, b: xb, ldb: inF,
                         accumulate: true, c: dw, ldc: inF)
    KernelProfiler.stop(.linearBackwardWeight, t1, flop: flop)
  }
}

/// Reduction block used by every row reduction: partial sums over fixed
/// blocks of rows, then the blocks added in order. Independent of the thread count.
public let reductionBlock = 64

/// `out[c] += sum_r a[r, c]` for `a [rows, cols]`, deterministic for any thread count.
/// `partial` (optional, `ceil(rows / reductionBlock) * cols` floats) avoids an allocation.
public func columnSums(_ a: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>,
                       partial scratch: UnsafeMutablePointer<Float>? = nil) {
  let blocks = (rows + reductionBlock - 1) / reductionBlock
  if blocks <= 1 {
    for r in 0..<rows {
      let row = a + r * cols
      for c in 0..<cols { out[c] += row[c] }
    }
    return
  }
  let partial = scratch ?? UnsafeMutablePointer<Float>.allocate(capacity: blocks * cols)
  defer { if scratch == nil { partial.deallocate() } }
  parallelChunks(blocks) { s, e in
    for blk in s..<e {
      let p = partial + blk * cols
      p.update(from: a + blk * reductionBlock * cols, count: cols)
      for r in (blk * reductionBlock + 1)..<min(rows, (blk + 1) * reductionBlock) {
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
