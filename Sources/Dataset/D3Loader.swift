import Foundation
import Randomness
import Imaging

/// Settings of a `D3Loader`.
public struct LoaderConfig {
  /// Shards, globs (`*`, `elsa-{0000..0459}.tar`), directories of shards, test-layout folders.
  public var paths: [String]
  public var seed: UInt64
  /// G: records per step over all ranks; each rank makes B = G / N of them.
  public var globalBatch: Int
  public var rank: Int
  public var worldSize: Int
  public var spec: ViewSpec
  /// Loader threads that decode and make views (per rank).
  public var threads: Int = 1
  /// Batches built ahead of the one being trained on (memory: prefetch + 1 batches).
  public var prefetch: Int = 2
  public var sampling: Sampling = .global
  /// Drop the last incomplete step of an epoch (else it is filled from the epoch's start).
  public var dropLast: Bool = true
  /// Where shard indexes are cached (nil: beside each shard, when writable).
  public var indexDirectory: String? = nil
  /// Shard-local sampling: the steps per epoch all ranks agreed on (the minimum over ranks
  /// of `localRecords / B`); nil uses this rank's own count.
  public var stepsPerEpoch: Int? = nil
  /// Where the one-line warnings go (a bad record is reported once).
  public var warn: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("warning: " + $0 + "\n").utf8)) }
  /// Where the start-up lines go (records per source and in total; see `RecordCatalog.summary`).
  public var info: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
  /// Decoding policy of the images (damage, pixel limit); nil: `ImageCodec.policy`.
  public var decodePolicy: DecodePolicy? = nil

  public init(paths: [String], seed: UInt64, globalBatch: Int, rank: Int = 0, worldSize: Int = 1,
              spec: ViewSpec, threads: Int = 1, prefetch: Int = 2, sampling: Sampling = .global,
              dropLast: Bool = true) {
    self.paths = paths; self.seed = seed; self.globalBatch = globalBatch; self.rank = rank
    self.worldSize = worldSize; self.spec = spec; self.threads = threads; self.prefetch = prefetch
    self.sampling = sampling; self.dropLast = dropLast
  }
}

/// Streams batches of CoDE views from D3 shards or folders.
///
/// Order (global sampling): epoch e uses the permutation P_e = epochPermutation(R, seed, e);
/// slot i of rank r at step s holds position p = s*G + r*B + i, i.e. record P_e[p mod R].
/// That record's id keys all random choices: generator k = drawGenerator(seed, e, id) and
/// the views' CounterRNG(seed, e, id, view). The batch contents therefore do not depend on
/// N or on the number of loader threads. A bad record at p is replaced by the first good
/// record at p+1, p+2, ... (same P_e), still keyed by the drawn id, so batches stay full.
///
/// Shard-local sampling: rank r opens shards r, r+N, ... (the others need not exist on its
/// node: a literal `.tar` path that is absent counts as another rank's shard); P_e = epochPermutation(R_r, seed,
/// e, stream: 1 + r); p = s*B + i; ids are (shard number << 32) | record in shard.
///
/// Threads: `threads` workers fill slots of up to `prefetch + 1` pooled batches in step
/// order; `next()` hands out the batches in order and recycles the previous one.
public final class D3Loader {
  public let config: LoaderConfig
  public let catalog: RecordCatalog
  public let stepsPerEpoch: Int
  public var recordCount: Int { catalog.count }
  /// Set when a checkpoint's cursor cannot be resumed exactly (shard-local with another N).
  public let resumeNote: String?
  let B: Int
  let start: DataCursor
  let state: LoaderState

