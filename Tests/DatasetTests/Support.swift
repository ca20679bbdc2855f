import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Dataset

enum Fixture {
  static let dir = fixtureDirectory("Dataset")
  static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
  /// The Imaging target's fixtures (Pillow / torchvision), for the views' tests.
  static let imagingFixtures = fixturePath("Imaging", "imaging_fixtures.safetensors")
  /// ../shared/d3-sample/elsa_v2-0000.tar relative to the repository (nil when absent).
  static var d3Sample: String? {
    let p = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/d3-sample/elsa_v2-0000.tar").path
    return FileManager.default.fileExists(atPath: p) ? p : nil
  }
}

func fnv1a64(_ bytes: [UInt8]) -> String {
  var h: UInt64 = 0xcbf2_9ce4_8422_2325
  for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
  let s = String(h, radix: 16)
  return String(repeating: "0", count: 16 - s.count) + s
}


/// Thread-safe collector of loader warnings.
final class WarningLog: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
  var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

/// Small test records (fast to decode in debug builds): real 40x30, gens 32x32, 48x48,
/// 40x30, 40x24; pixel values a hash of (index, role, x, y); JPEG or PNG by role.
func smallMembers(index: Int) throws -> [(role: RecordRole, ext: String, data: Data)] {
  let sizes = [(40, 30), (32, 32), (48, 48), (40, 30), (40, 24)]
  var out: [(RecordRole, String, Data)] = []
  for (k, role) in RecordRole.images.enumerated() {
    let (w, h) = sizes[k]
    var px = [UInt8](repeating: 0, count: w * h * 3)
    for i in 0..<px.count { px[i] = UInt8(truncatingIfNeeded: (i &* 2654435761) >> 13 &+ index &* 37 &+ k &* 11) }
    let fmt: ImageFormat = (index + k) % 2 == 0 ? .png : .jpeg
    out.append((role, fmt.fileExtension, try ImageCodec.encode(RGBImage(width: w, height: h, pixels: px), format: fmt)))
  }
  out.append((.caption, "txt", Data("caption \(index)".utf8)))
  out.append((.url, "txt", Data("https://example.invalid/\(index)".utf8)))
  return out
}

/// Writes `records` small records as tar shards of `shardSize` (s-000.tar, ...) under `dir`,
/// keys `rNNNN`; or, with `folders`, as real/ gen_k/ folders.
func writeSmallData(_ dir: String, records: Int, shardSize: Int, folders: Bool = false) throws {
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  if folders {
    for role in RecordRole.images { try FileManager.default.createDirectory(atPath: dir + "/" + role.tag, withIntermediateDirectories: true) }
    for i in 0..<records {
      for m in try smallMembers(index: i) where m.role.isImage {
        try m.data.write(to: URL(fileURLWithPath: "\(dir)/\(m.role.tag)/r\(String(format: "%04d", i)).\(m.ext)"))
      }
    }
    return
  }
  var i = 0, shard = 0
  while i < records {
    let w = try TarWriter(path: dir + "/s-\(String(format: "%03d", shard)).tar")
    for j in i..<min(records, i + shardSize) {
      for m in try smallMembers(index: j) { try w.add(name: "r\(String(format: "%04d", j)).\(m.role.tag).\(m.ext)", data: m.data) }
    }
    try w.finish()
    i += shardSize; shard += 1
  }
}
