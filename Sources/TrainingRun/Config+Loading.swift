import CheckpointLayout
import CodedError
import Foundation
import Kernels
import ViT
import Yams

/// A configuration error: a `kind` that callers and tests can tell apart, and a
/// description of one line naming the file or option and the key.
public typealias ConfigError = CodedError<ConfigErrorKind>

/// The failure cases of reading and checking a configuration.
public enum ConfigErrorKind: Equatable, Sendable {
  /// The configuration file at `path` cannot be read.
  case unreadable(path: String)
  /// The file is not YAML.
  case invalidYAML
  /// The top level, a section or a key is not of the form sections / keys / values.
  case notAMapping
  /// A section name the schema does not have.
  case unknownSection(String)
  /// A key (`section.key`) the schema does not have.
  case unknownKey(String)
  /// A key set twice in one file.
  case duplicateKey(String)
  /// Two keys that exclude each other, both set in one layer.
  case exclusiveKeys(String, String)
  /// A value of the wrong type (or null) for `key`.
  case wrongType(key: String)
  /// A `--set` that is not `key=value`.
  case badOverride
  /// The merged layers do not decode as a configuration.
  case undecodable
  /// A value outside the range of `key`, or inconsistent with other keys.
  case outOfRange(key: String)
  /// Neither `train.steps` nor `train.epochs` is set.
  case missingRunLength
}

// MARK: - Schema (derived from the default configuration by reflection)

/// The type of one configuration key.
enum ConfigKind: Equatable {
  case int, double, bool, string, stringList, doubleList
  case choice([String])

  var expectation: String {
    switch self {
    case .int: return "an integer"
    case .double: return "a number"
    case .bool: return "true or false"
    case .string: return "a string"
    case .stringList: return "a list of strings"
    case .doubleList: return "a list of numbers"
    case .choice(let c): return "one of " + c.joined(separator: ", ")
    }
  }
}

struct ConfigLeaf: Equatable {
  var kind: ConfigKind
  var optional: Bool
}

protocol OptionalMarker { static var wrappedType: Any.Type { get } }
extension Optional: OptionalMarker { static var wrappedType: Any.Type { Wrapped.self } }

enum ConfigSchema {
  /// Section name -> key -> leaf type, e.g. ["optim"]["warmup_epochs"] = double, optional.
  static let sections: [String: [String: ConfigLeaf]] = {
    var out: [String: [String: ConfigLeaf]] = [:]
    for child in Mirror(reflecting: TrainConfig()).children {
      guard let label = child.label else { continue }
      var keys: [String: ConfigLeaf] = [:]
      for field in Mirror(reflecting: child.value).children {
        guard let name = field.label else { continue }
        keys[CheckpointLayout.snakeCase(name)] = leaf(for: type(of: field.value))
      }
      out[CheckpointLayout.snakeCase(label)] = keys
    }
    return out
  }()

  static func leaf(for t: Any.Type) -> ConfigLeaf {
    var optional = false
    var t = t
    if let o = t as? OptionalMarker.Type { optional = true; t = o.wrappedType }
    let kind: ConfigKind
    if t == Int.self { kind = .int }
    else if t == Double.self { kind = .double }
    else if t == Bool.self { kind = .bool }
    else if t == String.self { kind = .string }
    else if t == [String].self { kind = .stringList }
    else if t == [Double].self { kind = .doubleList }
    else if let c = t as? any ConfigChoice.Type { kind = .choice(choices(c)) }
    else { fatalError("config schema: unsupported field type \(t)") }
    return ConfigLeaf(kind: kind, optional: optional)
  }

  static func choices<C: ConfigChoice>(_ c: C.Type) -> [String] { C.allCases.map(\.rawValue) }

  /// Keys that exclude each other: setting one in a layer clears the other from
  /// the layers below (so `--set train.steps=300` replaces a file's `epochs`).
  static let exclusive: [(String, String, String)] = [
    ("train", "steps", "epochs"), ("optim", "warmup_steps", "warmup_epochs"),
  ]

