import ArgumentParser
import Collectives
import Foundation

/// Hidden self-checks run by scripts/test-mpi.sh under `mpirun -np N`.
struct SelfTest: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "selftest",
    abstract: "Internal self-checks (run under mpirun by scripts/test-mpi.sh).",
    shouldDisplay: false,
    subcommands: [SelfTestCollectives.self])
}

/// Checks every collective against closed-form values. With N ranks, rank r and
/// element i (values are small integers, so fp32 sums are exact):
/// - allReduceSum of (r+1)(i+1)                    = N(N+1)/2 (i+1)
/// - allReduceSumStart of (r+1)(i%7+1)             = N(N+1)/2 (i%7+1)
/// - allGather of 1000r + i                        -> recv[q c + i] = 1000q + i
/// - reduceScatterSum of (r+1)(j+1), j < N c       -> recv[i] on r = N(N+1)/2 (r c + i + 1)
/// - broadcast of bytes (31k + 7 root) mod 256 from root N-1
/// - allReduce(double) of r: sum N(N-1)/2, max N-1, min 0; of an array too
/// - broadcast(data:) of a string from root 0, allTrue
/// - replicasIdentical: true for equal buffers, false when one rank's element is one ulp off
/// `--corrupt` perturbs one input on rank 0 (the checks must report a failure).
/// `--abort-rank K` makes rank K call abort(3) after the checks (the script expects exit != 0).
struct SelfTestCollectives: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "collectives", abstract: "Check every collective against closed-form values.")

  @Option(help: "Rank that calls abort(3) after the checks (tests abort).")
  var abortRank: Int?

  @Flag(help: "Perturb rank 0's first all-reduce input (the checks must then fail).")
  var corrupt = false

  /// Counts checks and failures of this rank; the first 20 failures go to stderr.
  final class Checker {
    let rank: Int
    var checks = 0, failures = 0
    init(rank: Int) { self.rank = rank }
    func check(_ ok: Bool, _ what: @autoclosure () -> String) {
      checks += 1
      if !ok {
        failures += 1
        if failures <= 20 { FileHandle.standardError.write(Data("rank \(rank): FAIL \(what())\n".utf8)) }
      }
    }
  }

  func run() throws {
    let comm = makeCommunicator()
    let checker = Checker(rank: comm.rank)
    checkAllReduce(comm, checker)
    checkGatherScatter(comm, checker)
    checkBroadcasts(comm, checker)
    checkReductions(comm, checker)
    checkReplicas(comm, checker)
    try finish(comm, checker)
  }

  /// Blocking and non-blocking all-reduce of counts 0 ... 2^20 + 3 against n(n+1)/2 times the input pattern.
  func checkAllReduce(_ comm: Communicator, _ checker: Checker) {
    let r = comm.rank, n = comm.size
    let tri = Float(n * (n + 1) / 2)
    for count in [0, 1, 7, 1000, (1 << 20) + 3] {
      // Blocking all-reduce.
      var a = [Float](repeating: 0, count: count)
      for i in 0..<count { a[i] = Float(r + 1) * Float(i % 4096 + 1) }
      if corrupt && r == 0 && count > 0 { a[0] += 1 }
      a.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: count) }
      var bad = 0
      for i in 0..<count where a[i] != tri * Float(i % 4096 + 1) { bad += 1 }
      checker.check(bad == 0, "allReduceSum count \(count): \(bad) wrong elements")

      // Non-blocking all-reduce, driven by test() then wait().
      var b = [Float](repeating: 0, count: count)
      for i in 0..<count { b[i] = Float(r + 1) * Float(i % 7 + 1) }
      b.withUnsafeMutableBufferPointer { p in
        let req = comm.allReduceSumStart(p.baseAddress!, count: count)
        _ = req.test()
        req.wait()
        checker.check(req.test(), "allReduceSumStart count \(count): test() false after wait()")
      }
      bad = 0
      for i in 0..<count where b[i] != tri * Float(i % 7 + 1) { bad += 1 }
      checker.check(bad == 0, "allReduceSumStart count \(count): \(bad) wrong elements")
    }

  }

  /// All-gather and reduce-scatter of 1, 5 and 4099 elements per rank.
  func checkGatherScatter(_ comm: Communicator, _ checker: Checker) {
    let r = comm.rank, n = comm.size
    let tri = Float(n * (n + 1) / 2)
    for c in [1, 5, 4099] {
      // All-gather.
      let send = (0..<c).map { Float(1000 * r + $0) }
      var recv = [Float](repeating: -1, count: n * c)
      send.withUnsafeBufferPointer { s in
        recv.withUnsafeMutableBufferPointer { comm.allGather(s.baseAddress!, count: c, into: $0.baseAddress!) }
      }
      var bad = 0
      for q in 0..<n { for i in 0..<c where recv[q * c + i] != Float(1000 * q + i) { bad += 1 } }
      checker.check(bad == 0, "allGather count \(c): \(bad) wrong elements")

      // Reduce-scatter.
      let rs = (0..<(n * c)).map { Float(r + 1) * Float($0 + 1) }
      var out = [Float](repeating: -1, count: c)
      rs.withUnsafeBufferPointer { s in
        out.withUnsafeMutableBufferPointer { comm.reduceScatterSum(s.baseAddress!, into: $0.baseAddress!, countPerRank: c) }
      }
      bad = 0
      for i in 0..<c where out[i] != tri * Float(r * c + i + 1) { bad += 1 }
      checker.check(bad == 0, "reduceScatterSum count \(c): \(bad) wrong elements")
    }

  }

  /// Broadcast of raw bytes, of a plain struct and of variable-length data.
  func checkBroadcasts(_ comm: Communicator, _ checker: Checker) {
    let r = comm.rank, n = comm.size
    // Broadcast of raw bytes from the last rank.
    let root = n - 1
    var bytes = [UInt8](repeating: 0, count: 1027)
    if r == root { for k in 0..<bytes.count { bytes[k] = UInt8((31 * k + 7 * root) % 256) } }
    bytes.withUnsafeMutableBytes { comm.broadcast($0.baseAddress!, bytes: $0.count, root: root) }
    checker.check((0..<bytes.count).allSatisfy { bytes[$0] == UInt8((31 * $0 + 7 * root) % 256) }, "broadcast bytes from root \(root)")

    // Broadcast of a plain struct and of variable-length data.
    struct Control: BitwiseCopyable { var lr: Double; var step: Int64; var stop: UInt8 }
    var ctl = r == 0 ? Control(lr: 0.002, step: 12345, stop: 1) : Control(lr: 0, step: 0, stop: 0)
    comm.broadcast(&ctl, root: 0)
    checker.check(ctl.lr == 0.002 && ctl.step == 12345 && ctl.stop == 1, "broadcast struct")
    let text = comm.broadcast(data: Data((r == 0 ? "config from rank 0" : "other").utf8), root: 0)
    checker.check(String(decoding: text, as: UTF8.self) == "config from rank 0", "broadcast(data:)")

  }

  /// Scalar and array reductions (sum, max, min) and allTrue.
  func checkReductions(_ comm: Communicator, _ checker: Checker) {
    let r = comm.rank, n = comm.size
    // Scalar reductions.
    checker.check(comm.allReduce(Double(r), op: .sum) == Double(n * (n - 1) / 2), "allReduce sum")
    checker.check(comm.allReduce(Double(r), op: .max) == Double(n - 1), "allReduce max")
    checker.check(comm.allReduce(Double(r), op: .min) == 0, "allReduce min")
    var arr = [Double(r), -Double(r), 0.5]
    comm.allReduce(&arr, op: .sum)
    checker.check(arr == [Double(n * (n - 1) / 2), -Double(n * (n - 1) / 2), 0.5 * Double(n)], "allReduce array sum")
    checker.check(comm.allTrue(true), "allTrue(true)")
    checker.check(!comm.allTrue(r != n - 1), "allTrue(false on one rank)")

  }

  /// replicasIdentical on equal and on one-ulp-different replicas; blockedSeconds.
  func checkReplicas(_ comm: Communicator, _ checker: Checker) {
    let r = comm.rank, n = comm.size
    var params = (0..<10_001).map { Float($0) * 0.001 - 3 }
    checker.check(params.withUnsafeBufferPointer { comm.replicasIdentical($0.baseAddress!, count: $0.count) }, "replicasIdentical(same)")
    if r == n - 1 { params[7777] = params[7777].nextUp }
    let same = params.withUnsafeBufferPointer { comm.replicasIdentical($0.baseAddress!, count: $0.count) }
    checker.check(same == (n == 1), "replicasIdentical(one ulp off on rank \(n - 1))")

    comm.barrier()
    checker.check(comm.blockedSeconds >= 0, "blockedSeconds non-negative")

  }

  /// Sums the failures over ranks, aborts on `--abort-rank`, prints rank 0's summary line.
  func finish(_ comm: Communicator, _ checker: Checker) throws {
    let r = comm.rank
    let totalFailures = comm.allReduce(Double(checker.failures), op: .sum)
    if let k = abortRank, k == r {
      FileHandle.standardError.write(Data("rank \(r): calling abort(3) as asked\n".utf8))
      comm.abort(3)
    }
    if abortRank != nil { comm.barrier() }  // ranks other than K wait here until the abort ends them
    if r == 0 {
      print("collectives selftest: \(comm.description): \(checker.checks) checks per rank, \(Int(totalFailures)) failures")
    }
    comm.finalize()
    if totalFailures != 0 { throw ExitCode(1) }
  }
}
