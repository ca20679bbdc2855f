import CodedError
import SafeTensors

/// A model problem: a `kind` that callers and tests can tell apart, and a description of
/// one line naming the key, tensor or size.
public typealias ViTError = CodedError<ViTErrorKind>

/// The failure cases of the ViT module.
public enum ViTErrorKind: Equatable, Sendable {
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
