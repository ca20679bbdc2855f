/// The element loops of `GELU` (GELU.swift) over `s ..< e`, one call per worker's chunk.
/// The formulas are `GELU`'s: `gelu(x) = x Phi(x)`, `gelu'(x) = Phi(x) + x phi(x)`.
package enum GELULoops {
  static let invSqrt2Pi: Float = 0.398_942_280_401_432_7

  /// `y[i] = gelu(x[i])`.
  package static func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, _ s: Int, _ e: Int) {
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

  /// `dx[i] = dy[i] * gelu'(x[i])` (`dx == dy` allowed).
  package static func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                       _ s: Int, _ e: Int) {
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

  /// `g[i] = gelu(x[i])`, `derivative[i] = gelu'(x[i])` (`g == x` allowed).
  package static func forward(g: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>,
                      x: UnsafePointer<Float>, _ s: Int, _ e: Int) {
    var i = s
    while i + 16 <= e {
      let v = load16(x + i)
      let cdf = vnormalCDF(v)
      store16(v * cdf, g + i)
      store16(cdf + v * invSqrt2Pi * vexp(-0.5 * v * v), derivative + i)
      i += 16
    }
    if i < e {
      var v = V16(repeating: 0)
      for j in i..<e { v[j - i] = x[j] }
      let cdf = vnormalCDF(v)
      let y = v * cdf, d = cdf + v * invSqrt2Pi * vexp(-0.5 * v * v)
      for j in i..<e {
        g[j] = y[j - i]
        derivative[j] = d[j - i]
      }
    }
  }
}
