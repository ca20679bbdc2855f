import Foundation

/// One regular-file member of a tar archive: its full name (after GNU long-name and pax
/// `path` records are applied), where its data starts and how many bytes it has.
public struct TarMember: Equatable, Sendable {
  public var name: String
  public var dataOffset: Int64
  public var size: Int64
}

/// A problem met while scanning an archive. Scanning never throws on bad content: it
/// reports issues and keeps every member read before the problem.
public struct TarIssue: Equatable, Sendable, CustomStringConvertible {
  /// `truncated`: the file ends inside a header or a member (cut short by a copy).
  /// `badHeader`: a damaged header (checksum or size) with more data after it; scanning
  /// resumes at the next valid header, `resumedAt` (nil when there is none).
  /// `notTar`: no valid header at all (the file is not a tar archive).
  public enum Kind: String, Sendable { case truncated, badHeader, badExtendedHeader, notTar }
  public var kind: Kind
  /// Byte offset of the header where the problem was found.
  public var offset: Int64
  public var detail: String
  /// The regular-file member cut short, for `.truncated` issues inside member data.
  public var member: String? = nil
  /// For `.badHeader`: offset of the next valid header, where scanning resumed.
  public var resumedAt: Int64? = nil
  public var description: String { "\(kind.rawValue) at byte \(offset): \(detail)" }
}

/// Streaming reader of tar archives: POSIX ustar (name + prefix), GNU (`L` long names,
/// `K` long link names, base-256 sizes) and pax (`x` per-member and `g` global records,
/// keys `path` and `size`). Only headers are read; member data is skipped by offset, so
/// scanning a shard costs one 512-byte read per member and nothing is extracted.
///
/// Layout: a member is a 512-byte header followed by `size` data bytes padded to a
/// multiple of 512; the archive ends with a zero block (or at end of file).
///
/// Damage (a shard copied between file systems): a header whose checksum does not
/// verify, or whose size field does not parse, is skipped by searching forward, block
/// by block (512-byte aligned, as every header is), for the next header whose checksum
/// verifies; one flipped byte thus loses the one member it hit, not the rest of the
/// shard. A zero block followed by a valid header further on is damage too (a zeroed
/// block), not the end of the archive. The end of the file inside a header or a
/// member's data is truncation.
public struct TarScanner {
  public static let blockSize: Int64 = 512
  /// Largest GNU long name or pax header accepted (bytes); larger ones are bad data.
  public static let maxExtendedSize: Int64 = 1 << 20

  public let source: ByteSource
  public init(source: ByteSource) { self.source = source }

  /// Scans the whole archive, calling `member` for each regular file in archive order.
  /// Returns the issues met (empty for a well-formed archive). Throws only on I/O errors.
  @discardableResult
  public func scan(_ member: (TarMember) throws -> Void) throws -> [TarIssue] {
    var state = ScanState()
    while state.offset < source.size, try scanHeader(&state, member) == .next {}
    return state.issues
  }

  /// What a scan carries from one header to the next: the issues met, the offset of the next
  /// header, the GNU long name and pax records that apply to the next member (per-member) or
  /// to all of them (global), and how many valid headers were read.
  struct ScanState {
    var issues: [TarIssue] = []
    var offset: Int64 = 0
    var header = [UInt8](repeating: 0, count: 512)
    var longName: String? = nil
    var paxPath: String? = nil
    var paxSize: Int64? = nil
    var globalPath: String? = nil
    var globalSize: Int64? = nil
    var validHeaders = 0

    /// Forgets the long name and pax records of the member just read (or lost).
    mutating func clearMemberRecords() { longName = nil; paxPath = nil; paxSize = nil }
  }

  /// After one header: read the next at `ScanState.offset`, or stop (end of the archive, or
  /// a problem that loses the rest of it).
  enum ScanFlow { case next, stop }

  /// One valid header: its type flag, offset, size (after pax `size`), where its data
  /// starts, whether the file ends inside that data, and the offset of the next header.
  struct HeaderInfo {
    var type: UInt8
    var offset: Int64
    var size: Int64
    var dataOffset: Int64
    var truncated: Bool
    var next: Int64
  }

