import Foundation
import TestSupport
import XCTest
@testable import Training
@testable import TrainingRun

final class RunDirectoryTests: XCTestCase {
  var run: URL!

  override func setUp() { run = URL(fileURLWithPath: temporaryDirectory(self, prefix: "run", create: false)) }

  /// flock(2) locks belong to the open file description: a second open of RUN/lock in the same
  /// process conflicts like another process's would, and closing the first releases it.
  func testLockNamesTheHolderAndIsReleasedWithIt() throws {
    var first: RunDirectory? = RunDirectory(run)
    try first!.lock()
    let second = RunDirectory(run)
    do {
      try second.lock()
      XCTFail("second lock taken")
    } catch let e as TrainError {
      XCTAssertEqual(e.exitCode, TrainError.refusalExitCode)
      XCTAssertEqual(e.kind, .runDirectoryInUse(path: run.path))
      XCTAssertTrue(e.description.contains("in use by another job (host "), e.description)
      XCTAssertTrue(e.description.contains(" pid \(getpid()) since "), e.description)
    }
    first = nil
    XCTAssertNoThrow(try second.lock())
  }

  func testStatusKeepsTheKeysTheLaunchersRead() throws {
    let d = RunDirectory(run)
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    d.writeStatus("failed", step: 15, reason: "/x/y: write failed: No space left on device")
    let text = try String(contentsOf: d.statusURL, encoding: .utf8)
    XCTAssertTrue(text.contains("\"state\":\"failed\""), text)  // what cluster/ scripts grep for
    let o = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    XCTAssertEqual(o["step"] as? Int, 15)
    XCTAssertEqual(o["reason"] as? String, "/x/y: write failed: No space left on device")
  }

  /// The keys exact resume depends on are listed with both values; operational keys are not.
  func testResumeDifferencesListOnlyTrajectoryKeys() {
    var old = TrainConfig()
    old.train.steps = 100
    var new = old
    new.train.globalBatch = 2048
    new.train.seed = 7
    new.optim.warmupSteps = 5
    new.train.logEvery = 1
    new.checkpoint.everySteps = 3
    new.data.loaderThreads = 4
    new.eval.everySteps = 9
    new.train.stallTimeoutS = 60
    XCTAssertEqual(new.resumeDifferences(from: old),
                   ["optim.warmup_steps unset -> 5", "train.global_batch 1024 -> 2048", "train.seed 42 -> 7"])
    var data = old
    data.data.train = ["/d/a-*.tar"]
    XCTAssertEqual(data.resumeDifferences(from: old), ["data.train [] -> [\"/d/a-*.tar\"]"])
    XCTAssertEqual(old.resumeDifferences(from: old), [])
  }
}
