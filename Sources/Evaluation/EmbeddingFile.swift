import Foundation
import JSONOutput
import SafeTensors

/// Embeddings of a set of images with their labels and sources.
///
/// On disk a safetensors file: `embeddings` F32 `[N, D]` (any float type is accepted when
/// reading), `labels` I64 `[N]` (0 real, k + 1 gen_k, -1 unknown), and in the metadata
/// `sources` = a JSON list of N strings (the image file or shard member of each row).
/// Other metadata entries (e.g. `model`) are kept as they are.
public struct EmbeddingFile: Sendable {
  /// Row-major `[count, dimension]`.
  public var embeddings: [Float]
  public var dimension: Int
  public var labels: [Int64]
  public var sources: [String]
  /// Metadata other than `sources` (e.g. `model`: the model the rows came from).
  public var metadata: [String: String]

  public var count: Int { labels.count }

  /// Label value of real images.
  public static let realLabel: Int64 = 0
  /// Label value of rows whose class is not known.
  public static let unknownLabel: Int64 = -1

  /// Builds an embedding set; throws if the sizes disagree.
  public init(embeddings: [Float], dimension: Int, labels: [Int64], sources: [String]? = nil,
              metadata: [String: String] = [:]) throws {
    guard dimension > 0 else { throw EvaluationError(.invalidArgument, "embeddings: dimension must be positive, got \(dimension)") }
    guard embeddings.count == labels.count * dimension else {
      throw EvaluationError(.invalidArgument, "embeddings: \(embeddings.count) values for \(labels.count) rows of \(dimension)")
    }
    let src = sources ?? Array(repeating: "", count: labels.count)
    guard src.count == labels.count else {
      throw EvaluationError(.invalidArgument, "embeddings: \(src.count) sources for \(labels.count) rows")
    }
    self.embeddings = embeddings
    self.dimension = dimension
    self.labels = labels
    self.sources = src
    self.metadata = metadata
  }

  /// Reads and validates a file; every error is one line naming the file and key.
  public init(path: String) throws {
    let file = try SafeTensorsFile(path: path)
    guard let e = file.tensors["embeddings"] else {
      throw EvaluationError(.badFile(path: path), "\(path): no tensor `embeddings` (not an embedding file?)")
    }
    guard e.shape.count == 2, e.shape[1] > 0 else {
      throw EvaluationError(.badFile(path: path), "\(path): tensor embeddings has shape \(e.shape), expected [N, D]")
    }
    guard [.f32, .f16, .bf16, .f64].contains(e.dtype) else {
      throw EvaluationError(.badFile(path: path), "\(path): tensor embeddings has dtype \(e.dtype.rawValue), expected F32")
    }
    guard let l = file.tensors["labels"] else { throw EvaluationError(.badFile(path: path), "\(path): no tensor `labels`") }
    guard l.shape == [e.shape[0]] else {
      throw EvaluationError(.badFile(path: path), "\(path): tensor labels has shape \(l.shape), expected [\(e.shape[0])] (one per embedding row)")
    }
    let labels = try file.ints("labels")
    if let bad = labels.firstIndex(where: { $0 < -1 }) {
      throw EvaluationError(.badFile(path: path), "\(path): labels[\(bad)] = \(labels[bad]); expected 0 (real), k+1 (gen_k) or -1 (unknown)")
    }
    let values = try file.floats("embeddings")
    let d = e.shape[1]
    if let bad = values.firstIndex(where: { !$0.isFinite }) {
      throw EvaluationError(.badFile(path: path), "\(path): embeddings row \(bad / d) has a non-finite value")
    }
    var meta = file.metadata
    var sources: [String]? = nil
    if let s = meta.removeValue(forKey: "sources") {
      guard let data = s.data(using: .utf8), let arr = try? JSONSerialization.jsonObject(with: data) as? [Any],
        let strs = arr as? [String]
      else { throw EvaluationError(.badFile(path: path), "\(path): metadata `sources` is not a JSON list of strings") }
      guard strs.count == labels.count else {
        throw EvaluationError(.badFile(path: path), "\(path): metadata `sources` has \(strs.count) entries for \(labels.count) rows")
      }
      sources = strs
    }
    try self.init(embeddings: values, dimension: d, labels: labels, sources: sources, metadata: meta)
  }

  /// Writes the file (F32 embeddings, I64 labels, `sources` in the metadata).
  public func write(to path: String) throws {
    var meta = metadata
    meta["sources"] = try JSONOutput.string(sources)
    var w = SafeTensorsWriter(metadata: meta)
    w.add("embeddings", floats: embeddings, shape: [count, dimension])
    w.add("labels", int64: labels, shape: [count])
    try w.write(to: path)
  }

  /// Rows whose label satisfies `keep`, as a new set.
  public func subset(_ keep: (Int64) -> Bool) -> EmbeddingFile {
    var e: [Float] = []
    var l: [Int64] = []
    var s: [String] = []
    for i in 0..<count where keep(labels[i]) {
      e.append(contentsOf: embeddings[(i * dimension)..<((i + 1) * dimension)])
      l.append(labels[i])
      s.append(sources[i])
    }
    return try! EmbeddingFile(embeddings: e, dimension: dimension, labels: l, sources: s, metadata: metadata)
  }

  /// Generators present (k for each label k + 1 > 0), ascending.
  public var generators: [Int] { Array(Set(labels.filter { $0 > 0 }.map { Int($0 - 1) })).sorted() }

  /// Label of an image from its path or shard member name: a folder `real` or a member
  /// `KEY.real.EXT` -> 0; a folder `gen_k` or a member `KEY.gen_k.EXT` -> k + 1 (the D3
  /// test layout, optionally under augm/ or no_augm/, and the WebDataset shards);
  /// anything else -> -1 (unknown). The innermost match wins.
  public static func label(forSource source: String) -> Int64 {
    func parse(_ s: Substring) -> Int64? {
      if s == "real" { return 0 }
      if s.hasPrefix("gen_"), let k = Int(s.dropFirst(4)), k >= 0 { return Int64(k + 1) }
      return nil
    }
    let parts = source.split(separator: "/")
    if let file = parts.last {
      let dots = file.split(separator: ".")
      if dots.count >= 3, let l = parse(dots[dots.count - 2]) { return l }
    }
    for p in parts.dropLast().reversed() { if let l = parse(p) { return l } }
    return unknownLabel
  }

  /// "real", "gen_k" or "unknown".
  public static func className(_ label: Int64) -> String {
    label == 0 ? "real" : (label > 0 ? "gen_\(label - 1)" : "unknown")
  }
}
