import Foundation
import SafeTensors

/// A tensor held in memory: shape and row-major F32 values.
public struct NamedTensor: Sendable, Equatable {
  public var shape: [Int]
  public var values: [Float]
  public init(shape: [Int], values: [Float]) {
    precondition(values.count == shape.reduce(1, *), "tensor of shape \(shape) with \(values.count) values")
    self.shape = shape
    self.values = values
  }
}

/// Tensors by name.
public typealias TensorDict = [String: NamedTensor]

/// The fields of a Hugging Face `ViTConfig` (config.json) that fix the model's function.
public struct HFViTConfig: Sendable, Equatable {
  public var hiddenSize: Int
  public var numHiddenLayers: Int
  public var numAttentionHeads: Int
  public var intermediateSize: Int
  public var patchSize: Int
  public var imageSize: Int
  public var numChannels: Int
  /// LayerNorm epsilon of every norm (transformers' default 1e-12; timm's ViT uses 1e-6).
  public var layerNormEps: Double
  public var qkvBias: Bool
  /// Must be "gelu" (exact erf GELU), the activation of timm's ViT.
  public var hiddenAct: String

  public init(hiddenSize: Int = 192, numHiddenLayers: Int = 12, numAttentionHeads: Int = 3, intermediateSize: Int = 768,
              patchSize: Int = 16, imageSize: Int = 224, numChannels: Int = 3, layerNormEps: Double = 1e-6,
              qkvBias: Bool = true, hiddenAct: String = "gelu") {
    self.hiddenSize = hiddenSize; self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
    self.intermediateSize = intermediateSize; self.patchSize = patchSize; self.imageSize = imageSize
    self.numChannels = numChannels; self.layerNormEps = layerNormEps; self.qkvBias = qkvBias; self.hiddenAct = hiddenAct
  }

  /// Position-embedding grid side, imageSize / patchSize.
  public var grid: Int { imageSize / patchSize }