  /// GNU long name / long link name, pax per-member and global records.
  static func isExtendedHeader(_ type: UInt8) -> Bool {
    type == UInt8(ascii: "L") || type == UInt8(ascii: "K") || type == UInt8(ascii: "x") || type == UInt8(ascii: "g")
  }

  /// Reads the header at `s.offset`: end of archive, a zero block, damage, an extended header
  /// or a member.
  func scanHeader(_ s: inout ScanState, _ member: (TarMember) throws -> Void) throws -> ScanFlow {
    let offset = s.offset
    let got = try s.header.withUnsafeMutableBytes { try source.read(at: offset, count: 512, into: $0.baseAddress!) }
    if got < 512 {
      if !s.header[0..<got].allSatisfy({ $0 == 0 }) {
        s.issues.append(TarIssue(kind: .truncated, offset: offset, detail: "archive ends inside a header"))
      }
      return .stop
    }
    if s.header.allSatisfy({ $0 == 0 }) { return try skipZeroBlock(&s) }
    guard TarHeaderField.checksumMatches(s.header) else { return try skipDamage(&s, "header checksum mismatch") }
    guard let size = TarHeaderField.number(s.header, 124, 12), size >= 0 else { return try skipDamage(&s, "bad size field") }
    s.validHeaders += 1
    let h = headerInfo(type: s.header[156], offset: offset, size: size, s)
    if TarScanner.isExtendedHeader(h.type) { return try readExtendedHeader(h, &s) }
    return try readMember(h, &s, member)
  }

  /// The layout of a valid header's member: pax `size` overrides the header's (except for
  /// extended headers), types 1-6 store no data (Python's tarfile and GNU tar agree).
  func headerInfo(type: UInt8, offset: Int64, size headerSize: Int64, _ s: ScanState) -> HeaderInfo {
    let total = source.size
    let dataOffset = offset + 512
    let hasNoData = type >= UInt8(ascii: "1") && type <= UInt8(ascii: "6")
    var size = headerSize
    if let p = s.paxSize ?? s.globalSize, !TarScanner.isExtendedHeader(type) { size = p }
    let stored = hasNoData ? 0 : size
    // `stored <= total - dataOffset` also rules out overflow in the sums below.
    let truncated = stored > total - dataOffset
    let next = truncated ? total : dataOffset + (stored + 511) / 512 * 512
    return HeaderInfo(type: type, offset: offset, size: size, dataOffset: dataOffset, truncated: truncated, next: next)
  }

  /// A zero block: the end-of-archive marker, unless a valid header follows (a zeroed block).
  func skipZeroBlock(_ s: inout ScanState) throws -> ScanFlow {
    let offset = s.offset
    guard let next = try nextValidHeader(after: offset) else { return .stop }
    s.issues.append(TarIssue(kind: .badHeader, offset: offset,
                             detail: "zero block inside the archive; \(next - offset) bytes skipped to the next valid header at byte \(next)",
                             resumedAt: next))
    s.clearMemberRecords()
    s.offset = next
    return .next
  }

  /// Records a damaged header at `s.offset` and moves to the next valid header (stops when
  /// there is none: the rest of the archive is lost).
  func skipDamage(_ s: inout ScanState, _ what: String) throws -> ScanFlow {
    let at = s.offset, total = source.size
    s.clearMemberRecords()
    if let next = try nextValidHeader(after: at) {
      s.issues.append(TarIssue(kind: .badHeader, offset: at,
                               detail: "\(what); \(next - at) bytes skipped to the next valid header at byte \(next)",
                               resumedAt: next))
      s.offset = next
      return .next
    }
    if s.validHeaders == 0 && at == 0 {
      s.issues.append(TarIssue(kind: .notTar, offset: 0, detail: "not a tar archive (no valid tar header in \(total) bytes)"))
    } else {
      s.issues.append(TarIssue(kind: .badHeader, offset: at,
                               detail: "\(what); no valid header after it, rest of archive (\(total - at) bytes) skipped"))
    }
    return .stop
  }

