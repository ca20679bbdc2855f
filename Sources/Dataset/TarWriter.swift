import Foundation

/// Writes a tar archive member by member (POSIX ustar headers; names longer than 100
/// bytes get a GNU `././@LongLink` record first, as GNU tar does). Deterministic: fixed
/// mode 0644, uid/gid 0, the given mtime. Ends with two zero blocks on `finish()`.
public final class TarWriter {
  private let handle: FileHandle
  public let path: String
  private let mtime: Int64
  private var buffer = Data()

  public init(path: String, mtime: Int64 = 1_700_000_000) throws {
    guard FileManager.default.createFile(atPath: path, contents: nil),
          let h = FileHandle(forWritingAtPath: path) else {
      throw DatasetError(.io(path: path), "\(path): cannot create file")
    }
    handle = h
    self.path = path
    self.mtime = mtime
  }

  /// The 512-byte header of a member (exposed for tests).
  public static func header(name: [UInt8], size: Int, type: UInt8, mtime: Int64) -> [UInt8] {
    var h = [UInt8](repeating: 0, count: 512)
    func put(_ s: [UInt8], _ at: Int, _ len: Int) { for (i, b) in s.prefix(len).enumerated() { h[at + i] = b } }
    func octal(_ v: Int64, _ at: Int, _ len: Int) {
      var s = String(v, radix: 8)
      s = String(repeating: "0", count: max(0, len - 1 - s.count)) + s
      put(Array(s.utf8), at, len - 1)
    }
    put(name, 0, 100)
    octal(0o644, 100, 8)
    octal(0, 108, 8)
    octal(0, 116, 8)
    if size < 0o77777777777 {
      octal(Int64(size), 124, 12)
    } else {  // GNU base-256
      h[124] = 0x80
      var v = UInt64(size)
      for i in stride(from: 135, through: 125, by: -1) { h[i] = UInt8(v & 0xFF); v >>= 8 }
    }
    octal(mtime, 136, 12)
    h[156] = type
    put(Array("ustar\0".utf8), 257, 6)
    put(Array("00".utf8), 263, 2)
    for i in 148..<156 { h[i] = 0x20 }
    let sum = h.reduce(0) { $0 + Int64($1) }
    var s = String(sum, radix: 8)
    s = String(repeating: "0", count: max(0, 6 - s.count)) + s
    put(Array(s.utf8), 148, 6)
    h[154] = 0
    h[155] = 0x20
    return h
  }

  public func add(name: String, data: Data) throws {
    let n = Array(name.utf8)
    if n.count > 100 {
      var long = n; long.append(0)
      buffer.append(contentsOf: TarWriter.header(name: Array("././@LongLink".utf8), size: long.count, type: UInt8(ascii: "L"), mtime: 0))
      append(padded: Data(long))
    }
    buffer.append(contentsOf: TarWriter.header(name: n, size: data.count, type: UInt8(ascii: "0"), mtime: mtime))
    append(padded: data)
    if buffer.count > 8 << 20 { try flush() }
  }

  private func append(padded data: Data) {
    buffer.append(data)
    let pad = (512 - data.count % 512) % 512
    if pad > 0 { buffer.append(Data(count: pad)) }
  }

  private func flush() throws {
    do { try handle.write(contentsOf: buffer) } catch { throw DatasetError(.io(path: path), "\(path): write failed (\(error.localizedDescription))") }
    buffer.removeAll(keepingCapacity: true)
  }

  public func finish() throws {
    buffer.append(Data(count: 1024))
    try flush()
    do { try handle.close() } catch { throw DatasetError(.io(path: path), "\(path): close failed") }
  }
}
