import Foundation

/// The on-disk layout of a cde run's checkpoints, as `TrainingRun`'s `CheckpointStore`
/// writes it and `Evaluation` reads it:
/// RUN/checkpoints/step-NNNNNNNN/{model.safetensors, optimizer.safetensors, trainer.json},
/// with the run's configuration under the `config` key of trainer.json.
public enum CheckpointLayout {
  /// Folder of a run directory that holds its checkpoints.
  public static let checkpointsFolder = "checkpoints"
  /// The model weights of a checkpoint (timm names).
  public static let modelFile = "model.safetensors"
  /// The trainer's state of a checkpoint (JSON object).
  public static let trainerFile = "trainer.json"

  /// Prefix of a step checkpoint's directory name.
  static let stepPrefix = "step-"

  /// The directory name of the checkpoint of `step`: `step-` and the step in at least eight digits.
  public static func directoryName(step: Int) -> String { String(format: "step-%08d", step) }

  /// The step a checkpoint directory name stands for: `step-` followed by one or more
  /// ASCII digits (a non-negative step); nil for any other name (`best`, `.tmp-step-N`,
  /// `step-`, `step--1`, `step-+5`, `step-1x`).
  public static func step(ofDirectoryName name: String) -> Int? {
    guard name.hasPrefix(stepPrefix) else { return nil }
    let digits = name.dropFirst(stepPrefix.count)
    guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
    return Int(digits)
  }

  /// The `config.model` object of a trainer.json's contents `data` (read from `path`,
  /// which names it in errors), decoded as `M`: ViT's `ModelConfig`, the type the trainer
  /// encoded it from, so the keys are its property names (`imageSize`, `lnEps`). Nil when
  /// trainer.json has no such object.
  public static func modelSection<M: Decodable>(_ type: M.Type, trainerJSON data: Data, path: String) throws(CheckpointLayoutError) -> M? {
    guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw CheckpointLayoutError(.notJSONObject(path: path))
    }
    guard let model = (object["config"] as? [String: Any])?["model"] as? [String: Any] else { return nil }
    do {
      return try JSONDecoder().decode(M.self, from: JSONSerialization.data(withJSONObject: model))
    } catch {
      throw CheckpointLayoutError(.badModelSection(path: path, detail: oneLine(error)))
    }
  }

  /// A decoding failure of the model section in one line: the key (`config.model.heads`) and
  /// what is wrong with it.
  static func oneLine(_ error: Error) -> String {
    func key(_ path: [CodingKey], _ last: CodingKey? = nil) -> String {
      (["config", "model"] + (path + (last.map { [$0] } ?? [])).map(\.stringValue)).joined(separator: ".")
    }
    switch error {
    case DecodingError.typeMismatch(let type, let c): return "\(key(c.codingPath)): expected \(type)"
    case DecodingError.valueNotFound(let type, let c): return "\(key(c.codingPath)): expected \(type), got null"
    case DecodingError.keyNotFound(let k, let c): return "\(key(c.codingPath, k)): missing"
    case DecodingError.dataCorrupted(let c): return "\(key(c.codingPath)): \(c.debugDescription)"
    default: return "\(error)"
    }
  }

  /// A config key as config files spell it, from its Swift property name: "imageSize" ->
  /// "image_size", "ln_eps" -> "ln_eps" (the config schema derives its key names with it).
  public static func snakeCase(_ key: String) -> String {
    var out = ""
    for c in key {
      if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
    }
    return out
  }
}

/// A checkpoint file that does not have the layout `CheckpointLayout` describes.
public struct CheckpointLayoutError: Error, CustomStringConvertible, Equatable, Sendable {
  /// What is wrong.
  public enum Kind: Equatable, Sendable {
    /// trainer.json at `path` is not a JSON object.
    case notJSONObject(path: String)
    /// The `config.model` object of trainer.json at `path` does not decode as a model section.
    case badModelSection(path: String, detail: String)
  }

  public let kind: Kind

  public init(_ kind: Kind) { self.kind = kind }

  /// One line naming the file.
  public var description: String {
    switch kind {
    case .notJSONObject(let path): return "\(path): not a JSON object"
    case .badModelSection(let path, let detail): return "\(path): \(detail)"
    }
  }
}
