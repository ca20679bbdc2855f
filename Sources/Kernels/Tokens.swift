/// Token assembly of a ViT with a class token and absolute position embedding
/// (timm `_pos_embed`, `no_embed_class=False`):
/// `x[n, 0] = cls + pos[0]`, `x[n, 1 + p] = patches[n, p] + posGrid[p]`.
/// Shapes: `x [N, 1+G, D]`, `patches [N, G, D]`, `cls [D]`, `pos0 [D]`, `posGrid [G, D]`.
public enum Tokens {
  public static func assemble(
    x: UnsafeMutablePointer<Float>, patches: UnsafePointer<Float>, cls: UnsafePointer<Float>,
    pos0: UnsafePointer<Float>, posGrid: UnsafePointer<Float>, n: Int, grid: Int, dim: Int
  ) {
    let t = grid + 1
    parallelChunks(n) { s, e in
      for img in s..<e {
        let xi = x + img * t * dim
        for c in 0..<dim { xi[c] = cls[c] + pos0[c] }
        for p in 0..<grid {
          let dst = xi + (1 + p) * dim, src = patches + (img * grid + p) * dim, pg = posGrid + p * dim
          for c in 0..<dim { dst[c] = src[c] + pg[c] }
        }
      }
    }
  }

  /// Backward: `dPatches[n, p] = dx[n, 1+p]`, `dCls += sum_n dx[n,0]`,
  /// `dPos0 += sum_n dx[n,0]`, `dPosGrid[p] += sum_n dx[n, 1+p]`.
  public static func backward(
    dPatches: UnsafeMutablePointer<Float>, dCls: UnsafeMutablePointer<Float>, dPos0: UnsafeMutablePointer<Float>,
    dPosGrid: UnsafeMutablePointer<Float>, dx: UnsafePointer<Float>, n: Int, grid: Int, dim: Int
  ) {
    let t = grid + 1
    parallelChunks(n) { s, e in
      for img in s..<e {
        (dPatches + img * grid * dim).update(from: dx + (img * t + 1) * dim, count: grid * dim)
      }
    }
    // Sums over images in image order (deterministic).
    for img in 0..<n {
      let xi = dx + img * t * dim
      for c in 0..<dim {
        dCls[c] += xi[c]
        dPos0[c] += xi[c]
      }
    }
    parallelChunks(grid * dim, minChunk: 1024) { s, e in
      for img in 0..<n {
        let src = dx + (img * t + 1) * dim
        for i in s..<e { dPosGrid[i] += src[i] }
      }
    }
  }

  /// Copies the class-token rows: `out[n] = x[n, 0]` for `x [N, T, D]`.
  public static func pickClass(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, n: Int, t: Int, dim: Int) {
    for img in 0..<n { (out + img * dim).update(from: x + img * t * dim, count: dim) }
  }
}
