import Foundation

/// Resampling of the position-embedding grid to another grid size, the same
/// numbers as timm's `resample_abs_pos_embed` with its defaults, i.e.
/// `F.interpolate(mode="bicubic", align_corners=False, antialias=True)`.
///
/// The operation is linear and separable, so it is held as one dense matrix
/// `M [newH*newW, oldH*oldW] = Rh (x) Rw` (Kronecker product of the 1-D
/// resampling matrices): forward `new [newP, D] = M old [oldP, D]`, backward
/// `dOld += M^T dNew`.
///
/// 1-D weights (PyTorch's antialiased path, as Pillow): `scale = in/out`,
/// `support = 2 * max(scale, 1)`, for output i the centre `c = scale (i + 0.5)`,
/// taps `j` in `[max(int(c - support + 0.5), 0), min(int(c + support + 0.5), in))`,
/// weight `k((j - c + 0.5) / max(scale, 1))` normalised to sum 1, with the cubic
/// kernel `a = -0.5`: `k(x) = (a+2)|x|^3 - (a+3)|x|^2 + 1` for `|x| < 1`,
/// `a|x|^3 - 5a|x|^2 + 8a|x| - 4a` for `1 <= |x| < 2`, else 0.
public struct PosEmbedResampler {
  public let oldH: Int, oldW: Int, newH: Int, newW: Int
  /// `[newH*newW, oldH*oldW]`, row-major.
  public let matrix: [Float]

  public init(oldH: Int, oldW: Int, newH: Int, newW: Int) {
    self.oldH = oldH; self.oldW = oldW; self.newH = newH; self.newW = newW
    let rh = PosEmbedResampler.weights1D(inSize: oldH, outSize: newH)
    let rw = PosEmbedResampler.weights1D(inSize: oldW, outSize: newW)
    var m = [Float](repeating: 0, count: newH * newW * oldH * oldW)
    for oy in 0..<newH {
      for ox in 0..<newW {
        let row = (oy * newW + ox) * oldH * oldW
        for iy in 0..<oldH where rh[oy * oldH + iy] != 0 {
          for ix in 0..<oldW {
            m[row + iy * oldW + ix] = Float(rh[oy * oldH + iy] * rw[ox * oldW + ix])
          }
        }
      }
    }
    matrix = m
  }

  static func cubic(_ x0: Double) -> Double {
    let a = -0.5
    let x = abs(x0)
    if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
    if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
    return 0
  }

  /// `R [out, in]`: the antialiased bicubic 1-D resampling matrix.
  public static func weights1D(inSize: Int, outSize: Int) -> [Double] {
    var r = [Double](repeating: 0, count: outSize * inSize)
    if inSize == outSize {
      for i in 0..<inSize { r[i * inSize + i] = 1 }
      return r
    }
    let scale = Double(inSize) / Double(outSize)
    let fscale = max(scale, 1)
    let support = 2 * fscale
    for i in 0..<outSize {
      let center = scale * (Double(i) + 0.5)
      let lo = max(Int(center - support + 0.5), 0)
      let hi = min(Int(center + support + 0.5), inSize)
      var total = 0.0
      var w = [Double](repeating: 0, count: max(hi - lo, 0))
      for j in lo..<hi {
        w[j - lo] = cubic((Double(j) - center + 0.5) / fscale)
        total += w[j - lo]
      }
      for j in lo..<hi { r[i * inSize + j] = total != 0 ? w[j - lo] / total : 0 }
    }
    return r
  }

  /// `dst [newP, D] = M src [oldP, D]` (rows of `src`/`dst` may be strided by `D`).
  public func forward(dst: UnsafeMutablePointer<Float>, src: UnsafePointer<Float>, dim: Int) {
    matrix.withUnsafeBufferPointer { m in
      sgemm(m: newH * newW, n: dim, k: oldH * oldW, a: m.baseAddress!, lda: oldH * oldW, b: src, ldb: dim,
            c: dst, ldc: dim, parallel: false)
    }
  }

  /// `dSrc [oldP, D] += M^T dDst [newP, D]`.
  public func backward(dSrc: UnsafeMutablePointer<Float>, dDst: UnsafePointer<Float>, dim: Int) {
    matrix.withUnsafeBufferPointer { m in
      sgemm(transA: true, m: oldH * oldW, n: dim, k: newH * newW, a: m.baseAddress!, lda: oldH * oldW, b: dDst,
            ldb: dim, beta: 1, c: dSrc, ldc: dim, parallel: false)
    }
  }
}
