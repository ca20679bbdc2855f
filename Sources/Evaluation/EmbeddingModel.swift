import Foundation
import Dataset
import Imaging
import SafeTensors
import ViT

/// How an image becomes the model's `S x S` input (S = the model's image size).
public enum EmbedPreprocess: String, CaseIterable, Sendable {
  /// The CoDE authors' inference: torchvision `CenterCrop(S)` at native resolution, no
  /// resize; a side shorter than S is padded with black, (S - n) // 2 before and the
  /// rest after (torchvision's padding), and a longer side is cropped at offset
  /// round((n - S) / 2) (half to even).
  case centerCrop = "center-crop"
  /// The training base view: resize the shorter side to floor(S / 0.9) (bicubic), then
  /// centre-crop S (`CoDEViewMaker.resizeCenterCrop`, as the trainer's r and f views).
  case resizeCrop = "resize-crop"

  /// The `size x size` 8-bit image the model sees (before normalisation).
  public func apply(_ img: RGBImage, size: Int) -> RGBImage {
    switch self {
    case .centerCrop:
      func offset(_ n: Int) -> Int { n >= size ? torchvisionCenterOffset(n, size) : -((size - n) / 2) }
      if img.width == size && img.height == size { return img }
      return img.croppedPadding(x: offset(img.width), y: offset(img.height), width: size, height: size)
    case .resizeCrop:
      return CoDEViewMaker.resizeCenterCrop(img, shorter: ViewSpec(imageSize: size).baseResize, crop: size)
    }
  }
}

/// A ViT that turns normalised images into embeddings (the class token after the final
/// LayerNorm), loaded from any supported weights layout with its shape inferred, or
/// initialised at random (a baseline of the same shape).
public final class EmbeddingModel {
  public let vit: ViTModel
  /// The weights loaded (nil for a random initialisation).
  public let weights: LoadedWeights?
  /// Normalisation to planar float32: (v / 255 - mean_c) / std_c, ImageNet statistics.
  public let normaliser: CoDEViewMaker
  var activations: [Int: ViTActivations] = [:]

  public var config: ViTConfig { vit.config }
  /// Embedding width D.
  public var dimension: Int { vit.config.width }
  /// Side S of the model's input.
  public var imageSize: Int { vit.config.imageSize }

  /// Loads `path` (see `LoadedWeights.load`) with the shape of `LoadedWeights.inferConfig`.
  public convenience init(path: String, declared: ViTConfig? = nil, declaredSource: String = "--config") throws {
    let w = try LoadedWeights.load(path: path)
    try self.init(weights: w, config: try w.inferConfig(declared: declared, declaredSource: declaredSource))
  }

  public init(weights w: LoadedWeights, config: ViTConfig) throws {
    vit = try ViTModel(config: config)
    weights = w
    normaliser = CoDEViewMaker(spec: ViewSpec(imageSize: config.imageSize))
    try vit.load(try w.safeTensorsFile())
  }

  /// timm-style random initialisation from `seed` (`ViTModel.initialize`).
  public init(randomSeed seed: UInt64, config: ViTConfig) throws {
    vit = try ViTModel(config: config)
    vit.initialize(seed: seed)
    weights = nil
    normaliser = CoDEViewMaker(spec: ViewSpec(imageSize: config.imageSize))
  }

  /// Embeddings `[count, D]` of `count` normalised images `[count, C, size, size]`
  /// (size a multiple of the patch; activations are kept per (count, size)).
  public func embed(_ images: UnsafePointer<Float>, count: Int, size: Int) throws -> [Float] {
    let key = count * 100_000 + size
    let a: ViTActivations
    if let cached = activations[key], cached.scratchThreadsOK { a = cached } else {
      a = try vit.makeActivations(batch: count, height: size, width: size)
      activations[key] = a
    }
    vit.forward(images, a)
    return Array(UnsafeBufferPointer(start: a.embeddings, count: count * dimension))
  }

  /// Frees the activation buffers kept between calls.
  public func releaseActivations() { activations.removeAll() }

  /// The parameters with timm names and shapes.
  public func tensors() -> TensorDict {
    var out: TensorDict = [:]
    for e in vit.layout.entries {
      out[e.name] = NamedTensor(shape: e.shape, values: Array(UnsafeBufferPointer(start: vit.params + e.offset, count: e.count)))
    }
    return out
  }
}
