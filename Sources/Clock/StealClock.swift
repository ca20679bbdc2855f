#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Steal time: how long the hypervisor held this machine's virtual CPUs while they had work,
/// running another guest on the host's cores. On a shared host it is the part of the cores
/// this machine asked for and did not get; `cde bench` reports its share of the timed steps
/// so that a slow reading can be told from a slow program.
///
/// Linux counts it per CPU in the `steal` column of `/proc/stat` (proc(5): the eighth number
/// of a `cpu` line, in clock ticks of `sysconf(_SC_CLK_TCK)`, since boot).
public enum StealClock {
  /// Seconds of steal time since boot, summed over all CPUs (the `cpu` line of /proc/stat);
  /// nil where there is no such counter (not Linux, or a kernel without the column).
  public static func seconds() -> Double? {
    guard let f = fopen("/proc/stat", "r") else { return nil }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 512)
    guard fgets(&line, Int32(line.count), f) != nil else { return nil }
    let hz = sysconf(Int32(_SC_CLK_TCK))
    guard hz > 0, let ticks = stealTicks(line: String(cString: line)) else { return nil }
    return Double(ticks) / Double(hz)
  }

  /// The CPUs the `cpu` line sums over (the online ones).
  public static var cpus: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

  /// The wall clock (`MonotonicClock`) and the steal counter read together: the start of a span
  /// whose steal share `share(since:)` gives.
  public struct Mark: Sendable {
    public let wall: Double
    public let steal: Double?
  }

  /// A mark for now.
  public static func mark() -> Mark { Mark(wall: MonotonicClock.seconds(), steal: seconds()) }

  /// The share of the machine's CPU time the host took since `mark`: steal seconds over
  /// (wall seconds x `cpus`), in [0, 1] up to the counters' tick; nil without the counter.
  public static func share(since mark: Mark) -> Double? {
    guard let s0 = mark.steal, let s1 = seconds() else { return nil }
    return max(0, s1 - s0) / (max(MonotonicClock.seconds(since: mark.wall), 1e-9) * Double(cpus))
  }

  /// The steal ticks of one `cpu` line of /proc/stat (`cpu user nice system idle iowait irq
  /// softirq steal ...`): the eighth number after the label; nil for another line or one
  /// with fewer numbers (kernels before 2.6.11).
  public static func stealTicks(line: String) -> UInt64? {
    let fields = line.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
    guard let label = fields.first, label.hasPrefix("cpu"), fields.count >= 9 else { return nil }
    return UInt64(fields[8])
  }
}
