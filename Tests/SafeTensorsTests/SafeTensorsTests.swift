import Foundation
import TestSupport
import SafeTensors
import XCTest

/// Reading and writing safetensors, and one clear error per kind of bad file.
final class SafeTensorsTests: XCTestCase {
  func sample() -> Data {
    var w = SafeTensorsWriter(metadata: ["format": "pt"])
    w.add("a", floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])
    w.add("perm", int64: [2, 0, 1], shape: [3])
    return w.serialized()
  }

  func testRoundTrip() throws {
    let f = try SafeTensorsFile(data: sample())
    XCTAssertEqual(try f.floats("a"), [1, 2, 3, 4, 5, 6])
    XCTAssertEqual(try f.info("a").shape, [2, 3])
    XCTAssertEqual(try f.ints("perm"), [2, 0, 1])
    XCTAssertEqual(f.metadata["format"], "pt")
    // Header length is a multiple of 8 (8-byte aligned data section).
    let d = sample()
    let n = d.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    XCTAssertEqual(n % 8, 0)
  }

  /// A file written by Python's safetensors (the engine fixtures) reads back.
  func testReadsPythonWrittenFile() throws {
    let path = fixturePath("Engine", "views_small.safetensors")
    let f = try SafeTensorsFile(path: path)
    XCTAssertEqual(try f.info("real").shape, [3, 3, 48, 48])
    XCTAssertEqual(try f.info("perm").dtype, .i64)
  }

  func expectError(_ data: Data, contains s: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try SafeTensorsFile(data: data, path: "x.safetensors"), file: file, line: line) { e in
      XCTAssertTrue("\(e)".contains(s) && "\(e)".contains("x.safetensors"), "\(e)", file: file, line: line)
    }
  }

  func testBadFiles() throws {
    let good = sample()
    expectError(good.prefix(5), contains: "truncated")
    expectError(good.prefix(good.count - 4), contains: "out of range")
    var badJSON = good
    badJSON[8] = UInt8(ascii: "[")
    expectError(badJSON, contains: "JSON")
    // A shape that does not match the byte range.
    var badShape = good
    let r = badShape.range(of: Data("[2,3]".utf8))!
    badShape.replaceSubrange(r, with: Data("[2,4]".utf8))
    expectError(badShape, contains: "needs")
    let f = try SafeTensorsFile(data: good, path: "x.safetensors")
    XCTAssertThrowsError(try f.info("missing")) { XCTAssertTrue("\($0)".contains("missing tensor missing")) }
    var dst = [Float](repeating: 0, count: 6)
    XCTAssertThrowsError(try f.read("a", into: &dst, shape: [6, 2])) { XCTAssertTrue("\($0)".contains("expected [6, 2]")) }
    XCTAssertThrowsError(try f.read("perm", into: &dst)) { XCTAssertTrue("\($0)".contains("expected F32")) }
    // The same failures by kind.
    func kind(_ body: () throws -> Void) -> SafeTensorsError.Kind? {
      do { try body(); return nil } catch { return (error as? SafeTensorsError)?.kind }
    }
    XCTAssertEqual(kind { _ = try SafeTensorsFile(data: good.prefix(5), path: "x.safetensors") }, .truncated(path: "x.safetensors"))
    XCTAssertEqual(kind { _ = try SafeTensorsFile(data: badJSON, path: "x.safetensors") }, .badHeader(path: "x.safetensors", tensor: nil))
    XCTAssertEqual(kind { _ = try f.info("missing") }, .missingTensor(path: "x.safetensors", tensor: "missing"))
    XCTAssertEqual(kind { try f.read("a", into: &dst, shape: [6, 2]) }, .wrongShape(path: "x.safetensors", tensor: "a"))
    XCTAssertEqual(kind { try f.read("perm", into: &dst) }, .wrongDType(path: "x.safetensors", tensor: "perm"))
    XCTAssertEqual(kind { _ = try SafeTensorsFile(path: "/nonexistent/x.safetensors") }, .io(path: "/nonexistent/x.safetensors"))
  }

  /// A header with one tensor entry (written by hand: the writer only makes valid files).
  func header(_ entry: String, data: Int = 4) -> Data {
    var h = Data("{\"w\":\(entry)}".utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out = Data()
    var n = UInt64(h.count).littleEndian
    withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
    return out + h + Data(count: data)
  }

  /// Overflowing or absurd shapes are one-line errors, not traps (SafeTensors.swift used
  /// to trap computing the element count of [2^31, 2^31, 2^31]).
  func testOverflowingAndAbsurdShapes() {
    let cases: [(String, String)] = [
      ("{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648,2147483648],\"data_offsets\":[0,4]}", "overflows"),
      ("{\"dtype\":\"F32\",\"shape\":[4611686018427387904,2],\"data_offsets\":[0,4]}", "invalid shape"),
      ("{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}", "overflows"),
      ("{\"dtype\":\"F64\",\"shape\":[1152921504606846976],\"data_offsets\":[0,4]}", "invalid shape"),
      ("{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}", "invalid shape"),
      ("{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}", "invalid shape"),
      ("{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,4]}", "invalid shape"),
      ("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}", "needs 8 bytes, offsets give 4"),
      ("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}", "invalid data_offsets"),
      ("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}", "invalid data_offsets"),
      ("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9007199254740992]}", "out of range"),
    ]
    for (entry, want) in cases {
      XCTAssertThrowsError(try SafeTensorsFile(data: header(entry), path: "h.safetensors"), entry) {
        XCTAssertTrue("\($0)".hasPrefix("h.safetensors: tensor w: ") && "\($0)".contains(want), "\(entry): \($0)")
        XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .badHeader(path: "h.safetensors", tensor: "w"), entry)
        XCTAssertFalse("\($0)".contains("\n"))
      }
    }
    // The same layout with a consistent shape is accepted.
    XCTAssertEqual(try SafeTensorsFile(data: header("{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]}")).info("w").count, 1)
  }
}
