/// One tensor of the flat parameter buffer.
public struct ParameterEntry: Sendable {
  /// timm state-dict name, e.g. `blocks.0.attn.qkv.weight`.
  public let name: String
  public let shape: [Int]
  /// Offset (in floats) into the flat buffers (parameters, gradients, moments).
  public let offset: Int
  public var count: Int { shape.reduce(1, *) }
  /// AdamW weight decay applies: weight matrices only (not biases, norms,
  /// `pos_embed`, `cls_token`).
  public let decay: Bool
}

/// The single layout shared by parameters, gradients and both AdamW moments:
/// a table of (name, shape, offset) in timm's state-dict order.
public struct ParameterLayout: Sendable {
  public let entries: [ParameterEntry]
  public let total: Int
  let index: [String: Int]

  public init(config c: ViTConfig) {
    var entries: [ParameterEntry] = []
    var off = 0
    func add(_ name: String, _ shape: [Int], decay: Bool = false) {
      entries.append(ParameterEntry(name: name, shape: shape, offset: off, decay: decay))
      off += shape.reduce(1, *)
    }
    let d = c.width, g = c.grid
    add("cls_token", [1, 1, d])
    add("pos_embed", [1, 1 + g * g, d])
    add("patch_embed.proj.weight", [d, c.channels, c.patch, c.patch], decay: true)
    add("patch_embed.proj.bias", [d])
    for l in 0..<c.depth {
      let p = "blocks.\(l)."
      add(p + "norm1.weight", [d]); add(p + "norm1.bias", [d])
      add(p + "attn.qkv.weight", [3 * d, d], decay: true); add(p + "attn.qkv.bias", [3 * d])
      add(p + "attn.proj.weight", [d, d], decay: true); add(p + "attn.proj.bias", [d])
      add(p + "norm2.weight", [d]); add(p + "norm2.bias", [d])
      add(p + "mlp.fc1.weight", [c.mlpDim, d], decay: true); add(p + "mlp.fc1.bias", [c.mlpDim])
      add(p + "mlp.fc2.weight", [d, c.mlpDim], decay: true); add(p + "mlp.fc2.bias", [d])
    }
    add("norm.weight", [d]); add("norm.bias", [d])
    self.entries = entries
    self.total = off
    var idx: [String: Int] = [:]
    for (i, e) in entries.enumerated() { idx[e.name] = i }
    index = idx
  }

  public subscript(name: String) -> ParameterEntry { entries[index[name]!] }
  public func entry(_ name: String) -> ParameterEntry? { index[name].map { entries[$0] } }
  public func offset(_ name: String) -> Int { entries[index[name]!].offset }
}
