import KernelsAVX512

/// Exact GELU (PyTorch `nn.GELU()` with `approximate='none'`):
/// `gelu(x) = x Phi(x)`, `Phi(x) = (1 + erf(x / sqrt 2)) / 2`;
/// derivative `Phi(x) + x phi(x)`, `phi(x) = exp(-x^2/2) / sqrt(2 pi)`. The element loops run in
/// the copy `KernelISA.active` chooses (ISA/GELU+Loops.swift).
public enum GELU {
  /// `y[i] = gelu(x[i])` for `count` elements.
  public static func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.geluForward, t0) }
    parallelChunks(count, align: 16, minChunk: 1 << 14) { s, e in
      if KernelISA.avx512Copy { KernelsAVX512.GELULoops.forward(y: y, x: x, s, e) } else { GELULoops.forward(y: y, x: x, s, e) }
    }
  }

  /// `dx[i] = dy[i] * gelu'(x[i])` (in place allowed: `dx == dy`).
  public static func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.geluBackward, t0) }
    parallelChunks(count, align: 16, minChunk: 1 << 14) { s, e in
      if KernelISA.avx512Copy {
        KernelsAVX512.GELULoops.backward(dx: dx, dy: dy, x: x, s, e)
      } else {
        GELULoops.backward(dx: dx, dy: dy, x: x, s, e)
      }
    }
  }
}

extension GELU {
  /// Forward that keeps the derivative instead of the input (the MLP hidden layer):
  /// for `count` elements, `g[i] = x[i] Phi(x[i])` and
  /// `deriv[i] = gelu'(x[i]) = Phi(x[i]) + x[i] phi(x[i])`. `g` may alias `x`.
  /// The backward pass is then `dx = dy * deriv` (`backward(dx:dy:derivative:count:)`).
  public static func forward(g: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>,
                             x: UnsafePointer<Float>, count: Int) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.geluForward, t0) }
    parallelChunks(count, align: 16, minChunk: 1 << 14) { s, e in
      if KernelISA.avx512Copy {
        KernelsAVX512.GELULoops.forward(g: g, derivative: derivative, x: x, s, e)
      } else {
        GELULoops.forward(g: g, derivative: derivative, x: x, s, e)
      }
    }
  }

  /// `dx[i] = dy[i] * derivative[i]` with the derivative kept by `forward(g:derivative:x:count:)`
  /// (in place allowed: `dx == dy`).
  public static func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                              derivative: UnsafePointer<Float>, count: Int) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.geluBackward, t0) }
    parallelChunks(count, align: 16, minChunk: 1 << 15) { s, e in
      var i = s
      while i + 16 <= e {
        store16(load16(dy + i) * load16(derivative + i), dx + i)
        i += 16
      }
      while i < e {
        dx[i] = dy[i] * derivative[i]
        i += 1
      }
    }
  }
}
