import Foundation

/// The members a D3 record may have. Images: `KEY.real.EXT`, `KEY.gen_0.EXT` ... `KEY.gen_3.EXT`;
/// metadata: `KEY.caption.txt`, `KEY.url.txt`.
public enum RecordRole: Int, CaseIterable, Sendable {
  case real = 0, gen0, gen1, gen2, gen3, caption, url

  /// The five image roles, in label order (label 0 real, k + 1 for gen_k).
  public static let images: [RecordRole] = [.real, .gen0, .gen1, .gen2, .gen3]
  /// The generator role for index k in 0..<4.
  public static func generator(_ k: Int) -> RecordRole { RecordRole(rawValue: 1 + k)! }

  /// The name used in member names and folder names: real, gen_0 ... gen_3, caption, url.
  public var tag: String {
    switch self {
    case .real: return "real"
    case .gen0: return "gen_0"
    case .gen1: return "gen_1"
    case .gen2: return "gen_2"
    case .gen3: return "gen_3"
    case .caption: return "caption"
    case .url: return "url"
    }
  }

  public init?(tag: String) {
    guard let r = RecordRole.allCases.first(where: { $0.tag == tag }) else { return nil }
    self = r
  }

  public var isImage: Bool { rawValue <= 4 }
}

/// WebDataset naming: a member `DIR/BASE.SUFFIX` belongs to record key `DIR/BASE`, where
/// BASE is the part of the file name before its first dot. Returns nil without a dot.
public func splitMemberName(_ name: String) -> (key: String, suffix: String)? {
  let u = Array(name.utf8)
  let slash = u.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0
  guard let dot = u[slash...].firstIndex(of: UInt8(ascii: ".")), dot > slash else { return nil }
  return (String(decoding: u[..<dot], as: UTF8.self), String(decoding: u[(dot + 1)...], as: UTF8.self))
}

/// Role and extension of a member suffix such as `gen_2.png` or `caption.txt`
/// (case-insensitive role). Nil for suffixes that are not part of a D3 record.
public func parseRecordSuffix(_ suffix: String) -> (role: RecordRole, ext: String)? {
  let parts = suffix.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
  guard let role = RecordRole(tag: parts[0].lowercased()) else { return nil }
  return (role, parts.count > 1 ? String(parts[1]) : "")
}

/// Record table of one tar shard: for each record (in order of first appearance) its key
/// and, for each of the 7 roles, the byte offset and size of the member data.
/// Stored flat: `offsets[r * 7 + role]`, `sizes[...]` (`absent` when missing).
public struct ShardIndex: Equatable, Sendable {
  public static let slots = RecordRole.allCases.count
  public static let absent = UInt32.max
  /// Record flags.
  public static let flagTruncatedMember: UInt8 = 1
  public static let flagDuplicateMember: UInt8 = 2
  /// The record is next to damage (a bad header skipped, or the point where the shard
  /// is cut) and lacks an image member: the member was most likely lost to it.
  public static let flagDamaged: UInt8 = 4
  /// Shard-level damage (bad headers, truncation, not a tar): records were or may have
  /// been lost. Well-formed shards have none.
  public var damaged: Bool {
    issues.contains { i in ["truncated", "badHeader", "badExtendedHeader", "notTar"].contains { i.hasPrefix($0) } }
  }

  public var shardSize: Int64 = 0
  public var modificationTimeNs: Int64 = 0
  var keyBytes: [UInt8] = []
  var keyEnds: [Int32] = []
  var offsets: [Int64] = []
  var sizes: [UInt32] = []
  var extCodes: [UInt8] = []
  var extTable: [String] = []
  var flags: [UInt8] = []
  /// Shard-level problems (truncation, bad headers), one line each.
  public var issues: [String] = []

  public init() {}

  public var count: Int { keyEnds.count }

