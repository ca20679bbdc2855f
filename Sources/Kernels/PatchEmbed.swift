/// Patch embedding: a `P x P` convolution with stride `P` (timm `PatchEmbed`),
/// computed as im2col followed by one GEMM.
///
/// `images [N, C, H, W]` -> `cols [N * gh * gw, C * P * P]` (each row one patch,
/// ordered channel, row, column like the conv weight `[D, C, P, P]`), then
/// `out [N * gh * gw, D] = cols W^T + b`, with `gh = H/P`, `gw = W/P`.
public enum PatchEmbed {
  public static func im2col(
    cols: UnsafeMutablePointer<Float>, images: UnsafePointer<Float>, n: Int, channels: Int, height: Int, width: Int,
    patch: Int
  ) {
    let t0 = KernelProfiler.start()
    defer { KernelProfiler.stop(.patchEmbed, t0) }
    let gh = height / patch, gw = width / patch
    let k = channels * patch * patch
    parallelChunks(n * gh, minChunk: 4) { s, e in
      for task in s..<e {
        let img = task / gh, py = task % gh
        for px in 0..<gw {
          let row = cols + ((img * gh + py) * gw + px) * k
          for c in 0..<channels {
            let plane = images + (img * channels + c) * height * width
            for ky in 0..<patch {
              let src = plane + (py * patch + ky) * width + px * patch
              (row + (c * patch + ky) * patch).update(from: src, count: patch)
            }
          }
        }
      }
    }
  }

  /// `out [N*G, D] = im2col(images) W^T + b`; `cols` is kept for the backward pass.
  public static func forward(
    out: UnsafeMutablePointer<Float>, cols: UnsafeMutablePointer<Float>, images: UnsafePointer<Float>,
    w: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int, channels: Int, height: Int, width: Int, patch: Int,
    dim: Int
  ) {
    im2col(cols: cols, images: images, n: n, channels: channels, height: height, width: width, patch: patch)
    let grid = (height / patch) * (width / patch)
    // rowBlock: each image's patches are whole blocks of `grid` rows (oneDNN per image, bf16; see `sgemm`).
    Linear.forward(y: out, x: cols, w: w, b: b, n: n * grid, inF: channels * patch * patch, outF: dim, rowBlock: grid)
  }

  /// `dW += dOut^T cols`, `db += sum dOut` (no gradient for the pixels).
  public static func backward(
    dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
    cols: UnsafePointer<Float>, rows: Int, k: Int, dim: Int
  ) {
    Linear.backward(dx: nil, dw: dw, db: db, dy: dOut, x: cols, w: cols, n: rows, inF: k, outF: dim)
  }
}
