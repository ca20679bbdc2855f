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
/// augmented views equal their base views: `deduplicateViews`), the local
/// views as one batch of 2B.
///
/// Distributed contract (DESIGN.md section 3): rank r holds global rows
/// `r*B ..< (r+1)*B` of the global batch G = N*B. The key embeddings
/// (r', f', r_g, f_g) are all-gathered, the loss is computed for the local
/// queries normalised by G, the gradient for the gathered keys is returned to
/// the owners by reduce-scatter, and the parameter gradients are all-reduced
/// bucket by bucket while the backward pass of the global views runs.
public final class CoDEStep {
  public let model: ViTModel
  public let loss: CoDELoss
  public let optimizer: AdamW
  public let comm: Communicator
  var globalActs: ViTActivations?
  var localActs: ViTActivations?
  var dGlobal: [Float] = []
  var dLocal: [Float] = []
  var keySend: [Float] = [], keyAll: [Float] = [], dKeyAll: [Float] = []
  /// Gradient caching: records per forward/backward chunk (0: the whole local batch at once).
  public var chunkRecords: Int = 0
  // Chunked mode: all embeddings of the step, the chunk's contiguous views, and the
  // inputs of the last forwardLoss (re-read by the backward pass).
  let embGlobal = FloatBuffer(), embLocal = FloatBuffer()
  var chunkGlobal: [Float] = [], chunkLocal: [Float] = [], chunkDGlobal: [Float] = [], chunkDLocal: [Float] = []
  var lastInput: (global: UnsafePointer<Float>, local: UnsafePointer<Float>, b: Int, s: Int, l: Int)?
  /// Whether the last forwardLoss ran chunked (its embeddings are in embGlobal/embLocal).
  var lastChunked = false
  /// Skip the forward and backward pass of an augmented view (aug_real, aug_fake) that is
  /// bit-identical to its base view, which happens when T draws no operation (probability
  /// 1 / (num_transform + 1) per view): its embedding is the base view's, and its embedding
  /// gradient is added to the base view's before the one backward pass. The gradients are
  /// those of the full batch up to summation order. Direct mode only (not with gradient caching).
  public var deduplicateViews = true
  /// Views the last forwardLoss did not run through the network (0 without duplicates).
  public private(set) var lastDuplicateViews = 0
  /// Deduplication: the global views without the duplicates, each view-major row's row in
  /// that batch (`rowOf [6B]`), the embeddings expanded back to `[6B, D]`, and the embedding
  /// gradient folded onto the compact rows.
  let compactGlobal = FloatBuffer(), expandedEmb = FloatBuffer(), compactDEmb = FloatBuffer()
  var rowOf: [Int] = []

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
  public func forwardLoss(global: UnsafePointer<Float>, local: UnsafePointer<Float>, records b: Int, imageSize s: Int,
                          localSize l: Int, perm: [Int]) throws -> Result {
    let d = model.config.width, n = comm.size, g = n * b, bd = b * d, gd = g * d
    lastInput = (global, local, b, s, l)
    lastChunked = chunked(b)
    lastDuplicateViews = 0
    let e: UnsafePointer<Float>, el: UnsafePointer<Float>
    if chunked(b) {
      try embedInChunks(global: global, local: local, b: b, s: s, l: l)
      e = UnsafePointer(embGlobal.pointer)
      el = UnsafePointer(embLocal.pointer)
    } else {
      let ga = try activations(&globalActs, n: 6 * b, size: s)
      let la = try activations(&localActs, n: 2 * b, size: l)
      let (input, rows) = compactGlobalViews(global, b: b, per: model.config.channels * s * s)
      ga.setBatch(rows)
      model.forward(input, ga)
      model.forward(local, la)
      e = lastDuplicateViews > 0 ? UnsafePointer(expandEmbeddings(ga.embeddings, b: b, d: d)) : UnsafePointer(ga.embeddings)
      el = UnsafePointer(la.embeddings)
    }
    if dGlobal.count != 6 * bd { dGlobal = [Float](repeating: 0, count: 6 * bd) }
    if dLocal.count != 2 * bd { dLocal = [Float](repeating: 0, count: 2 * bd) }
    if keyAll.count != 4 * gd {
      keySend = [Float](repeating: 0, count: 4 * bd)
      keyAll = [Float](repeating: 0, count: 4 * gd)
      dKeyAll = [Float](repeating: 0, count: 4 * gd)
    }
    // Keys (views 2..5 of the global batch) gathered rank-major: recv [N, 4, B, D].
    keySend.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: e + 2 * bd, count: 4 * bd) }
    let gathered = [Float](unsafeUninitializedCapacity: 4 * gd) { buf, count in
      keySend.withUnsafeBufferPointer { comm.allGather($0.baseAddress!, count: 4 * bd, into: buf.baseAddress!) }
      count = 4 * gd
    }
    // Rearrange into four [G, D] matrices whose row index is the global record index.
    for r in 0..<n {
      for k in 0..<4 {
        for i in 0..<bd { keyAll[k * gd + r * bd + i] = gathered[(r * 4 + k) * bd + i] }
      }
    }
    let v = keyAll.withUnsafeBufferPointer { ka in
      dKeyAll.withUnsafeMutableBufferPointer { dka in
        dGlobal.withUnsafeMutableBufferPointer { dg in
          dLocal.withUnsafeMutableBufferPointer { dl in
            let k = ka.baseAddress!, dk = dka.baseAddress!, g0 = dg.baseAddress!, gl = dl.baseAddress!
            return loss.compute(
              queries: .init(real: e, fake: e + bd, localReal: el, localFake: el + bd),
              keys: .init(augReal: k, augFake: k + gd, globalReal: k + 2 * gd, globalFake: k + 3 * gd),
              local: b, global: g, offset: comm.rank * b, dim: d, perm: perm,
              dQueries: .init(real: g0, fake: g0 + bd, localReal: gl, localFake: gl + bd),
              dKeys: .init(augReal: dk, augFake: dk + gd, globalReal: dk + 2 * gd, globalFake: dk + 3 * gd))
          }
        }
      }
    }
    // Key gradients back to their owners: pack rank-major [N, 4, B, D], reduce-scatter.
    let packed = [Float](unsafeUninitializedCapacity: 4 * gd) { buf, count in
      for r in 0..<n {
        for k in 0..<4 {
          for i in 0..<bd { buf[(r * 4 + k) * bd + i] = dKeyAll[k * gd + r * bd + i] }
        }
      }
      count = 4 * gd
    }
    packed.withUnsafeBufferPointer { p in
      dGlobal.withUnsafeMutableBufferPointer { dg in
        comm.reduceScatterSum(p.baseAddress!, into: dg.baseAddress! + 2 * bd, countPerRank: 4 * bd)
      }
    }
    let t = v.terms
    var parts = [v.real, v.fake, t.globalReal, t.multiscaleReal, t.globalFake, t.multiscaleFake]
    comm.allReduce(&parts, op: .sum)
    return Result(loss: parts[0] + parts[1], lossReal: parts[0], lossFake: parts[1],
                  terms: .init(globalReal: parts[2], multiscaleReal: parts[3], globalFake: parts[4], multiscaleFake: parts[5]))
  }

  /// Parameter gradients (overwritten, summed over ranks) for the batch of the
  /// last `forwardLoss`. The local views go first so that the bucketed
  /// all-reduce overlaps the larger backward pass of the global views.
  ///
  /// Call it right after `forwardLoss` with the same view buffers still alive
  /// (`forwardBackward` and `run` do both).
  public func backward() {
    model.zeroGradients()
    if let inp = lastInput, chunked(inp.b) {
      backwardInChunks(global: inp.global, local: inp.local, b: inp.b, s: inp.s, l: inp.l)
      return
    }
    dLocal.withUnsafeBufferPointer { model.backward(localActs!, dEmbedding: $0.baseAddress!) }
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

  /// The global views `[6B, per]` to run through the network: `global` itself, or, when
  /// some aug_real / aug_fake views equal their real / fake views bit for bit (and
  /// `deduplicateViews`), a copy without them. Sets `rowOf` and `lastDuplicateViews`.
  func compactGlobalViews(_ global: UnsafePointer<Float>, b: Int, per: Int) -> (UnsafePointer<Float>, Int) {
    if rowOf.count != 6 * b { rowOf = [Int](repeating: 0, count: 6 * b) }
    var j = 0, dup = 0
    for v in 0..<(6 * b) {
      // Rows 2B..<4B (aug_real, aug_fake) have their base view 2B rows earlier (real, fake).
      let base = v - 2 * b
      if deduplicateViews, v >= 2 * b, v < 4 * b, memcmp(global + base * per, global + v * per, per * 4) == 0 {
        if dup == 0 {  // first duplicate: the rows so far are the compact batch's first rows
          compactGlobal.resize(6 * b * per)
          compactGlobal.pointer.update(from: global, count: j * per)
        }
        rowOf[v] = rowOf[base]
        dup += 1
        continue
      }
      if dup > 0 { (compactGlobal.pointer + j * per).update(from: global + v * per, count: per) }
      rowOf[v] = j
      j += 1
    }
    lastDuplicateViews = dup
    return dup > 0 ? (UnsafePointer(compactGlobal.pointer), j) : (global, 6 * b)
  }

  /// `[6B, D]` embeddings from the compact batch's (`rowOf`).
  func expandEmbeddings(_ compact: UnsafePointer<Float>, b: Int, d: Int) -> UnsafeMutablePointer<Float> {
    expandedEmb.resize(6 * b * d)
    for v in 0..<(6 * b) { (expandedEmb.pointer + v * d).update(from: compact + rowOf[v] * d, count: d) }
    return expandedEmb.pointer
  }

  /// Calls `body` with the gradient with respect to the embeddings of the batch that ran
  /// forward: `dGlobal` itself, or, after deduplication, its rows summed onto their compact rows.
  func withGlobalEmbeddingGradient(_ body: (UnsafePointer<Float>) -> Void) {
    dGlobal.withUnsafeBufferPointer { dg in
      guard lastDuplicateViews > 0 else { return body(dg.baseAddress!) }
      let d = model.config.width, rows = rowOf.count
      compactDEmb.resize(rows * d)
      let out = compactDEmb.pointer
      out.update(repeating: 0, count: rows * d)
      for v in 0..<rows {
        let dst = out + rowOf[v] * d, src = dg.baseAddress! + v * d
        for i in 0..<d { dst[i] += src[i] }
      }
      body(UnsafePointer(out))
    }
  }

  /// Copies records `r0 ..< r0 + c` of every view of a view-major batch `[V, B, C, S, S]`
  /// into `dst [V, c, C, S, S]` (`toChunk`), or the other way round for rows of `D` floats.
  @inline(__always)
  func copyRows(views: Int, b: Int, r0: Int, c: Int, per: Int, from src: UnsafePointer<Float>,
                to dst: UnsafeMutablePointer<Float>, toChunk: Bool) {
    for v in 0..<views {
      let full = (v * b + r0) * per, part = v * c * per
      if toChunk { (dst + part).update(from: src + full, count: c * per) } else { (dst + full).update(from: src + part, count: c * per) }
    }
  }

  /// Gradient caching, phase 1: the embeddings of every view, computed chunk by
  /// chunk with activations for one chunk only (nothing kept for backward).
  func embedInChunks(global: UnsafePointer<Float>, local: UnsafePointer<Float>, b: Int, s: Int, l: Int) throws {
    let c = chunkRecords, d = model.config.width, ch = model.config.channels
    let ga = try activations(&globalActs, n: 6 * c, size: s)
    let la = try activations(&localActs, n: 2 * c, size: l)
    embGlobal.resize(6 * b * d)
    embLocal.resize(2 * b * d)
    if chunkGlobal.count != 6 * c * ch * s * s { chunkGlobal = [Float](repeating: 0, count: 6 * c * ch * s * s) }
    if chunkLocal.count != 2 * c * ch * l * l { chunkLocal = [Float](repeating: 0, count: 2 * c * ch * l * l) }
    var r0 = 0
    while r0 < b {
      let n = min(c, b - r0)
      let (g2, l2) = try chunkActivations(n: n, s: s, l: l, full: (ga, la))
      chunkGlobal.withUnsafeMutableBufferPointer { cg in
        copyRows(views: 6, b: b, r0: r0, c: n, per: ch * s * s, from: global, to: cg.baseAddress!, toChunk: true)
        model.forward(cg.baseAddress!, g2)
      }
      chunkLocal.withUnsafeMutableBufferPointer { cl in
        copyRows(views: 2, b: b, r0: r0, c: n, per: ch * l * l, from: local, to: cl.baseAddress!, toChunk: true)
        model.forward(cl.baseAddress!, l2)
      }
      copyRows(views: 6, b: b, r0: r0, c: n, per: d, from: g2.embeddings, to: embGlobal.pointer, toChunk: false)
      copyRows(views: 2, b: b, r0: r0, c: n, per: d, from: l2.embeddings, to: embLocal.pointer, toChunk: false)
      r0 += n
    }
  }

  /// Activations for a chunk of `n` records (the last chunk may be smaller).
  var tailActs: (ViTActivations, ViTActivations)?
  func chunkActivations(n: Int, s: Int, l: Int, full: (ViTActivations, ViTActivations)) throws -> (ViTActivations, ViTActivations) {
    if n == chunkRecords { return full }
    if let t = tailActs, t.0.batch == 6 * n, t.0.height == s, t.1.height == l { return t }
    let t = (try model.makeActivations(batch: 6 * n, height: s, width: s), try model.makeActivations(batch: 2 * n, height: l, width: l))
    tailActs = t
    return t
  }

  /// Gradient caching, phase 3: for each chunk, forward again and backward with
  /// that chunk's rows of the embedding gradient; parameter gradients accumulate.
  /// The all-reduce of each bucket starts during the last chunk's backward pass.
  func backwardInChunks(global: UnsafePointer<Float>, local: UnsafePointer<Float>, b: Int, s: Int, l: Int) {
    let c = chunkRecords, d = model.config.width, ch = model.config.channels
    if chunkDGlobal.count != 6 * c * d { chunkDGlobal = [Float](repeating: 0, count: 6 * c * d) }
    if chunkDLocal.count != 2 * c * d { chunkDLocal = [Float](repeating: 0, count: 2 * c * d) }
    let buckets = model.backwardBuckets
    var pending: [CommRequest] = []
    var r0 = 0
    while r0 < b {
      let n = min(c, b - r0)
      let last = r0 + n >= b
      let (g2, l2) = try! chunkActivations(n: n, s: s, l: l, full: (globalActs!, localActs!))
      chunkLocal.withUnsafeMutableBufferPointer { cl in
        copyRows(views: 2, b: b, r0: r0, c: n, per: ch * l * l, from: local, to: cl.baseAddress!, toChunk: true)
        model.forward(cl.baseAddress!, l2)
      }
      chunkDLocal.withUnsafeMutableBufferPointer { dl in
        dLocal.withUnsafeBufferPointer { copyRows(views: 2, b: b, r0: r0, c: n, per: d, from: $0.baseAddress!, to: dl.baseAddress!, toChunk: true) }
        model.backward(l2, dEmbedding: dl.baseAddress!)
      }
      chunkGlobal.withUnsafeMutableBufferPointer { cg in
        copyRows(views: 6, b: b, r0: r0, c: n, per: ch * s * s, from: global, to: cg.baseAddress!, toChunk: true)
        model.forward(cg.baseAddress!, g2)
      }
      chunkDGlobal.withUnsafeMutableBufferPointer { dg in
        dGlobal.withUnsafeBufferPointer { copyRows(views: 6, b: b, r0: r0, c: n, per: d, from: $0.baseAddress!, to: dg.baseAddress!, toChunk: true) }
        if last && comm.size > 1 {
          model.backward(g2, dEmbedding: dg.baseAddress!) { i in
            pending.append(self.comm.allReduceSumStart(self.model.grads + buckets[i].offset, count: buckets[i].count))
            for r in pending { _ = r.test() }
          }
        } else {
          model.backward(g2, dEmbedding: dg.baseAddress!)
        }
      }
      r0 += n
    }
    for r in pending { r.wait() }
  }

  /// Forward, loss and backward (parameter gradients summed over ranks, no update).
  /// With gradient caching the backward pass reads the views again, so both
  /// buffers must stay valid until this returns; hence one call for both phases.
  public func forwardBackward(global: UnsafePointer<Float>, local: UnsafePointer<Float>, records b: Int, imageSize s: Int,
                              localSize l: Int, perm: [Int]) throws -> Result {
    defer { lastInput = nil }
    let r = try forwardLoss(global: global, local: local, records: b, imageSize: s, localSize: l, perm: perm)
    backward()
    return r
  }

  /// The whole step: forward, loss, backward, all-reduce, AdamW.
  @discardableResult
  public func run(global: UnsafePointer<Float>, local: UnsafePointer<Float>, records b: Int, imageSize s: Int,
                  localSize l: Int, perm: [Int], lr: Float, weightDecay: Float) throws -> Result {
    let c0 = comm.blockedSeconds
    let t0 = monotonic()
    var r = try forwardLoss(global: global, local: local, records: b, imageSize: s, localSize: l, perm: perm)
    let t1 = monotonic()
    let c1 = comm.blockedSeconds
    backward()
    lastInput = nil
    let t2 = monotonic()
    optimizer.step(params: model.params, grads: model.grads, lr: lr, weightDecay: weightDecay)
    let t3 = monotonic()
    r.forwardSeconds = t1 - t0
    r.backwardSeconds = t2 - t1
    r.optimizerSeconds = t3 - t2
    r.commSeconds = comm.blockedSeconds - c0
    r.gradientWaitSeconds = comm.blockedSeconds - c1
    return r
  }

  /// Embeddings of the last `forwardLoss`: `[6B, D]` global views and `[2B, D]` local views.
  public var globalEmbeddings: UnsafePointer<Float>? {
    if lastChunked { return UnsafePointer(embGlobal.pointer) }
    if lastDuplicateViews > 0 { return UnsafePointer(expandedEmb.pointer) }
    return globalActs.map { UnsafePointer($0.embeddings) }
  }
  public var localEmbeddings: UnsafePointer<Float>? {
    if lastChunked { return UnsafePointer(embLocal.pointer) }
    return localActs.map { UnsafePointer($0.embeddings) }
  }

  /// Bytes of activations currently held.
  public var activationBytes: Int {
    (globalActs?.bytes ?? 0) + (localActs?.bytes ?? 0) + (tailActs.map { $0.0.bytes + $0.1.bytes } ?? 0)
  }
}

@inline(__always) func monotonic() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
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
