import Clock
import Foundation
import Imaging

/// Shared state of a loader's worker threads and its consumer, guarded by `cond`.
final class LoaderState: @unchecked Sendable {
  let config: LoaderConfig
  let catalog: RecordCatalog
  let plan: SamplingPlan
  let B: Int
  let start: DataCursor
  let stepsPerEpoch: Int

  let cond = NSCondition()
  var free: [ViewBatch] = []
  var held: ViewBatch? = nil
  var pending: [(ViewBatch, Int)] = []
  var pendingHead = 0
  var remaining: [ObjectIdentifier: Int] = [:]
  var ready: [Int: ViewBatch] = [:]
  var scheduled = 0          // batches handed to workers so far
  var delivered = 0          // batches returned by next()
  var closed = false
  var fatal: Error? = nil
  var running = 0
  var permutations: [Int: [Int32]] = [:]
  // Bad data: members known bad (id * 8 + role), records already warned about.
  var badMembers: [Int: SkipReason] = [:]
  var warned: Set<Int> = []
  var stats = LoaderStats()

  init(config: LoaderConfig, catalog: RecordCatalog, plan: SamplingPlan, B: Int, start: DataCursor, stepsPerEpoch: Int) {
    self.config = config; self.catalog = catalog; self.plan = plan; self.B = B
    self.start = start; self.stepsPerEpoch = stepsPerEpoch
    stats.unreadableSources = catalog.unreadable.count
    let spec = config.spec
    for _ in 0..<(config.prefetch + 1) {
      free.append(ViewBatch(records: B, imageSize: spec.imageSize, localSize: spec.localSize))
    }
  }

  func startWorkers() {
    ImageCodec.prepare()  // libvips starts here, not on a worker: see `ImageCodec.prepare`
    running = config.threads
    for t in 0..<config.threads {
      let th = Thread { [self] in self.workerLoop() }
      th.name = "cde-loader-\(t)"
      th.stackSize = 8 << 20
      th.start()
    }
  }

  func close() {
    cond.lock()
    closed = true
    cond.broadcast()
    while running > 0 { cond.wait() }
    free.removeAll(); ready.removeAll(); pending.removeAll(); pendingHead = 0; held = nil
    cond.unlock()
  }

  func next() throws -> ViewBatch {
    cond.lock()
    defer { cond.unlock() }
    if closed { throw DatasetError(.closed, "data loader is closed") }
    if let h = held { free.append(h); held = nil; cond.broadcast() }
    let t0 = MonotonicClock.seconds()
    while ready[delivered] == nil && fatal == nil && !closed { cond.wait() }
    if let e = fatal { throw e }
    if closed { throw DatasetError(.closed, "data loader is closed") }
    let b = ready.removeValue(forKey: delivered)!
    delivered += 1
    held = b
    let waited = MonotonicClock.seconds(since: t0)
    stats.lastWaitSeconds = waited
    stats.waitSeconds += waited
    stats.batches += 1
    stats.records += b.records
    return b
  }

  func snapshotStats() -> LoaderStats {
    cond.lock(); defer { cond.unlock() }
    return stats
  }

  /// Permutation of an epoch, computed once (the two most recent epochs are kept).
  func permutation(_ epoch: Int) -> [Int32] {
    cond.lock()
    if let p = permutations[epoch] { cond.unlock(); return p }
    cond.unlock()
    let p = plan.permutation(epoch: epoch)
    cond.lock()
    permutations[epoch] = p
    if permutations.count > 2, let oldest = permutations.keys.min() { permutations.removeValue(forKey: oldest) }
    cond.unlock()
    return p
  }

  // MARK: workers

  private func workerLoop() {
    let maker = CoDEViewMaker(spec: config.spec)
    cond.lock()
    while true {
      if closed || fatal != nil { break }
      if pendingHead == pending.count, let b = free.popLast() {
        let total = start.step + scheduled
        b.epoch = start.epoch + total / stepsPerEpoch
        b.step = total % stepsPerEpoch
        scheduled += 1
        pending.removeAll(keepingCapacity: true); pendingHead = 0
        for i in 0..<b.records { pending.append((b, i)) }
        remaining[ObjectIdentifier(b)] = b.records
      }
      if pendingHead < pending.count {
        let (b, slot) = pending[pendingHead]
        pendingHead += 1
        cond.unlock()
        let err: Error?
        do { try fill(b, slot: slot, maker: maker); err = nil } catch { err = error }
        cond.lock()
        if let e = err, fatal == nil { fatal = e; cond.broadcast() }
        let id = ObjectIdentifier(b)
        remaining[id]! -= 1
        if remaining[id] == 0 {
          remaining.removeValue(forKey: id)
          let seq = (b.epoch - start.epoch) * stepsPerEpoch + b.step - start.step
          ready[seq] = b
          cond.broadcast()
        }
        continue
      }
      cond.wait()
    }
    running -= 1
    cond.broadcast()
    cond.unlock()
  }

  /// Fills one slot: the drawn record, or the first good record after it.
  private func fill(_ b: ViewBatch, slot: Int, maker: CoDEViewMaker) throws {
    let epoch = b.epoch
    let perm = permutation(epoch)
    let R = perm.count
    let p = plan.position(step: b.step, slot: slot)
    let drawn = plan.publicID(Int(perm[p]))
    let k = drawGenerator(seed: config.seed, epoch: epoch, record: drawn)
    for a in 0..<R {
      let local = Int(perm[(p + a) % R])
      let (source, r, _) = catalog.locate(local)
      if let (reason, detail) = source.staticProblem(r) {
        note(local, member: nil, reason: reason, "\(source.location.path): record \(source.key(r)) skipped: \(detail)")
        continue
      }
      guard let real = decode(source, r, .real, local), let fake = decode(source, r, .generator(k), local) else { continue }
      maker.make(real: real, fake: fake, seed: config.seed, epoch: epoch, record: drawn, into: b, slot: slot)
      b.setSlot(slot, record: plan.publicID(local), drawn: drawn, generator: k)
      return
    }
    throw DatasetError(.noRecords, "\(config.paths.joined(separator: " ")): no readable record left (all \(R) records are bad)")
  }

  /// Decodes a member, remembering members that fail (decoding is deterministic, so a
  /// member that failed once is not retried).
  private func decode(_ source: RecordSource, _ r: Int, _ role: RecordRole, _ local: Int) -> RGBImage? {
    let key = local * 8 + role.rawValue
    cond.lock()
    let known = badMembers[key]
    cond.unlock()
    if known != nil { return nil }
    let data: Data
    do { data = try source.read(r, role) } catch {
      note(local, member: key, reason: .unreadable, "\(error) (record skipped)")
      return nil
    }
    do { return try ImageCodec.decode(data, name: source.memberName(r, role), policy: config.decodePolicy) } catch {
      note(local, member: key, reason: .corruptImage, "\(error) (record skipped)")
      return nil
    }
  }

  /// Counts a bad record once (by reason) and warns once per record.
  private func note(_ local: Int, member: Int?, reason: SkipReason, _ message: String) {
    cond.lock()
    if let m = member { badMembers[m] = reason }
    let first = warned.insert(local).inserted
    if first { stats.skipped[reason, default: 0] += 1 }
    cond.unlock()
    if first { config.warn(message) }
  }
}
