import Foundation
import SafeTensors
import TestSupport
import XCTest

/// `Tests/Fixtures/Evaluation/<name>`.
func fixturePath(_ name: String) -> String { TestSupport.fixturePath("Evaluation", name) }

/// F64 (or any float) tensor of a fixture as doubles.
func fixtureDoubles(_ f: SafeTensorsFile, _ name: String) throws -> [Double] {
  let t = try f.info(name)
  if t.dtype == .f64 {
    let data = try f.bytes(name)
    return data.withUnsafeBytes { raw in (0..<t.count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
  }
  return try f.floats(name).map(Double.init)
}

func fixtureJSON(_ name: String) throws -> [String: Any] {
  let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath(name)))
  return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
}

