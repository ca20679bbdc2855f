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
  /// which names it in errors), with its keys spelt as a config file's `model:` section spells
  /// them (`image_size`, `ln_eps`); nil when trainer.json has no such object. The trainer
  /// state stores the config under its Swift property names (`imageSize`, `lnEps`), so
  /// camel-case keys are turned into snake case; snake-case keys pass unchanged.
  public static func modelSection(trainerJSON data: Data, path: String) throws(CheckpointLayoutError) -> [String: Any]? {
    guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw CheckpointLayoutError(.notJSONObject(path: path))
    }
    guard let model = (object["config"] as? [String: Any])?["model"] as? [String: Any] else { return nil }
    var out: [String: Any] = [:]
    for (k, v) in model { out[snakeCase(k)] = v }
    return out
  }

  /// A config key as config files and trainer.json readers spell it, from its Swift property
  /// name: "imageSize" -> "image_size", "ln_eps" -> "ln_eps" (the config schema derives its
  /// key names with it too).
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
  }

  public let kind: Kind

  public init(_ kind: Kind) { self.kind = kind }

  /// One line naming the file.
  public var description: String {
    switch kind {
    case .notJSONObject(let path): return "\(path): not a JSON object"
    }
  }
}
