import CMPI
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
public final class MPICommunicator: Communicator {
  public let rank: Int
  public let size: Int
  /// The thread level MPI granted (may exceed the one requested).
  public let providedThreadLevel: MPIThreadLevel
  public private(set) var blockedSeconds: Double = 0
  public let description: String
  let comm: MPI_Comm
  private var finalized = false

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

  @inline(__always) private func timed<R>(_ body: () -> R) -> R {
    let t0 = monotonicSeconds()
    let r = body()
    blockedSeconds += monotonicSeconds() - t0
    return r
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

  public func allReduceSum(_ buf: UnsafeMutablePointer<Float>, count: Int) {
    timed {
      var done = 0
      repeat {
        let n = min(Self.chunk, count - done)
        MPI_Allreduce(cde_mpi_in_place(), buf + done, Int32(n), cde_mpi_float(), cde_mpi_sum(), comm)
        done += n
      } while done < count
    }
  }

  public func allReduceSumStart(_ buf: UnsafeMutablePointer<Float>, count: Int) -> CommRequest {
    let req = MPIRequest(owner: self)
    MPI_Iallreduce(cde_mpi_in_place(), buf, int32Count(count, "allReduceSumStart"), cde_mpi_float(),
                   cde_mpi_sum(), comm, &req.request)
    return req
  }

  public func allGather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>) {
    let c = int32Count(count, "allGather")
    _ = int32Count(count * size, "allGather (total)")
    timed { _ = MPI_Allgather(send, c, cde_mpi_float(), recv, c, cde_mpi_float(), comm) }
  }

  public func reduceScatterSum(_ send: UnsafePointer<Float>, into recv: UnsafeMutablePointer<Float>, countPerRank: Int) {
    let c = int32Count(countPerRank, "reduceScatterSum")
    _ = int32Count(countPerRank * size, "reduceScatterSum (total)")
    timed { _ = MPI_Reduce_scatter_block(send, recv, c, cde_mpi_float(), cde_mpi_sum(), comm) }
  }

  public func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int) {
    precondition(root >= 0 && root < size, "broadcast root \(root) out of range for \(size) ranks")
    timed {
      var done = 0
      repeat {
        let n = min(Self.chunk, bytes - done)
        MPI_Bcast(buf + done, Int32(n), cde_mpi_byte(), Int32(root), comm)
        done += n
      } while done < bytes
    }
  }

  public func allReduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp) {
    let c = int32Count(count, "allReduce")
    timed { _ = MPI_Allreduce(cde_mpi_in_place(), buf, c, cde_mpi_double(), mpiOp(op), comm) }
  }

  public func barrier() {
    timed { _ = MPI_Barrier(comm) }
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
    if done == 0 { MPI_Finalize() }
  }

  fileprivate func addBlocked(_ s: Double) { blockedSeconds += s }
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
    let t0 = monotonicSeconds()
    MPI_Wait(&request, cde_mpi_status_ignore())
    owner.addBlocked(monotonicSeconds() - t0)
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
