import Clock
import Collectives
import Foundation
import Kernels
import ViT

/// One CoDE training step on one rank of N: the six full-size views and the
/// two local views of this rank's B records through the ViT, the multi-scale
/// InfoNCE loss against keys gathered from all ranks, backward, gradient
/// all-reduce, and an AdamW update.
///
/// View buffers are view-major: `global [6, B, C, S, S]` in the order
/// real, fake, aug_real, aug_fake, global_real, global_fake, and
/// `local [2, B, C, L, L]` in the order local_real, local_fake. All six
/// global views go through the network as one batch of 6B images (fewer when
/// augmented views equal their base views: `deduplicateViews`,
/// CoDEStep+Deduplication.swift), the local views as one batch of 2B. With
/// gradient caching (`chunkRecords`, CoDEStep+GradientCache.swift) the views
/// go through in chunks of records instead.
///
/// Distributed contract: rank r holds global rows
/// `r*B ..< (r+1)*B` of the global batch G = N*B. The key embeddings
/// (r', f', r_g, f_g) are all-gathered rank-major `[N, 4, B, D]` and read by the
/// loss in that layout; the loss is computed for the local queries normalised by
/// G, the gradient for the gathered keys (same layout) is returned to the owners
/// by reduce-scatter, and the parameter gradients are all-reduced bucket by
/// bucket while the backward pass of the global views runs.
public final class CoDEStep {
  public let model: ViTModel
  public let loss: CoDELoss
  public let optimizer: AdamW
  public let comm: Communicator
  var globalActs: ViTActivations?
  var localActs: ViTActivations?
  /// Gradient of the loss with respect to this rank's embeddings: `[6B, D]` global views, `[2B, D]` local views.
  let dGlobal = FloatBuffer(), dLocal = FloatBuffer()
  /// The four key views of every rank, gathered rank-major `[N, 4, B, D]` (aug_real, aug_fake,
  /// global_real, global_fake), and the loss's gradient for them in the same layout.
  let keysGathered = FloatBuffer(), dKeysGathered = FloatBuffer()
  /// Gradient caching: records per forward/backward chunk (0: the whole local batch at once).
  public var chunkRecords: Int = 0
  /// Skip the forward and backward pass of an augmented view (aug_real, aug_fake) that is
  /// bit-identical to its base view, which happens when T draws no operation (probability
  /// 1 / (num_transform + 1) per view; the loader says which, `ViewBatch.unchangedAugmented`):
  /// its embedding is the base view's, and its embedding gradient is added to the base view's
  /// before the one backward pass. The gradients are those of the full batch up to summation
  /// order. Direct mode only (not with gradient caching).
  public var deduplicateViews = true
  let dedup = DeduplicationBuffers()
  let cache = GradientCacheBuffers()
  /// Views the last forward pass did not run through the network (0 without duplicates).
  public var lastDuplicateViews: Int { dedup.duplicates }

  public static let globalViewNames = ["real", "fake", "aug_real", "aug_fake", "global_real", "global_fake"]
  public static let localViewNames = ["local_real", "local_fake"]

  public init(model: ViTModel, temperature: Float = 0.1, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
              communicator: Communicator = SingleProcessCommunicator()) {
    self.model = model
    loss = CoDELoss(temperature: temperature)
    optimizer = AdamW(layout: model.layout, beta1: betas.0, beta2: betas.1, eps: eps)
    comm = communicator
  }

  public struct Result {
    /// The loss of the whole global batch (summed over ranks).
    public var loss: Double
    public var lossReal: Double
    public var lossFake: Double
    /// The four InfoNCE terms of the global batch (summed over ranks).
    public var terms = CoDELoss.LossTerms()
    /// Seconds this step spent in the forward+loss, backward (incl. overlapped all-reduce) and optimiser.
    public var forwardSeconds = 0.0, backwardSeconds = 0.0, optimizerSeconds = 0.0
    /// Seconds blocked in MPI calls during this step: all of them, and those after
    /// the forward pass (waiting for the gradient all-reduce that the backward pass started).
    public var commSeconds = 0.0, gradientWaitSeconds = 0.0
  }

