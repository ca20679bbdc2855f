import Foundation

/// One rank: every collective is the identity (a copy where source and
/// destination differ), so single-process training runs the same code path.
public final class SingleProcessCommunicator: Communicator {
  public let rank = 0
  public let size = 1
  public private(set) var blockedSeconds: Double = 0

  public init() {}

  public var description: String { "single process" }

  public func allReduceSum(_ buf: UnsafeMutablePointer<Float>, count: Int) {}

  public func allReduceSumStart(_ buf: UnsafeMutablePointer<Float>, count: Int) -> CommRequest {
    CompletedRequest()
  }

  public func allGather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>) {
    if UnsafePointer(recv) != send { recv.update(from: send, count: count) }
  }

  public func reduceScatterSum(_ send: UnsafePointer<Float>, into recv: UnsafeMutablePointer<Float>, countPerRank: Int) {
    if UnsafePointer(recv) != send { recv.update(from: send, count: countPerRank) }
  }

  public func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int) {
    precondition(root == 0, "broadcast root \(root) out of range for 1 rank")
  }

  public func allReduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp) {}

  public func barrier() {}

  public func abort(_ code: Int32) -> Never {
    fflush(stdout)
    fflush(stderr)
    exit(code)
  }

  public func finalize() {}
}

/// A request that is already complete.
final class CompletedRequest: CommRequest {
  func wait() {}
  func test() -> Bool { true }
}
