#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Random-access bytes: a file (read with `pread`, safe from many threads) or memory.
public protocol ByteSource: AnyObject {
  /// Total number of bytes.
  var size: Int64 { get }
  /// Human name used in messages (the file path).
  var name: String { get }
  /// Reads up to `count` bytes at `offset` into `buffer`; returns the number read
  /// (less than `count` only at the end of the source).
  func read(at offset: Int64, count: Int, into buffer: UnsafeMutableRawPointer) throws -> Int
}

extension ByteSource {
  /// Reads exactly `count` bytes at `offset` (fewer at the end of the source).
  public func bytes(at offset: Int64, count: Int) throws -> [UInt8] {
    if count <= 0 || offset >= size { return [] }
    let n = Int(min(Int64(count), size - offset))
    var out = [UInt8](repeating: 0, count: n)
    let got = try out.withUnsafeMutableBytes { try read(at: offset, count: n, into: $0.baseAddress!) }
    if got < n { out.removeLast(n - got) }
    return out
  }
}

/// Bytes held in memory (fixtures, fuzzing).
public final class MemoryByteSource: ByteSource {
  public let data: [UInt8]
  public let name: String
  public init(_ data: [UInt8], name: String = "<memory>") { self.data = data; self.name = name }
  public var size: Int64 { Int64(data.count) }
  public func read(at offset: Int64, count: Int, into buffer: UnsafeMutableRawPointer) throws -> Int {
    guard offset >= 0, offset < Int64(data.count), count > 0 else { return 0 }
    let n = min(count, data.count - Int(offset))
    data.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n) }
    return n
  }
}

/// A file opened read-only; reads use `pread`, so one instance serves many threads.
/// The descriptor is closed when the last reference goes away.
public final class FileByteSource: ByteSource {
  public let name: String
  public let size: Int64
  /// Modification time in nanoseconds since 1970 (used to validate cached indexes).
  public let modificationTimeNs: Int64
  private let fd: Int32

  public init(path: String) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw DatasetError(.io(path: path), "\(path): cannot open (\(String(cString: strerror(errno))))") }
    var st = stat()
    if fstat(fd, &st) != 0 {
      let e = errno
      close(fd)
      throw DatasetError(.io(path: path), "\(path): cannot stat (\(String(cString: strerror(e))))")
    }
    if (st.st_mode & S_IFMT) == S_IFDIR {
      close(fd)
      throw DatasetError(.io(path: path), "\(path): is a directory, expected a file")
    }
    self.fd = fd
    self.name = path
    self.size = Int64(st.st_size)
    #if canImport(Darwin)
    self.modificationTimeNs = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
    #else
    self.modificationTimeNs = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    #endif
  }

  deinit { close(fd) }

  public func read(at offset: Int64, count: Int, into buffer: UnsafeMutableRawPointer) throws -> Int {
    var done = 0
    while done < count {
      let r = pread(fd, buffer + done, count - done, off_t(offset + Int64(done)))
      if r < 0 {
        if errno == EINTR { continue }
        throw DatasetError(.io(path: name), "\(name): read error at byte \(offset + Int64(done)) (\(String(cString: strerror(errno))))")
      }
      if r == 0 { break }
      done += r
    }
    return done
  }
}
