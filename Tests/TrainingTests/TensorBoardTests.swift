import Foundation
import TestSupport
import XCTest
@testable import Training
@testable import TrainingRun

final class TensorBoardTests: XCTestCase {
  static let fixtures = fixtureDirectory("Training/tensorboard")

  /// CRC-32C check values: "123456789" (the CRC catalogue) and RFC 3720 appendix B.4.
  func testCRC32CVectors() {
    XCTAssertEqual(CRC32C.checksum(Data("123456789".utf8)), 0xE306_9283)
    XCTAssertEqual(CRC32C.checksum(Data(repeating: 0, count: 32)), 0x8A91_36AA)
    XCTAssertEqual(CRC32C.checksum(Data(repeating: 0xFF, count: 32)), 0x62A8_AB43)
    XCTAssertEqual(CRC32C.checksum(Data((0..<32).map { UInt8($0) })), 0x46DD_794E)
    XCTAssertEqual(CRC32C.checksum(Data((0..<32).map { UInt8(31 - $0) })), 0x113F_DB5C)
    XCTAssertEqual(CRC32C.checksum(Data()), 0)
    // Mask: rotate right by 15, add 0xA282EAD8 (mod 2^32).
    XCTAssertEqual(CRC32C.masked(0), 0xA282_EAD8)
    XCTAssertEqual(CRC32C.masked(0x0000_8000), 0xA282_EAD9)
  }

  /// The writer's bytes equal the `tensorboard` package's own writer's for the same
  /// events (scripts/fixtures/tensorboard_events.py).
  func testEventFileMatchesTensorBoardReference() throws {
    let reference = try Data(contentsOf: Self.fixtures.appendingPathComponent("reference.tfevents"))
    let specs = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("events.json"))) as! [[String: Any]]
    let dir = URL(fileURLWithPath: temporaryDirectory(self, prefix: "tb", create: false))
    var writer: TensorBoardWriter?
    for spec in specs {
      let wall = spec["wall_time"] as! Double
      let step = spec["step"] as? Int ?? 0
      switch spec["kind"] as! String {
      case "file_version":
        writer = try TensorBoardWriter(directory: dir, wallTime: wall, host: "testhost")
      case "scalars":
        let values = (spec["values"] as! [[Any]]).map { ($0[0] as! String, ($0[1] as! NSNumber).doubleValue) }
        writer!.add(scalars: values, step: step, wallTime: wall)
      case "session_start":
        writer!.addSessionStart(step: step, wallTime: wall)
      default:
        XCTFail("unknown event kind")
      }
    }
    let w = try XCTUnwrap(writer)
    w.flush()
    let name = w.url.lastPathComponent
    XCTAssertTrue(name.hasPrefix("events.out.tfevents.1767225600.testhost."), name)
    let written = try Data(contentsOf: w.url)
    XCTAssertEqual(written.count, reference.count)
    let firstDiff = zip(written, reference).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    XCTAssertNil(firstDiff, "first differing byte at offset \(firstDiff ?? -1) of \(w.url.path)")
    if firstDiff != nil { try? written.write(to: URL(fileURLWithPath: "/tmp/cde-tb-mismatch.tfevents")) }
  }
}

final class TensorBoardMetricsTests: XCTestCase {
  func testMetricsLinesAndResumeTruncation() throws {
    let dir = URL(fileURLWithPath: temporaryDirectory(self, prefix: "metrics"))
    let url = dir.appendingPathComponent("metrics.jsonl")
    do {
      let log = try MetricsLog(url: url)
      log.append(step: 10, ["loss": 4.5, "lr": 1e-6, "bad": .nan], extra: ["phase": "warm\"up"], time: 100.5)
      log.append(step: 20, ["loss": 3], time: 101)
      log.append(step: 30, ["loss": 2], time: 102)
    }
    let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 3)
    XCTAssertEqual(String(lines[0]), #"{"step":10,"time":100.5,"bad":null,"loss":4.5,"lr":1e-06,"phase":"warm\"up"}"#)
    let o = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
    XCTAssertEqual(o["lr"] as? Double, 1e-6)
    XCTAssertTrue(o["bad"] is NSNull)
    // Resuming from step 20 drops step 30 (and a torn last line), then appends.
    let h = try FileHandle(forWritingTo: url)
    try h.seekToEnd()
    h.write(Data(#"{"step":40,"lo"#.utf8))
    try h.close()
    let log = try MetricsLog(url: url, resumeStep: 20)
    log.append(step: 21, ["loss": 2.5], time: 103)
    let steps = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
      (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["step"] as! Int
    }
    XCTAssertEqual(steps, [10, 20, 21])
  }
}