  /// Parses config.json; missing fields take transformers' ViTConfig defaults
  /// (768, 12, 12, 3072, 16, 224, 3, 1e-12, true, "gelu"). Errors name the file and key.
  public init(json data: Data, path: String) throws {
    guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw EvaluationError(.badFile(path: path), "\(path): not a JSON object")
    }
    if let t = obj["model_type"] as? String, t != "vit" {
      throw EvaluationError(.unsupported(path: path), "\(path): model_type is '\(t)', expected 'vit' (a transformers ViTModel)")
    }
    func int(_ k: String, _ def: Int) throws -> Int {
      guard let v = obj[k] else { return def }
      guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.intValue > 0 else {
        throw EvaluationError(.badFile(path: path), "\(path): \(k) must be a positive integer, got \(v)")
      }
      return n.intValue
    }
    hiddenSize = try int("hidden_size", 768)
    numHiddenLayers = try int("num_hidden_layers", 12)
    numAttentionHeads = try int("num_attention_heads", 12)
    intermediateSize = try int("intermediate_size", 3072)
    patchSize = try int("patch_size", 16)
    imageSize = try int("image_size", 224)
    numChannels = try int("num_channels", 3)
    if let v = obj["layer_norm_eps"] {
      guard let n = v as? NSNumber, n.doubleValue > 0 else { throw EvaluationError(.badFile(path: path), "\(path): layer_norm_eps must be a positive number") }
      layerNormEps = n.doubleValue
    } else { layerNormEps = 1e-12 }
    if let v = obj["qkv_bias"] {
      guard let b = v as? Bool else { throw EvaluationError(.badFile(path: path), "\(path): qkv_bias must be true or false") }
      qkvBias = b
    } else { qkvBias = true }
    hiddenAct = (obj["hidden_act"] as? String) ?? "gelu"
    guard hiddenAct == "gelu" else {
      throw EvaluationError(.unsupported(path: path), "\(path): hidden_act '\(hiddenAct)' is not supported (the ViT uses exact GELU, 'gelu')")
    }
    guard hiddenSize % numAttentionHeads == 0 else {
      throw EvaluationError(.badFile(path: path), "\(path): hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
    }
    guard imageSize % patchSize == 0 else {
      throw EvaluationError(.badFile(path: path), "\(path): image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
    }
  }

  /// config.json of a transformers ViTModel with these fields.
  public func json() -> String {
    func num(_ v: Double) -> String {
      let s = "\(v)"
      return s.contains("e") ? String(format: "%g", v) : s
    }
    return """
      {
        "architectures": ["ViTModel"],
        "model_type": "vit",
        "hidden_size": \(hiddenSize),
        "num_hidden_layers": \(numHiddenLayers),
        "num_attention_heads": \(numAttentionHeads),
        "intermediate_size": \(intermediateSize),
        "hidden_act": "\(hiddenAct)",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": \(num(layerNormEps)),
        "image_size": \(imageSize),
        "patch_size": \(patchSize),
        "num_channels": \(numChannels),
        "qkv_bias": \(qkvBias),
        "encoder_stride": \(patchSize),
        "torch_dtype": "float32"
      }

      """
  }
}

/// Name and layout conversion between transformers' `ViTModel` and timm's
/// `VisionTransformer` state dicts (pure functions on in-memory tensors).
///
/// | transformers (ViTModel)                                        | timm                          |
/// |----------------------------------------------------------------|-------------------------------|
/// | embeddings.cls_token [1,1,D]                                   | cls_token                     |
/// | embeddings.position_embeddings [1,1+G*G,D]                     | pos_embed                     |
/// | embeddings.patch_embeddings.projection.{weight [D,C,P,P],bias} | patch_embed.proj.*            |
/// | encoder.layer.N.layernorm_before.*                             | blocks.N.norm1.*              |
/// | encoder.layer.N.attention.attention.{query,key,value}.*        | blocks.N.attn.qkv.* (rows q;k;v: [3D,D], [3D]) |
/// | encoder.layer.N.attention.output.dense.*                       | blocks.N.attn.proj.*          |
/// | encoder.layer.N.layernorm_after.*                              | blocks.N.norm2.*              |
/// | encoder.layer.N.intermediate.dense.* [I,D]                     | blocks.N.mlp.fc1.*            |
/// | encoder.layer.N.output.dense.* [D,I]                           | blocks.N.mlp.fc2.*            |
/// | layernorm.*                                                    | norm.*                        |
///
/// `pooler.*` (unused by CoDE: the embedding is last_hidden_state[:, 0], which is after
/// the final LayerNorm in both libraries), `embeddings.mask_token` and a classification
/// head are ignored; a `vit.` prefix (ViTForImageClassification) is accepted. Without
/// q/k/v biases (qkv_bias false) the timm qkv bias is zero, which computes the same.
public enum HFViTConversion {
  /// True when the names look like a transformers ViT state dict.
  public static func isHFLayout<S: Sequence>(_ names: S) -> Bool where S.Element == String {
    names.contains { $0 == "embeddings.cls_token" || $0 == "vit.embeddings.cls_token" }
  }

  /// True when the names look like a timm ViT state dict.
  public static func isTimmLayout<S: Sequence>(_ names: S) -> Bool where S.Element == String {
    var c = false, p = false
    for n in names { if n == "cls_token" { c = true } else if n == "pos_embed" { p = true } }
    return c && p
  }

