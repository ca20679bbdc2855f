import Foundation

/// Layer normalisation over the last dimension (PyTorch `nn.LayerNorm`):
/// `y = (x - mean) * rstd * w + b`, `rstd = 1 / sqrt(var + eps)` with the
/// biased variance. Shapes: `x, y [N, C]`, `w, b [C]`, saved `mean, rstd [N]`.
///
/// Row sums run over 16-lane vectors (lane sums added at the end) plus a scalar
/// tail, in a fixed order per row, so results do not depend on the thread count.
public enum LayerNorm {
  public static func forward(
    y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    x: UnsafePointer<Float>, w: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int, c: Int, eps: Float,
    xStride: Int? = nil
  ) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.layerNormForward, t0) }
    let xs = xStride ?? c
    let cv = c / 16 * 16
    parallelChunks(n, minChunk: 32) { s, e in
      for r in s..<e {
        let xr = x + r * xs
        let yr = y + r * c
        var acc = V16(repeating: 0)
        var i = 0
        while i < cv {
          acc += load16(xr + i)
          i += 16
        }
        var sum = hsum16(acc)
        while i < c {
          sum += xr[i]
          i += 1
        }
        let m = sum / Float(c)
        let mv = V16(repeating: m)
        acc = V16(repeating: 0)
        i = 0
        while i < cv {
          let d = load16(xr + i) - mv
          acc += d * d
          i += 16
        }
        var v = hsum16(acc)
        while i < c {
          let d = xr[i] - m
          v += d * d
          i += 1
        }
        let rs = 1 / (v / Float(c) + eps).squareRoot()
        let rv = V16(repeating: rs)
        i = 0
        while i < cv {
          store16((load16(xr + i) - mv) * rv * load16(w + i) + load16(b + i), yr + i)
          i += 16
        }
        while i < c {
          yr[i] = (xr[i] - m) * rs * w[i] + b[i]
          i += 1
        }
        mean[r] = m
        rstd[r] = rs
      }
    }
  }

  /// Floats of `partial` scratch that `backward` needs for `n` rows of `c`.
  public static func scratchCount(n: Int, c: Int) -> Int { (n + reductionBlock - 1) / reductionBlock * 2 * c }

  /// Backward: with `xhat = (x - mean) rstd` and `g = dy * w`,
  /// `dx (+)= rstd * (g - mean(g) - xhat * mean(g * xhat))`,
  /// `dw += sum_n dy * xhat`, `db += sum_n dy`.
  /// `dx` is accumulated into (residual stream) unless `accumulate` is false.
  /// `partial` (optional, `scratchCount(n:c:)` floats) avoids an allocation.
  public static func backward(
    dx: UnsafeMutablePointer<Float>, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    w: UnsafePointer<Float>, n: Int, c: Int, accumulate: Bool = true, xStride: Int? = nil, dxStride: Int? = nil,
    partial scratch: UnsafeMutablePointer<Float>? = nil
  ) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.layerNormBackward, t0) }
    let xs = xStride ?? c
    let dxs = dxStride ?? c
    let cv = c / 16 * 16
    let blocks = (n + reductionBlock - 1) / reductionBlock
    let partial = scratch ?? UnsafeMutablePointer<Float>.allocate(capacity: blocks * 2 * c)
    defer { if scratch == nil { partial.deallocate() } }
    parallelChunks(blocks) { s, e in
      for blk in s..<e {
        let pw = partial + blk * 2 * c
        let pb = pw + c
        pw.update(repeating: 0, count: 2 * c)
        for r in (blk * reductionBlock)..<min(n, (blk + 1) * reductionBlock) {
          let xr = x + r * xs
          let dyr = dy + r * c
          let dxr = dx + r * dxs
          let m = mean[r]
          let rs = rstd[r]
          let mv = V16(repeating: m), rv = V16(repeating: rs)
          var ag = V16(repeating: 0), agx = V16(repeating: 0)
          var i = 0
          while i < cv {
            let xh = (load16(xr + i) - mv) * rv
            let d = load16(dyr + i)
            let g = d * load16(w + i)
            ag += g
            agx += g * xh
            store16(load16(pw + i) + d * xh, pw + i)
            store16(load16(pb + i) + d, pb + i)
            i += 16
          }
          var sg = hsum16(ag), sgx = hsum16(agx)
          while i < c {
            let xh = (xr[i] - m) * rs
            let g = dyr[i] * w[i]
            sg += g
            sgx += g * xh
            pw[i] += dyr[i] * xh
            pb[i] += dyr[i]
            i += 1
          }
          sg /= Float(c)
          sgx /= Float(c)
          let sgv = V16(repeating: sg), sgxv = V16(repeating: sgx)
          i = 0
          while i < cv {
            let xh = (load16(xr + i) - mv) * rv
            let v = rv * (load16(dyr + i) * load16(w + i) - sgv - xh * sgxv)
            store16(accumulate ? load16(dxr + i) + v : v, dxr + i)
            i += 16
          }
          while i < c {
            let xh = (xr[i] - m) * rs
            let v = rs * (dyr[i] * w[i] - sg - xh * sgx)
            dxr[i] = accumulate ? dxr[i] + v : v
            i += 1
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
