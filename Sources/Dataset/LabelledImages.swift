import Foundation
import Imaging

/// File extensions read as images in the test layout (case-insensitive).
public let imageFileExtensions: Set<String> = ["jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp"]

/// One image for evaluation, with its class: label 0 = real, k + 1 = generator gen_k.
public struct LabelledImage: @unchecked Sendable {
  enum Location { case member(TarShardSource, Int, RecordRole), file(String) }
  let location: Location
  /// 0 real, 1 ... 4 = gen_0 ... gen_3.
  public let label: Int
  /// Where the image comes from: `SHARD:KEY.gen_0.jpg` or the file path.
  public let source: String
  /// The record key (shard member prefix or file name without extension).
  public let key: String

  /// Encoded bytes of the image.
  public func data() throws -> Data {
    switch location {
    case .member(let shard, let r, let role): return try shard.read(r, role)
    case .file(let path):
      guard let d = FileManager.default.contents(atPath: path) else { throw DatasetError(.io(path: path), "\(path): cannot read file") }
      return d
    }
  }

  /// Decoded image (errors are one line naming the file and key).
  public func load() throws -> RGBImage {
    try ImageCodec.decode(try data(), name: source)
  }
}

/// Labelled images of shards and test-layout folders, in path order. A shard record gives
/// one image per image member present (real, gen_0 ... gen_3); a folder set gives every
/// image file of `real/` and `gen_k/` (sorted by name), paired or not.
/// Errors: a missing path, or nothing to list, is one line naming it.
public func listLabelledImages(_ paths: [String], indexDirectory: String? = nil) throws -> [LabelledImage] {
  var out: [LabelledImage] = []
  for loc in try resolveDataPaths(paths) {
    switch loc {
    case .shard(let p):
      let shard = try TarShardSource(path: p, indexDirectory: indexDirectory)
      for r in 0..<shard.count {
        for role in RecordRole.images where shard.has(r, role) {
          out.append(LabelledImage(location: .member(shard, r, role), label: role.rawValue,
                                   source: shard.memberName(r, role), key: shard.key(r)))
        }
      }
    case .folders(let dir):
      for role in RecordRole.images {
        let sub = (dir as NSString).appendingPathComponent(role.tag)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: sub) else { continue }
        for n in names.sorted() where !n.hasPrefix(".") && imageFileExtensions.contains((n as NSString).pathExtension.lowercased()) {
          let path = (sub as NSString).appendingPathComponent(n)
          out.append(LabelledImage(location: .file(path), label: role.rawValue, source: path,
                                   key: (n as NSString).deletingPathExtension))
        }
      }
    }
  }
  if out.isEmpty { throw DatasetError(.noRecords, "\(paths.joined(separator: " ")): no images found") }
  return out
}