  public func key(_ r: Int) -> String {
    let start = r == 0 ? 0 : Int(keyEnds[r - 1])
    return String(decoding: keyBytes[start..<Int(keyEnds[r])], as: UTF8.self)
  }

  /// Location of a member: data offset, byte count and file extension; nil when absent.
  public func member(_ r: Int, _ role: RecordRole) -> (offset: Int64, size: Int, ext: String)? {
    let i = r * ShardIndex.slots + role.rawValue
    guard sizes[i] != ShardIndex.absent else { return nil }
    let code = Int(extCodes[i])
    return (offsets[i], Int(sizes[i]), code < extTable.count ? extTable[code] : "")
  }

  public func flags(_ r: Int) -> UInt8 { flags[r] }

  /// Builds the index by scanning a tar archive's headers.
  public static func build(source: ByteSource, modificationTimeNs: Int64 = 0) throws -> ShardIndex {
    var idx = ShardIndex()
    idx.shardSize = source.size
    idx.modificationTimeNs = modificationTimeNs
    var byKey: [String: Int] = [:]
    var extCode: [String: UInt8] = [:]
    func record(_ key: String) -> Int {
      if let existing = byKey[key] { return existing }
      let r = idx.keyEnds.count
      byKey[key] = r
      idx.keyBytes.append(contentsOf: key.utf8)
      idx.keyEnds.append(Int32(truncatingIfNeeded: idx.keyBytes.count))
      idx.offsets.append(contentsOf: repeatElement(0, count: slots))
      idx.sizes.append(contentsOf: repeatElement(absent, count: slots))
      idx.extCodes.append(contentsOf: repeatElement(0, count: slots))
      idx.flags.append(0)
      return r
    }
    let tarIssues = try TarScanner(source: source).scan { m in
      guard let (key, suffix) = splitMemberName(m.name), let (role, ext) = parseRecordSuffix(suffix) else { return }
      let r = record(key)
      let i = r * slots + role.rawValue
      if idx.sizes[i] != absent {
        idx.flags[r] |= flagDuplicateMember
        return
      }
      if m.size >= Int64(absent) {
        idx.issues.append("member \(m.name) of \(m.size) bytes is too large")
        return
      }
      let code: UInt8
      if let c = extCode[ext] {
        code = c
      } else if idx.extTable.count < 255 {
        code = UInt8(idx.extTable.count)
        idx.extTable.append(ext)
        extCode[ext] = code
      } else {
        code = 255
      }
      idx.offsets[i] = m.dataOffset
      idx.sizes[i] = UInt32(m.size)
      idx.extCodes[i] = code
    }
    // Damage points: a record whose members sit right before or after one, and that
    // lacks an image member, lost it there.
    var points: [Int64] = []
    for issue in tarIssues where issue.kind != .badExtendedHeader {
      points.append(issue.offset)
      if let r = issue.resumedAt { points.append(r) }
    }
    if !points.isEmpty {
      for p in points {
        var before: (Int64, Int)? = nil, after: (Int64, Int)? = nil
        for r in 0..<idx.count {
          for k in 0..<slots where idx.sizes[r * slots + k] != absent {
            let o = idx.offsets[r * slots + k]
            if o < p, before == nil || o > before!.0 { before = (o, r) }
            if o > p, after == nil || o < after!.0 { after = (o, r) }
          }
        }
        for (_, r) in [before, after].compactMap({ $0 }) {
          let incomplete = RecordRole.images.contains { idx.sizes[r * slots + $0.rawValue] == absent }
          if incomplete { idx.flags[r] |= flagDamaged }
        }
      }
    }
    for issue in tarIssues {
      idx.issues.append(issue.description)
      // A member cut short by the end of the file: its record is flagged (and listed).
      if let name = issue.member, let (key, suffix) = splitMemberName(name), parseRecordSuffix(suffix) != nil {
        idx.flags[record(key)] |= flagTruncatedMember
      }
    }
    return idx
  }
}
