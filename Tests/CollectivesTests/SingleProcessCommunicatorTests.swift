import Collectives
import XCTest

/// The single-process communicator must behave as MPI does with one rank
/// (closed form: every reduction over one rank is the identity, a gather a copy).
/// The multi-rank behaviour is checked by scripts/test-mpi.sh under mpirun.
final class SingleProcessCommunicatorTests: XCTestCase {
  func testCollectivesAreIdentityWithOneRank() {
    let c = SingleProcessCommunicator()
    XCTAssertEqual(c.rank, 0)
    XCTAssertEqual(c.size, 1)
    var a: [Float] = [1, -2, 3.5]
    a.withUnsafeMutableBufferPointer { c.allReduceSum($0.baseAddress!, count: 3) }
    XCTAssertEqual(a, [1, -2, 3.5])
    a.withUnsafeMutableBufferPointer {
      let r = c.allReduceSumStart($0.baseAddress!, count: 3)
      XCTAssertTrue(r.test())
      r.wait()
    }
    XCTAssertEqual(a, [1, -2, 3.5])

    let send: [Float] = [4, 5, 6, 7]
    var recv = [Float](repeating: 0, count: 4)
    send.withUnsafeBufferPointer { s in recv.withUnsafeMutableBufferPointer { c.allGather(s.baseAddress!, count: 4, into: $0.baseAddress!) } }
    XCTAssertEqual(recv, send)
    var out = [Float](repeating: 0, count: 4)
    send.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { c.reduceScatterSum(s.baseAddress!, into: $0.baseAddress!, countPerRank: 4) } }
    XCTAssertEqual(out, send)

    XCTAssertEqual(c.allReduce(2.5, op: .sum), 2.5)
    XCTAssertEqual(c.allReduce(-1, op: .max), -1)
    var v = [1.0, 2.0]
    c.allReduce(&v, op: .min)
    XCTAssertEqual(v, [1, 2])
    XCTAssertTrue(c.allTrue(true))
    XCTAssertFalse(c.allTrue(false))
    XCTAssertEqual(c.broadcast(data: Data("abc".utf8), root: 0), Data("abc".utf8))
    struct Msg: BitwiseCopyable, Equatable { var lr: Double; var stop: Int32 }
    var m = Msg(lr: 0.5, stop: 1)
    c.broadcast(&m, root: 0)
    XCTAssertEqual(m, Msg(lr: 0.5, stop: 1))
    c.barrier()
    XCTAssertEqual(c.blockedSeconds, 0)
  }

  func testLaunchDetection() {
    XCTAssertFalse(Launch.isMPI(environment: [:]))
    XCTAssertTrue(Launch.isMPI(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
    XCTAssertTrue(Launch.isMPI(environment: ["PMIX_RANK": "0"]))
    XCTAssertTrue(Launch.isMPI(environment: ["PMI_SIZE": "4"]))
    XCTAssertFalse(Launch.isMPI(environment: ["OMPI_COMM_WORLD_SIZE": "2", "CDE_COMM": "single"]))
    XCTAssertTrue(Launch.isMPI(environment: ["CDE_COMM": "mpi"]))
  }
}
