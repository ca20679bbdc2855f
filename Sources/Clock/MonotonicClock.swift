#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one monotonic clock of the project (`CLOCK_MONOTONIC`): an arbitrary origin, never
/// set back and not moved by changes of the wall clock, so the difference of two readings
/// is the time between them. Every duration the code measures (step phases, kernel
/// profiles, benchmarks, the stall watchdog, loader waits) is taken from here.
public enum MonotonicClock {
  /// Nanoseconds since the clock's origin.
  @inlinable @inline(__always)
  public static func nanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
  }

  /// Seconds since the clock's origin.
  @inlinable @inline(__always)
  public static func seconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }

  /// Seconds from `start` (a reading of `seconds()`) to now.
  @inlinable @inline(__always)
  public static func seconds(since start: Double) -> Double {
    seconds() - start
  }
}
