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

  /// Floats per block of `forward(g:derivative:x:_:_:)`.
  static let block = 256

  /// `g[i] = gelu(x[i])`, `derivative[i] = gelu'(x[i])` (`g == x` allowed).
  ///
  /// Blocks of 256 elements go through three short loops, the intermediates kept in L1:
  /// `x phi(x)`, then erfc's argument and `t` (`verfcAbs`), then `Phi`, `g` and the derivative.
  /// One 16-float iteration of the whole formula is about as long as the reorder buffer, so
  /// iterations ran one after another at the latency of their chain; the short loops overlap
  /// several. The operations and their order are `vnormalCDF`'s and `vexp`'s, so the bits are
  /// the same as computing each vector in one go (the tail below).
  package static func forward(g: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>,
                      x: UnsafePointer<Float>, _ s: Int, _ e: Int) {
    var i = s
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * block) { buf in
      let xphi = buf.baseAddress!, targ = xphi + block, tt = targ + block
      while i + block <= e {
        var j = 0
        while j < block {
          let v = load16(x + i + j)
          store16(v * invSqrt2Pi * vexp(-0.5 * v * v), xphi + j)
          j += 16
        }
        j = 0
        while j < block {
          let u = load16(x + i + j) * 0.707_106_781_186_547_5
          var z = u
          z.replace(with: -u, where: u .< 0)
          let t = 1 / (1 + 0.5 * z)
          store16(t, tt + j)
          store16(-z * z + erfcPolynomial(t), targ + j)
          j += 16
        }
        j = 0
        while j < block {
          let v = load16(x + i + j)
          let half = 0.5 * (load16(tt + j) * vexp(load16(targ + j)))
          var cdf = 1 - half
          cdf.replace(with: half, where: v .< 0)
          store16(v * cdf, g + i + j)
          store16(cdf + load16(xphi + j), derivative + i + j)
          j += 16
        }
        i += block
      }
    }
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