  static var allKeys: [String] {
    sections.flatMap { s, keys in keys.keys.map { "\(s).\($0)" } }.sorted()
  }

  /// The closest known key, if it is a plausible misspelling.
  static func suggestion(for key: String) -> String? {
    let best = allKeys.map { ($0, editDistance($0, key)) }.min { $0.1 < $1.1 }
    guard let (k, d) = best, d <= max(2, key.count / 4) else { return nil }
    return k
  }
}

func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a), b = Array(b)
  if a.isEmpty { return b.count }
  var prev = Array(0...b.count)
  for i in 1...a.count {
    var cur = [i] + Array(repeating: 0, count: b.count)
    for j in 1...max(1, b.count) where j <= b.count {
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.count]
}

// MARK: - Values

/// A parsed value of one key: a JSON-compatible value, or "unset" (optional keys).
enum ConfigValue {
  case set(Any)
  case unset
}

enum ValueParse {
  static let nulls: Set<String> = ["null", "~", "Null", "NULL", ""]

  static func int(_ s: String) -> Int? {
    let t = s.replacingOccurrences(of: "_", with: "")
    if let v = Int(t) { return v }
    if let d = Double(t), d.rounded() == d, abs(d) < 1e15 { return Int(d) }
    return nil
  }

  static func double(_ s: String) -> Double? {
    let t = s.replacingOccurrences(of: "_", with: "")
    guard let v = Double(t), v.isFinite else { return nil }
    return v
  }

  static func bool(_ s: String) -> Bool? {
    switch s.lowercased() {
    case "true", "yes", "on": return true
    case "false", "no", "off": return false
    default: return nil
    }
  }

  /// Parses a scalar string for `kind`; `nil` result means "does not fit".
  static func scalar(_ s: String, _ kind: ConfigKind) -> Any? {
    switch kind {
    case .int: return int(s)
    case .double: return double(s)
    case .bool: return bool(s)
    case .string: return s
    case .stringList: return [s]
    case .doubleList: return nil
    case .choice(let c): return c.contains(s) ? s : nil
    }
  }
}

// MARK: - Layers: YAML file, --set overrides

/// One source of settings: section -> key -> value (nil value = explicitly unset).
typealias ConfigLayer = [String: [String: ConfigValue]]

extension TrainConfig {
  /// Reads a YAML file and applies `--set` overrides (`section.key=value`, typed by
  /// the schema; `null` unsets an optional key; lists as `a,b` or `[a, b]`).
  /// Throws `ConfigError` naming the file or option and the key.
  public static func load(path: String, overrides: [String] = []) throws -> TrainConfig {
    try parse(yaml: try text(path: path), source: path, overrides: overrides)
  }

  /// The model section of the configuration file at `path`, read by the rules of `load`
  /// (known sections and keys, values typed by the schema) with the checks of the model
  /// section only, so that a file with just `model:` serves the commands that run a model
  /// (`cde embed`, `eval`, `detect`, `step`, `bench`). Throws `ConfigError` naming the file
  /// and the key.
  public static func loadModel(path: String) throws -> ModelConfig {
    let model = try build(layers: [try fileLayer(yaml: try text(path: path), source: path)], source: path).model
    if let p = model.problem { throw ConfigError(.outOfRange(key: p.key), "\(path): key '\(p.key)': \(p.why)") }
    return model
  }

  static func text(path: String) throws -> String {
    do {
      return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw ConfigError(.unreadable(path: path), "\(path): cannot read the configuration file")
    }
  }

  /// As `load`, from YAML text; `source` names it in errors.
  public static func parse(yaml: String, source: String = "<config>", overrides: [String] = []) throws -> TrainConfig {
    var layers = [try fileLayer(yaml: yaml, source: source)]
    for o in overrides { layers.append(try overrideLayer(o)) }
    let config = try build(layers: layers, source: source)
    try config.validate(source: source)
    return config
  }