  /// transformers names -> timm names. Errors name the missing or misshapen tensor.
  public static func hfToTimm(_ input: TensorDict, config c: HFViTConfig, path: String = "model") throws -> TensorDict {
    let prefix = input["vit.embeddings.cls_token"] != nil ? "vit." : ""
    let d = c.hiddenSize, i = c.intermediateSize, g = c.grid
    func get(_ name: String, _ shape: [Int]) throws -> NamedTensor {
      guard let t = input[prefix + name] else { throw EvaluationError(.badFile(path: path), "\(path): missing tensor \(prefix + name)") }
      guard t.shape.filter({ $0 != 1 }) == shape.filter({ $0 != 1 }), t.values.count == shape.reduce(1, *) else {
        throw EvaluationError(.badFile(path: path), "\(path): tensor \(prefix + name) has shape \(t.shape), expected \(shape) (from config.json)")
      }
      return NamedTensor(shape: shape, values: t.values)
    }
    var out: TensorDict = [:]
    out["cls_token"] = try get("embeddings.cls_token", [1, 1, d])
    out["pos_embed"] = try get("embeddings.position_embeddings", [1, 1 + g * g, d])
    out["patch_embed.proj.weight"] = try get("embeddings.patch_embeddings.projection.weight", [d, c.numChannels, c.patchSize, c.patchSize])
    out["patch_embed.proj.bias"] = try get("embeddings.patch_embeddings.projection.bias", [d])
    for n in 0..<c.numHiddenLayers {
      let h = "encoder.layer.\(n).", b = "blocks.\(n).", a = h + "attention.attention."
      out[b + "norm1.weight"] = try get(h + "layernorm_before.weight", [d])
      out[b + "norm1.bias"] = try get(h + "layernorm_before.bias", [d])
      let q = try get(a + "query.weight", [d, d]), k = try get(a + "key.weight", [d, d]), v = try get(a + "value.weight", [d, d])
      out[b + "attn.qkv.weight"] = NamedTensor(shape: [3 * d, d], values: q.values + k.values + v.values)
      if c.qkvBias {
        let qb = try get(a + "query.bias", [d]), kb = try get(a + "key.bias", [d]), vb = try get(a + "value.bias", [d])
        out[b + "attn.qkv.bias"] = NamedTensor(shape: [3 * d], values: qb.values + kb.values + vb.values)
      } else {
        out[b + "attn.qkv.bias"] = NamedTensor(shape: [3 * d], values: [Float](repeating: 0, count: 3 * d))
      }
      out[b + "attn.proj.weight"] = try get(h + "attention.output.dense.weight", [d, d])
      out[b + "attn.proj.bias"] = try get(h + "attention.output.dense.bias", [d])
      out[b + "norm2.weight"] = try get(h + "layernorm_after.weight", [d])
      out[b + "norm2.bias"] = try get(h + "layernorm_after.bias", [d])
      out[b + "mlp.fc1.weight"] = try get(h + "intermediate.dense.weight", [i, d])
      out[b + "mlp.fc1.bias"] = try get(h + "intermediate.dense.bias", [i])
      out[b + "mlp.fc2.weight"] = try get(h + "output.dense.weight", [d, i])
      out[b + "mlp.fc2.bias"] = try get(h + "output.dense.bias", [d])
    }
    out["norm.weight"] = try get("layernorm.weight", [d])
    out["norm.bias"] = try get("layernorm.bias", [d])
    if input[prefix + "encoder.layer.\(c.numHiddenLayers).layernorm_before.weight"] != nil {
      throw EvaluationError(.badFile(path: path), "\(path): has more than num_hidden_layers = \(c.numHiddenLayers) layers (config.json disagrees with the weights)")
    }
    return out
  }

