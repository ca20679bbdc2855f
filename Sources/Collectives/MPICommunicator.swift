import CMPI
import Clock
import Foundation

/// The thread support requested from MPI_Init_thread.
/// - funneled: only the thread that initialised MPI calls it.
/// - serialized: any thread may call MPI, never two at once (the trainer's case:
///   a background thread may drive `test()`/`wait()` while the main thread computes).
public enum MPIThreadLevel: Int, Comparable, Sendable, CustomStringConvertible {
  case single = 0, funneled, serialized, multiple

  var mpiValue: Int32 {
    switch self {
    case .single: return cde_mpi_thread_single()
    case .funneled: return cde_mpi_thread_funneled()
    case .serialized: return cde_mpi_thread_serialized()
    case .multiple: return cde_mpi_thread_multiple()
    }
  }

  init(mpiValue v: Int32) {
    if v == cde_mpi_thread_multiple() { self = .multiple }
    else if v == cde_mpi_thread_serialized() { self = .serialized }
    else if v == cde_mpi_thread_funneled() { self = .funneled }
    else { self = .single }
  }

  public static func < (a: MPIThreadLevel, b: MPIThreadLevel) -> Bool { a.rawValue < b.rawValue }

  public var description: String {
    switch self {
    case .single: return "single"
    case .funneled: return "funneled"
    case .serialized: return "serialized"
    case .multiple: return "multiple"
    }
  }
}

/// Collectives over MPI_COMM_WORLD (Open MPI). MPI is initialised in `init`
/// (at most once per process) and shut down by `finalize()`.
///
/// Waiting. Every collective is started non-blocking (MPI_Iallreduce, MPI_Ibcast, ...)
/// and completed by `complete`: MPI_Test in a loop, for 50 us at full speed, then
/// with sleeps growing from 10 us to 250 us between tests, so that a rank waiting
/// for a slower one uses next to no CPU (Open MPI's blocking calls spin at 100 %).
/// `CDE_MPI_WAIT=spin` restores the blocking calls (no stall watchdog then).
///
/// Stall watchdog (`armStallWatchdog`). While a rank waits past its deadline it asks
/// every other rank, on a duplicate of the communicator, which collective it is in
/// (a rank answers only from inside `complete`); after a grace period the ranks
/// that did not answer are those that never arrived (stopped, hung in I/O, in an
/// endless computation). The lowest rank that arrived prints one line naming the
/// step and the missing ranks, and ends the job (MPI_Abort).
public final class MPICommunicator: Communicator {
  public let rank: Int
  public let size: Int
  /// The thread level MPI granted (may exceed the one requested).
  public let providedThreadLevel: MPIThreadLevel
  public private(set) var blockedSeconds: Double = 0
  public let description: String
  let comm: MPI_Comm
  /// Duplicate of `comm` for the watchdog's questions and answers (never matches training traffic).
  var side: MPI_Comm? = cde_mpi_comm_null()
  private var finalized = false
  /// Blocking MPI calls instead of test-and-sleep (`CDE_MPI_WAIT=spin`).
  let spinWait: Bool
  /// Collectives started so far (the same sequence on every rank).
  private(set) var sequence: Int64 = 0
  /// Stall watchdog: monotonic deadline, its timeout and the step it guards (nil: off).
  private var stallDeadline: Double? = nil
  private var stallTimeout: Double = 0
  private var stallStep = 0
  /// Seconds a stalled rank waits for the other ranks' answers.
  static let censusGrace = 3.0
  static let tagQuestion: Int32 = 1, tagAnswer: Int32 = 2

  /// Largest element count passed to one MPI call (MPI counts are 32-bit).
  static let chunk = 1 << 30

