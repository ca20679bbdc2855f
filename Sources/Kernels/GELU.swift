/// Exact GELU (PyTorch `nn.GELU()` with `approximate='none'`):
/// `gelu(x) = x Phi(x)`, `Phi(x) = (1 + erf(x / sqrt 2)) / 2`;
/// derivative `Phi(x) + x phi(x)`, `phi(x) = exp(-x^2/2) / sqrt(2 pi)`.
public enum GELU {
  /// `y[i] = gelu(x[i])` for `count` elements.
  public static func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    parallelChunks(count, align: 16, minChunk: 1 << 14) { s, e in
      var i = s
      while i + 16 <= e {
        let v = load16(x + i)
        store16(v * vnormalCDF(v), y + i)
        i += 16
      }
      while i < e {
        var v = V16(repeating: 0)
        v[0] = x[i]
        y[i] = (v * vnormalCDF(v))[0]
        i += 1
      }
    }
  }

  /// `dx[i] = dy[i] * gelu'(x[i])` (in place allowed: `dx == dy`).
  public static func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    let invSqrt2Pi: Float = 0.398_942_280_401_432_7
    parallelChunks(count, align: 16, minChunk: 1 << 14) { s, e in
      var i = s
      while i + 16 <= e {
        let v = load16(x + i)
        let d = vnormalCDF(v) + v * invSqrt2Pi * vexp(-0.5 * v * v)
        store16(load16(dy + i) * d, dx + i)
        i += 16
      }
      while i < e {
        var v = V16(repeating: 0)
        v[0] = x[i]
        let d = vnormalCDF(v) + v * invSqrt2Pi * vexp(-0.5 * v * v)
        dx[i] = dy[i] * d[0]
        i += 1
      }
    }
  }
}