  /// Defaults plus the given overrides only (no file).
  public static func defaults(overrides: [String] = []) throws -> TrainConfig {
    let config = try build(layers: try overrides.map(overrideLayer), source: "--set")
    try config.validate(source: "--set")
    return config
  }

  static func fileLayer(yaml: String, source: String) throws -> ConfigLayer {
    let root: Node?
    do {
      root = try Yams.compose(yaml: yaml)
    } catch {
      let line = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
      throw ConfigError(.invalidYAML, "\(source): invalid YAML: \(line)")
    }
    guard let root else { return [:] }
    guard let top = root.mapping else {
      throw ConfigError(.notAMapping, "\(source)\(at(root)): the top level must be a mapping of sections (model, data, train, optim, checkpoint, loss, eval)")
    }
    var layer: ConfigLayer = [:]
    for (kNode, vNode) in top {
      guard let section = kNode.string else { throw ConfigError(.notAMapping, "\(source)\(at(kNode)): keys must be strings") }
      guard let schema = ConfigSchema.sections[section] else {
        throw ConfigError(.unknownSection(section), "\(source)\(at(kNode)): unknown section '\(section)'" + hint(section))
      }
      if vNode.null != nil, vNode.scalar?.style == .plain { layer[section] = [:]; continue }
      guard let entries = vNode.mapping else {
        throw ConfigError(.notAMapping, "\(source)\(at(vNode)): section '\(section)' must be a mapping of keys")
      }
      var values: [String: ConfigValue] = [:]
      for (keyNode, valueNode) in entries {
        guard let key = keyNode.string else { throw ConfigError(.notAMapping, "\(source)\(at(keyNode)): keys must be strings") }
        let path = "\(section).\(key)"
        guard let leaf = schema[key] else {
          throw ConfigError(.unknownKey(path), "\(source)\(at(keyNode)): unknown key '\(path)'" + hint(path))
        }
        if values.keys.contains(key) { throw ConfigError(.duplicateKey(path), "\(source)\(at(keyNode)): key '\(path)' is set twice") }
        values[key] = try value(of: valueNode, leaf: leaf, path: path, source: source)
      }
      for (s, a, b) in ConfigSchema.exclusive where s == section {
        if case .set = values[a], case .set = values[b] {
          throw ConfigError(.exclusiveKeys("\(s).\(a)", "\(s).\(b)"), "\(source): '\(s).\(a)' and '\(s).\(b)' are both set; keep one")
        }
      }
      layer[section] = values
    }
    return layer
  }

  static func at(_ node: Node) -> String {
    guard let m = node.mark else { return "" }
    return ":\(m.line)"
  }

  static func hint(_ key: String) -> String {
    if let s = ConfigSchema.suggestion(for: key), s != key { return " (did you mean '\(s)'?)" }
    if !key.contains(".") { return " (sections: " + ConfigSchema.sections.keys.sorted().joined(separator: ", ") + ")" }
    return ""
  }

  static func value(of node: Node, leaf: ConfigLeaf, path: String, source: String) throws -> ConfigValue {
    func wrong() -> ConfigError {
      let shown: String
      switch node {
      case .scalar(let s): shown = "'\(s.string)'"
      case .mapping: shown = "a mapping"
      case .sequence: shown = "a list"
      @unknown default: shown = "a value"
      }
      return ConfigError(.wrongType(key: path), "\(source)\(at(node)): key '\(path)': expected \(leaf.kind.expectation), got \(shown)")
    }
    switch node {
    case .scalar(let s):
      if s.style == .plain && ValueParse.nulls.contains(s.string) {
        if leaf.optional { return .unset }
        throw ConfigError(.wrongType(key: path), "\(source)\(at(node)): key '\(path)' cannot be null (expected \(leaf.kind.expectation))")
      }
      // A quoted scalar is a string: "1e-3" is not a number, 'true' is not a bool.
      if s.style != .plain, leaf.kind != .string, leaf.kind != .stringList, !isChoice(leaf.kind) { throw wrong() }
      guard let v = ValueParse.scalar(s.string, leaf.kind) else { throw wrong() }
      return .set(v)
    case .sequence(let seq):
      switch leaf.kind {
      case .stringList:
        return .set(try seq.map { item -> String in
          guard let str = item.scalar?.string else { throw wrong() }
          return str
        })
      case .doubleList:
        return .set(try seq.map { item -> Double in
          guard let sc = item.scalar, sc.style == .plain, let d = ValueParse.double(sc.string) else { throw wrong() }
          return d
        })
      default: throw wrong()
      }
    default:
      throw wrong()
    }
  }

