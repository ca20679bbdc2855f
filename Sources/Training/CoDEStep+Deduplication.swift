import Foundation
import ViT

/// View deduplication (`CoDEStep.deduplicateViews`): the global views without the
/// augmented views that equal their base views, each view-major row's row in that batch
/// (`rowOf [6B]`), the embeddings expanded back to `[6B, D]`, and the embedding gradient
/// folded onto the compact rows.
final class DeduplicationBuffers {
  let compactGlobal = FloatBuffer(), expandedEmb = FloatBuffer(), compactDEmb = FloatBuffer()
  var rowOf: [Int] = []
  /// Views the last forward pass skipped.
  var duplicates = 0
}

extension CoDEStep {
  /// The global views `[6B, per]` to run through the network: `x.global` itself, or, when
  /// `x.unchangedAugmented` marks aug_real / aug_fake views equal to their real / fake views
  /// (and `deduplicateViews`), a copy without them. Sets `dedup.rowOf` and `dedup.duplicates`.
  func compactGlobalViews(_ x: Views) -> (UnsafePointer<Float>, Int) {
    let b = x.records, per = model.config.channels * x.imageSize * x.imageSize, global = x.global
    let ws = dedup
    if ws.rowOf.count != 6 * b { ws.rowOf = [Int](repeating: 0, count: 6 * b) }
    guard deduplicateViews, let unchanged = x.unchangedAugmented, unchanged.contains(true) else {
      for v in 0..<(6 * b) { ws.rowOf[v] = v }
      ws.duplicates = 0
      return (global, 6 * b)
    }
    precondition(unchanged.count == 2 * b, "unchangedAugmented has \(unchanged.count) entries for \(b) records")
    ws.compactGlobal.resize(6 * b * per)
    var j = 0, dup = 0
    for v in 0..<(6 * b) {
      // Rows 2B..<4B (aug_real, aug_fake) have their base view 2B rows earlier (real, fake).
      let base = v - 2 * b
      if v >= 2 * b, v < 4 * b, unchanged[base] {
        if dup == 0 { ws.compactGlobal.pointer.update(from: global, count: j * per) }  // the rows so far
        ws.rowOf[v] = ws.rowOf[base]
        dup += 1
        continue
      }
      if dup > 0 { (ws.compactGlobal.pointer + j * per).update(from: global + v * per, count: per) }
      ws.rowOf[v] = j
      j += 1
    }
    ws.duplicates = dup
    return (UnsafePointer(ws.compactGlobal.pointer), j)
  }

  /// `[6B, D]` embeddings from the compact batch's (`dedup.rowOf`).
  func expandEmbeddings(_ compact: UnsafePointer<Float>, b: Int, d: Int) -> UnsafeMutablePointer<Float> {
    let ws = dedup
    ws.expandedEmb.resize(6 * b * d)
    for v in 0..<(6 * b) { (ws.expandedEmb.pointer + v * d).update(from: compact + ws.rowOf[v] * d, count: d) }
    return ws.expandedEmb.pointer
  }

  /// Calls `body` with the gradient with respect to the embeddings of the batch that ran
  /// forward: `dGlobal` itself, or, after deduplication, its rows summed onto their compact rows.
  func withGlobalEmbeddingGradient(_ body: (UnsafePointer<Float>) -> Void) {
    let dg = UnsafePointer(dGlobal.pointer), ws = dedup
    guard ws.duplicates > 0 else { return body(dg) }
    let d = model.config.width, rows = ws.rowOf.count
    ws.compactDEmb.resize(rows * d)
    let out = ws.compactDEmb.pointer
    out.update(repeating: 0, count: rows * d)
    for v in 0..<rows {
      let dst = out + ws.rowOf[v] * d, src = dg + v * d
      for i in 0..<d { dst[i] += src[i] }
    }
    body(UnsafePointer(out))
  }
}
