import Foundation

/// An error of one module: a `kind` that callers and tests can tell apart (the module's own
/// enum of failure cases), and a `description` of one line naming the file, key or option,
/// which is what the command line prints. Each module names its instance
/// (`public typealias DatasetError = CodedError<DatasetErrorKind>`), so `DatasetError.Kind`,
/// `DatasetError(.io(path: p), "...")` and `catch let e as DatasetError` read as for a type of its own.
public struct CodedError<K: Equatable & Sendable>: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
  /// The module's failure cases (`DatasetError.Kind` is `DatasetErrorKind`).
  public typealias Kind = K

  public let kind: Kind
  public let description: String

  public init(_ kind: Kind, _ description: String) {
    self.kind = kind
    self.description = description
  }

  /// `description`, for Foundation's `localizedDescription`.
  public var errorDescription: String? { description }
}
