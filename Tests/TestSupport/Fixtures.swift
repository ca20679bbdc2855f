import Foundation
import XCTest

/// Shared helpers of the numeric test targets.

/// The repository root, located from this source file (Tests/TestSupport/Fixtures.swift).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent()

/// `<repository>/<relative>`, e.g. `repositoryPath("configs/smoke.yaml")`.
public func repositoryPath(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }

/// `Tests/Fixtures/<sub>`, e.g. `fixtureDirectory("Imaging/damaged")`.
public func fixtureDirectory(_ sub: String) -> URL {
  repositoryRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(sub)
}

/// `Tests/Fixtures/<sub>/<name>`.
public func fixturePath(_ sub: String, _ name: String) -> String {
  fixtureDirectory(sub).appendingPathComponent(name).path
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

/// A fresh path `<tmp>/cde-<prefix>-<UUID>`, removed with everything under it when `test`
/// ends; made as an empty directory unless `create` is false.
public func temporaryDirectory(_ test: XCTestCase, prefix: String = "test", create: Bool = true) -> String {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cde-\(prefix)-\(UUID().uuidString)").path
  if create { try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
  test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
  return dir
}
