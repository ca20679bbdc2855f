import Collectives
import Foundation

extension CoDEStep {
  /// Rank `rank`'s share of a view-major batch `[V, B, per]` of the global batch: rows
  /// `rank * B/N ..< (rank + 1) * B/N` of every view, `[V, B/N, per]` (the distributed
  /// contract above). `records` must be a multiple of `ranks`.
  public static func rankRows(_ all: [Float], views: Int, records b: Int, rank: Int, ranks: Int, per: Int) -> [Float] {
    precondition(b % ranks == 0, "\(b) records do not split over \(ranks) ranks")
    let lb = b / ranks, r0 = rank * lb
    var out: [Float] = []
    out.reserveCapacity(views * lb * per)
    for v in 0..<views { out += all[((v * b + r0) * per)..<((v * b + r0 + lb) * per)] }
    return out
  }

  /// The embeddings of the last step's eight views for the whole global batch (`[G, D]`
  /// each, global row order, gathered from every rank), named as `globalViewNames` and
  /// `localViewNames`. A collective: every rank calls it.
  public func gatheredEmbeddings() -> [(String, [Float])] {
    let d = model.config.width, n = comm.size
    guard let ge = globalEmbeddings, let le = localEmbeddings else { return [] }
    let bd = dGlobal.count / 6, g = n * bd / d
    func gather(_ p: UnsafePointer<Float>) -> [Float] {
      [Float](unsafeUninitializedCapacity: g * d) { buf, count in
        comm.allGather(p, count: bd, into: buf.baseAddress!)
        count = g * d
      }
    }
    var out: [(String, [Float])] = []
    for (i, name) in Self.globalViewNames.enumerated() { out.append((name, gather(ge + i * bd))) }
    for (i, name) in Self.localViewNames.enumerated() { out.append((name, gather(le + i * bd))) }
    return out
  }
}
