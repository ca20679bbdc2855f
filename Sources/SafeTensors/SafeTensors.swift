import CodedError
import Foundation

/// Element types of the safetensors format that this project reads and writes.
public enum DType: String, Sendable, CaseIterable {
  case f32 = "F32"
  case f64 = "F64"
  case f16 = "F16"
  case bf16 = "BF16"
  case i64 = "I64"
  case i32 = "I32"
  case u8 = "U8"
  case bool = "BOOL"

  public var byteSize: Int {
    switch self {
    case .f64, .i64: return 8
    case .f32, .i32: return 4
    case .f16, .bf16: return 2
    case .u8, .bool: return 1
    }
  }
}

/// Errors from reading or writing a safetensors file. `description` is one line
/// naming the file and, where there is one, the tensor.
public typealias SafeTensorsError = CodedError<SafeTensorsErrorKind>

/// The failure cases of reading and writing safetensors files.
public enum SafeTensorsErrorKind: Equatable, Sendable {
  /// The file at `path` cannot be read, written or renamed into place.
  case io(path: String)
  /// The file ends before its header (or its header size) does.
  case truncated(path: String)
  /// The header is not a valid safetensors header; `tensor` names the entry at fault, if one.
  case badHeader(path: String, tensor: String?)
  /// The file has no tensor `tensor`.
  case missingTensor(path: String, tensor: String)
  /// Tensor `tensor` has another dtype than the one asked for.
  case wrongDType(path: String, tensor: String)
  /// Tensor `tensor` has another shape than the one asked for.
  case wrongShape(path: String, tensor: String)
}

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
  public var dtype: DType
  public var shape: [Int]
  /// Byte range inside the data section (after the header).
  public var begin: Int
  public var end: Int
  public var count: Int { shape.reduce(1, *) }
}

/// A parsed safetensors file held in memory.
///
/// Format: `u64 little-endian N`, then `N` bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, "__metadata__": {..}}`,
/// then the data section; offsets are relative to the data section.
public struct SafeTensorsFile: Sendable {
  public let path: String
  public let tensors: [String: TensorInfo]
  public let metadata: [String: String]
  /// Names in data-offset order.
  public let names: [String]
  let data: Data
  let dataStart: Int

