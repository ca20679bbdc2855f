import Foundation

/// Why a record was skipped (bad data never stops a run; see `D3Loader`).
public enum SkipReason: String, Codable, Sendable, CaseIterable {
  case missingMember = "missing member"
  case truncatedMember = "truncated member"
  case corruptImage = "corrupt image"
  case unreadable = "unreadable file"
  /// An image member lost to a damaged tar header next to the record (see `TarScanner`).
  case damaged = "damaged shard"

  /// Reasons that mean the shard itself is damaged (the record was lost to it).
  public var isDamage: Bool { self == .damaged || self == .truncatedMember }
}

/// Records of one shard or one folder set.
public protocol RecordSource: AnyObject {
  var location: DataLocation { get }
  var count: Int { get }
  /// Problems of the whole source (truncated shard, unreadable file), one line each.
  var issues: [String] { get }
  /// True when the source is damaged (records were or may have been lost to it).
  var damaged: Bool { get }
  func key(_ r: Int) -> String
  func has(_ r: Int, _ role: RecordRole) -> Bool
  /// Bytes of a member; throws a one-line `DatasetError` when it cannot be read.
  func read(_ r: Int, _ role: RecordRole) throws -> Data
  /// How a member is named in messages: `SHARD:KEY.gen_0.jpg` or the image file path.
  func memberName(_ r: Int, _ role: RecordRole) -> String
  /// A problem known without decoding (a missing or truncated image member), or nil.
  func staticProblem(_ r: Int) -> (SkipReason, String)?
}

extension RecordSource {
  public var damaged: Bool { false }

  public func staticProblem(_ r: Int) -> (SkipReason, String)? {
    let missing = RecordRole.images.filter { !has(r, $0) }
    if missing.isEmpty { return nil }
    return (.missingMember, "no " + missing.map(\.tag).joined(separator: ", "))
  }
}

/// A tar shard read by random access through its `ShardIndex`.
public final class TarShardSource: RecordSource {
  public let file: FileByteSource
  public let index: ShardIndex
  public var location: DataLocation { .shard(file.name) }
  public var count: Int { index.count }
  public var issues: [String] { index.issues }
  public var damaged: Bool { index.damaged }

  public init(path: String, indexDirectory: String? = nil, useCache: Bool = true) throws {
    file = try FileByteSource(path: path)
    do {
      index = try ShardIndex.load(shard: file, indexDirectory: indexDirectory, useCache: useCache)
    } catch {
      throw DatasetError(.badShard(path: path), "\(path): \(error)")
    }
  }

  public func key(_ r: Int) -> String { index.key(r) }
  public func has(_ r: Int, _ role: RecordRole) -> Bool { index.member(r, role) != nil }

  public func read(_ r: Int, _ role: RecordRole) throws -> Data {
    guard let m = index.member(r, role) else { throw DatasetError(.badRecord, "\(file.name): record \(index.key(r)) has no \(role.tag) member") }
    var d = Data(count: m.size)
    let got = try d.withUnsafeMutableBytes { try file.read(at: m.offset, count: m.size, into: $0.baseAddress!) }
    if got != m.size { throw DatasetError(.badRecord, "\(memberName(r, role)): file ends after \(got) of \(m.size) bytes") }
    return d
  }

  public func memberName(_ r: Int, _ role: RecordRole) -> String {
    let ext = index.member(r, role).map { $0.ext.isEmpty ? "" : "." + $0.ext } ?? ""
    return "\(file.name):\(index.key(r)).\(role.tag)\(ext)"
  }

  public func staticProblem(_ r: Int) -> (SkipReason, String)? {
    if index.flags(r) & ShardIndex.flagTruncatedMember != 0 {
      return (.truncatedMember, "a member is cut short by the end of the shard")
    }
    let missing = RecordRole.images.filter { !has(r, $0) }
    if missing.isEmpty { return nil }
    if index.flags(r) & ShardIndex.flagDamaged != 0 {
      return (.damaged, "no " + missing.map(\.tag).joined(separator: ", ") + ", lost to a damaged tar header next to it")
    }
    return (.missingMember, "no " + missing.map(\.tag).joined(separator: ", "))
  }
}

/// The authors' test layout: `DIR/real/NAME.EXT`, `DIR/gen_k/NAME.EXT`. A record is the
/// set of files sharing NAME (the file name without its last extension) across folders.
public final class FolderSource: RecordSource {
  public let directory: String
  public var location: DataLocation { .folders(directory) }
  public private(set) var keys: [String] = []
  /// files[role][record]: file name inside the role's folder, or nil.
  var files: [[String?]] = []
  public var issues: [String] = []
  public var count: Int { keys.count }

  public init(directory: String) throws {
    self.directory = directory
    var perRole: [[String: String]] = []
    for role in RecordRole.images {
      let dir = (directory as NSString).appendingPathComponent(role.tag)
      var map: [String: String] = [:]
      if let names = try? FileManager.default.contentsOfDirectory(atPath: dir) {
        for n in names.sorted() where !n.hasPrefix(".") && imageFileExtensions.contains((n as NSString).pathExtension.lowercased()) {
          let stem = (n as NSString).deletingPathExtension
          if map[stem] == nil { map[stem] = n }
        }
      }
      perRole.append(map)
    }
    keys = Set(perRole.flatMap { $0.keys }).sorted()
    files = perRole.map { m in keys.map { m[$0] } }
  }