  public init(config: LoaderConfig, cursor: DataCursor) throws {
    let G = config.globalBatch, N = config.worldSize
    guard N >= 1, config.rank >= 0, config.rank < N else {
      throw DatasetError(.invalidArgument, "rank \(config.rank) is outside 0..<\(N) (world size)")
    }
    guard G >= 1, G % N == 0 else {
      throw DatasetError(.invalidArgument, "data global batch \(G) must be a positive multiple of the number of ranks (\(N))")
    }
    guard config.threads >= 1 else { throw DatasetError(.invalidArgument, "data threads must be at least 1 (got \(config.threads))") }
    guard config.prefetch >= 1 else { throw DatasetError(.invalidArgument, "data prefetch must be at least 1 (got \(config.prefetch))") }
    guard cursor.epoch >= 0, cursor.step >= 0 else { throw DatasetError(.invalidArgument, "data cursor epoch \(cursor.epoch) step \(cursor.step) is negative") }
    self.config = config
    B = G / N
    let what = config.paths.joined(separator: " ")
    var ignored: [String] = []
    // Shard-local: the shards of other ranks may be absent from this node (node-local disks).
    let all = try resolveDataPaths(config.paths, ignored: &ignored, absentShards: config.sampling == .shardLocal)
    var shardNumbers: [Int]
    switch config.sampling {
    case .global:
      catalog = RecordCatalog(locations: all, indexDirectory: config.indexDirectory)
      shardNumbers = []
    case .shardLocal:
      // Checked on every rank (not only those left without a shard) so that all fail alike.
      let mine = all.indices.filter { $0 % N == config.rank }
      if all.count < N {
        throw DatasetError(.noRecords, "\(what): \(all.count) shard(s) for \(N) ranks; shard-local sampling needs at least one shard per rank")
      }
      for i in mine where !FileManager.default.fileExists(atPath: all[i].path) {
        throw DatasetError(.notFound(path: all[i].path), "rank \(config.rank): \(all[i].path): no such file (shard \(i) of \(all.count), which this rank reads with shard-local sampling)")
      }
      catalog = RecordCatalog(locations: mine.map { all[$0] }, indexDirectory: config.indexDirectory)
      // Map opened sources back to their shard numbers (unopenable ones are skipped).
      let opened = Set(catalog.sources.map { $0.location })
      shardNumbers = mine.filter { opened.contains(all[$0]) }
    }
    // What was found, so that no loss is silent: every rank of a shard-local run has its
    // own sources; with global sampling all ranks open the same ones and rank 0 reports.
    if config.sampling == .shardLocal || config.rank == 0 {
      let (lines, warnings) = catalog.summary()
      let who = config.sampling == .shardLocal && config.worldSize > 1 ? "rank \(config.rank): " : ""
      for l in lines { config.info(who + l) }
      for w in ignored + warnings { config.warn(w) }
    }
    try catalog.requireRecords(what)
    let R = catalog.count
    let spe: Int
    switch config.sampling {
    case .global:
      spe = config.dropLast ? R / G : (R + G - 1) / G
      if spe == 0 { throw DatasetError(.noRecords, "\(what): \(R) records, fewer than the global batch \(G)") }
    case .shardLocal:
      spe = config.stepsPerEpoch ?? (config.dropLast ? R / B : (R + B - 1) / B)
      if spe <= 0 { throw DatasetError(.noRecords, "\(what): rank \(config.rank) has \(R) records, fewer than its batch \(B)") }
    }
    stepsPerEpoch = spe

    // Resume: an exact continuation unless shard-local sampling changes N.
    var note: String? = nil
    if let was = cursor.sampling, was != config.sampling {
      note = "data cursor was written with \(was.rawValue) sampling, resuming with \(config.sampling.rawValue): the record stream restarts its order at epoch \(cursor.epoch) step \(cursor.step)"
    } else if config.sampling == .shardLocal, let n = cursor.worldSize, n != N {
      note = "data cursor was written by \(n) ranks with shard-local sampling; resuming with \(N) ranks gives each rank other shards, so the stream from epoch \(cursor.epoch) step \(cursor.step) is not the one an uninterrupted run would read"
    }
    resumeNote = note
    if let n = note, config.rank == 0 { config.warn(n) }

    // Normalise a cursor past the end of an epoch (e.g. written by a run with another G).
    start = DataCursor(epoch: cursor.epoch + cursor.step / spe, step: cursor.step % spe,
                       sampling: config.sampling, worldSize: N)
    let plan = SamplingPlan(config: config, B: B, recordCount: R, shardNumbers: shardNumbers, catalog: catalog)
    state = LoaderState(config: config, catalog: catalog, plan: plan, B: B, start: start, stepsPerEpoch: spe)
    state.startWorkers()
  }

  deinit { state.close() }

  /// Blocks until the next step's batch is ready; the previous batch is recycled.
  public func next() throws -> ViewBatch { try state.next() }

  /// Position of the NEXT batch `next()` returns.
  public var cursor: DataCursor {
    let n = state.delivered
    let total = start.step + n
    return DataCursor(epoch: start.epoch + total / stepsPerEpoch, step: total % stepsPerEpoch,
                      sampling: config.sampling, worldSize: config.worldSize)
  }

  public var stats: LoaderStats { state.snapshotStats() }

  /// Stops the loader threads (waiting for them) and frees the batch pool.
  public func close() { state.close() }
}

/// Which record a slot draws, and where to look for replacements.
struct SamplingPlan {
  let config: LoaderConfig
  let B: Int
  let R: Int
  let shardNumbers: [Int]
  let catalog: RecordCatalog

  init(config: LoaderConfig, B: Int, recordCount: Int, shardNumbers: [Int], catalog: RecordCatalog) {
    self.config = config; self.B = B; self.R = recordCount; self.shardNumbers = shardNumbers; self.catalog = catalog
  }

  func permutation(epoch: Int) -> [Int32] {
    let stream: UInt64 = config.sampling == .global ? 0 : UInt64(1 + config.rank)
    return epochPermutation(count: R, seed: config.seed, epoch: epoch, stream: stream)
  }

  /// Position in the epoch's permutation of slot `slot` at step `step`.
  func position(step: Int, slot: Int) -> Int {
    switch config.sampling {
    case .global: return (step * config.globalBatch + config.rank * B + slot) % R
    case .shardLocal: return (step * B + slot) % R
    }
  }

  /// Public id of a catalog record: the catalog index (global) or
  /// (shard number << 32) | record within the shard (shard-local).
  func publicID(_ local: Int) -> Int {
    if config.sampling == .global { return local }
    let (_, r, s) = catalog.locate(local)
    return (shardNumbers[s] << 32) | r
  }
}
