import Collectives
import Foundation
import ViT

/// Gradient caching (`CoDEStep.chunkRecords`): all embeddings of the step, one chunk's
/// contiguous views and embedding gradients, and the activations of a short last chunk.
final class GradientCacheBuffers {
  let embGlobal = FloatBuffer(), embLocal = FloatBuffer()
  let chunkGlobal = FloatBuffer(), chunkLocal = FloatBuffer(), chunkDGlobal = FloatBuffer(), chunkDLocal = FloatBuffer()
  var tailActs: (ViTActivations, ViTActivations)?
  /// Whether the last forward pass ran chunked (its embeddings are in embGlobal/embLocal).
  var lastChunked = false
}

extension CoDEStep {
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
  func embedInChunks(_ x: Views) throws {
    let b = x.records, s = x.imageSize, l = x.localSize
    let c = chunkRecords, d = model.config.width, ch = model.config.channels, ws = cache
    let ga = try activations(&globalActs, n: 6 * c, size: s)
    let la = try activations(&localActs, n: 2 * c, size: l)
    ws.embGlobal.resize(6 * b * d)
    ws.embLocal.resize(2 * b * d)
    ws.chunkGlobal.resize(6 * c * ch * s * s)
    ws.chunkLocal.resize(2 * c * ch * l * l)
    var r0 = 0
    while r0 < b {
      let n = min(c, b - r0)
      let (g2, l2) = try chunkActivations(n: n, s: s, l: l, full: (ga, la))
      copyRows(views: 6, b: b, r0: r0, c: n, per: ch * s * s, from: x.global, to: ws.chunkGlobal.pointer, toChunk: true)
      model.forward(ws.chunkGlobal.pointer, g2)
      copyRows(views: 2, b: b, r0: r0, c: n, per: ch * l * l, from: x.local, to: ws.chunkLocal.pointer, toChunk: true)
      model.forward(ws.chunkLocal.pointer, l2)
      copyRows(views: 6, b: b, r0: r0, c: n, per: d, from: g2.embeddings, to: ws.embGlobal.pointer, toChunk: false)
      copyRows(views: 2, b: b, r0: r0, c: n, per: d, from: l2.embeddings, to: ws.embLocal.pointer, toChunk: false)
      r0 += n
    }
  }

  /// Activations for a chunk of `n` records (the last chunk may be smaller).
  func chunkActivations(n: Int, s: Int, l: Int, full: (ViTActivations, ViTActivations)) throws -> (ViTActivations, ViTActivations) {
    if n == chunkRecords { return full }
    if let t = cache.tailActs, t.0.batch == 6 * n, t.0.height == s, t.1.height == l { return t }
    let t = (try model.makeActivations(batch: 6 * n, height: s, width: s), try model.makeActivations(batch: 2 * n, height: l, width: l))
    cache.tailActs = t
    return t
  }

  /// Gradient caching, phase 3: for each chunk, forward again and backward with
  /// that chunk's rows of the embedding gradient; parameter gradients accumulate.
  /// The all-reduce of each bucket starts during the last chunk's backward pass.
  func backwardInChunks(_ x: Views) {
    let b = x.records, s = x.imageSize, l = x.localSize
    let c = chunkRecords, d = model.config.width, ch = model.config.channels, ws = cache
    ws.chunkDGlobal.resize(6 * c * d)
    ws.chunkDLocal.resize(2 * c * d)
    let buckets = model.backwardBuckets
    var pending: [CommRequest] = []
    var r0 = 0
    while r0 < b {
      let n = min(c, b - r0)
      let last = r0 + n >= b
      let (g2, l2) = try! chunkActivations(n: n, s: s, l: l, full: (globalActs!, localActs!))
      copyRows(views: 2, b: b, r0: r0, c: n, per: ch * l * l, from: x.local, to: ws.chunkLocal.pointer, toChunk: true)
      model.forward(ws.chunkLocal.pointer, l2)
      copyRows(views: 2, b: b, r0: r0, c: n, per: d, from: dLocal.pointer, to: ws.chunkDLocal.pointer, toChunk: true)
      model.backward(l2, dEmbedding: ws.chunkDLocal.pointer)
      copyRows(views: 6, b: b, r0: r0, c: n, per: ch * s * s, from: x.global, to: ws.chunkGlobal.pointer, toChunk: true)
      model.forward(ws.chunkGlobal.pointer, g2)
      copyRows(views: 6, b: b, r0: r0, c: n, per: d, from: dGlobal.pointer, to: ws.chunkDGlobal.pointer, toChunk: true)
      if last && comm.size > 1 {
        model.backward(g2, dEmbedding: ws.chunkDGlobal.pointer) { i in
          pending.append(self.comm.allReduceSumStart(self.model.grads + buckets[i].offset, count: buckets[i].count))
          for r in pending { _ = r.test() }
        }
      } else {
        model.backward(g2, dEmbedding: ws.chunkDGlobal.pointer)
      }
      r0 += n
    }
    for r in pending { r.wait() }
  }
}
