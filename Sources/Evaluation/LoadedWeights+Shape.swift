import CheckpointLayout
import Foundation
import ViT

extension LoadedWeights {
  /// The ViT shape these weights describe.
  ///
  /// Read from the tensors (timm names): width D = last dimension of `cls_token`;
  /// depth = number of `blocks.N.norm1.weight`; patch P and channels C from
  /// `patch_embed.proj.weight [D, C, P, P]`; MLP ratio = rows of `blocks.0.mlp.fc1.weight` / D;
  /// image size = sqrt(rows of `pos_embed` - 1) * P (the training grid).
  ///
  /// Not in the tensors: the number of heads and the LayerNorm epsilon. They come from,
  /// in this order: `declared` (a `--config` model section; every field it fixes must then
  /// agree with the tensors), config.json (Hugging Face checkpoints), the `config.model`
  /// section of a `trainer.json` next to the weights (cde checkpoints), else timm's
  /// convention heads = D / 64 (ViT-Tiny 3, Small 6, Base 12) and eps 1e-6.
  /// Errors are one line naming the weights file and the tensor or field.
  public func inferConfig(declared: ViTConfig? = nil, declaredSource: String = "--config") throws -> ViTConfig {
    func tensor(_ name: String, rank: Int) throws -> NamedTensor {
      guard let t = tensors[name] else { throw EvaluationError(.badFile(path: path), "\(path): missing tensor \(name) (not a ViT state dict?)") }
      guard t.shape.count == rank else {
        throw EvaluationError(.badFile(path: path), "\(path): tensor \(name) has shape \(t.shape), expected \(rank) dimensions")
      }
      return t
    }
    let cls = try tensor("cls_token", rank: 3)
    let d = cls.shape[2]
    guard cls.shape[0] == 1, cls.shape[1] == 1, d > 0 else {
      throw EvaluationError(.badFile(path: path), "\(path): tensor cls_token has shape \(cls.shape), expected [1, 1, D]")
    }
    let pe = try tensor("patch_embed.proj.weight", rank: 4)
    guard pe.shape[0] == d, pe.shape[2] == pe.shape[3], pe.shape[2] > 0 else {
      throw EvaluationError(.badFile(path: path), "\(path): tensor patch_embed.proj.weight has shape \(pe.shape), expected [\(d), C, P, P]")
    }
    let channels = pe.shape[1], patch = pe.shape[2]
    let pos = try tensor("pos_embed", rank: 3)
    let grid = Int(Double(max(pos.shape[1] - 1, 0)).squareRoot().rounded())
    guard pos.shape[0] == 1, pos.shape[2] == d, grid > 0, grid * grid + 1 == pos.shape[1] else {
      throw EvaluationError(.badFile(path: path), "\(path): tensor pos_embed has shape \(pos.shape), expected [1, 1 + G*G, \(d)] (class token and a square grid)")
    }
    var depth = 0
    while tensors["blocks.\(depth).norm1.weight"] != nil { depth += 1 }
    guard depth > 0 else { throw EvaluationError(.badFile(path: path), "\(path): no transformer blocks (missing tensor blocks.0.norm1.weight)") }
    let fc1 = try tensor("blocks.0.mlp.fc1.weight", rank: 2)
    guard fc1.shape[1] == d, fc1.shape[0] > 0 else {
      throw EvaluationError(.badFile(path: path), "\(path): tensor blocks.0.mlp.fc1.weight has shape \(fc1.shape), expected [M, \(d)]")
    }
    let found = ViTConfig(width: d, depth: depth, heads: 1, mlpRatio: Double(fc1.shape[0]) / Double(d), patch: patch,
                          imageSize: grid * patch, channels: channels, lnEps: 1e-6)

    if let c = declared {
      let pairs: [(String, String, String)] = [
        ("width", "\(c.width)", "\(found.width)"), ("depth", "\(c.depth)", "\(found.depth)"),
        ("patch", "\(c.patch)", "\(found.patch)"), ("image_size", "\(c.imageSize)", "\(found.imageSize)"),
        ("mlp_ratio", "\(c.mlpDim)", "\(found.mlpDim)"), ("channels", "\(c.channels)", "\(found.channels)"),
      ]
      for (key, want, got) in pairs where want != got {
        let what = key == "mlp_ratio" ? "MLP width" : key
        throw EvaluationError(.shapeMismatch(path: path), "\(path): the weights have \(what) \(got) but \(declaredSource) says \(want) (model of the wrong shape?)")
      }
      return c
    }
    var cfg = found
    var heads: Int? = nil
    if let hf = hfConfig {
      heads = hf.numAttentionHeads
      cfg.lnEps = Float(hf.layerNormEps)
    } else if let section = try checkpointModelSection() {
      heads = section.heads
      cfg.lnEps = Float(section.lnEps)
    }
    if heads == nil {
      guard d % 64 == 0 else {
        throw EvaluationError(.unknownHeads(path: path), "\(path): cannot tell the number of attention heads of a width-\(d) model; give a config (--config) whose model: section sets heads")
      }
      heads = d / 64
    }
    cfg.heads = heads!
    do { try cfg.validate() } catch { throw EvaluationError(.badFile(path: path), "\(path): \(error)") }
    return cfg
  }

  /// The `config.model` section of the `trainer.json` next to the weights file (a cde
  /// checkpoint, `CheckpointLayout`), as the trainer wrote it; nil when there is no such
  /// file or section.
  func checkpointModelSection() throws -> ModelConfig? {
    let tj = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(CheckpointLayout.trainerFile)
    guard let data = FileManager.default.contents(atPath: tj) else { return nil }
    return try CheckpointLayout.modelSection(ModelConfig.self, trainerJSON: data, path: tj)
  }
}

extension HFViTConfig {
  /// The transformers config of a ViT of this shape (intermediate size = MLP width).
  public init(vit c: ViTConfig) {
    self.init(hiddenSize: c.width, numHiddenLayers: c.depth, numAttentionHeads: c.heads, intermediateSize: c.mlpDim,
              patchSize: c.patch, imageSize: c.imageSize, numChannels: c.channels, layerNormEps: Double(c.lnEps),
              qkvBias: true, hiddenAct: "gelu")
  }
}

/// The checkpoint directory a run directory stands for: `RUN/checkpoints/step-N` with the
/// largest N that holds a model.safetensors; nil when `path` is not a run directory.
public func newestCheckpointDirectory(run path: String) -> String? {
  let ckpt = (path as NSString).appendingPathComponent(CheckpointLayout.checkpointsFolder)
  guard let names = try? FileManager.default.contentsOfDirectory(atPath: ckpt) else { return nil }
  let steps = names.compactMap { n -> (Int, String)? in
    guard let s = CheckpointLayout.step(ofDirectoryName: n) else { return nil }
    let dir = (ckpt as NSString).appendingPathComponent(n)
    return FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(CheckpointLayout.modelFile)) ? (s, dir) : nil
  }
  return steps.max { $0.0 < $1.0 }?.1
}