  public init(threadLevel: MPIThreadLevel = .serialized) {
    var initialised: Int32 = 0
    MPI_Initialized(&initialised)
    var provided: Int32 = 0
    if initialised == 0 {
      MPI_Init_thread(nil, nil, threadLevel.mpiValue, &provided)
    } else {
      MPI_Query_thread(&provided)
    }
    comm = cde_mpi_comm_world()
    var r: Int32 = 0, n: Int32 = 0
    MPI_Comm_rank(comm, &r)
    MPI_Comm_size(comm, &n)
    rank = Int(r)
    size = Int(n)
    MPI_Comm_dup(comm, &side)
    spinWait = ProcessInfo.processInfo.environment["CDE_MPI_WAIT"]?.lowercased() == "spin"
    providedThreadLevel = MPIThreadLevel(mpiValue: provided)
    if providedThreadLevel < threadLevel && r == 0 {
      FileHandle.standardError.write(Data(
        "warning: MPI granted thread level \(providedThreadLevel), requested \(threadLevel); call MPI from one thread only\n".utf8))
    }
    var version = [CChar](repeating: 0, count: 8192)
    var len: Int32 = 0
    MPI_Get_library_version(&version, &len)
    let lib = String(cString: version).split(separator: "\n").first.map {
      $0.split(separator: ",").first.map(String.init) ?? String($0)
    } ?? "MPI"
    description = "MPI (\(lib)), \(n) ranks, thread level \(providedThreadLevel)"
  }

  private func mpiOp(_ op: ReduceOp) -> MPI_Op {
    switch op {
    case .sum: return cde_mpi_sum()
    case .max: return cde_mpi_max()
    case .min: return cde_mpi_min()
    }
  }

  private func int32Count(_ n: Int, _ what: String) -> Int32 {
    precondition(n >= 0 && n <= Int(Int32.max), "\(what): count \(n) exceeds MPI's 32-bit limit")
    return Int32(n)
  }

  /// Runs one collective: `blocking` under CDE_MPI_WAIT=spin, else `start` (the
  /// non-blocking form) completed by `complete`; the time is counted as blocked.
  @inline(__always) private func collective(_ blocking: () -> Void, _ start: (inout MPI_Request?) -> Void) {
    let t0 = MonotonicClock.seconds()
    sequence += 1
    if spinWait {
      blocking()
    } else {
      var req: MPI_Request? = cde_mpi_request_null()
      start(&req)
      complete(&req)
    }
    blockedSeconds += MonotonicClock.seconds(since: t0)
  }

  public func allReduceSum(_ buf: UnsafeMutablePointer<Float>, count: Int) {
    var done = 0
    repeat {
      let n = Int32(min(Self.chunk, count - done)), p = buf + done
      collective({ _ = MPI_Allreduce(cde_mpi_in_place(), p, n, cde_mpi_float(), cde_mpi_sum(), comm) },
                 { _ = MPI_Iallreduce(cde_mpi_in_place(), p, n, cde_mpi_float(), cde_mpi_sum(), comm, &$0) })
      done += Int(n)
    } while done < count
  }

  public func allReduceSumStart(_ buf: UnsafeMutablePointer<Float>, count: Int) -> CommRequest {
    let req = MPIRequest(owner: self)
    sequence += 1
    MPI_Iallreduce(cde_mpi_in_place(), buf, int32Count(count, "allReduceSumStart"), cde_mpi_float(),
                   cde_mpi_sum(), comm, &req.request)
    return req
  }

