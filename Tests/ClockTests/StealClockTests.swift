import Clock
import Foundation
import XCTest

final class StealClockTests: XCTestCase {
  /// The eighth number of a `cpu` line is steal (proc(5)); other lines and short ones give nil.
  func testStealIsTheEighthNumberOfACPULine() {
    XCTAssertEqual(StealClock.stealTicks(line: "cpu  3469253 126008 350629 4034080 14640 0 5131 54812 0 0\n"), 54812)
    XCTAssertEqual(StealClock.stealTicks(line: "cpu1 1873476 38788 193704 1879786 11771 0 3387 27708 0 0"), 27708)
    XCTAssertEqual(StealClock.stealTicks(line: "cpu 1 2 3 4 5 6 7 8"), 8)  // without the guest columns
    XCTAssertNil(StealClock.stealTicks(line: "cpu 1 2 3 4 5 6 7"))  // before steal was counted
    XCTAssertNil(StealClock.stealTicks(line: "intr 1 2 3 4 5 6 7 8 9"))
    XCTAssertNil(StealClock.stealTicks(line: ""))
  }

  /// On Linux the reading exists, never decreases, and is the sum of the per-CPU lines' steal
  /// (read here with Foundation, line by line) to within a few ticks of time passing.
  func testReadingIsTheSumOverCPUs() throws {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { throw XCTSkip("no /proc/stat") }
    let perCPU = text.split(separator: "\n").filter { $0.hasPrefix("cpu") && !$0.hasPrefix("cpu ") }
    let ticks = perCPU.compactMap { $0.split(separator: " ").dropFirst(8).first.flatMap { UInt64($0) } }
    guard ticks.count == perCPU.count, !ticks.isEmpty else { throw XCTSkip("/proc/stat has no steal column") }
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    let a = try XCTUnwrap(StealClock.seconds())
    let b = try XCTUnwrap(StealClock.seconds())
    XCTAssertGreaterThanOrEqual(b, a)
    XCTAssertEqual(a, Double(ticks.reduce(0, +)) / hz, accuracy: Double(4 * perCPU.count) / hz)
    XCTAssertEqual(StealClock.cpus, perCPU.count)
  }

  /// Over a span, the share is steal ticks over wall time and CPUs: at most 1 (plus a tick per CPU
  /// of rounding), and nil exactly where the counter is missing.
  func testShareOfASpan() throws {
    let m = StealClock.mark()
    usleep(200_000)
    guard let s = StealClock.share(since: m) else {
      XCTAssertNil(m.steal)
      throw XCTSkip("no steal counter")
    }
    let tick = 1 / Double(sysconf(Int32(_SC_CLK_TCK)))
    XCTAssertGreaterThanOrEqual(s, 0)
    XCTAssertLessThanOrEqual(s, 1 + tick / 0.2)
  }
}