  /// One step's input, valid for the call it is passed to: the view buffers (layout above),
  /// their sizes, and, per augmented view, whether T drew no operation, so that the view equals
  /// its base view bit for bit (`[2B]`: aug_real of records 0..<B, then aug_fake; nil: unknown,
  /// every view runs).
  struct Views {
    let global: UnsafePointer<Float>, local: UnsafePointer<Float>
    let records: Int, imageSize: Int, localSize: Int
    let unchangedAugmented: [Bool]?
  }

  func activations(_ cached: inout ViTActivations?, n: Int, size: Int) throws -> ViTActivations {
    if let a = cached, a.capacity == n, a.height == size, a.width == size, a.scratchThreadsOK { return a }
    cached = nil  // free before allocating the next one
    let a = try model.makeActivations(batch: n, height: size, width: size)
    cached = a
    return a
  }

  /// Forward both view groups, gather keys, compute the loss and the gradient
  /// with respect to every local embedding (no parameter gradients yet).
  /// `perm` is the permutation of the global batch (length N*B).
  func forwardLoss(_ x: Views, perm: [Int]) throws -> Result {
    let b = x.records, d = model.config.width, n = comm.size, g = n * b, bd = b * d
    cache.lastChunked = chunked(b)
    dedup.duplicates = 0
    let e: UnsafePointer<Float>, el: UnsafePointer<Float>
    if chunked(b) {
      try embedInChunks(x)
      e = UnsafePointer(cache.embGlobal.pointer)
      el = UnsafePointer(cache.embLocal.pointer)
    } else {
      let ga = try activations(&globalActs, n: 6 * b, size: x.imageSize)
      let la = try activations(&localActs, n: 2 * b, size: x.localSize)
      let (input, rows) = compactGlobalViews(x)
      ga.setBatch(rows)
      model.forward(input, ga)
      model.forward(x.local, la)
      e = dedup.duplicates > 0 ? UnsafePointer(expandEmbeddings(ga.embeddings, b: b, d: d)) : UnsafePointer(ga.embeddings)
      el = UnsafePointer(la.embeddings)
    }
    dGlobal.resize(6 * bd)
    dLocal.resize(2 * bd)
    keysGathered.resize(4 * n * bd)
    dKeysGathered.resize(4 * n * bd)
    // Keys: views 2..5 of the global embeddings, contiguous [4, B, D]; gathered [N, 4, B, D].
    comm.allGather(e + 2 * bd, count: 4 * bd, into: keysGathered.pointer)
    let k = UnsafePointer(keysGathered.pointer), dk = dKeysGathered.pointer, rows = CoDELoss.RowBlocks.rankMajor(records: b, dim: d)
    let g0 = dGlobal.pointer, gl = dLocal.pointer
    let v = loss.compute(
      queries: .init(real: e, fake: e + bd, localReal: el, localFake: el + bd),
      keys: .init(augReal: k, augFake: k + bd, globalReal: k + 2 * bd, globalFake: k + 3 * bd, rows: rows),
      local: b, global: g, offset: comm.rank * b, dim: d, perm: perm,
      dQueries: .init(real: g0, fake: g0 + bd, localReal: gl, localFake: gl + bd),
      dKeys: .init(augReal: dk, augFake: dk + bd, globalReal: dk + 2 * bd, globalFake: dk + 3 * bd, rows: rows))
    // Key gradients back to their owners: rank r receives the sum over ranks of block r.
    comm.reduceScatterSum(UnsafePointer(dk), into: g0 + 2 * bd, countPerRank: 4 * bd)
    let t = v.terms
    var parts = [v.real, v.fake, t.globalReal, t.multiscaleReal, t.globalFake, t.multiscaleFake]
    comm.allReduce(&parts, op: .sum)
    return Result(loss: parts[0] + parts[1], lossReal: parts[0], lossFake: parts[1],
                  terms: .init(globalReal: parts[2], multiscaleReal: parts[3], globalFake: parts[4], multiscaleFake: parts[5]))
  }

