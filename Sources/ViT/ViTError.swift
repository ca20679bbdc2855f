import CodedError
import SafeTensors

/// A model problem: a `kind` that callers and tests can tell apart, and a description of
/// one line naming the key, tensor or size.
public typealias ViTError = CodedError<ViTErrorKind>

/// The failure cases of the ViT module.
public enum ViTErrorKind: Equatable, Sendable {
  /// A model-section key whose value is not an integer (`key` spelt with its section).
  case notAnInteger(key: String, value: String)
  /// A model-section key whose value is not a finite number.
  case notANumber(key: String, value: String)
  /// A key a model section does not have.
  case unknownKey(String)
  /// A shape `ViTConfig.validate()` refuses.
  case invalidConfig
  /// A weights file at `path` without the parameter `tensor`.
  case missingTensor(path: String, tensor: String)
  /// A parameter of the weights file that cannot be read with the model's shape (the
  /// safetensors failure).
  case unreadableTensor(SafeTensorsError.Kind)
  /// An image size that is not a positive multiple of the patch.
  case imageSize(height: Int, width: Int)
}

extension CodedError where K == ViTErrorKind {
  /// An error whose description is made from its kind (the model-section cases).
  public init(_ kind: Kind) {
    let d: String
    switch kind {
    case .notAnInteger(let key, let value): d = "\(key): expected an integer, got \(value)"
    case .notANumber(let key, let value): d = "\(key): expected a number, got \(value)"
    case .unknownKey(let key): d = "unknown key \(key)"
    default: d = "\(kind)"
    }
    self.init(kind, d)
  }
}
