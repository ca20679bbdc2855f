import Foundation
import Kernels
import ViT

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`, `amsgrad=False`):
///
///     p <- p * (1 - lr * wd)                       (decoupled decay, decayed tensors only)
///     m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
///     p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
///
/// Both moments live in single buffers with the model's parameter layout.
public final class AdamW {
  public let layout: ParameterLayout
  public var beta1: Float, beta2: Float, eps: Float
  /// Steps taken so far (t of the bias corrections).
  public private(set) var stepCount: Int = 0
  public let m: UnsafeMutablePointer<Float>
  public let v: UnsafeMutablePointer<Float>

  public init(layout: ParameterLayout, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
    self.layout = layout
    self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
    m = .allocate(capacity: layout.total)
    m.initialize(repeating: 0, count: layout.total)
    v = .allocate(capacity: layout.total)
    v.initialize(repeating: 0, count: layout.total)
  }

  deinit {
    m.deallocate()
    v.deallocate()
  }

  /// Restores the moments and step count (resume).
  public func restore(stepCount: Int) { self.stepCount = stepCount }

  /// One update of `params` from `grads` with learning rate `lr` and weight decay `wd`.
  public func step(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, lr: Float, weightDecay wd: Float) {
    stepCount += 1
    // Bias corrections in double precision, as PyTorch computes them from a Python float step.
    let t = Double(stepCount)
    let bc1 = 1 - pow(Double(beta1), t)
    let bc2 = 1 - pow(Double(beta2), t)
    let stepSize = Float(Double(lr) / bc1)
    let bc2Sqrt = Float(bc2.squareRoot())
    let b1 = beta1, b2 = beta2, eps = eps, m = m, v = v
    for e in layout.entries {
      let decay: Float = e.decay ? 1 - lr * wd : 1
      let off = e.offset
      parallelChunks(e.count, align: 16, minChunk: 1 << 15) { s, end in
        for i in (off + s)..<(off + end) {
          let g = grads[i]
          var p = params[i] * decay
          let mi = b1 * m[i] + (1 - b1) * g
          let vi = b2 * v[i] + (1 - b2) * g * g
          m[i] = mi
          v[i] = vi
          p -= stepSize * mi / (vi.squareRoot() / bc2Sqrt + eps)
          params[i] = p
        }
      }
    }
  }
}
