import CheckpointLayout
import Foundation
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

  func testModelSectionOfTrainerJSON() throws {
    let json = #"{"step": 10, "config": {"model": {"width": 32, "heads": 2}}}"#
    let m = try XCTUnwrap(CheckpointLayout.modelSection(trainerJSON: Data(json.utf8), path: "t.json"))
    XCTAssertEqual(m["heads"] as? Int, 2)
    XCTAssertNil(try CheckpointLayout.modelSection(trainerJSON: Data(#"{"step": 1}"#.utf8), path: "t.json"))
    XCTAssertThrowsError(try CheckpointLayout.modelSection(trainerJSON: Data("{\"step\":".utf8), path: "t.json")) { e in
      XCTAssertEqual((e as? CheckpointLayoutError)?.kind, .notJSONObject(path: "t.json"))
      XCTAssertEqual("\(e)", "t.json: not a JSON object")
    }
  }
}
