import Foundation

/// One training step's views for this rank: B = G/N records, eight views each.
///
/// Layout (planar fp32, normalised):
/// - `global`: [6, B, 3, S, S], view-major: real, fake, aug_real, aug_fake, global_real, global_fake
///   (view v of record b starts at `global + (v * B + b) * 3 * S * S`);
/// - `local`:  [2, B, 3, L, L]: local_real, local_fake.
/// Buffers belong to the loader's pool: a batch returned by `D3Loader.next()` stays valid
/// until the following call to `next()` (or `close()`), then it is refilled.
public final class ViewBatch {
  public static let globalViews = 6
  public static let localViews = 2

  public let records: Int
  public let imageSize: Int
  public let localSize: Int
  public let global: UnsafeMutablePointer<Float>
  public let local: UnsafeMutablePointer<Float>
  /// Per-slot bookkeeping, allocated once: `[3, B]` ints (record ids, generators, drawn ids),
  /// then `[2B]` flags (`unchangedAugmented`). Several loader workers fill slots of one batch
  /// at once, each writing only its own slot's entries (`setSlot`, `setUnchanged`): disjoint
  /// memory, where per-slot stores into Swift arrays raced on the array property itself.
  private let slotInts: UnsafeMutablePointer<Int>
  private let unchangedFlags: UnsafeMutablePointer<Bool>

  /// The record whose images fill each slot (after any replacement of bad records).
  public var recordIDs: [Int] { Array(UnsafeBufferPointer(start: slotInts, count: records)) }
  /// The generator k (0..<4) of each slot's fake image.
  public var generators: [Int] { Array(UnsafeBufferPointer(start: slotInts + records, count: records)) }
  /// The record id that keyed each slot's random choices (the record the sampler drew).
  public var drawnIDs: [Int] { Array(UnsafeBufferPointer(start: slotInts + 2 * records, count: records)) }
  /// Per slot, whether T drew no operation for aug_real (`[0 ..< B]`) and aug_fake
  /// (`[B ..< 2B]`), so that the view equals the real / fake view bit for bit: what
  /// `CoDEStep` deduplicates (`unchangedAugmented`).
  public var unchangedAugmented: [Bool] { Array(UnsafeBufferPointer(start: unchangedFlags, count: 2 * records)) }

  /// Records what fills slot `slot`: its record, the record drawn for it, its generator.
  public func setSlot(_ slot: Int, record: Int, drawn: Int, generator: Int) {
    precondition(slot >= 0 && slot < records, "slot \(slot) outside a batch of \(records)")
    slotInts[slot] = record
    slotInts[records + slot] = generator
    slotInts[2 * records + slot] = drawn
  }

  /// Records whether slot `slot`'s aug_real and aug_fake views equal their base views.
  public func setUnchanged(_ slot: Int, augReal: Bool, augFake: Bool) {
    precondition(slot >= 0 && slot < records, "slot \(slot) outside a batch of \(records)")
    unchangedFlags[slot] = augReal
    unchangedFlags[records + slot] = augFake
  }

  public var epoch: Int = 0
  public var step: Int = 0

  public var globalCount: Int { ViewBatch.globalViews * records * 3 * imageSize * imageSize }
  public var localCount: Int { ViewBatch.localViews * records * 3 * localSize * localSize }

  public init(records: Int, imageSize: Int, localSize: Int) {
    self.records = records
    self.imageSize = imageSize
    self.localSize = localSize
    let g = ViewBatch.globalViews * records * 3 * imageSize * imageSize
    let l = ViewBatch.localViews * records * 3 * localSize * localSize
    global = .allocate(capacity: g)
    global.initialize(repeating: 0, count: g)
    local = .allocate(capacity: l)
    local.initialize(repeating: 0, count: l)
    slotInts = .allocate(capacity: 3 * records)
    slotInts.initialize(repeating: -1, count: 3 * records)
    (slotInts + records).update(repeating: 0, count: records)  // generators
    unchangedFlags = .allocate(capacity: 2 * records)
    unchangedFlags.initialize(repeating: false, count: 2 * records)
  }

  deinit {
    global.deallocate()
    local.deallocate()
    slotInts.deallocate()
    unchangedFlags.deallocate()
  }

  /// Start of global view `view` (0..<6) of slot `slot`: 3 x S x S floats.
  public func globalView(_ view: Int, slot: Int) -> UnsafeMutablePointer<Float> {
    global + (view * records + slot) * 3 * imageSize * imageSize
  }

  /// Start of local view `view` (0..<2) of slot `slot`: 3 x L x L floats.
  public func localView(_ view: Int, slot: Int) -> UnsafeMutablePointer<Float> {
    local + (view * records + slot) * 3 * localSize * localSize
  }

  /// Start of CoDE view `v` of slot `slot`: `globalView(v.rawValue, slot:)` for the six
  /// S x S views, `localView(v.rawValue - 6, slot:)` for the two L x L ones. Slots of one
  /// view are contiguous, so `view(v, slot: 0)` addresses `records * sampleCount(v)` floats.
  public func view(_ v: CoDEView, slot: Int) -> UnsafeMutablePointer<Float> {
    v.isLocal ? localView(v.rawValue - ViewBatch.globalViews, slot: slot) : globalView(v.rawValue, slot: slot)
  }

  /// Floats per slot of view v: 3 x S x S, or 3 x L x L for the local views.
  public func sampleCount(_ v: CoDEView) -> Int {
    let s = v.isLocal ? localSize : imageSize
    return 3 * s * s
  }
}

/// What the loader counted: skipped records by reason (each bad record counted once),
/// and how long the trainer waited in `next()`.
public struct LoaderStats: Sendable, Equatable {
  public var skipped: [SkipReason: Int] = [:]
  public var skippedTotal: Int { skipped.values.reduce(0, +) }
  /// Sources (shards, folders) that could not be opened at all.
  public var unreadableSources: Int = 0
  /// Seconds the caller spent blocked in `next()`: in total, and in the last call.
  public var waitSeconds: Double = 0
  public var lastWaitSeconds: Double = 0
  /// Batches delivered and records decoded into views.
  public var batches: Int = 0
  public var records: Int = 0
}
