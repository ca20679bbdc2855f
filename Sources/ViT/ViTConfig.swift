/// Shape of a ViT (timm `VisionTransformer` with class token, absolute position
/// embedding, pre-norm blocks, qkv bias, exact GELU, final LayerNorm, no head).
public struct ViTConfig: Codable, Equatable, Sendable {
  public var width: Int = 192
  public var depth: Int = 12
  public var heads: Int = 3
  public var mlpRatio: Double = 4
  public var patch: Int = 16
  /// Training resolution: the position-embedding grid is `imageSize / patch` square.
  public var imageSize: Int = 224
  public var channels: Int = 3
  public var lnEps: Float = 1e-6

  public init(width: Int = 192, depth: Int = 12, heads: Int = 3, mlpRatio: Double = 4, patch: Int = 16,
              imageSize: Int = 224, channels: Int = 3, lnEps: Float = 1e-6) {
    self.width = width; self.depth = depth; self.heads = heads; self.mlpRatio = mlpRatio
    self.patch = patch; self.imageSize = imageSize; self.channels = channels; self.lnEps = lnEps
  }

  /// timm `vit_tiny_patch16_224`.
  public static let tiny = ViTConfig()

  public var mlpDim: Int { Int(Double(width) * mlpRatio) }
  public var headDim: Int { width / heads }
  public var grid: Int { imageSize / patch }
  public var patchDim: Int { channels * patch * patch }

  /// Checks the shape; the message names the offending field.
  public func validate() throws {
    func fail(_ s: String) -> ViTError { ViTError(.invalidConfig, "model config: \(s)") }
    guard width > 0, depth > 0, heads > 0, patch > 0, imageSize > 0, channels > 0 else {
      throw fail("width, depth, heads, patch, image_size and channels must be positive")
    }
    guard width % heads == 0 else { throw fail("width \(width) is not divisible by heads \(heads)") }
    guard imageSize % patch == 0 else { throw fail("image_size \(imageSize) is not a multiple of patch \(patch)") }
    guard mlpDim > 0 else { throw fail("mlp_ratio \(mlpRatio) gives no hidden units") }
    guard lnEps > 0 else { throw fail("ln_eps \(lnEps) must be positive") }
  }

  /// Forward FLOPs of one image with `tokens` tokens, 2·m·n·k per GEMM (GEMMs only: qkv,
  /// attention scores and mix, proj, MLP; plus the patch embedding):
  /// `depth · (2·T·D·3D + 2·2·T²·D + 2·T·D² + 2·2·T·D·M) + 2·(T-1)·patchDim·D`.
  public func forwardFLOPs(tokens t: Int) -> Double {
    let d = Double(width), tt = Double(t), m = Double(mlpDim)
    let perBlock = 2 * tt * d * 3 * d + 2 * 2 * tt * tt * d + 2 * tt * d * d + 2 * 2 * tt * d * m
    return Double(depth) * perBlock + 2 * (tt - 1) * Double(patchDim) * d
  }
}
