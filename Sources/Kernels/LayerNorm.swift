import Foundation

/// Layer normalisation over the last dimension (PyTorch `nn.LayerNorm`):
/// `y = (x - mean) * rstd * w + b`, `rstd = 1 / sqrt(var + eps)` with the
/// biased variance. Shapes: `x, y [N, C]`, `w, b [C]`, saved `mean, rstd [N]`.
public enum LayerNorm {
  public static func forward(
    y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    x: UnsafePointer<Float>, w: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int, c: Int, eps: Float,
    xStride: Int? = nil
  ) {
    let xs = xStride ?? c
    parallelChunks(n, minChunk: 32) { s, e in
      for r in s..<e {
        let xr = x + r * xs
        let yr = y + r * c
        var sum: Float = 0
        for i in 0..<c { sum += xr[i] }
        let m = sum / Float(c)
        var v: Float = 0
        for i in 0..<c {
          let d = xr[i] - m
          v += d * d
        }
        let rs = 1 / (v / Float(c) + eps).squareRoot()
        for i in 0..<c { yr[i] = (xr[i] - m) * rs * w[i] + b[i] }
        mean[r] = m
        rstd[r] = rs
      }
    }
  }

  /// Backward: with `xhat = (x - mean) rstd` and `g = dy * w`,
  /// `dx (+)= rstd * (g - mean(g) - xhat * mean(g * xhat))`,
  /// `dw += sum_n dy * xhat`, `db += sum_n dy`.
  /// `dx` is accumulated into (residual stream) unless `accumulate` is false.
  public static func backward(
    dx: UnsafeMutablePointer<Float>, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    w: UnsafePointer<Float>, n: Int, c: Int, accumulate: Bool = true, xStride: Int? = nil, dxStride: Int? = nil
  ) {
    let xs = xStride ?? c
    let dxs = dxStride ?? c
    let blocks = (n + reductionBlock - 1) / reductionBlock
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: blocks * 2 * c)
    defer { partial.deallocate() }
    parallelChunks(blocks) { s, e in
      for blk in s..<e {
        let pw = partial + blk * 2 * c
        let pb = pw + c
        pw.initialize(repeating: 0, count: 2 * c)
        for r in (blk * reductionBlock)..<min(n, (blk + 1) * reductionBlock) {
          let xr = x + r * xs
          let dyr = dy + r * c
          let dxr = dx + r * dxs
          let m = mean[r]
          let rs = rstd[r]
          var sg: Float = 0
          var sgx: Float = 0
          for i in 0..<c {
            let xh = (xr[i] - m) * rs
            let g = dyr[i] * w[i]
            sg += g
            sgx += g * xh
            pw[i] += dyr[i] * xh
            pb[i] += dyr[i]
          }
          sg /= Float(c)
          sgx /= Float(c)
          if accumulate {
            for i in 0..<c {
              let xh = (xr[i] - m) * rs
              dxr[i] += rs * (dyr[i] * w[i] - sg - xh * sgx)
            }
          } else {
            for i in 0..<c {
              let xh = (xr[i] - m) * rs
              dxr[i] = rs * (dyr[i] * w[i] - sg - xh * sgx)
            }
          }
        }
      }
    }
    for blk in 0..<blocks {
      let pw = partial + blk * 2 * c
      for i in 0..<c {
        dw[i] += pw[i]
        db[i] += pw[c + i]
      }
    }
  }
}
