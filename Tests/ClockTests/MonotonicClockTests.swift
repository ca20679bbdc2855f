import Clock
import Foundation
import XCTest

final class MonotonicClockTests: XCTestCase {
  /// Successive readings never go back, in seconds or in nanoseconds.
  func testReadingsNeverDecrease() {
    var s = MonotonicClock.seconds(), n = MonotonicClock.nanoseconds()
    for _ in 0..<10_000 {
      let s1 = MonotonicClock.seconds(), n1 = MonotonicClock.nanoseconds()
      XCTAssertGreaterThanOrEqual(s1, s)
      XCTAssertGreaterThanOrEqual(n1, n)
      s = s1; n = n1
    }
  }

  /// A 50 ms sleep advances the clock by about that much (loose bounds: a loaded machine).
  func testSecondsAdvanceAcrossASleep() {
    let t0 = MonotonicClock.seconds(), n0 = MonotonicClock.nanoseconds()
    usleep(50_000)
    let dt = MonotonicClock.seconds(since: t0)
    let dn = Double(MonotonicClock.nanoseconds() - n0) / 1e9
    XCTAssertGreaterThan(dt, 0.04)
    XCTAssertLessThan(dt, 5)
    XCTAssertGreaterThan(dn, 0.04)
    XCTAssertLessThan(dn, 5)
  }

  /// Both forms read the same clock: seconds() and nanoseconds() agree to well under a second.
  func testSecondsAndNanosecondsAgree() {
    let s = MonotonicClock.seconds(), n = Double(MonotonicClock.nanoseconds()) / 1e9
    XCTAssertLessThan(abs(n - s), 0.5)
  }

  /// CPU time does not run while the thread sleeps, and grows while it works.
  func testCPUClocksCountWorkNotSleep() {
    let t0 = CPUClock.threadSeconds()
    usleep(100_000)
    XCTAssertLessThan(CPUClock.threadSeconds() - t0, 0.05)
    let p0 = CPUClock.processSeconds(), t1 = CPUClock.threadSeconds()
    var x = 0.0
    let end = MonotonicClock.seconds() + 0.2
    while MonotonicClock.seconds() < end { x += sin(x) + 1 }
    XCTAssertGreaterThan(x, 0)
    XCTAssertGreaterThan(CPUClock.threadSeconds(), t1)
    XCTAssertGreaterThan(CPUClock.processSeconds(), p0)
  }
}
