import Kernels

extension ViTConfig {
  /// The GEMM classes of a training step, forward and backward of every Linear layer
  /// `y[N,O] = x[N,I] W[O,I]^T` (N: tokens of the batch): forward `NT (n=O, k=I)`, input
  /// gradient `dx = dy W`: `NN (n=I, k=O)`, weight gradient `dW = dy^T x`: `TN (m=O, n=I)`.
  /// Layers: the patch embedding (no input gradient), qkv, proj, fc1, fc2.
  public var gemmShapes: [GEMMShape] {
    let d = width, m = mlpDim
    var out: [GEMMShape] = []
    for (i, o) in [(d, 3 * d), (d, d), (d, m), (m, d)] {
      out.append(GEMMShape(transA: false, transB: true, d1: o, d2: i))
      out.append(GEMMShape(transA: false, transB: false, d1: i, d2: o))
      out.append(GEMMShape(transA: true, transB: false, d1: o, d2: i))
    }
    out.append(GEMMShape(transA: false, transB: true, d1: d, d2: patchDim))
    out.append(GEMMShape(transA: true, transB: false, d1: d, d2: patchDim))
    return out
  }
}
