import Dispatch
import Foundation
import Imaging

/// An image that could not be embedded, and why (one line naming it).
public struct EmbedFailure: Sendable, Equatable {
  /// Index of the image in the list given to `ImageEmbedder.run`.
  public var index: Int
  public var source: String
  public var message: String
}

/// Embeddings of a list of images, in list order, without the images that failed.
public struct EmbedResult: Sendable {
  /// Row-major `[rows.count, D]`.
  public var embeddings: [Float]
  public var dimension: Int
  /// Index into the input list of each row.
  public var rows: [Int]
  public var failures: [EmbedFailure]
}

/// Embeds images in batches: while the model runs on batch i (its kernels use
/// `Threads.count` workers), the images of batch i + 1 are decoded, preprocessed and
/// normalised in parallel (`DispatchQueue.concurrentPerform`, one image per task) into a
/// second buffer. An image that cannot be read or decoded is reported and left out;
/// the others go on.
public final class ImageEmbedder {
  public let model: EmbeddingModel
  public let preprocess: EmbedPreprocess
  public let batchSize: Int

  public init(model: EmbeddingModel, preprocess: EmbedPreprocess, batchSize: Int = 4) {
    precondition(batchSize > 0, "batch size must be positive")
    self.model = model
    self.preprocess = preprocess
    self.batchSize = batchSize
  }

  /// One input tensor `[k, C, S, S]` being filled, and which of its slots failed.
  final class Batch: @unchecked Sendable {
    let pixels: UnsafeMutablePointer<Float>
    let per: Int
    var start = 0, count = 0
    var errors: [String?]
    init(capacity: Int, per: Int) {
      self.per = per
      pixels = .allocate(capacity: capacity * per)
      pixels.initialize(repeating: 0, count: capacity * per)
      errors = Array(repeating: nil, count: capacity)
    }
    deinit { pixels.deallocate() }
  }

  /// Decodes, preprocesses and normalises `items[start ..< start + count]` into `b`.
  func fill(_ b: Batch, _ items: [ImageItem], start: Int, count: Int) {
    b.start = start
    b.count = count
    let s = model.imageSize, norm = model.normaliser, pre = preprocess
    var errs = [String?](repeating: nil, count: count)
    errs.withUnsafeMutableBufferPointer { e in
      let ep = e.baseAddress!
      DispatchQueue.concurrentPerform(iterations: count) { j in
        do {
          let img = try items[start + j].load()
          guard img.width > 0, img.height > 0 else { throw EvaluationError(.badFile(path: items[start + j].source), "\(items[start + j].source): empty image") }
          norm.normalise(pre.apply(img, size: s), into: b.pixels + j * b.per)
        } catch {
          ep[j] = "\(error)"
        }
      }
    }
    b.errors = errs
  }

  /// Embeds `items` in order. `progress(done, total)` is called after every batch on the
  /// calling thread. Throws only if the model itself fails; per-image problems are in
  /// `failures`.
  public func run(_ items: [ImageItem], progress: ((Int, Int) -> Void)? = nil) throws -> EmbedResult {
    let d = model.dimension, s = model.imageSize, c = model.config.channels, per = c * s * s
    guard c == 3 else { throw EvaluationError(.invalidArgument, "the model takes \(c) input channels; images are embedded as RGB (3 channels)") }
    var out = EmbedResult(embeddings: [], dimension: d, rows: [], failures: [])
    out.embeddings.reserveCapacity(items.count * d)
    let n = items.count
    if n == 0 { return out }
    let bufs = [Batch(capacity: batchSize, per: per), Batch(capacity: batchSize, per: per)]
    let queue = DispatchQueue(label: "cde.embed.prefetch")
    let group = DispatchGroup()
    fill(bufs[0], items, start: 0, count: min(batchSize, n))
    var cur = 0
    var done = 0
    while true {
      let b = bufs[cur]
      let nextStart = b.start + b.count
      if nextStart < n {
        let nb = bufs[1 - cur], k = min(batchSize, n - nextStart)
        queue.async(group: group) { self.fill(nb, items, start: nextStart, count: k) }
      }
      // The whole batch goes through the model (a failed slot holds stale pixels whose
      // row is dropped), so that only two batch shapes ever need activations.
      var good: [Int] = []
      for j in 0..<b.count {
        if let msg = b.errors[j] {
          out.failures.append(EmbedFailure(index: b.start + j, source: items[b.start + j].source, message: msg))
        } else {
          good.append(j)
        }
      }
      if !good.isEmpty {
        let e = try model.embed(b.pixels, count: b.count, size: s)
        for j in good {
          out.rows.append(b.start + j)
          out.embeddings += e[(j * d)..<((j + 1) * d)]
        }
      }
      done += b.count
      progress?(done, n)
      group.wait()
      if nextStart >= n { break }
      cur = 1 - cur
    }
    return out
  }
}