  public func allGather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>) {
    let c = int32Count(count, "allGather")
    _ = int32Count(count * size, "allGather (total)")
    collective({ _ = MPI_Allgather(send, c, cde_mpi_float(), recv, c, cde_mpi_float(), comm) },
               { _ = MPI_Iallgather(send, c, cde_mpi_float(), recv, c, cde_mpi_float(), comm, &$0) })
  }

  public func reduceScatterSum(_ send: UnsafePointer<Float>, into recv: UnsafeMutablePointer<Float>, countPerRank: Int) {
    let c = int32Count(countPerRank, "reduceScatterSum")
    _ = int32Count(countPerRank * size, "reduceScatterSum (total)")
    collective({ _ = MPI_Reduce_scatter_block(send, recv, c, cde_mpi_float(), cde_mpi_sum(), comm) },
               { _ = MPI_Ireduce_scatter_block(send, recv, c, cde_mpi_float(), cde_mpi_sum(), comm, &$0) })
  }

  public func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int) {
    precondition(root >= 0 && root < size, "broadcast root \(root) out of range for \(size) ranks")
    var done = 0
    repeat {
      let n = Int32(min(Self.chunk, bytes - done)), p = buf + done
      collective({ _ = MPI_Bcast(p, n, cde_mpi_byte(), Int32(root), comm) },
                 { _ = MPI_Ibcast(p, n, cde_mpi_byte(), Int32(root), comm, &$0) })
      done += Int(n)
    } while done < bytes
  }

  public func allReduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp) {
    let c = int32Count(count, "allReduce"), o = mpiOp(op)
    collective({ _ = MPI_Allreduce(cde_mpi_in_place(), buf, c, cde_mpi_double(), o, comm) },
               { _ = MPI_Iallreduce(cde_mpi_in_place(), buf, c, cde_mpi_double(), o, comm, &$0) })
  }

  public func barrier() {
    collective({ _ = MPI_Barrier(comm) }, { _ = MPI_Ibarrier(comm, &$0) })
  }

  public func abort(_ code: Int32) -> Never {
    fflush(stdout)
    fflush(stderr)
    MPI_Abort(comm, code)
    exit(code)
  }

  public func finalize() {
    guard !finalized else { return }
    finalized = true
    var done: Int32 = 0
    MPI_Finalized(&done)
    if done == 0 {
      if side != cde_mpi_comm_null() { MPI_Comm_free(&side) }
      MPI_Finalize()
    }
  }

  fileprivate func addBlocked(_ s: Double) { blockedSeconds += s }

  // MARK: Waiting and the stall watchdog

  public func armStallWatchdog(timeout: Double?, step: Int) {
    guard let timeout, timeout > 0 else { stallDeadline = nil; return }
    stallTimeout = timeout
    stallStep = step
    stallDeadline = MonotonicClock.seconds() + timeout
  }

  /// Completes `req`: MPI_Test at full speed for 50 us, then with sleeps of 10 us
  /// doubling up to 250 us in between; answers the watchdog's questions while it
  /// waits and runs the stall procedure once the deadline has passed.
  func complete(_ req: inout MPI_Request?) {
    var flag: Int32 = 0
    MPI_Test(&req, &flag, cde_mpi_status_ignore())
    if flag != 0 { return }
    if spinWait { MPI_Wait(&req, cde_mpi_status_ignore()); return }
    let t0 = MonotonicClock.seconds()
    var pause = timespec(tv_sec: 0, tv_nsec: 10_000)
    while true {
      MPI_Test(&req, &flag, cde_mpi_status_ignore())
      if flag != 0 { return }
      let t = MonotonicClock.seconds()
      if t - t0 < 50e-6 { continue }
      answerQuestions()
      if let d = stallDeadline, t > d { stalled(waitingSince: t0); pause.tv_nsec = 10_000 }
      nanosleep(&pause, nil)
      pause.tv_nsec = min(pause.tv_nsec * 2, 250_000)
    }
  }

  /// Answers every pending "which collective are you in?" with `sequence`.
  private func answerQuestions() {
    var flag: Int32 = 0
    var status = MPI_Status()
    while true {
      MPI_Iprobe(cde_mpi_any_source(), Self.tagQuestion, side, &flag, &status)
      guard flag != 0 else { return }
      let source = cde_mpi_status_source(&status)
      var question: Int64 = 0, answer = sequence
      MPI_Recv(&question, 1, cde_mpi_int64(), source, Self.tagQuestion, side, &status)
      MPI_Send(&answer, 1, cde_mpi_int64(), source, Self.tagAnswer, side)
    }
  }

  /// No step completed before the deadline while this rank waited in a collective:
  /// find the ranks that are not waiting too, report them on one line and end the job.
  /// When every rank answers from this same collective, it is only slow: the deadline
  /// is renewed and the wait goes on.
  private func stalled(waitingSince t0: Double) {
    let n = size
    let answers = UnsafeMutablePointer<Int64>.allocate(capacity: n)
    answers.initialize(repeating: -1, count: n)
    var question = sequence
    var receives = [MPI_Request?](repeating: cde_mpi_request_null(), count: n)
    for q in 0..<n where q != rank {
      MPI_Send(&question, 1, cde_mpi_int64(), Int32(q), Self.tagQuestion, side)
      MPI_Irecv(answers + q, 1, cde_mpi_int64(), Int32(q), Self.tagAnswer, side, &receives[q])
    }
    answers[rank] = sequence
    var answered = Set([rank])
    let end = MonotonicClock.seconds() + Self.censusGrace
    var pause = timespec(tv_sec: 0, tv_nsec: 10_000_000)
    while answered.count < n && MonotonicClock.seconds() < end {
      for q in 0..<n where !answered.contains(q) {
        var flag: Int32 = 0
        MPI_Test(&receives[q], &flag, cde_mpi_status_ignore())
        if flag != 0 { answered.insert(q) }
      }
      answerQuestions()
      nanosleep(&pause, nil)
    }
    let missing = (0..<n).filter { !answered.contains($0) }
    let behind = answered.sorted().filter { answers[$0] < sequence }
    if missing.isEmpty && behind.isEmpty {
      // Every rank is in this collective: it is slow, not stalled. Wait on, with a new deadline.
      answers.deallocate()
      stallDeadline = MonotonicClock.seconds() + stallTimeout
      return
    }
    func ranks(_ r: [Int]) -> String { (r.count == 1 ? "rank " : "ranks ") + r.map(String.init).joined(separator: ", ") }
    var line = String(format: "error: stall: no step completed in %.0f s (train.stall_timeout_s); at step %d ", stallTimeout, stallStep)
    if !missing.isEmpty { line += ranks(missing) + " did not arrive" }
    if !behind.isEmpty { line += (missing.isEmpty ? "" : "; ") + ranks(behind) + " waiting in an earlier collective" }
    line += String(format: " (rank %d waited %.0f s in collective %lld); ending the job", rank, MonotonicClock.seconds(since: t0), sequence)
    // One line per job: the lowest rank that arrived reports; another reports only if the job is still alive later.
    if answered.min() != rank {
      let late = MonotonicClock.seconds() + 2 * Self.censusGrace
      while MonotonicClock.seconds() < late { answerQuestions(); nanosleep(&pause, nil) }
    }
    FileHandle.standardError.write(Data((line + "\n").utf8))
    abort(1)
  }
}

/// An MPI_Request. Open MPI progresses non-blocking collectives only inside MPI
/// calls, so call `test()` now and then (e.g. between layers of the backward pass)
/// to overlap communication with computation.
final class MPIRequest: CommRequest {
  var request: MPI_Request? = cde_mpi_request_null()
  private var completed = false
  private unowned let owner: MPICommunicator

  init(owner: MPICommunicator) { self.owner = owner }

  func wait() {
    guard !completed else { return }
    let t0 = MonotonicClock.seconds()
    owner.complete(&request)
    owner.addBlocked(MonotonicClock.seconds(since: t0))
    completed = true
  }

  func test() -> Bool {
    guard !completed else { return true }
    var flag: Int32 = 0
    MPI_Test(&request, &flag, cde_mpi_status_ignore())
    if flag != 0 { completed = true }
    return completed
  }

  deinit {
    // A request must not be abandoned: complete it rather than leak MPI state.
    if !completed { MPI_Wait(&request, cde_mpi_status_ignore()) }
  }
}
