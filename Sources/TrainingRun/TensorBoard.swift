import Foundation

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
/// 0xFFFFFFFF), as TFRecord framing uses. `checksum("123456789") == 0xE3069283`.
public enum CRC32C {
  static let table: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
  }

  public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    table.withUnsafeBufferPointer { t in
      for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    }
    return c ^ 0xFFFF_FFFF
  }

  public static func checksum(_ data: Data) -> UInt32 { data.withUnsafeBytes { checksum($0) } }

  /// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xA282EAD8 (mod 2^32).
  public static func masked(_ crc: UInt32) -> UInt32 {
    ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
  }
}

/// Minimal protobuf encoding (wire types 0 varint, 1 fixed64, 2 bytes, 5 fixed32).
struct ProtoBuffer {
  var bytes = Data()

  mutating func varint(_ v: UInt64) {
    var v = v
    while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
    bytes.append(UInt8(v))
  }
  mutating func key(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }
  mutating func double(_ field: Int, _ v: Double) {
    key(field, 1)
    var b = v.bitPattern.littleEndian
    withUnsafeBytes(of: &b) { bytes.append(contentsOf: $0) }
  }
  mutating func float(_ field: Int, _ v: Float) {
    key(field, 5)
    var b = v.bitPattern.littleEndian
    withUnsafeBytes(of: &b) { bytes.append(contentsOf: $0) }
  }
  mutating func int64(_ field: Int, _ v: Int64) { key(field, 0); varint(UInt64(bitPattern: v)) }
  mutating func bytes(_ field: Int, _ d: Data) { key(field, 2); varint(UInt64(d.count)); bytes.append(d) }
  mutating func string(_ field: Int, _ s: String) { bytes(field, Data(s.utf8)) }
}

/// TensorBoard event files: `RUN/events.out.tfevents.<unix time>.<host>.<pid>`.
///
/// Each record is TFRecord-framed: uint64 length (LE), uint32 masked CRC-32C of the
/// length bytes, the serialised `tensorflow.Event`, uint32 masked CRC-32C of it.
/// Events (proto3, fields in number order, zero scalars omitted):
/// Event { double wall_time = 1; int64 step = 2; oneof { string file_version = 3;
/// Summary summary = 5; SessionLog session_log = 7; } },
/// Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 },
/// SessionLog { SessionStatus status = 1 (START = 1) }.
/// The first event carries file_version "brain.Event:2".
public final class TensorBoardWriter {
  public let url: URL
  private let handle: FileHandle

  /// Creates the event file in `directory` and writes the file_version event.
  public init(directory: URL, wallTime: Double = Date().timeIntervalSince1970,
              host: String = TensorBoardWriter.hostName()) throws {
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let name = String(format: "events.out.tfevents.%010d.", Int(wallTime)) + host + ".\(getpid())"
    url = directory.appendingPathComponent(name)
    guard FileManager.default.createFile(atPath: url.path, contents: nil),
          let h = try? FileHandle(forWritingTo: url) else {
      throw CheckpointError(.io(path: url.path), "\(url.path): cannot create the TensorBoard event file")
    }
    handle = h
    var e = ProtoBuffer()
    if wallTime != 0 { e.double(1, wallTime) }
    e.string(3, "brain.Event:2")
    writeRecord(e.bytes)
  }

  deinit { try? handle.close() }

  /// This machine's name (gethostname; no name lookup).
  public static func hostName() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
    let name = String(cString: buf)
    return name.isEmpty ? "localhost" : name
  }

  /// One event holding a scalar summary value per (tag, value), in the order given.
  /// Values are stored as fp32 (TensorBoard's simple_value).
  public func add(scalars: KeyValuePairs<String, Double>, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
    add(scalars: scalars.map { ($0.key, $0.value) }, step: step, wallTime: wallTime)
  }

  public func add(scalars: [(String, Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) {
    var summary = ProtoBuffer()
    for (tag, v) in scalars {
      var value = ProtoBuffer()
      value.string(1, tag)
      value.float(2, Float(v))
      summary.bytes(1, value.bytes)
    }
    var e = ProtoBuffer()
    if wallTime != 0 { e.double(1, wallTime) }
    if step != 0 { e.int64(2, Int64(step)) }
    e.bytes(5, summary.bytes)
    writeRecord(e.bytes)
  }

  /// A SessionLog START event at `step`: on a resumed run TensorBoard then drops
  /// the events of later steps written before the interruption.
  public func addSessionStart(step: Int, wallTime: Double = Date().timeIntervalSince1970) {
    var log = ProtoBuffer()
    log.varint(UInt64(1 << 3 | 0)); log.varint(1)  // status = START
    var e = ProtoBuffer()
    if wallTime != 0 { e.double(1, wallTime) }
    if step != 0 { e.int64(2, Int64(step)) }
    e.bytes(7, log.bytes)
    writeRecord(e.bytes)
  }

  /// Frames one serialised event as a TFRecord and writes it with one write().
  func writeRecord(_ payload: Data) {
    var rec = Data(capacity: payload.count + 16)
    var len = UInt64(payload.count).littleEndian
    let lenBytes = withUnsafeBytes(of: &len) { Data($0) }
    rec.append(lenBytes)
    var lcrc = CRC32C.masked(CRC32C.checksum(lenBytes)).littleEndian
    withUnsafeBytes(of: &lcrc) { rec.append(contentsOf: $0) }
    rec.append(payload)
    var dcrc = CRC32C.masked(CRC32C.checksum(payload)).littleEndian
    withUnsafeBytes(of: &dcrc) { rec.append(contentsOf: $0) }
    handle.write(rec)
  }

  /// Forces the file to disk (the writes themselves are already visible to readers).
  public func flush() { try? handle.synchronize() }
}
