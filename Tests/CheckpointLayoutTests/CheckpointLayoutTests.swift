import CheckpointLayout
import Foundation
import ViT
import XCTest

final class CheckpointLayoutTests: XCTestCase {
  func testStepDirectoryNames() {
    XCTAssertEqual(CheckpointLayout.directoryName(step: 300), "step-00000300")
    XCTAssertEqual(CheckpointLayout.directoryName(step: 123_456_789), "step-123456789")
    XCTAssertEqual(CheckpointLayout.step(ofDirectoryName: "step-00000300"), 300)
    XCTAssertEqual(CheckpointLayout.step(ofDirectoryName: "step-123456789"), 123_456_789)
    XCTAssertEqual(CheckpointLayout.step(ofDirectoryName: "step-0"), 0)
    for bad in ["best", ".tmp-step-00000001", ".old-step-00000001-12", "step-", "step--1", "step-+5", "step-1x", "step- 1",
                "step-99999999999999999999999"] {
      XCTAssertNil(CheckpointLayout.step(ofDirectoryName: bad), bad)
    }
    for s in [0, 7, 10_000_000, 999_999_999] {
      XCTAssertEqual(CheckpointLayout.step(ofDirectoryName: CheckpointLayout.directoryName(step: s)), s)
    }
  }

  /// trainer.json's `config.model` decodes as ViT's `ModelConfig` from the property names
  /// `JSONEncoder` wrote; a value of the wrong type or a missing key is one line naming it.
  func testModelSectionOfTrainerJSON() throws {
    var model = ModelConfig()
    model.width = 32
    model.heads = 2
    model.lnEps = 1e-12
    let encoded = String(decoding: try JSONEncoder().encode(model), as: UTF8.self)
    XCTAssertTrue(encoded.contains("\"imageSize\"") && encoded.contains("\"lnEps\""), encoded)
    func section(_ modelJSON: String) throws -> ModelConfig? {
      try CheckpointLayout.modelSection(ModelConfig.self, trainerJSON: Data(#"{"step": 10, "config": {"model": \#(modelJSON)}}"#.utf8),
                                        path: "t.json")
    }
    XCTAssertEqual(try section(encoded), model)
    XCTAssertNil(try CheckpointLayout.modelSection(ModelConfig.self, trainerJSON: Data(#"{"step": 1}"#.utf8), path: "t.json"))
    func message(_ modelJSON: String) -> String? {
      do { _ = try section(modelJSON); return nil } catch { return "\(error)" }
    }
    XCTAssertEqual(message(encoded.replacingOccurrences(of: "\"heads\":2", with: "\"heads\":true")), "t.json: config.model.heads: expected Int")
    XCTAssertEqual(message(encoded.replacingOccurrences(of: "\"heads\":2", with: "\"heads\":\"2\"")), "t.json: config.model.heads: expected Int")
    XCTAssertEqual(message(#"{"width": 32}"#), "t.json: config.model.depth: missing")
    XCTAssertThrowsError(try CheckpointLayout.modelSection(ModelConfig.self, trainerJSON: Data("{\"step\":".utf8), path: "t.json")) { e in
      XCTAssertEqual((e as? CheckpointLayoutError)?.kind, .notJSONObject(path: "t.json"))
      XCTAssertEqual("\(e)", "t.json: not a JSON object")
    }
  }
}
