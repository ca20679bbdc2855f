import Foundation
import Randomness
import SafeTensors

extension ViTModel {
  /// timm's default initialisation, drawn from `seed` (SplitMix64 streams, so
  /// the values differ from PyTorch's generator but the distributions match):
  /// Linear weights truncated normal (std 0.02, cut at +-2), zero biases;
  /// `pos_embed` truncated normal std 0.02; `cls_token` normal std 1e-6;
  /// patch conv (PyTorch's default Conv2d init, timm leaves it) uniform
  /// `+-1/sqrt(fan_in)` for weight and bias; LayerNorm weight 1, bias 0.
  public func initialize(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let fanIn = Double(config.patchDim)
    for e in layout.entries {
      let p = params + e.offset
      let n = e.count
      let name = e.name
      if name == "cls_token" {
        for i in 0..<n { p[i] = Float(rng.normal() * 1e-6) }
      } else if name == "pos_embed" {
        for i in 0..<n { p[i] = Float(truncatedNormal(&rng, std: 0.02)) }
      } else if name.hasPrefix("patch_embed.proj.") {
        let bound = 1 / fanIn.squareRoot()
        for i in 0..<n { p[i] = Float((rng.uniform() * 2 - 1) * bound) }
      } else if name.contains("norm") {
        let v: Float = name.hasSuffix(".weight") ? 1 : 0
        p.update(repeating: v, count: n)
      } else if name.hasSuffix(".weight") {
        for i in 0..<n { p[i] = Float(truncatedNormal(&rng, std: 0.02)) }
      } else {
        p.update(repeating: 0, count: n)
      }
    }
  }

  func truncatedNormal(_ rng: inout SplitMix64, std: Double, a: Double = -2, b: Double = 2) -> Double {
    while true {
      let v = rng.normal() * std
      if v >= a && v <= b { return v }
    }
  }

  /// Loads every parameter from a safetensors file with timm names. Missing
  /// tensors and wrong shapes are errors naming the file and tensor.
  public func load(_ file: SafeTensorsFile) throws {
    for e in layout.entries {
      guard file.tensors[e.name] != nil else {
        throw ViTError(.missingTensor(path: file.path, tensor: e.name), "\(file.path): missing tensor \(e.name) (is this a timm ViT state dict with this model shape?)")
      }
      do {
        try file.read(e.name, into: params + e.offset, shape: e.shape)
      } catch let err as SafeTensorsError {
        throw ViTError(.unreadableTensor(err.kind), err.description + " (model config expects \(e.name) \(e.shape))")
      }
    }
  }

  public func load(path: String) throws { try load(SafeTensorsFile(path: path)) }

  /// Adds every parameter (or gradient) to a writer under `prefix + name`.
  public func addTensors(to w: inout SafeTensorsWriter, from buffer: UnsafePointer<Float>? = nil, prefix: String = "") {
    let src = buffer ?? UnsafePointer(params)
    for e in layout.entries { w.add(prefix + e.name, floats: src + e.offset, shape: e.shape) }
  }

  /// Writes `model.safetensors` (timm names and shapes, F32).
  public func save(path: String, metadata: [String: String] = [:]) throws {
    var w = SafeTensorsWriter(metadata: metadata.merging(["format": "pt"]) { a, _ in a })
    addTensors(to: &w)
    try w.write(to: path)
  }
}
