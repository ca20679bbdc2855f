import Foundation
import XCTest
import Training

/// `LRSchedule` against its closed form, computed here:
/// `lr(s) = w0 + (base - w0) s / W` for `s < W`, then
/// `lr(s) = min + (base - min) (1 + cos(pi min((s - W) / (T - W), 1))) / 2`.
final class LRScheduleTests: XCTestCase {
  let base = 1e-3, w0 = 1e-6, minLR = 1e-5
  let warmup = 10, total = 110
  var schedule: LRSchedule { LRSchedule(base: base, warmupSteps: warmup, totalSteps: total, warmupInit: w0, minLR: minLR) }

  func assertNear(_ a: Double, _ b: Double, _ what: String, line: UInt = #line) {
    XCTAssertEqual(a, b, accuracy: 1e-15, what, line: line)
  }

  /// Linear warmup from `warmupInit` at step 0 towards `base` at step W.
  func testWarmupIsLinear() {
    assertNear(schedule.lr(step: 0), w0, "step 0")
    assertNear(schedule.lr(step: 5), w0 + (base - w0) * 0.5, "half-way through warmup")
    assertNear(schedule.lr(step: 9), w0 + (base - w0) * 0.9, "last warmup step")
    for s in 1..<warmup { XCTAssertGreaterThan(schedule.lr(step: s), schedule.lr(step: s - 1), "step \(s)") }
  }

  /// The cosine starts at `base` where warmup ends and passes the closed-form points
  /// (quarter: (1 + sqrt(2)/2) / 2, half: 1/2, three quarters: (1 - sqrt(2)/2) / 2 of the span).
  func testCosine() {
    let span = base - minLR, r = 2.0.squareRoot() / 2
    assertNear(schedule.lr(step: warmup), base, "end of warmup")
    assertNear(schedule.lr(step: warmup + 25), minLR + span * (1 + r) / 2, "quarter")
    assertNear(schedule.lr(step: warmup + 50), minLR + span / 2, "half")
    assertNear(schedule.lr(step: warmup + 75), minLR + span * (1 - r) / 2, "three quarters")
    for s in (warmup + 1)...total { XCTAssertLessThan(schedule.lr(step: s), schedule.lr(step: s - 1), "step \(s)") }
  }

  /// `minLR` at `totalSteps` and at every step past the end.
  func testMinLRAtAndPastTheEnd() {
    assertNear(schedule.lr(step: total), minLR, "last step")
    for s in [total + 1, total + 7, 10 * total] { XCTAssertEqual(schedule.lr(step: s), minLR, "step \(s)") }
    let zeroMin = LRSchedule(base: base, warmupSteps: warmup, totalSteps: total, warmupInit: w0, minLR: 0)
    XCTAssertEqual(zeroMin.lr(step: total), 0)
    XCTAssertEqual(zeroMin.lr(step: total + 3), 0)
  }

  /// Without warmup the schedule starts at `base`; with W = T (no cosine span) it stays at `base` after warmup.
  func testDegenerateSpans() {
    let noWarmup = LRSchedule(base: base, warmupSteps: 0, totalSteps: 100, warmupInit: w0, minLR: minLR)
    assertNear(noWarmup.lr(step: 0), base, "no warmup, step 0")
    assertNear(noWarmup.lr(step: 50), minLR + (base - minLR) / 2, "no warmup, half")
    let allWarmup = LRSchedule(base: base, warmupSteps: 20, totalSteps: 20, warmupInit: w0, minLR: minLR)
    assertNear(allWarmup.lr(step: 10), w0 + (base - w0) * 0.5, "warmup only, step 10")
    assertNear(allWarmup.lr(step: 20), base, "warmup only, step W: progress 0 of a span of 1")
    assertNear(allWarmup.lr(step: 21), minLR, "warmup only, one step past: progress 1")
  }
}