  static func isChoice(_ k: ConfigKind) -> Bool {
    if case .choice = k { return true }
    return false
  }

  /// `section.key=value` -> a one-key layer.
  static func overrideLayer(_ text: String) throws -> ConfigLayer {
    guard let eq = text.firstIndex(of: "=") else {
      throw ConfigError(.badOverride, "--set \(text): expected key=value, e.g. --set optim.lr=0.001")
    }
    let path = String(text[..<eq]).trimmingCharacters(in: .whitespaces)
    let raw = String(text[text.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
    let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 2, let schema = ConfigSchema.sections[parts[0]], let leaf = schema[parts[1]] else {
      throw ConfigError(.unknownKey(path), "--set \(path): unknown key" + hint(path))
    }
    let wrong = ConfigError(.wrongType(key: path), "--set \(path)=\(raw): expected \(leaf.kind.expectation)")
    let v: ConfigValue
    if ValueParse.nulls.contains(raw) && leaf.optional {
      v = .unset
    } else if raw.hasPrefix("[") && (leaf.kind == .stringList || leaf.kind == .doubleList) {
      guard let node = try? Yams.compose(yaml: raw) else { throw wrong }
      v = try value(of: node, leaf: leaf, path: path, source: "--set")
    } else if leaf.kind == .stringList {
      v = .set(raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    } else if leaf.kind == .doubleList {
      let items = raw.split(separator: ",").map { ValueParse.double($0.trimmingCharacters(in: .whitespaces)) }
      guard !items.contains(where: { $0 == nil }) else { throw wrong }
      v = .set(items.map { $0! })
    } else {
      guard let p = ValueParse.scalar(raw, leaf.kind) else { throw wrong }
      v = .set(p)
    }
    return [parts[0]: [parts[1]: v]]
  }

  /// Defaults, then each layer in order, decoded into a TrainConfig.
  static func build(layers: [ConfigLayer], source: String) throws -> TrainConfig {
    var tree = try defaultTree()
    for layer in layers {
      for (section, values) in layer {
        var sec = tree[section] as? [String: Any] ?? [:]
        for (s, a, b) in ConfigSchema.exclusive where s == section {
          if values[a] != nil && values[b] == nil { sec[b] = nil }
          if values[b] != nil && values[a] == nil { sec[a] = nil }
        }
        for (k, v) in values {
          switch v {
          case .set(let x): sec[k] = x
          case .unset: sec[k] = nil
          }
        }
        tree[section] = sec
      }
    }
    return try decode(tree: tree, source: source)
  }

  static func defaultTree() throws -> [String: Any] {
    let data = try encoder().encode(TrainConfig())
    return try JSONSerialization.jsonObject(with: data) as! [String: Any]
  }

  static func encoder() -> JSONEncoder {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = [.sortedKeys, .prettyPrinted]
    return e
  }

  static func decode(tree: [String: Any], source: String) throws -> TrainConfig {
    let d = JSONDecoder()
    d.keyDecodingStrategy = .convertFromSnakeCase
    do {
      let data = try JSONSerialization.data(withJSONObject: tree)
      return try d.decode(TrainConfig.self, from: data)
    } catch let e as DecodingError {
      throw ConfigError(.undecodable, "\(source): " + describe(e))
    }
  }

  static func describe(_ e: DecodingError) -> String {
    func path(_ c: [CodingKey]) -> String { c.map { CheckpointLayout.snakeCase($0.stringValue) }.joined(separator: ".") }
    switch e {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
      return "key '\(path(c.codingPath))': \(c.debugDescription)"
    case .keyNotFound(let k, let c):
      return "missing key '\(path(c.codingPath + [k]))'"
    @unknown default:
      return "\(e)"
    }
  }

  // MARK: - Checks

  /// Range and consistency checks; the error names the key.
  public func validate(source: String = "<config>") throws {
    func fail(_ key: String, _ why: String) -> ConfigError { ConfigError(.outOfRange(key: key), "\(source): key '\(key)': \(why)") }
    if let p = model.problem { throw fail(p.key, p.why) }
    if data.localSize <= 0 || data.localSize % model.patch != 0 {
      throw fail("data.local_size", "must be a positive multiple of model.patch (\(model.patch))")
    }
    if data.loaderThreads < 0 { throw fail("data.loader_threads", "must be 0 (automatic) or positive") }
    if data.prefetch < 0 { throw fail("data.prefetch", "must not be negative") }
    if data.numTransform < 0 { throw fail("data.num_transform", "must not be negative") }
    if data.maxImagePixels < 1 { throw fail("data.max_image_pixels", "must be positive") }
    if train.globalBatch <= 0 { throw fail("train.global_batch", "must be positive") }
    if train.steps == nil && train.epochs == nil { throw ConfigError(.missingRunLength, "\(source): set 'train.steps' or 'train.epochs'") }
    if let s = train.steps, s < 0 { throw fail("train.steps", "must not be negative") }
    if let e = train.epochs, !(e >= 0) { throw fail("train.epochs", "must not be negative") }
    if let s = train.stepsPerEpoch, s <= 0 { throw fail("train.steps_per_epoch", "must be positive") }
    if train.seed < 0 { throw fail("train.seed", "must not be negative") }
    if train.logEvery <= 0 { throw fail("train.log_every", "must be positive") }
    if train.consistencyCheckEvery < 0 { throw fail("train.consistency_check_every", "must not be negative") }
    if !(optim.lr >= 0) { throw fail("optim.lr", "must not be negative") }
    if optim.betas.count != 2 || !optim.betas.allSatisfy({ $0 >= 0 && $0 < 1 }) {
      throw fail("optim.betas", "must be two numbers in [0, 1)")
    }
    if !(optim.eps > 0) { throw fail("optim.eps", "must be positive") }
    if !(optim.weightDecay >= 0) { throw fail("optim.weight_decay", "must not be negative") }
    if let w = optim.warmupSteps, w < 0 { throw fail("optim.warmup_steps", "must not be negative") }
    if let w = optim.warmupEpochs, !(w >= 0) { throw fail("optim.warmup_epochs", "must not be negative") }
    if !(optim.warmupLrInit >= 0) { throw fail("optim.warmup_lr_init", "must not be negative") }
    if !(optim.minLr >= 0) || optim.minLr > optim.lr { throw fail("optim.min_lr", "must be in [0, optim.lr]") }
    if optim.gradCacheChunk < 0 { throw fail("optim.grad_cache_chunk", "must be 0 (off) or positive") }
    if checkpoint.everySteps < 0 { throw fail("checkpoint.every_steps", "must not be negative") }
    if checkpoint.keep < 1 { throw fail("checkpoint.keep", "must be at least 1") }
    if !(loss.temperature > 0) { throw fail("loss.temperature", "must be positive") }
    if let t = train.stallTimeoutS, !(t >= 0) { throw fail("train.stall_timeout_s", "must be 0 (off) or a positive number of seconds") }
    if train.earlyStopPatience < 0 { throw fail("train.early_stop_patience", "must be 0 (off) or positive") }
    try validateEval(fail)
  }

  /// Checks of the job that runs this config: the number of ranks, and what this machine
  /// can run (`optim.precision: bf16`).
  public func validate(worldSize: Int) throws {
    if train.globalBatch % worldSize != 0 {
      throw ConfigError(.outOfRange(key: "train.global_batch"), "key 'train.global_batch': \(train.globalBatch) is not a multiple of the \(worldSize) ranks")
    }
    if optim.precision == .bf16, let why = GEMMBackend.bf16Unavailable {
      throw ConfigError(.outOfRange(key: "optim.precision"), "key 'optim.precision': bf16 needs a CPU with avx512_bf16 or amx_bf16; \(why)")
    }
  }

  // MARK: - Serialisation

  /// The configuration as JSON (snake_case keys, sorted; unset optional keys omitted).
  public func toJSON() -> Data {
    try! Self.encoder().encode(self)
  }

  /// The configuration as a JSON object (for embedding in trainer.json).
  public func toJSONObject() -> [String: Any] {
    try! JSONSerialization.jsonObject(with: toJSON()) as! [String: Any]
  }

  /// Reads JSON written by `toJSON()` (e.g. from a checkpoint's trainer.json).
  public static func fromJSON(_ data: Data, source: String = "<json>") throws -> TrainConfig {
    guard let tree = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw ConfigError(.notAMapping, "\(source): not a JSON object")
    }
    return try fromJSONObject(tree, source: source)
  }

  public static func fromJSONObject(_ object: [String: Any], source: String = "<json>") throws -> TrainConfig {
    var tree = try defaultTree()
    for (section, value) in object {
      guard let keys = ConfigSchema.sections[section] else { throw ConfigError(.unknownSection(section), "\(source): unknown section '\(section)'") }
      guard let values = value as? [String: Any] else { throw ConfigError(.notAMapping, "\(source): section '\(section)' is not an object") }
      var sec = tree[section] as? [String: Any] ?? [:]
      for (k, v) in values {
        guard keys[k] != nil else { throw ConfigError(.unknownKey("\(section).\(k)"), "\(source): unknown key '\(section).\(k)'") }
        sec[k] = v
      }
      for (s, a, b) in ConfigSchema.exclusive where s == section {
        if values[a] == nil && sec[a] != nil && values[b] != nil { sec[a] = nil }
        if values[b] == nil && sec[b] != nil && values[a] != nil { sec[b] = nil }
      }
      tree[section] = sec
    }
    return try decode(tree: tree, source: source)
  }

  /// The configuration as YAML (e.g. RUN/config.yaml), readable by `load`.
  public func toYAML() -> String {
    var out = ""
    let tree = toJSONObject()
    for section in ["model", "data", "train", "optim", "checkpoint", "loss", "eval"] {
      guard let values = tree[section] as? [String: Any], let schema = ConfigSchema.sections[section] else { continue }
      out += "\(section):\n"
      for key in values.keys.sorted() {
        out += "  \(key): \(Self.yamlScalar(values[key]!, schema[key]?.kind ?? .string))\n"
      }
    }
    return out
  }

  static func yamlScalar(_ v: Any, _ kind: ConfigKind) -> String {
    func quote(_ s: String) -> String {
      "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
    func number(_ x: Any) -> String {
      if let d = x as? Double { return "\(d)" }
      if let i = x as? Int { return "\(i)" }
      if let n = x as? NSNumber { return "\(n.doubleValue)" }
      return "\(x)"
    }
    switch kind {
    case .string, .choice: return quote("\(v)")
    case .stringList: return "[" + ((v as? [Any]) ?? []).map { quote("\($0)") }.joined(separator: ", ") + "]"
    case .doubleList: return "[" + ((v as? [Any]) ?? []).map(number).joined(separator: ", ") + "]"
    case .bool: return ((v as? Bool) ?? (v as? NSNumber)?.boolValue ?? false) ? "true" : "false"
    case .int: return (v as? Int).map(String.init) ?? (v as? NSNumber).map { "\($0.intValue)" } ?? "\(v)"
    case .double: return number(v)
    }
  }
}