  /// Parameter gradients (overwritten, summed over ranks) for the views of the
  /// `forwardLoss` just before, with the same buffers. The local views go first so that
  /// the bucketed all-reduce overlaps the larger backward pass of the global views.
  func backward(_ x: Views) {
    model.zeroGradients()
    if chunked(x.records) {
      backwardInChunks(x)
      return
    }
    model.backward(localActs!, dEmbedding: dLocal.pointer)
    if comm.size == 1 {
      withGlobalEmbeddingGradient { model.backward(globalActs!, dEmbedding: $0) }
      return
    }
    let buckets = model.backwardBuckets
    var pending: [CommRequest] = []
    withGlobalEmbeddingGradient {
      model.backward(globalActs!, dEmbedding: $0) { i in
        pending.append(self.comm.allReduceSumStart(self.model.grads + buckets[i].offset, count: buckets[i].count))
        for r in pending { _ = r.test() }  // let MPI make progress
      }
    }
    for r in pending { r.wait() }
  }

  func chunked(_ b: Int) -> Bool { chunkRecords > 0 && chunkRecords < b }

  /// Forward, loss and backward (parameter gradients summed over ranks, no update).
  /// `unchangedAugmented` (`[2B]`, see `deduplicateViews`) says which aug_real / aug_fake
  /// views equal their base views; nil runs every view.
  public func forwardBackward(global: UnsafePointer<Float>, local: UnsafePointer<Float>, records b: Int, imageSize s: Int,
                              localSize l: Int, perm: [Int], unchangedAugmented: [Bool]? = nil) throws -> Result {
    let x = Views(global: global, local: local, records: b, imageSize: s, localSize: l, unchangedAugmented: unchangedAugmented)
    let r = try forwardLoss(x, perm: perm)
    backward(x)
    return r
  }

  /// The whole step: forward, loss, backward, all-reduce, AdamW.
  @discardableResult
  public func run(global: UnsafePointer<Float>, local: UnsafePointer<Float>, records b: Int, imageSize s: Int,
                  localSize l: Int, perm: [Int], lr: Float, weightDecay: Float, unchangedAugmented: [Bool]? = nil) throws -> Result {
    let x = Views(global: global, local: local, records: b, imageSize: s, localSize: l, unchangedAugmented: unchangedAugmented)
    let c0 = comm.blockedSeconds
    let t0 = MonotonicClock.seconds()
    var r = try forwardLoss(x, perm: perm)
    let t1 = MonotonicClock.seconds()
    let c1 = comm.blockedSeconds
    backward(x)
    let t2 = MonotonicClock.seconds()
    optimizer.step(params: model.params, grads: model.grads, lr: lr, weightDecay: weightDecay)
    let t3 = MonotonicClock.seconds()
    r.forwardSeconds = t1 - t0
    r.backwardSeconds = t2 - t1
    r.optimizerSeconds = t3 - t2
    r.commSeconds = comm.blockedSeconds - c0
    r.gradientWaitSeconds = comm.blockedSeconds - c1
    return r
  }

  /// Embeddings of the last forward pass: `[6B, D]` global views and `[2B, D]` local views.
  public var globalEmbeddings: UnsafePointer<Float>? {
    if cache.lastChunked { return UnsafePointer(cache.embGlobal.pointer) }
    if dedup.duplicates > 0 { return UnsafePointer(dedup.expandedEmb.pointer) }
    return globalActs.map { UnsafePointer($0.embeddings) }
  }
  public var localEmbeddings: UnsafePointer<Float>? {
    if cache.lastChunked { return UnsafePointer(cache.embLocal.pointer) }
    return localActs.map { UnsafePointer($0.embeddings) }
  }

  /// Bytes of activations currently held.
  public var activationBytes: Int {
    (globalActs?.bytes ?? 0) + (localActs?.bytes ?? 0) + (cache.tailActs.map { $0.0.bytes + $0.1.bytes } ?? 0)
  }
}

/// A float buffer owned by its object, reallocated only when its size changes
/// (pointers into it stay valid between calls, unlike an Array's).
final class FloatBuffer {
  private(set) var pointer: UnsafeMutablePointer<Float> = .allocate(capacity: 0)
  private(set) var count = 0
  func resize(_ n: Int) {
    guard n != count else { return }
    pointer.deallocate()
    pointer = .allocate(capacity: n)
    pointer.initialize(repeating: 0, count: n)
    count = n
  }
  deinit { pointer.deallocate() }
}
