import Foundation

/// Reduction applied element-wise across ranks.
public enum ReduceOp: Sendable {
  case sum, max, min
}

/// A non-blocking collective in flight. The buffer it was started on must stay
/// alive and untouched until `wait()` returns.
public protocol CommRequest: AnyObject {
  /// Blocks until the operation has completed (time counted in `blockedSeconds`).
  func wait()
  /// Drives progress without blocking; true once the operation has completed.
  func test() -> Bool
}

/// Collective operations over the ranks of one training job.
///
/// Every rank must call the same collectives in the same order with the same
/// counts (MPI semantics). Buffers are flat fp32 arrays; counts are element counts.
/// With N = `size` ranks and r = `rank`:
/// - `allReduceSum`: buf[i] <- sum over ranks of buf[i]            (count elements, in place)
/// - `allGather`:    recv[q*count + i] <- send_q[i]                 (recv holds N*count)
/// - `reduceScatterSum`: recv[i] <- sum over q of send_q[r*c + i]   (send holds N*c, recv c)
/// - `broadcast`:    buf <- buf_root                                (raw bytes)
public protocol Communicator: AnyObject {
  var rank: Int { get }
  var size: Int { get }

  /// In-place sum over all ranks of `count` floats.
  func allReduceSum(_ buf: UnsafeMutablePointer<Float>, count: Int)
  /// Starts an in-place sum (MPI_Iallreduce); the result is in `buf` after `wait()`.
  func allReduceSumStart(_ buf: UnsafeMutablePointer<Float>, count: Int) -> CommRequest
  /// Gathers `count` floats from every rank into `recv` (N*count floats, rank order).
  func allGather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>)
  /// Sums N*countPerRank floats over ranks and leaves block r (countPerRank floats) on rank r.
  func reduceScatterSum(_ send: UnsafePointer<Float>, into recv: UnsafeMutablePointer<Float>, countPerRank: Int)
  /// Copies `bytes` bytes from `root`'s buffer into every rank's buffer.
  func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int)
  /// In-place element-wise reduction of `count` doubles.
  func allReduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp)
  /// Reduction of one double over all ranks.
  func allReduce(_ v: Double, op: ReduceOp) -> Double
  /// Returns once every rank has entered the barrier.
  func barrier()
  /// Ends every rank of the job with exit status `code` (MPI_Abort).
  func abort(_ code: Int32) -> Never
  /// Shuts the communicator down (MPI_Finalize). Call once, on every rank, at the
  /// normal end of the program; on an error that not all ranks see, call `abort`.
  func finalize()
  /// Seconds spent inside blocking collectives and `CommRequest.wait()` so far.
  var blockedSeconds: Double { get }
  /// A short description for logs, e.g. "MPI (Open MPI v4.1.4), 4 ranks, thread level serialized".
  var description: String { get }
  /// Stall watchdog: if this rank is still waiting in a collective `timeout` seconds from
  /// now, the job ends with one line naming `step` and the ranks that did not arrive
  /// (MPICommunicator). Call again after each step; nil or 0 turns it off.
  func armStallWatchdog(timeout: Double?, step: Int)
}

extension Communicator {
  /// One process never waits for another: nothing to watch.
  public func armStallWatchdog(timeout: Double?, step: Int) {}

  public func allReduce(_ v: Double, op: ReduceOp) -> Double {
    var x = v
    allReduce(&x, count: 1, op: op)
    return x
  }

  /// In-place reduction of an array of doubles (metrics, counters).
  public func allReduce(_ values: inout [Double], op: ReduceOp) {
    let n = values.count
    values.withUnsafeMutableBufferPointer { allReduce($0.baseAddress!, count: n, op: op) }
  }

  /// Broadcasts a plain value (a struct of numbers, e.g. the per-step control message).
  public func broadcast<T: BitwiseCopyable>(_ value: inout T, root: Int) {
    withUnsafeMutableBytes(of: &value) { broadcast($0.baseAddress!, bytes: $0.count, root: root) }
  }

  /// Broadcasts a byte string of any length from `root` (length first, then bytes).
  /// Other ranks' `data` argument is ignored; every rank returns root's bytes.
  public func broadcast(data: Data, root: Int) -> Data {
    var n = Int64(rank == root ? data.count : 0)
    broadcast(&n, root: root)
    var buf = [UInt8](repeating: 0, count: Int(n))
    if rank == root { buf = [UInt8](data) }
    if n > 0 { buf.withUnsafeMutableBytes { broadcast($0.baseAddress!, bytes: Int(n), root: root) } }
    return Data(buf)
  }

  /// True when every rank holds bit-identical `count` floats in `buf` (the
  /// coordinator's periodic replica check). Each rank hashes its buffer,
  /// h = sum_i bits(buf[i]) * (2i + 1) mod 2^52, and the hashes' max and min
  /// over ranks are compared: any single differing element changes h.
  public func replicasIdentical(_ buf: UnsafePointer<Float>, count: Int) -> Bool {
    var h: UInt64 = 0
    buf.withMemoryRebound(to: UInt32.self, capacity: count) { bits in
      for i in 0..<count { h = h &+ UInt64(bits[i]) &* UInt64(2 * i + 1) }
    }
    var v = [Double(h & ((1 << 52) - 1)), -Double(h & ((1 << 52) - 1))]
    allReduce(&v, op: .max)
    return v[0] == -v[1]
  }

  /// True when every rank passed `true` (logical AND).
  public func allTrue(_ flag: Bool) -> Bool {
    allReduce(flag ? 1 : 0, op: .min) == 1
  }
}

/// How the process was started, from its environment.
public enum Launch {
  /// True when a launcher set up an MPI job for this process: Open MPI's mpirun
  /// (OMPI_COMM_WORLD_SIZE), PMIx (PMIX_RANK, e.g. `srun --mpi=pmix`) or PMI-1/2
  /// (PMI_SIZE / PMI_RANK, e.g. MPICH's hydra or `srun --mpi=pmi2`).
  /// `CDE_COMM=mpi` or `CDE_COMM=single` overrides the detection.
  public static func isMPI(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
    switch env["CDE_COMM"]?.lowercased() {
    case "mpi": return true
    case "single": return false
    default: break
    }
    return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"].contains { env[$0] != nil }
  }
}

/// The communicator for this process: MPI when launched by an MPI launcher,
/// else a single-process one. Open MPI is initialised at most once per process,
/// so call this once and keep the result.
public func makeCommunicator(threadLevel: MPIThreadLevel = .serialized) -> Communicator {
  if Launch.isMPI() { return MPICommunicator(threadLevel: threadLevel) }
  return SingleProcessCommunicator()
}
