import Foundation

/// On-disk form of a `ShardIndex` (little-endian):
/// magic "CDEIDX02", shardSize i64, mtimeNs i64, count i64, keyBytes (i64 length + bytes),
/// keyEnds i32 x count, offsets i64 x 7count, sizes u32 x 7count, extCodes u8 x 7count,
/// flags u8 x count, extTable and issues (i64 count, then i64 length + UTF-8 each).
/// `decode` validates everything and returns nil on any inconsistency.
extension ShardIndex {
  static let magic: [UInt8] = Array("CDEIDX02".utf8)  // 02: damage resynchronisation, flagDamaged

  public func encoded() -> [UInt8] {
    var w = ByteWriter()
    w.bytes(ShardIndex.magic)
    w.i64(shardSize); w.i64(modificationTimeNs); w.i64(Int64(count))
    w.i64(Int64(keyBytes.count)); w.bytes(keyBytes)
    for v in keyEnds { w.u32(UInt32(bitPattern: v)) }
    for v in offsets { w.i64(v) }
    for v in sizes { w.u32(v) }
    w.bytes(extCodes)
    w.bytes(flags)
    for list in [extTable, issues] {
      w.i64(Int64(list.count))
      for s in list { let u = Array(s.utf8); w.i64(Int64(u.count)); w.bytes(u) }
    }
    return w.out
  }

  public static func decode(_ data: [UInt8]) -> ShardIndex? {
    var r = ByteReader(data: data)
    guard let m = r.bytes(8), m == magic else { return nil }
    var idx = ShardIndex()
    guard let size = r.i64(), let mtime = r.i64(), let n64 = r.i64(), n64 >= 0,
          n64 <= Int64(data.count), let kb = r.i64(), kb >= 0, kb <= Int64(data.count),
          let keyBytes = r.bytes(Int(kb)) else { return nil }
    let n = Int(n64)
    let slots = n * ShardIndex.slots
    // Check the fixed-size part fits before allocating.
    guard r.remaining >= n * 4 + slots * 13 + n else { return nil }
    idx.shardSize = size
    idx.modificationTimeNs = mtime
    idx.keyBytes = keyBytes
    idx.keyEnds.reserveCapacity(n)
    var last: Int32 = 0
    for _ in 0..<n {
      let e = Int32(bitPattern: r.u32()!)
      guard e >= last, Int(e) <= keyBytes.count else { return nil }
      idx.keyEnds.append(e); last = e
    }
    idx.offsets = (0..<slots).map { _ in r.i64()! }
    idx.sizes = (0..<slots).map { _ in r.u32()! }
    idx.extCodes = r.bytes(slots)!
    idx.flags = r.bytes(n)!
    var lists: [[String]] = []
    for _ in 0..<2 {
      guard let c = r.i64(), c >= 0, c <= Int64(r.remaining) else { return nil }
      var list: [String] = []
      for _ in 0..<Int(c) {
        guard let l = r.i64(), l >= 0, l <= Int64(r.remaining), let u = r.bytes(Int(l)) else { return nil }
        list.append(String(decoding: u, as: UTF8.self))
      }
      lists.append(list)
    }
    guard r.remaining == 0 else { return nil }
    idx.extTable = lists[0]
    idx.issues = lists[1]
    for i in 0..<slots where idx.sizes[i] != ShardIndex.absent {
      let o = idx.offsets[i]
      guard o >= 0, o <= size, Int64(idx.sizes[i]) <= size - o else { return nil }
      guard idx.extCodes[i] == 255 || Int(idx.extCodes[i]) < idx.extTable.count else { return nil }
    }
    return idx
  }

  /// Where the cached index of `shardPath` lives: `DIR/NAME-HASH.cdeidx` in `indexDirectory`
  /// (HASH = FNV-1a 64 of the absolute shard path), else `SHARD.cdeidx` beside the shard.
  public static func cachePath(forShard shardPath: String, indexDirectory: String?) -> String {
    guard let dir = indexDirectory else { return shardPath + ".cdeidx" }
    let abs = URL(fileURLWithPath: shardPath).standardizedFileURL.path
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in abs.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    let base = (shardPath as NSString).lastPathComponent
    return (dir as NSString).appendingPathComponent("\(base)-\(String(h, radix: 16)).cdeidx")
  }

  /// The index of a shard: read from the cache when it matches the shard's size and
  /// modification time, else built by scanning and written to the cache (best effort:
  /// a read-only location just means no cache).
  public static func load(shard: FileByteSource, indexDirectory: String?, useCache: Bool = true) throws -> ShardIndex {
    let path = cachePath(forShard: shard.name, indexDirectory: indexDirectory)
    if useCache, let data = FileManager.default.contents(atPath: path),
       let idx = decode([UInt8](data)), idx.shardSize == shard.size,
       idx.modificationTimeNs == shard.modificationTimeNs {
      return idx
    }
    let idx = try build(source: shard, modificationTimeNs: shard.modificationTimeNs)
    if useCache {
      if let dir = indexDirectory {
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      }
      let tmp = path + ".tmp\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
      if FileManager.default.createFile(atPath: tmp, contents: Data(idx.encoded())) {
        if rename(tmp, path) != 0 { unlink(tmp) }
      }
    }
    return idx
  }
}

struct ByteWriter {
  var out: [UInt8] = []
  mutating func bytes(_ b: [UInt8]) { out.append(contentsOf: b) }
  mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
  mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
}

struct ByteReader {
  let data: [UInt8]
  var pos = 0
  var remaining: Int { data.count - pos }
  mutating func bytes(_ n: Int) -> [UInt8]? {
    guard n >= 0, n <= remaining else { return nil }
    defer { pos += n }
    return Array(data[pos..<(pos + n)])
  }
  mutating func i64() -> Int64? {
    guard remaining >= 8 else { return nil }
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(data[pos + i]) << (8 * UInt64(i)) }
    pos += 8
    return Int64(bitPattern: v)
  }
  mutating func u32() -> UInt32? {
    guard remaining >= 4 else { return nil }
    var v: UInt32 = 0
    for i in 0..<4 { v |= UInt32(data[pos + i]) << (8 * UInt32(i)) }
    pos += 4
    return v
  }
}
