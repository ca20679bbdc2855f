import Foundation
import XCTest
import Training

/// `CoDELoss.compute` against the InfoNCE closed form evaluated here in double precision:
/// `InfoNCE(q, p, N) = mean_i -log(e^{z_i.p_i/t} / (e^{z_i.p_i/t} + sum_j e^{z_i.n_j/t}))`
/// over L2-normalised rows, with the four terms of the CoDE loss.
final class CoDELossTests: XCTestCase {
  /// Deterministic `[rows, d]` values (no generator): `sin(1.37 k + 0.71 salt) + 0.3 cos(0.5 k)`.
  func matrix(_ rows: Int, _ d: Int, salt: Int) -> [Float] {
    (0..<(rows * d)).map { k in Float(sin(1.37 * Double(k) + 0.71 * Double(salt)) + 0.3 * cos(0.5 * Double(k))) }
  }

  func normalised(_ x: [Float], _ d: Int) -> [[Double]] {
    stride(from: 0, to: x.count, by: d).map { o in
      let row = x[o..<(o + d)].map(Double.init)
      let n = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
      return row.map { $0 / n }
    }
  }

  /// The closed form of one term: queries `q`, positive of query i at row `positive[i]` of `p`, negatives all rows of `n`.
  func infoNCE(_ q: [[Double]], _ p: [[Double]], positive: [Int], _ n: [[Double]], t: Double) -> Double {
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    var sum = 0.0
    for i in q.indices {
      let pos = exp(dot(q[i], p[positive[i]]) / t)
      let neg = n.reduce(0.0) { $0 + exp(dot(q[i], $1) / t) }
      sum += -log(pos / (pos + neg))
    }
    return sum / Double(q.count)
  }

  struct Batch {
    var queries: [[Float]]  // r, f, r_l, f_l: [G, D] each
    var keys: [[Float]]  // r', f', r_g, f_g: [G, D] each
  }

  /// `compute` for the queries of global rows `offset ..< offset + b` against all G keys.
  func share(_ loss: CoDELoss, _ x: Batch, b: Int, g: Int, offset: Int, d: Int, perm: [Int]) -> CoDELoss.Value {
    func copy(_ a: ArraySlice<Float>) -> UnsafeMutablePointer<Float> {
      let p = UnsafeMutablePointer<Float>.allocate(capacity: a.count)
      p.initialize(from: Array(a), count: a.count)
      return p
    }
    func zeros(_ n: Int) -> UnsafeMutablePointer<Float> {
      let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
      p.initialize(repeating: 0, count: n)
      return p
    }
    let q = x.queries.map { copy($0[(offset * d)..<((offset + b) * d)]) }
    let k = x.keys.map { copy($0[...]) }
    let dq = (0..<4).map { _ in zeros(b * d) }, dk = (0..<4).map { _ in zeros(g * d) }
    defer { for p in q + k + dq + dk { p.deallocate() } }
    return loss.compute(
      queries: .init(real: q[0], fake: q[1], localReal: q[2], localFake: q[3]),
      keys: .init(augReal: k[0], augFake: k[1], globalReal: k[2], globalFake: k[3]),
      local: b, global: g, offset: offset, dim: d, perm: perm,
      dQueries: .init(real: dq[0], fake: dq[1], localReal: dq[2], localFake: dq[3]),
      dKeys: .init(augReal: dk[0], augFake: dk[1], globalReal: dk[2], globalFake: dk[3]))
  }

  /// G = 6 rows of D = 5, temperature 0.1: the four terms, L_real, L_fake and L equal the closed form;
  /// the shares of two "ranks" of 3 queries each add up to the one-rank value.
  func testFourTermsMatchTheClosedForm() {
    let g = 6, d = 5, t = 0.1
    let perm = [3, 0, 5, 1, 2, 4]
    let x = Batch(queries: (0..<4).map { matrix(g, d, salt: $0) }, keys: (4..<8).map { matrix(g, d, salt: $0) })
    let z = (x.queries + x.keys).map { normalised($0, d) }
    let (r, f, rl, fl, ra, fa, rg, fg) = (z[0], z[1], z[2], z[3], z[4], z[5], z[6], z[7])
    let id = Array(0..<g)
    let want = CoDELoss.LossTerms(globalReal: infoNCE(r, ra, positive: perm, fa, t: t),
                                  multiscaleReal: infoNCE(rl, rg, positive: id, fg, t: t),
                                  globalFake: infoNCE(f, fa, positive: perm, ra, t: t),
                                  multiscaleFake: infoNCE(fl, fg, positive: id, rg, t: t))
    let loss = CoDELoss(temperature: Float(t))
    let v = share(loss, x, b: g, g: g, offset: 0, d: d, perm: perm)
    for (got, ref, name) in zip(zip(v.terms.values, want.values), CoDELoss.LossTerms.names).map({ ($0.0, $0.1, $1) }) {
      XCTAssertEqual(got, ref, accuracy: 1e-5 * ref, name)
    }
    XCTAssertEqual(v.real, (want.globalReal + want.multiscaleReal) / 2, accuracy: 1e-5 * v.real)
    XCTAssertEqual(v.fake, (want.globalFake + want.multiscaleFake) / 2, accuracy: 1e-5 * v.fake)
    let halves = [0, 3].map { share(loss, x, b: 3, g: g, offset: $0, d: d, perm: perm) }
    XCTAssertEqual(halves[0].total + halves[1].total, v.total, accuracy: 1e-9 * v.total)
  }

  /// Every query, positive and negative the same vector: each logit is 1/t, so each term is
  /// -log(e^{1/t} / ((1 + G) e^{1/t})) = ln(1 + G), and L = 2 ln(1 + G).
  func testIdenticalEmbeddingsGiveLnOnePlusG() {
    let g = 8, d = 4
    let row: [Float] = [0.5, -1.25, 2, 0.75]
    let same = (0..<g).flatMap { _ in row }
    let x = Batch(queries: Array(repeating: same, count: 4), keys: Array(repeating: same, count: 4))
    let v = share(CoDELoss(temperature: 0.1), x, b: g, g: g, offset: 0, d: d, perm: derangement(g, seed: 2))
    let want = log(1 + Double(g))
    XCTAssertEqual(want, CoDELoss.collapseValue(globalBatch: g))
    for term in v.terms.values { XCTAssertEqual(term, want, accuracy: 1e-5) }
    XCTAssertEqual(v.total, 2 * want, accuracy: 2e-5)
  }
}
