#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time, not wall time: it advances only while the thread (or process) runs, so time
/// spent preempted on a shared machine does not count. For durations of elapsed time use
/// `MonotonicClock`.
public enum CPUClock {
  /// CPU time of the calling thread in seconds (`CLOCK_THREAD_CPUTIME_ID`).
  public static func threadSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }

  /// User plus system CPU time of this process, all threads, in seconds (`getrusage`).
  public static func processSeconds() -> Double {
    var u = rusage()
    #if canImport(Glibc)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    #else
    getrusage(RUSAGE_SELF, &u)
    #endif
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6 + Double(u.ru_stime.tv_sec)
      + Double(u.ru_stime.tv_usec) * 1e-6
  }
}