  /// Reads and validates a file: header size, JSON, dtypes, shapes against byte
  /// ranges, ranges inside the file and not overlapping.
  public init(path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw SafeTensorsError(.io(path: path), "\(path): cannot read file")
    }
    try self.init(data: data, path: path)
  }

  public init(data: Data, path: String = "<memory>") throws {
    self.path = path
    self.data = data
    guard data.count >= 8 else {
      throw SafeTensorsError(.truncated(path: path), "\(path): truncated safetensors file (\(data.count) bytes, no header size)")
    }
    var n: UInt64 = 0
    for i in 0..<8 { n |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
    guard n > 0, n <= UInt64(100 << 20) else {
      throw SafeTensorsError(.badHeader(path: path, tensor: nil), "\(path): invalid safetensors header size \(n)")
    }
    guard 8 + Int(n) <= data.count else {
      throw SafeTensorsError(.truncated(path: path), "\(path): truncated safetensors file (header of \(n) bytes, file has \(data.count))")
    }
    let headerData = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + Int(n)))
    guard let json = try? JSONSerialization.jsonObject(with: headerData), let obj = json as? [String: Any] else {
      throw SafeTensorsError(.badHeader(path: path, tensor: nil), "\(path): safetensors header is not a JSON object")
    }
    dataStart = 8 + Int(n)
    let dataLength = data.count - dataStart
    var tensors: [String: TensorInfo] = [:]
    var metadata: [String: String] = [:]
    for (key, value) in obj {
      if key == "__metadata__" {
        guard let m = value as? [String: Any] else {
          throw SafeTensorsError(.badHeader(path: path, tensor: nil), "\(path): __metadata__ is not an object")
        }
        for (mk, mv) in m {
          guard let s = mv as? String else { throw SafeTensorsError(.badHeader(path: path, tensor: nil), "\(path): metadata \(mk) is not a string") }
          metadata[mk] = s
        }
        continue
      }
      guard let entry = value as? [String: Any],
        let dtypeName = entry["dtype"] as? String,
        let shapeAny = entry["shape"] as? [Any],
        let offsAny = entry["data_offsets"] as? [Any], offsAny.count == 2
      else { throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): malformed header entry") }
      guard let dtype = DType(rawValue: dtypeName) else {
        throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): unsupported dtype \(dtypeName)")
      }
      // Shape and offsets: non-negative integers (not floats, not beyond 2^53); the
      // element count and byte size are computed with overflow checks, so that a shape
      // such as [2^31, 2^31, 2^31] is an error, not a trap.
      guard shapeAny.count <= 64 else {
        throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): shape has \(shapeAny.count) dimensions (at most 64)")
      }
      var shape: [Int] = []
      for s in shapeAny {
        guard let v = SafeTensorsFile.exactInt(s) else {
          throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): invalid shape \(String(describing: shapeAny).prefix(200))")
        }
        shape.append(v)
      }
      guard let b = SafeTensorsFile.exactInt(offsAny[0]), let e = SafeTensorsFile.exactInt(offsAny[1]), e >= b
      else { throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): invalid data_offsets") }
      guard e <= dataLength else {
        throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): data_offsets [\(b), \(e)] out of range (data section has \(dataLength) bytes; truncated file?)")
      }
      var elements = 1, overflow = false
      for d in shape {
        let (p, o) = elements.multipliedReportingOverflow(by: d)
        elements = p; overflow = overflow || o
      }
      let (needed, o2) = elements.multipliedReportingOverflow(by: dtype.byteSize)
      guard !overflow, !o2 else {
        throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): shape \(shape) of \(dtype.rawValue) is too large (its byte size overflows)")
      }
      guard needed == e - b else {
        throw SafeTensorsError(.badHeader(path: path, tensor: key), "\(path): tensor \(key): shape \(shape) of \(dtype.rawValue) needs \(needed) bytes, offsets give \(e - b)")
      }
      let info = TensorInfo(dtype: dtype, shape: shape, begin: b, end: e)
      tensors[key] = info
    }
    let ordered = tensors.sorted { $0.value.begin < $1.value.begin || ($0.value.begin == $1.value.begin && $0.key < $1.key) }
    var lastEnd = 0
    for (k, t) in ordered where t.end > t.begin {
      guard t.begin >= lastEnd else { throw SafeTensorsError(.badHeader(path: path, tensor: k), "\(path): tensor \(k): overlaps the previous tensor") }
      lastEnd = t.end
    }
    self.tensors = tensors
    self.metadata = metadata
    self.names = ordered.map { $0.key }
  }

  /// A JSON number that is a non-negative integer no larger than 2^53 (exact in a
  /// Double), else nil (negative, fractional, huge, or not a number).
  static func exactInt(_ v: Any) -> Int? {
    guard let n = v as? NSNumber else { return nil }
    let d = n.doubleValue
    guard d.isFinite, d >= 0, d <= 9_007_199_254_740_992, d.rounded() == d else { return nil }
    let i = n.int64Value
    guard i >= 0, Double(i) == d else { return nil }
    return Int(i)
  }

  public func info(_ name: String) throws -> TensorInfo {
    guard let t = tensors[name] else { throw SafeTensorsError(.missingTensor(path: path, tensor: name), "\(path): missing tensor \(name)") }
    return t
  }

  /// Copies an F32 tensor into `dst` after checking dtype and (if given) shape.
  public func read(_ name: String, into dst: UnsafeMutablePointer<Float>, shape expected: [Int]? = nil) throws {
    let t = try info(name)
    guard t.dtype == .f32 else { throw SafeTensorsError(.wrongDType(path: path, tensor: name), "\(path): tensor \(name): dtype \(t.dtype.rawValue), expected F32") }
    if let expected, expected != t.shape {
      // Accept the same element order with unit dimensions dropped or added.
      guard expected.filter({ $0 != 1 }) == t.shape.filter({ $0 != 1 }) else {
        throw SafeTensorsError(.wrongShape(path: path, tensor: name), "\(path): tensor \(name): shape \(t.shape), expected \(expected)")
      }
    }
    data.withUnsafeBytes { raw in
      let src = raw.baseAddress!.advanced(by: dataStart + t.begin)
      memcpy(dst, src, t.end - t.begin)
    }
  }

  /// An F32 tensor as an array (any stored float type converted: F32, F64, F16, BF16).
  public func floats(_ name: String) throws -> [Float] {
    let t = try info(name)
    return data.withUnsafeBytes { raw -> [Float] in
      let p = raw.baseAddress!.advanced(by: dataStart + t.begin)
      switch t.dtype {
      case .f32:
        return [Float](unsafeUninitializedCapacity: t.count) { buf, n in
          memcpy(buf.baseAddress!, p, t.count * 4); n = t.count
        }
      case .f64:
        return (0..<t.count).map { Float(p.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
      case .f16:
        return (0..<t.count).map { Float(halfToFloat(p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
      case .bf16:
        return (0..<t.count).map { Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
      case .i64:
        return (0..<t.count).map { Float(p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
      case .i32:
        return (0..<t.count).map { Float(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
      case .u8, .bool:
        return (0..<t.count).map { Float(p.load(fromByteOffset: $0, as: UInt8.self)) }
      }
    }
  }

  /// An integer tensor (I64, I32, U8, BOOL) as Int64 values.
  public func ints(_ name: String) throws -> [Int64] {
    let t = try info(name)
    return try data.withUnsafeBytes { raw -> [Int64] in
      let p = raw.baseAddress!.advanced(by: dataStart + t.begin)
      switch t.dtype {
      case .i64: return (0..<t.count).map { p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
      case .i32: return (0..<t.count).map { Int64(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
      case .u8, .bool: return (0..<t.count).map { Int64(p.load(fromByteOffset: $0, as: UInt8.self)) }
      default: throw SafeTensorsError(.wrongDType(path: path, tensor: name), "\(path): tensor \(name): dtype \(t.dtype.rawValue), expected an integer type")
      }
    }
  }

  /// Raw bytes of one tensor.
  public func bytes(_ name: String) throws -> Data {
    let t = try info(name)
    return data.subdata(in: (data.startIndex + dataStart + t.begin)..<(data.startIndex + dataStart + t.end))
  }
}

@inline(__always) func halfToFloat(_ h: UInt16) -> Float {
  let sign = UInt32(h & 0x8000) << 16
  let exp = Int((h >> 10) & 0x1f)
  let mant = UInt32(h & 0x3ff)
  if exp == 0 {
    return Float(bitPattern: sign) + (sign != 0 ? -1 : 1) * Float(mant) * powf(2, -24)
  }
  if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
  return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}

/// Builds a safetensors file tensor by tensor, then writes it in one go.
public struct SafeTensorsWriter {
  struct Entry { var name: String; var dtype: DType; var shape: [Int]; var bytes: Data }
  var entries: [Entry] = []
  public var metadata: [String: String] = [:]

  public init(metadata: [String: String] = [:]) { self.metadata = metadata }

  public mutating func add(_ name: String, floats p: UnsafePointer<Float>, shape: [Int]) {
    let n = shape.reduce(1, *)
    entries.append(Entry(name: name, dtype: .f32, shape: shape, bytes: Data(bytes: p, count: n * 4)))
  }

  public mutating func add(_ name: String, floats a: [Float], shape: [Int]) {
    precondition(a.count == shape.reduce(1, *), "tensor \(name): \(a.count) values for shape \(shape)")
    a.withUnsafeBufferPointer { add(name, floats: $0.baseAddress!, shape: shape) }
  }

  public mutating func add(_ name: String, int64 a: [Int64], shape: [Int]) {
    precondition(a.count == shape.reduce(1, *), "tensor \(name): \(a.count) values for shape \(shape)")
    let d = a.withUnsafeBufferPointer { Data(buffer: $0) }
    entries.append(Entry(name: name, dtype: .i64, shape: shape, bytes: d))
  }

  public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: Data) {
    precondition(bytes.count == shape.reduce(1, *) * dtype.byteSize, "tensor \(name): byte count does not match shape")
    entries.append(Entry(name: name, dtype: dtype, shape: shape, bytes: bytes))
  }

  /// The serialised file: header (JSON, space-padded to a multiple of 8) then data.
  public func serialized() -> Data {
    var header = "{"
    var offset = 0
    var first = true
    if !metadata.isEmpty {
      header += "\"__metadata__\":{"
      header += metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
      header += "}"
      first = false
    }
    for e in entries {
      if !first { header += "," }
      first = false
      let shape = e.shape.map(String.init).joined(separator: ",")
      header += "\(jsonString(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}"
      offset += e.bytes.count
    }
    header += "}"
    var h = Data(header.utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out = Data(capacity: 8 + h.count + offset)
    var n = UInt64(h.count).littleEndian
    withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
    out.append(h)
    for e in entries { out.append(e.bytes) }
    return out
  }

  /// Writes the file (to `path`, via a temporary file renamed into place).
  public func write(to path: String) throws {
    let tmp = path + ".tmp-\(getpid())"
    let url = URL(fileURLWithPath: tmp)
    do {
      try serialized().write(to: url)
    } catch {
      throw SafeTensorsError(.io(path: path), "\(path): cannot write: \(error.localizedDescription)")
    }
    guard rename(tmp, path) == 0 else {
      unlink(tmp)
      throw SafeTensorsError(.io(path: path), "\(path): cannot rename temporary file into place: \(String(cString: strerror(errno)))")
    }
  }
}

/// `s` as a JSON string literal (quotes, backslash and control characters escaped).
public func jsonString(_ s: String) -> String {
  var out = "\""
  for u in s.unicodeScalars {
    switch u {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    default:
      if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
    }
  }
  return out + "\""
}