  /// A GNU `L` long name (kept for the next member), a `K` long link name (ignored), or pax
  /// `x` / `g` records (`path` and `size`, for the next member or for all).
  func readExtendedHeader(_ h: HeaderInfo, _ s: inout ScanState) throws -> ScanFlow {
    if h.truncated {
      s.issues.append(TarIssue(kind: .truncated, offset: h.offset, detail: "archive ends inside an extended header"))
      return .stop
    }
    if h.size > TarScanner.maxExtendedSize {
      s.issues.append(TarIssue(kind: .badExtendedHeader, offset: h.offset, detail: "extended header of \(h.size) bytes is too large; rest of archive skipped"))
      return .stop
    }
    let data = try source.bytes(at: h.dataOffset, count: Int(h.size))
    if h.type == UInt8(ascii: "L") {
      s.longName = TarHeaderField.string(data[...])
    } else if h.type == UInt8(ascii: "x") || h.type == UInt8(ascii: "g") {
      guard let records = TarHeaderField.paxRecords(data) else {
        s.issues.append(TarIssue(kind: .badExtendedHeader, offset: h.offset, detail: "malformed pax header ignored"))
        s.offset = h.next
        return .next
      }
      let perMember = h.type == UInt8(ascii: "x")
      for (k, v) in records {
        if k == "path" {
          if perMember { s.paxPath = v } else { s.globalPath = v }
        } else if k == "size" {
          guard let size = Int64(v), size >= 0 else {
            s.issues.append(TarIssue(kind: .badExtendedHeader, offset: h.offset, detail: "bad pax size '\(v.prefix(40))'; rest of archive skipped"))
            return .stop
          }
          if perMember { s.paxSize = size } else { s.globalSize = size }
        }
      }
    }
    s.offset = h.next
    return .next
  }

  /// A member header: names it (pax path, GNU long name, global pax path, ustar name), reports
  /// it when the file ends inside its data, and passes regular files (types NUL, 0, 7) to `member`.
  func readMember(_ h: HeaderInfo, _ s: inout ScanState, _ member: (TarMember) throws -> Void) throws -> ScanFlow {
    let total = source.size
    let isFile = h.type == 0 || h.type == UInt8(ascii: "0") || h.type == UInt8(ascii: "7")
    var name = s.paxPath ?? s.longName ?? s.globalPath ?? TarHeaderField.ustarName(s.header)
    s.clearMemberRecords()
    if h.truncated {
      if isFile {
        s.issues.append(TarIssue(kind: .truncated, offset: h.offset, detail: "member \(name) is cut short (\(max(0, total - h.dataOffset)) of \(h.size) bytes)", member: name))
      } else {
        s.issues.append(TarIssue(kind: .truncated, offset: h.offset, detail: "archive ends inside member \(name)"))
      }
      return .stop
    }
    if isFile {
      while name.hasPrefix("./") { name.removeFirst(2) }
      try member(TarMember(name: name, dataOffset: h.dataOffset, size: h.size))
    }
    s.offset = h.next
    return .next
  }

  /// Offset of the first 512-aligned block after `offset` that is a valid header
  /// (checksum verifies, size field parses), or nil. Reads 64 KiB at a time.
  public func nextValidHeader(after offset: Int64) throws -> Int64? {
    let total = source.size
    let chunk = 128 * 512
    var buf = [UInt8](repeating: 0, count: chunk)
    var block = [UInt8](repeating: 0, count: 512)
    var at = offset + 512
    while at + 512 <= total {
      let want = Int(min(Int64(chunk), (total - at) / 512 * 512))
      let got = try buf.withUnsafeMutableBytes { try source.read(at: at, count: want, into: $0.baseAddress!) }
      var i = 0
      while i + 512 <= got {
        // Cheap filter first: a header's checksum field holds octal digits.
        let c = buf[i + 148]
        if c == 0x20 || (c >= 0x30 && c <= 0x37) {
          for j in 0..<512 { block[j] = buf[i + j] }
          if !block.allSatisfy({ $0 == 0 }), TarHeaderField.checksumMatches(block),
             let sz = TarHeaderField.number(block, 124, 12), sz >= 0 {
            return at + Int64(i)
          }
        }
        i += 512
      }
      if got < want || got == 0 { break }
      at += Int64(got)
    }
    return nil
  }
}

