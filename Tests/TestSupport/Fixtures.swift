import Foundation
import XCTest

/// Shared helpers of the numeric test targets.

/// Locates `Tests/Fixtures/<sub>/<name>` from this source file.
public func fixturePath(_ sub: String, _ name: String, file: String = #filePath) -> String {
  URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").appendingPathComponent(sub).appendingPathComponent(name).path
}

/// max |a - b|
public func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
  precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
  var m: Float = 0
  for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
  return m
}

public func assertClose(_ a: [Float], _ b: [Float], atol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
  let e = maxAbsDiff(a, b)
  XCTAssertLessThanOrEqual(e, atol, "\(what): max abs error \(e) > \(atol)", file: file, line: line)
}
