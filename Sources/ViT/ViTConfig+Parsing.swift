import Foundation

extension ViTConfig {
  /// The fields a `model:` section of a configuration sets (nil: not set), parsed from a
  /// YAML- or JSON-decoded mapping with one set of rules:
  ///
  /// - keys: `width`, `depth`, `heads`, `mlp_ratio`, `patch`, `image_size`, `ln_eps`;
  ///   any other key is an error unless the caller ignores unknown keys;
  /// - `width`, `depth`, `heads`, `patch`, `image_size` are integers (a YAML integer or a
  ///   JSON number with a whole value; not a boolean, not a YAML `2.0`);
  /// - `mlp_ratio` and `ln_eps` are finite numbers (integer or floating; not a boolean).
  ///
  /// The shape itself (positivity, divisibility) is checked by `ViTConfig.validate()`.
  public struct Section: Equatable, Sendable {
    public var width: Int? = nil
    public var depth: Int? = nil
    public var heads: Int? = nil
    public var mlpRatio: Double? = nil
    public var patch: Int? = nil
    public var imageSize: Int? = nil
    public var lnEps: Double? = nil

    /// The keys a section may hold, in the order they are checked.
    public static let keys = ["width", "depth", "heads", "mlp_ratio", "patch", "image_size", "ln_eps"]

    public init() {}

    /// Parses `mapping` (keys in sorted order, so the first error is always the same one).
    /// `keyPrefix` is how errors spell the section (`model.` for a config file,
    /// `config.model.` for a trainer.json); with `ignoreUnknownKeys` other keys are passed
    /// over (a bare mapping that may hold keys of other sections).
    public init(parsing mapping: [String: Any], keyPrefix: String = "model.", ignoreUnknownKeys: Bool = false) throws(ViTError) {
      for key in mapping.keys.sorted() {
        let value = mapping[key]!
        func integer() throws(ViTError) -> Int {
          guard !(value is Bool), let i = value as? Int else {
            throw ViTError(.notAnInteger(key: keyPrefix + key, value: "\(value)"))
          }
          return i
        }
        func number() throws(ViTError) -> Double {
          guard !(value is Bool) else { throw ViTError(.notANumber(key: keyPrefix + key, value: "\(value)")) }
          if let d = value as? Double, d.isFinite { return d }
          if let i = value as? Int { return Double(i) }
          throw ViTError(.notANumber(key: keyPrefix + key, value: "\(value)"))
        }
        switch key {
        case "width": width = try integer()
        case "depth": depth = try integer()
        case "heads": heads = try integer()
        case "mlp_ratio": mlpRatio = try number()
        case "patch": patch = try integer()
        case "image_size": imageSize = try integer()
        case "ln_eps": lnEps = try number()
        default:
          if !ignoreUnknownKeys { throw ViTError(.unknownKey(keyPrefix + key)) }
        }
      }
    }

    /// `base` with the fields this section sets replaced.
    public func applied(to base: ViTConfig) -> ViTConfig {
      var c = base
      if let width { c.width = width }
      if let depth { c.depth = depth }
      if let heads { c.heads = heads }
      if let mlpRatio { c.mlpRatio = mlpRatio }
      if let patch { c.patch = patch }
      if let imageSize { c.imageSize = imageSize }
      if let lnEps { c.lnEps = Float(lnEps) }
      return c
    }
  }
}