  /// timm names -> transformers names (qkv split into query, key, value rows). The
  /// config's shapes must match the tensors; `qkvBias` must be true.
  public static func timmToHF(_ input: TensorDict, config c: HFViTConfig, path: String = "model") throws -> TensorDict {
    let d = c.hiddenSize, i = c.intermediateSize, g = c.grid
    func get(_ name: String, _ shape: [Int]) throws -> NamedTensor {
      guard let t = input[name] else { throw EvaluationError(.badFile(path: path), "\(path): missing tensor \(name)") }
      guard t.shape.filter({ $0 != 1 }) == shape.filter({ $0 != 1 }), t.values.count == shape.reduce(1, *) else {
        throw EvaluationError(.badFile(path: path), "\(path): tensor \(name) has shape \(t.shape), expected \(shape)")
      }
      return NamedTensor(shape: shape, values: t.values)
    }
    guard c.qkvBias else { throw EvaluationError(.invalidArgument, "\(path): export needs qkv_bias true (the timm model has qkv biases)") }
    var out: TensorDict = [:]
    out["embeddings.cls_token"] = try get("cls_token", [1, 1, d])
    out["embeddings.position_embeddings"] = try get("pos_embed", [1, 1 + g * g, d])
    out["embeddings.patch_embeddings.projection.weight"] = try get("patch_embed.proj.weight", [d, c.numChannels, c.patchSize, c.patchSize])
    out["embeddings.patch_embeddings.projection.bias"] = try get("patch_embed.proj.bias", [d])
    for n in 0..<c.numHiddenLayers {
      let h = "encoder.layer.\(n).", b = "blocks.\(n).", a = h + "attention.attention."
      out[h + "layernorm_before.weight"] = try get(b + "norm1.weight", [d])
      out[h + "layernorm_before.bias"] = try get(b + "norm1.bias", [d])
      let qkv = try get(b + "attn.qkv.weight", [3 * d, d]).values
      let qkvb = try get(b + "attn.qkv.bias", [3 * d]).values
      for (j, part) in ["query", "key", "value"].enumerated() {
        out[a + part + ".weight"] = NamedTensor(shape: [d, d], values: Array(qkv[(j * d * d)..<((j + 1) * d * d)]))
        out[a + part + ".bias"] = NamedTensor(shape: [d], values: Array(qkvb[(j * d)..<((j + 1) * d)]))
      }
      out[h + "attention.output.dense.weight"] = try get(b + "attn.proj.weight", [d, d])
      out[h + "attention.output.dense.bias"] = try get(b + "attn.proj.bias", [d])
      out[h + "layernorm_after.weight"] = try get(b + "norm2.weight", [d])
      out[h + "layernorm_after.bias"] = try get(b + "norm2.bias", [d])
      out[h + "intermediate.dense.weight"] = try get(b + "mlp.fc1.weight", [i, d])
      out[h + "intermediate.dense.bias"] = try get(b + "mlp.fc1.bias", [i])
      out[h + "output.dense.weight"] = try get(b + "mlp.fc2.weight", [d, i])
      out[h + "output.dense.bias"] = try get(b + "mlp.fc2.bias", [d])
    }
    out["layernorm.weight"] = try get("norm.weight", [d])
    out["layernorm.bias"] = try get("norm.bias", [d])
    if input["blocks.\(c.numHiddenLayers).norm1.weight"] != nil {
      throw EvaluationError(.badFile(path: path), "\(path): has more than \(c.numHiddenLayers) blocks")
    }
    return out
  }
}

extension TensorDict {
  /// Every tensor of a safetensors file, converted to F32.
  public static func read(_ f: SafeTensorsFile) throws -> TensorDict {
    var out: TensorDict = [:]
    for name in f.names {
      let info = try f.info(name)
      guard [.f32, .f16, .bf16, .f64].contains(info.dtype) else { continue }
      out[name] = NamedTensor(shape: info.shape, values: try f.floats(name))
    }
    return out
  }

  /// A safetensors writer holding the tensors in name order.
  public func writer(metadata: [String: String] = [:]) -> SafeTensorsWriter {
    var w = SafeTensorsWriter(metadata: metadata)
    for name in keys.sorted() { w.add(name, floats: self[name]!.values, shape: self[name]!.shape) }
    return w
  }
}

/// Model weights loaded from disk in timm names, whatever layout they were stored in.
public struct LoadedWeights: Sendable {
  public enum Layout: String, Sendable { case timm, huggingFace = "hf" }
  /// The safetensors file read.
  public var path: String
  public var layout: Layout
  /// Parameters with timm names and shapes.
  public var tensors: TensorDict
  /// config.json of a Hugging Face checkpoint (nil for timm files).
  public var hfConfig: HFViTConfig?
  /// LayerNorm epsilon the weights were trained with: config.json's for Hugging Face
  /// checkpoints, nil (= the model config's, timm's 1e-6) for timm files.
  public var layerNormEps: Double? { hfConfig?.layerNormEps }