  public func key(_ r: Int) -> String { keys[r] }
  public func has(_ r: Int, _ role: RecordRole) -> Bool { role.isImage && files[role.rawValue][r] != nil }

  public func path(_ r: Int, _ role: RecordRole) -> String? {
    guard role.isImage, let f = files[role.rawValue][r] else { return nil }
    return ((directory as NSString).appendingPathComponent(role.tag) as NSString).appendingPathComponent(f)
  }

  public func read(_ r: Int, _ role: RecordRole) throws -> Data {
    guard let p = path(r, role) else { throw DatasetError(.badRecord, "\(directory): record \(keys[r]) has no \(role.tag) image") }
    guard let d = FileManager.default.contents(atPath: p) else { throw DatasetError(.io(path: p), "\(p): cannot read file") }
    return d
  }

  public func memberName(_ r: Int, _ role: RecordRole) -> String {
    path(r, role) ?? ((directory as NSString).appendingPathComponent(role.tag) as NSString).appendingPathComponent(keys[r])
  }
}

/// All records of a list of shards and folder sets, numbered 0..<count in path order.
public final class RecordCatalog {
  public let sources: [RecordSource]
  /// Record id of the first record of each source; `bases.last` = count.
  public let bases: [Int]
  /// Sources that could not be opened at all (counted as unreadable), one line each.
  public let unreadable: [String]
  public var count: Int { bases.last! }

  /// Opens the given locations (indexing shards in parallel, with the index cache).
  public init(locations: [DataLocation], indexDirectory: String? = nil, useCache: Bool = true) {
    var opened = [RecordSource?](repeating: nil, count: locations.count)
    var errors = [String?](repeating: nil, count: locations.count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: locations.count) { i in
      let result: Result<RecordSource, Error> = Result {
        switch locations[i] {
        case .shard(let p): return try TarShardSource(path: p, indexDirectory: indexDirectory, useCache: useCache)
        case .folders(let p): return try FolderSource(directory: p)
        }
      }
      lock.lock()
      switch result {
      case .success(let s): opened[i] = s
      case .failure(let e): errors[i] = "\(e)"
      }
      lock.unlock()
    }
    sources = opened.compactMap { $0 }
    unreadable = errors.compactMap { $0 }
    var b = [0]
    for s in sources { b.append(b.last! + s.count) }
    bases = b
  }

  /// Resolves `paths` and opens them; a shard set with no records is an error.
  public convenience init(paths: [String], indexDirectory: String? = nil, useCache: Bool = true) throws {
    self.init(locations: try resolveDataPaths(paths), indexDirectory: indexDirectory, useCache: useCache)
    try requireRecords(paths.joined(separator: " "))
  }

  func requireRecords(_ what: String) throws {
    if count == 0 {
      let first = unreadable.first ?? sources.first { !$0.issues.isEmpty }.map { "\($0.location.path): \($0.issues[0])" }
      let why = first.map { " (\($0))" } ?? ""
      throw DatasetError(.noRecords, "\(what): no records found\(why)")
    }
  }

  /// What opening the sources found, for the start-up log: one line per source
  /// (`PATH: N records`), then the total; and one warning per source that is damaged,
  /// not a shard, or could not be opened (each issue named), matching `cde shards check`.
  public func summary() -> (lines: [String], warnings: [String]) {
    var lines: [String] = [], warnings: [String] = []
    for s in sources {
      lines.append("data: \(s.location.path): \(s.count) records")
      if !s.issues.isEmpty {
        let what = s.count == 0 ? "no records, skipped" : s.damaged ? "records lost to damage" : "problems"
        warnings.append("\(s.location.path): \(what): " + s.issues.joined(separator: "; "))
      }
    }
    for u in unreadable { warnings.append("\(u) (skipped)") }
    lines.append("data: \(count) records in \(sources.count) source(s)"
                 + (unreadable.isEmpty ? "" : ", \(unreadable.count) unreadable"))
    return (lines, warnings)
  }

  /// (source, record within the source) of a record id (binary search over `bases`).
  public func locate(_ id: Int) -> (source: RecordSource, local: Int, sourceIndex: Int) {
    var lo = 0, hi = sources.count - 1
    while lo < hi {
      let mid = (lo + hi + 1) / 2
      if bases[mid] <= id { lo = mid } else { hi = mid - 1 }
    }
    return (sources[lo], id - bases[lo], lo)
  }
}

/// Where a record comes from and its text metadata.
public struct RecordInfo: Sendable, Equatable {
  public var id: Int
  public var key: String
  /// The shard file or the test-layout folder.
  public var source: String
  /// `KEY.caption.txt` and `KEY.url.txt` of a shard record (nil when absent or unreadable).
  public var caption: String?
  public var url: String?
}

extension RecordCatalog {
  /// Key, source and metadata (caption, url) of record `id` (0..<count).
  public func info(_ id: Int) -> RecordInfo {
    let (s, r, _) = locate(id)
    func text(_ role: RecordRole) -> String? {
      guard s.has(r, role), let d = try? s.read(r, role) else { return nil }
      return String(decoding: d, as: UTF8.self)
    }
    return RecordInfo(id: id, key: s.key(r), source: s.location.path, caption: text(.caption), url: text(.url))
  }
}
