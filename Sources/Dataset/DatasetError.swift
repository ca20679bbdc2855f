import CodedError
import Foundation

/// Errors of the Dataset module: a `kind` that callers and tests can tell apart, and a
/// description of one line naming the file, key or option.
public typealias DatasetError = CodedError<DatasetErrorKind>

/// The failure cases of the Dataset module.
public enum DatasetErrorKind: Equatable, Sendable {
  /// A file or directory at `path` that cannot be opened, read, listed, created, written or renamed.
  case io(path: String)
  /// A path that does not exist or a pattern that matches nothing.
  case notFound(path: String)
  /// A shard at `path` whose index cannot be read or built.
  case badShard(path: String)
  /// A record or member that is not as its index or the import says.
  case badRecord
  /// Data with no records (or too few for the batch, the ranks or the sampling).
  case noRecords
  /// An import output directory made from other inputs.
  case importMismatch(path: String)
  /// An option or setting outside its range.
  case invalidArgument
  /// The loader was used after `close()`.
  case closed
}