  /// The tensors as an in-memory safetensors file (timm names, F32), e.g. for a model's
  /// `load(_ file: SafeTensorsFile)`.
  public func safeTensorsFile() throws -> SafeTensorsFile {
    try SafeTensorsFile(data: tensors.writer(metadata: ["format": "pt"]).serialized(), path: path)
  }

  /// Loads `path`: a safetensors file with timm names, a file with transformers ViT
  /// names (config.json next to it), or a directory holding `model.safetensors`
  /// (a checkpoint directory or a save_pretrained directory), or a run directory (its
  /// newest `checkpoints/step-N` holding a model.safetensors). HF layouts are converted.
  public static func load(path: String) throws -> LoadedWeights {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw EvaluationError(.notFound(path: path), "\(path): no such model file or directory")
    }
    var file = path
    if isDir.boolValue {
      file = (path as NSString).appendingPathComponent("model.safetensors")
      if !FileManager.default.fileExists(atPath: file), let ckpt = newestCheckpointDirectory(run: path) {
        file = (ckpt as NSString).appendingPathComponent("model.safetensors")
      }
      if !FileManager.default.fileExists(atPath: file) {
        if FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("pytorch_model.bin")) {
          throw EvaluationError(.unsupported(path: path), "\(path): has pytorch_model.bin only; PyTorch pickles are not read, save with safe_serialization=True")
        }
        throw EvaluationError(.notFound(path: path), "\(path): no model.safetensors in this directory")
      }
    } else if file.hasSuffix(".bin") || file.hasSuffix(".pth") || file.hasSuffix(".pt") {
      throw EvaluationError(.unsupported(path: path), "\(path): PyTorch pickle files are not read; convert to safetensors")
    }
    let f: SafeTensorsFile
    f = try SafeTensorsFile(path: file)
    let names = f.names
    if HFViTConversion.isHFLayout(names) {
      let cfgPath = ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent("config.json")
      guard let data = FileManager.default.contents(atPath: cfgPath) else {
        throw EvaluationError(.notFound(path: cfgPath), "\(cfgPath): missing; a Hugging Face ViT checkpoint needs its config.json next to \((file as NSString).lastPathComponent)")
      }
      let cfg = try HFViTConfig(json: data, path: cfgPath)
      let tensors = try HFViTConversion.hfToTimm(try TensorDict.read(f), config: cfg, path: file)
      return LoadedWeights(path: file, layout: .huggingFace, tensors: tensors, hfConfig: cfg)
    }
    guard HFViTConversion.isTimmLayout(names) else {
      throw EvaluationError(.unsupported(path: file), "\(file): neither timm ViT names (cls_token, pos_embed, blocks.N...) nor Hugging Face ViTModel names (embeddings.cls_token, encoder.layer.N...)")
    }
    return LoadedWeights(path: file, layout: .timm, tensors: try TensorDict.read(f), hfConfig: nil)
  }
}

/// Writes timm-named parameters as a transformers ViTModel directory: `model.safetensors`
/// (transformers names, F32, metadata format "pt") and `config.json`.
public func exportHuggingFace(tensors: TensorDict, config: HFViTConfig, to directory: String) throws {
  let hf = try HFViTConversion.timmToHF(tensors, config: config, path: directory)
  do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
    throw EvaluationError(.io(path: directory), "\(directory): cannot create directory: \(error.localizedDescription)")
  }
  do {
    try hf.writer(metadata: ["format": "pt"]).write(to: (directory as NSString).appendingPathComponent("model.safetensors"))
  }
  let cfgPath = (directory as NSString).appendingPathComponent("config.json")
  guard FileManager.default.createFile(atPath: cfgPath, contents: Data(config.json().utf8)) else {
    throw EvaluationError(.io(path: cfgPath), "\(cfgPath): cannot write")
  }
}
