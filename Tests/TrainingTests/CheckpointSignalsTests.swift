import Foundation
import XCTest
@testable import Training
@testable import TrainingRun

/// The stop flag that makes the trainer checkpoint and exit (SIGTERM, SIGUSR1).
final class CheckpointSignalsTests: XCTestCase {
  func testSignalsSetTheStopFlag() {
    StopSignal.install()
    StopSignal.reset()
    XCTAssertNil(StopSignal.received)
    kill(getpid(), SIGUSR1)
    XCTAssertEqual(StopSignal.received, SIGUSR1)
    kill(getpid(), SIGTERM)  // the first signal wins; the process is not ended
    XCTAssertEqual(StopSignal.received, SIGUSR1)
    StopSignal.reset()
    kill(getpid(), SIGTERM)
    XCTAssertEqual(StopSignal.received, SIGTERM)
    XCTAssertEqual(StopSignal.name(SIGTERM), "SIGTERM")
    StopSignal.reset()
    XCTAssertNil(StopSignal.received)
  }
}
