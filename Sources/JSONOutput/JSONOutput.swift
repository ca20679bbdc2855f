import Foundation

/// The one JSON writer of the project's outputs (`cde bench --json`, `cde detect --json`,
/// `status.json`, `trainer.json`, metrics rows, import summaries, the source lists in
/// embedding files): Foundation's `JSONSerialization` with the keys of every object sorted,
/// so that the same values always give the same bytes.
///
/// Numbers are written as `JSONSerialization` writes them (a Double without a fraction
/// as an integer: 4.0 as `4`); NaN and infinities are not JSON and make it throw. Fixed-order
/// formats (`metrics.jsonl` step lines, `EvaluationReport.json()`, the safetensors header)
/// are assembled by their own types.
public enum JSONOutput {
  /// The layout of the text.
  public enum Layout: Sendable {
    /// One line, no spaces.
    case compact
    /// Indented, one member per line (`JSONSerialization`'s `.prettyPrinted`).
    case pretty
  }

  /// JSON text of `object` (dictionaries, arrays, strings, numbers, Bool, NSNull), keys sorted.
  /// With `escapingSlashes` false, "/" is written as is instead of as `\/`.
  /// Throws what `JSONSerialization` throws for a value that is not JSON.
  public static func data(_ object: Any, layout: Layout = .compact, escapingSlashes: Bool = true) throws -> Data {
    var options: JSONSerialization.WritingOptions = [.sortedKeys]
    if layout == .pretty { options.insert(.prettyPrinted) }
    if !escapingSlashes { options.insert(.withoutEscapingSlashes) }
    return try JSONSerialization.data(withJSONObject: object, options: options)
  }

  /// `data(object, ...)` as a String (UTF-8).
  public static func string(_ object: Any, layout: Layout = .compact, escapingSlashes: Bool = true) throws -> String {
    String(decoding: try data(object, layout: layout, escapingSlashes: escapingSlashes), as: UTF8.self)
  }
}
