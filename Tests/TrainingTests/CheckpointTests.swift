import Foundation
import TestSupport
import XCTest
@testable import Training
@testable import TrainingRun

final class CheckpointTests: XCTestCase {
  var run: URL!

  override func setUp() { run = URL(fileURLWithPath: temporaryDirectory(self, prefix: "ckpt", create: false)) }

  struct State: Codable, Equatable { var epoch: Int; var cursor: Int; var seed: Int; var worldSize: Int }

  func files(_ step: Int) -> [(name: String, data: Data)] {
    [("model.safetensors", Data((0..<1000).map { UInt8(($0 * 7 + step) % 251) })),
     ("optimizer.safetensors", Data((0..<3000).map { UInt8(($0 * 13 + step) % 241) }))]
  }

  func store(_ keep: Int = 3) -> (CheckpointStore, Box) {
    let s = CheckpointStore(runDirectory: run, keep: keep)
    let box = Box()
    s.warn = { box.lines.append($0) }
    return (s, box)
  }

  final class Box { var lines: [String] = [] }

  /// FIPS 180-4 / NIST example vectors.
  func testSHA256Vectors() throws {
    XCTAssertEqual(SHA256Digest.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    XCTAssertEqual(SHA256Digest.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(SHA256Digest.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    // One million 'a', hashed from a file; then a file over the 4 MiB read block
    // (5 MiB + 3 bytes) must hash as the same bytes in memory.
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    let million = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
    let p = run.appendingPathComponent("a.bin").path
    FileManager.default.createFile(atPath: p, contents: million)
    let (hex, n) = try SHA256Digest.hex(fileAt: p)
    XCTAssertEqual(n, 1_000_000)
    XCTAssertEqual(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    let big = Data((0..<(5 << 20) + 3).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) })
    FileManager.default.createFile(atPath: p, contents: big)
    XCTAssertEqual(try SHA256Digest.hex(fileAt: p).hex, SHA256Digest.hex(big))
  }

  func testSaveWritesVerifiedCheckpointAndKeepsLastK() throws {
    let (s, warnings) = store(2)
    for step in [100, 200, 300] {
      try s.save(step: step, files: files(step), state: State(epoch: step / 100, cursor: step * 16, seed: 42, worldSize: 2))
    }
    XCTAssertEqual(s.list().map(\.step), [200, 300])
    let c = try XCTUnwrap(s.latestValid())
    XCTAssertEqual(c.step, 300)
    XCTAssertEqual(c.url.lastPathComponent, "step-00000300")
    XCTAssertEqual(try c.state(State.self), State(epoch: 3, cursor: 4800, seed: 42, worldSize: 2))
    XCTAssertEqual(try Data(contentsOf: c.file("model.safetensors")), files(300)[0].data)
    let fileTable = c.trainerObject["files"] as! [String: [String: Any]]
    XCTAssertEqual(fileTable["optimizer.safetensors"]?["sha256"] as? String, SHA256Digest.hex(files(300)[1].data))
    XCTAssertEqual(fileTable["optimizer.safetensors"]?["bytes"] as? Int, 3000)
    XCTAssertTrue(warnings.lines.isEmpty)
    let left = try FileManager.default.contentsOfDirectory(atPath: s.directory.path).sorted()
    XCTAssertEqual(left, ["step-00000200", "step-00000300"])
  }

  /// RUN/checkpoints/best: verified like a step checkpoint, replaced in place, never pruned
  /// nor taken by --resume auto; an interrupted replacement is moved back.
  func testBestCheckpointStaysOutOfTheRotation() throws {
    let (s, warnings) = store(1)
    try s.save(step: 10, files: files(10), state: State(epoch: 0, cursor: 10, seed: 1, worldSize: 1))
    let best = try s.saveBest(step: 10, files: files(10), state: State(epoch: 0, cursor: 10, seed: 1, worldSize: 1))
    XCTAssertEqual(best, s.bestURL)
    XCTAssertEqual(best.lastPathComponent, "best")
    for step in [20, 30] { try s.save(step: step, files: files(step), state: State(epoch: 0, cursor: step, seed: 1, worldSize: 1)) }
    try s.saveBest(step: 30, files: files(30), state: State(epoch: 0, cursor: 30, seed: 1, worldSize: 1))
    XCTAssertEqual(s.list().map(\.step), [30], "keep 1 prunes steps, not best")
    XCTAssertEqual(s.latestValid()?.url.lastPathComponent, "step-00000030")
    let c = try CheckpointStore.verify(s.bestURL)
    XCTAssertEqual(c.step, 30)
    XCTAssertEqual(try Data(contentsOf: c.file("model.safetensors")), files(30)[0].data)
    // Altered: verification names the file.
    let model = c.file("model.safetensors")
    var bytes = try Data(contentsOf: model)
    bytes[5] ^= 1
    try bytes.write(to: model)
    XCTAssertThrowsError(try CheckpointStore.verify(s.bestURL)) { XCTAssertTrue("\($0)".contains("SHA-256 mismatch"), "\($0)") }
    // A crash between moving the old best aside and renaming the new one into place.
    try s.saveBest(step: 30, files: files(30), state: State(epoch: 0, cursor: 30, seed: 1, worldSize: 1))
    let aside = s.directory.appendingPathComponent(".old-best-12345")
    XCTAssertEqual(rename(s.bestURL.path, aside.path), 0)
    s.cleanLeftovers()
    XCTAssertEqual(try CheckpointStore.verify(s.bestURL).step, 30)
    XCTAssertFalse(FileManager.default.fileExists(atPath: aside.path))
    XCTAssertTrue(warnings.lines.isEmpty)
  }

  func testAlteredNewestFallsBackWithWarning() throws {
    let (s, warnings) = store()
    for step in [10, 20, 30] { try s.save(step: step, files: files(step), state: ["epoch": 0]) }
    // Flip one byte of the newest model file (same size).
    let p = s.directory.appendingPathComponent("step-00000030/model.safetensors").path
    var d = try Data(contentsOf: URL(fileURLWithPath: p))
    d[500] ^= 0x01
    try d.write(to: URL(fileURLWithPath: p))
    XCTAssertEqual(s.latestValid()?.step, 20)
    XCTAssertEqual(warnings.lines.count, 1)
    XCTAssertTrue(warnings.lines[0].contains("step-00000030/model.safetensors: SHA-256 mismatch"), warnings.lines[0])
    XCTAssertThrowsError(try CheckpointStore.load(path: s.directory.appendingPathComponent("step-00000030").path)) {
      XCTAssertTrue("\($0)".contains("SHA-256 mismatch"))
      XCTAssertEqual(($0 as? CheckpointError)?.kind, .corrupt(path: p))
    }
  }

  func testTruncatedAndBrokenCheckpointsAreSkipped() throws {
    let (s, warnings) = store(4)
    for step in [1, 2, 3, 4] { try s.save(step: step, files: files(step), state: ["epoch": 0]) }
    // Newest: optimizer file truncated; next: trainer.json cut in half; next: model file missing.
    let dir = s.directory
    let opt = dir.appendingPathComponent("step-00000004/optimizer.safetensors")
    try Data(try Data(contentsOf: opt).prefix(100)).write(to: opt)
    let tj = dir.appendingPathComponent("step-00000003/trainer.json")
    let j = try Data(contentsOf: tj)
    try Data(j.prefix(j.count / 2)).write(to: tj)
    try FileManager.default.removeItem(at: dir.appendingPathComponent("step-00000002/model.safetensors"))
    XCTAssertEqual(s.latestValid()?.step, 1)
    XCTAssertEqual(warnings.lines.count, 3)
    XCTAssertTrue(warnings.lines[0].contains("optimizer.safetensors: 100 bytes, expected 3000"), warnings.lines[0])
    XCTAssertTrue(warnings.lines[1].contains("trainer.json: not a JSON object"), warnings.lines[1])
    XCTAssertTrue(warnings.lines[2].contains("model.safetensors: missing"), warnings.lines[2])
    XCTAssertFalse(warnings.lines.contains { $0.contains("\n") })
  }

  /// A crash during save leaves a .tmp directory: ignored by readers, removed by the next save.
  func testLeftoverTemporaryDirectoryIsIgnoredAndCleaned() throws {
    let (s, warnings) = store()
    try s.save(step: 300, files: files(300), state: ["epoch": 1])
    let tmp = s.directory.appendingPathComponent(".tmp-step-00000400")
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    try files(400)[0].data.prefix(10).write(to: tmp.appendingPathComponent("model.safetensors"))
    XCTAssertEqual(s.latestValid()?.step, 300)
    XCTAssertTrue(warnings.lines.isEmpty)
    try s.save(step: 400, files: files(400), state: ["epoch": 1])
    XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.path))
    XCTAssertEqual(s.latestValid()?.step, 400)
  }

  func testResavingAStepReplacesItAndLoadAcceptsRunDirectory() throws {
    let (s, _) = store()
    try s.save(step: 5, files: files(5), state: ["epoch": 0])
    try s.save(step: 5, files: files(6), state: ["epoch": 9])
    let c = try CheckpointStore.load(path: run.path)
    XCTAssertEqual(c.step, 5)
    XCTAssertEqual(c.trainerObject["epoch"] as? Int, 9)
    XCTAssertEqual(try Data(contentsOf: c.file("model.safetensors")), files(6)[0].data)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: s.directory.path), ["step-00000005"])
    XCTAssertThrowsError(try CheckpointStore.load(path: run.appendingPathComponent("nope").path)) {
      XCTAssertEqual("\($0)", "\(self.run.appendingPathComponent("nope").path): no such checkpoint")
    }
    XCTAssertNil(CheckpointStore(runDirectory: run.appendingPathComponent("empty"), keep: 1).latestValid())
  }
}

extension CheckpointStore {
  /// Test helper: a JSON-object state given as a dictionary.
  @discardableResult
  func save(step: Int, files: [(name: String, data: Data)], state: [String: Int]) throws -> URL {
    try save(step: step, files: files, trainerState: state)
  }
}
