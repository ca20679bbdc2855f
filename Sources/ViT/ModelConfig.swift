import Foundation

/// The `model:` section of a configuration, the one type for every place a model's shape is
/// written down: a config file and `--set` (`TrainConfig.model`, keys in snake case:
/// `mlp_ratio`, `image_size`, `ln_eps`), and a checkpoint's trainer.json (`config.model`,
/// encoded and decoded with `JSONEncoder` / `JSONDecoder` under the property names).
/// Every field has a default, `ViTConfig.tiny` (timm `vit_tiny_patch16_224`, 5,524,416
/// parameters), so a file names only what it changes. Tokens per view = 1 + (side / patch)^2; MLP hidden =
/// width * mlp_ratio.
public struct ModelConfig: Codable, Equatable, Sendable {
  /// Embedding width D (192).
  public var width = ViTConfig.tiny.width
  /// Number of transformer blocks (12).
  public var depth = ViTConfig.tiny.depth
  /// Attention heads; width must be a multiple (3).
  public var heads = ViTConfig.tiny.heads
  /// MLP hidden width / width (4).
  public var mlpRatio = ViTConfig.tiny.mlpRatio
  /// Patch side in pixels (16).
  public var patch = ViTConfig.tiny.patch
  /// Side of the base (global) views and of the position-embedding grid, image_size / patch (224).
  public var imageSize = ViTConfig.tiny.imageSize
  /// LayerNorm epsilon (1e-6): ViTConfig.tiny's, written as a Double literal, because the
  /// Float widened to Double is not 1e-6 (and configs and checkpoints hold 1e-6).
  public var lnEps = 1e-6

  public init() {}

  /// The ViT shape this section describes (RGB input).
  public var vit: ViTConfig {
    ViTConfig(width: width, depth: depth, heads: heads, mlpRatio: mlpRatio, patch: patch, imageSize: imageSize,
              lnEps: Float(lnEps))
  }

  /// The first check the section fails, as its key (spelt with the section: `model.heads`)
  /// and what the value must be; nil when the section describes a ViT.
  public var problem: (key: String, why: String)? {
    if width <= 0 { return ("model.width", "must be positive") }
    if depth <= 0 { return ("model.depth", "must be positive") }
    if heads <= 0 || width % heads != 0 { return ("model.heads", "must be positive and divide model.width (\(width))") }
    if !(mlpRatio > 0) || (Double(width) * mlpRatio).rounded() != Double(width) * mlpRatio {
      return ("model.mlp_ratio", "must be positive and give a whole MLP width")
    }
    if patch <= 0 { return ("model.patch", "must be positive") }
    if imageSize <= 0 || imageSize % patch != 0 { return ("model.image_size", "must be a positive multiple of model.patch (\(patch))") }
    if !(lnEps > 0) { return ("model.ln_eps", "must be positive") }
    return nil
  }
}
