import Clock
import Foundation
import Imaging

/// Throughput of the view pipeline on one thread: records per second turned from
/// encoded bytes into eight normalised views (decode real + drawn fake, make views).
public enum ViewBenchmark {
  public struct Result: Sendable, CustomStringConvertible {
    public var records: Int
    public var localSize: Int
    /// Seconds spent synthesising the records (not part of the rate).
    public var synthSeconds: Double
    public var decodeSeconds: Double
    public var viewSeconds: Double
    public var recordsPerSecond: Double { Double(records) / max(decodeSeconds + viewSeconds, 1e-9) }
    public var description: String {
      String(format: "views: %d records, local %d: %.2f records/s per loader thread (decode %.1f ms, views %.1f ms per record); synthesis %.1f ms per record",
             records, localSize, recordsPerSecond, 1000 * decodeSeconds / Double(records),
             1000 * viewSeconds / Double(records), 1000 * synthSeconds / Double(records))
    }
  }

  /// Synthesises `records` synthetic D3 records (seed 42), then times decoding and
  /// view making for each, on the calling thread, into one preallocated batch.
  public static func run(records: Int = 32, spec: ViewSpec = ViewSpec(), seed: UInt64 = 42) throws -> Result {
    let t0 = MonotonicClock.nanoseconds()
    let recs = (0..<records).map { SyntheticD3.record(seed: seed, index: $0) }
    let t1 = MonotonicClock.nanoseconds()
    let maker = CoDEViewMaker(spec: spec)
    let batch = ViewBatch(records: 1, imageSize: spec.imageSize, localSize: spec.localSize)
    var decode: UInt64 = 0, views: UInt64 = 0
    for (i, r) in recs.enumerated() {
      let a = MonotonicClock.nanoseconds()
      let k = drawGenerator(seed: seed, epoch: 0, record: i)
      let real = try ImageCodec.decode(r.real.data, name: "synthetic/\(i).real.\(r.real.fileExtension)")
      let fake = try ImageCodec.decode(r.gens[k].data, name: "synthetic/\(i).gen_\(k).\(r.gens[k].fileExtension)")
      let b = MonotonicClock.nanoseconds()
      maker.make(real: real, fake: fake, seed: seed, epoch: 0, record: i, into: batch, slot: 0)
      let c = MonotonicClock.nanoseconds()
      decode += b - a; views += c - b
    }
    return Result(records: records, localSize: spec.localSize, synthSeconds: Double(t1 - t0) / 1e9,
                  decodeSeconds: Double(decode) / 1e9, viewSeconds: Double(views) / 1e9)
  }
}