/// Decoding of the fields of a 512-byte tar header.
enum TarHeaderField {
  /// Bytes up to the first NUL, as UTF-8 (invalid sequences replaced).
  static func string(_ bytes: ArraySlice<UInt8>) -> String {
    let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
    return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
  }

  /// The member name of a header: ustar joins `prefix/name`; GNU and v7 use `name` only.
  static func ustarName(_ h: [UInt8]) -> String {
    let name = string(h[0..<100])
    let isPosixUstar = h[257..<263].elementsEqual([0x75, 0x73, 0x74, 0x61, 0x72, 0x00])  // "ustar\0"
    if isPosixUstar {
      let prefix = string(h[345..<500])
      if !prefix.isEmpty { return prefix + "/" + name }
    }
    return name
  }

  /// A numeric field: octal ASCII (leading spaces, ended by NUL or space) or GNU base-256
  /// (first byte 0x80, big-endian value in the remaining bytes). Nil when malformed.
  static func number(_ h: [UInt8], _ start: Int, _ length: Int) -> Int64? {
    let f = h[start..<(start + length)]
    if f.first! & 0x80 != 0 {
      if f.first! != 0x80 { return nil }  // negative base-256 values are not sizes
      var v: Int64 = 0
      for b in f.dropFirst() {
        if v > (Int64.max >> 9) { return nil }
        v = (v << 8) | Int64(b)
      }
      return v
    }
    var v: Int64 = 0
    var seenDigit = false
    var i = f.startIndex
    while i < f.endIndex && f[i] == 0x20 { i += 1 }
    while i < f.endIndex {
      let c = f[i]
      if c >= 0x30 && c <= 0x37 {
        if v > (Int64.max >> 4) { return nil }
        v = v * 8 + Int64(c - 0x30)
        seenDigit = true
      } else if c == 0 || c == 0x20 {
        break
      } else {
        return nil
      }
      i += 1
    }
    return seenDigit || i < f.endIndex ? v : nil
  }

  /// Checksum rule: the sum of all header bytes with the checksum field read as eight
  /// spaces equals the octal checksum field (unsigned sum; signed accepted as historic).
  static func checksumMatches(_ h: [UInt8]) -> Bool {
    guard let stored = number(h, 148, 8) else { return false }
    var unsigned: Int64 = 0
    var signed: Int64 = 0
    for i in 0..<512 {
      let b = (i >= 148 && i < 156) ? UInt8(0x20) : h[i]
      unsigned += Int64(b)
      signed += Int64(Int8(bitPattern: b))
    }
    return stored == unsigned || stored == signed
  }

  /// pax records "LEN KEY=VALUE\n", LEN counting the whole record. Nil when malformed.
  static func paxRecords(_ data: [UInt8]) -> [(String, String)]? {
    var out: [(String, String)] = []
    var i = 0
    while i < data.count {
      if data[i] == 0 { break }  // padding
      var len = 0
      var j = i
      while j < data.count, data[j] >= 0x30, data[j] <= 0x39 {
        len = len * 10 + Int(data[j] - 0x30)
        if len > data.count { return nil }
        j += 1
      }
      guard j < data.count, data[j] == 0x20, len > j - i + 1, i + len <= data.count,
            data[i + len - 1] == 0x0A else { return nil }
      let body = data[(j + 1)..<(i + len - 1)]
      guard let eq = body.firstIndex(of: UInt8(ascii: "=")) else { return nil }
      let key = String(decoding: body[body.startIndex..<eq], as: UTF8.self)
      let value = String(decoding: body[(eq + 1)...], as: UTF8.self)
      out.append((key, value))
      i += len
    }
    return out
  }
}
