import Dataset
import Foundation
import Imaging

/// One image to embed: where it comes from, its label, and how to decode it.
public struct ImageItem: @unchecked Sendable {
  /// The file path, or `SHARD:KEY.ROLE.EXT` for a shard member.
  public let source: String
  /// 0 real, k + 1 gen_k, -1 unknown (see `EmbeddingFile.label(forSource:)`).
  public let label: Int64
  let loader: () throws -> RGBImage

  public init(source: String, label: Int64, loader: @escaping () throws -> RGBImage) {
    self.source = source
    self.label = label
    self.loader = loader
  }

  /// An image file; its label comes from the path (`real/`, `gen_k/`, else unknown).
  public init(file path: String) {
    self.init(source: path, label: EmbeddingFile.label(forSource: path)) {
      guard let d = FileManager.default.contents(atPath: path) else {
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDir) { throw EvaluationError(.notFound(path: path), "\(path): no such file") }
        throw EvaluationError(.io(path: path), "\(path): cannot read file")
      }
      return try ImageCodec.decode(d, name: path)
    }
  }

  /// Decoded RGB pixels; errors are one line naming the source.
  public func load() throws -> RGBImage { try loader() }
}

/// The images of one command-line path, in a stable order:
/// - a `.tar` file is a WebDataset shard (every image member; labels from the roles);
/// - any other file is one image (label from its path);
/// - a directory in the test layout (`real/`, `gen_k/`, optionally under `augm/` or
///   `no_augm/`) or holding `.tar` shards is listed by `listLabelledImages`;
/// - any other directory contributes every image file below it (sorted, labels from
///   the path);
/// - a glob or brace range (`*`, `{0000..0003}`) is expanded as for training data.
/// A missing path, or a directory without images, is an error naming it.
public func listImageItems(path p: String, indexDirectory: String? = nil) throws -> [ImageItem] {
  let fm = FileManager.default
  var isDir: ObjCBool = false
  let exists = fm.fileExists(atPath: p, isDirectory: &isDir)
  if !exists {
    if p.contains("*") || p.contains("?") || p.contains("{") {
      return try listLabelledImages([p], indexDirectory: indexDirectory).map(ImageItem.init(labelled:))
    }
    throw EvaluationError(.notFound(path: p), "\(p): no such file or directory")
  }
  if !isDir.boolValue {
    if p.lowercased().hasSuffix(".tar") {
      return try listLabelledImages([p], indexDirectory: indexDirectory).map(ImageItem.init(labelled:))
    }
    return [ImageItem(file: p)]
  }
  if holdsDataLayout(p) {
    return try listLabelledImages([p], indexDirectory: indexDirectory).map(ImageItem.init(labelled:))
  }
  var files: [String] = []
  if let e = fm.enumerator(atPath: p) {
    for case let rel as String in e {
      let name = (rel as NSString).lastPathComponent
      if name.hasPrefix(".") { continue }
      guard imageFileExtensions.contains((name as NSString).pathExtension.lowercased()) else { continue }
      let full = (p as NSString).appendingPathComponent(rel)
      var d: ObjCBool = false
      if fm.fileExists(atPath: full, isDirectory: &d), !d.boolValue { files.append(full) }
    }
  }
  guard !files.isEmpty else {
    throw EvaluationError(.noData, "\(p): no images found (no image files, no real/ gen_k/ folders, no .tar shards)")
  }
  return files.sorted().map { ImageItem(file: $0) }
}

/// Every path's images, in order (see `listImageItems(path:)`); the first bad path throws.
public func listImageItems(_ paths: [String], indexDirectory: String? = nil) throws -> [ImageItem] {
  guard !paths.isEmpty else { throw EvaluationError(.noData, "no images given") }
  return try paths.flatMap { try listImageItems(path: $0, indexDirectory: indexDirectory) }
}

extension ImageItem {
  init(labelled li: LabelledImage) {
    self.init(source: li.source, label: Int64(li.label)) { try li.load() }
  }
}

/// True when `dir` is in the test layout, holds `.tar` shards, or has a subdirectory in
/// the test layout (what `listLabelledImages` reads).
func holdsDataLayout(_ dir: String) -> Bool {
  let fm = FileManager.default
  func isDir(_ p: String) -> Bool {
    var d: ObjCBool = false
    return fm.fileExists(atPath: p, isDirectory: &d) && d.boolValue
  }
  func layout(_ p: String) -> Bool {
    (["real"] + (0..<4).map { "gen_\($0)" }).contains { isDir((p as NSString).appendingPathComponent($0)) }
  }
  if layout(dir) { return true }
  guard let names = try? fm.contentsOfDirectory(atPath: dir) else { return false }
  for n in names where !n.hasPrefix(".") {
    let full = (dir as NSString).appendingPathComponent(n)
    if n.hasSuffix(".tar") && !isDir(full) { return true }
    if isDir(full) && layout(full) { return true }
  }
  return false
}
