import Foundation

/// Errors of the Dataset module. Each description is one line naming the file, key or option.
public struct DatasetError: Error, CustomStringConvertible, LocalizedError {
  public let description: String
  public init(_ description: String) { self.description = description }
  public var errorDescription: String? { description }
}
