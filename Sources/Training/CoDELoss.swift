import Kernels
import Foundation

/// The CoDE multi-scale InfoNCE loss and its gradient.
///
/// With `z = x / max(|x|, 1e-12)` (rows L2-normalised) and temperature `t`,
/// `InfoNCE(q, p, N)` for query i is
/// `-log( e^{q_i.p_i/t} / (e^{q_i.p_i/t} + sum_j e^{q_i.n_j/t}) )`, averaged
/// over the G queries of the global batch; every query sees all G rows of N.
/// With `pi` a permutation of the global batch:
///
///     L_real = ( InfoNCE(r,  r'[pi], f')  + InfoNCE(r_l, r_g, f_g) ) / 2
///     L_fake = ( InfoNCE(f,  f'[pi], r')  + InfoNCE(f_l, f_g, r_g) ) / 2
///     L      = L_real + L_fake
///
/// Distributed form: this rank holds the queries `r, f, r_l, f_l` of global
/// rows `offset ..< offset + B` and the gathered keys `r', f', r_g, f_g` of all
/// G rows. It returns its share of L (the sum over its queries divided by G;
/// the shares of all ranks add up to L), the gradient for its queries, and a
/// gradient for all G rows of each key matrix (to be summed across ranks and
/// returned to the owners of the rows).
public final class CoDELoss {
  public let temperature: Float
  public init(temperature: Float = 0.1) { self.temperature = temperature }

  /// Embeddings of the queries held by this rank (`[B, D]` each, raw).
  public struct Queries {
    public var real, fake, localReal, localFake: UnsafePointer<Float>
    public init(real: UnsafePointer<Float>, fake: UnsafePointer<Float>, localReal: UnsafePointer<Float>, localFake: UnsafePointer<Float>) {
      self.real = real; self.fake = fake; self.localReal = localReal; self.localFake = localFake
    }
  }
  /// Key embeddings of the whole global batch (`[G, D]` each, raw).
  public struct Keys {
    public var augReal, augFake, globalReal, globalFake: UnsafePointer<Float>
    public init(augReal: UnsafePointer<Float>, augFake: UnsafePointer<Float>, globalReal: UnsafePointer<Float>, globalFake: UnsafePointer<Float>) {
      self.augReal = augReal; self.augFake = augFake; self.globalReal = globalReal; self.globalFake = globalFake
    }
  }
  public struct QueryGrads {
    public var real, fake, localReal, localFake: UnsafeMutablePointer<Float>
    public init(real: UnsafeMutablePointer<Float>, fake: UnsafeMutablePointer<Float>, localReal: UnsafeMutablePointer<Float>, localFake: UnsafeMutablePointer<Float>) {
      self.real = real; self.fake = fake; self.localReal = localReal; self.localFake = localFake
    }
  }
  public struct KeyGrads {
    public var augReal, augFake, globalReal, globalFake: UnsafeMutablePointer<Float>
    public init(augReal: UnsafeMutablePointer<Float>, augFake: UnsafeMutablePointer<Float>, globalReal: UnsafeMutablePointer<Float>, globalFake: UnsafeMutablePointer<Float>) {
      self.augReal = augReal; self.augFake = augFake; self.globalReal = globalReal; self.globalFake = globalFake
    }
  }
  /// This rank's share of each loss: `real + fake = total`.
  public struct Value {
    public var real: Double, fake: Double
    /// This rank's share of each of the four InfoNCE terms (the sum over its queries
    /// divided by G, so that the shares of all ranks add up to the term):
    /// `terms.globalReal + terms.multiscaleReal == 2 * real` up to rounding, same for fake.
    public var terms = LossTerms()
    public var total: Double { real + fake }
  }

  /// The four InfoNCE terms, each the mean over the G queries of the global batch:
  /// `globalReal = InfoNCE(r, r'[pi], f')`, `multiscaleReal = InfoNCE(r_l, r_g, f_g)`,
  /// `globalFake = InfoNCE(f, f'[pi], r')`, `multiscaleFake = InfoNCE(f_l, f_g, r_g)`;
  /// `L_real = (globalReal + multiscaleReal) / 2`, `L_fake = (globalFake + multiscaleFake) / 2`.
  /// At a constant embedding every logit of a query is equal, so each term is
  /// `ln(1 + G)` (one positive and G negatives): `CoDELoss.collapseValue(globalBatch:)`.
  public struct LossTerms: Equatable {
    public var globalReal = 0.0, multiscaleReal = 0.0, globalFake = 0.0, multiscaleFake = 0.0
    public init() {}
    public init(globalReal: Double, multiscaleReal: Double, globalFake: Double, multiscaleFake: Double) {
      self.globalReal = globalReal; self.multiscaleReal = multiscaleReal
      self.globalFake = globalFake; self.multiscaleFake = multiscaleFake
    }
    /// In the order of `names`.
    public var values: [Double] { [globalReal, globalFake, multiscaleReal, multiscaleFake] }
    /// Metric names (metrics.jsonl, TensorBoard `train/...`, `cde step` output), in the order of `values`.
    public static let names = ["loss_global_real", "loss_global_fake", "loss_multiscale_real", "loss_multiscale_fake"]
  }

  /// `ln(1 + G)`: the value of each InfoNCE term when all embeddings are equal (CoDE's
  /// collapse plateau); the total loss `L` is then `2 ln(1 + G)`.
  public static func collapseValue(globalBatch g: Int) -> Double { log(1 + Double(g)) }

  /// Computes the loss share and writes (overwrites) all gradients.
  /// `perm` is the permutation of the global batch (length G).
  public func compute(
    queries q: Queries, keys k: Keys, local b: Int, global g: Int, offset: Int, dim d: Int, perm: [Int],
    dQueries dq: QueryGrads, dKeys dk: KeyGrads
  ) -> Value {
    precondition(perm.count == g, "perm has \(perm.count) entries, global batch is \(g)")
    // Normalised copies and norms.
    let nq = (0..<4).map { _ in Normalised(rows: b, dim: d) }
    let nk = (0..<4).map { _ in Normalised(rows: g, dim: d) }
    nq[0].set(q.real); nq[1].set(q.fake); nq[2].set(q.localReal); nq[3].set(q.localFake)
    nk[0].set(k.augReal); nk[1].set(k.augFake); nk[2].set(k.globalReal); nk[3].set(k.globalFake)
    let w = 1 / (2 * Double(g))
    let permuted = (0..<b).map { perm[offset + $0] }
    let direct = (0..<b).map { offset + $0 }
    var real = 0.0, fake = 0.0
    var share = [0.0, 0.0, 0.0, 0.0]
    // (query set, positive key set, positive rows, negative key set)
    let terms: [(Int, Int, [Int], Int, Bool)] = [
      (0, 0, permuted, 1, true),  // InfoNCE(r, r'[pi], f')
      (2, 2, direct, 3, true),  // InfoNCE(r_l, r_g, f_g)
      (1, 1, permuted, 0, false),  // InfoNCE(f, f'[pi], r')
      (3, 3, direct, 2, false),  // InfoNCE(f_l, f_g, r_g)
    ]
    for (t, (qi, pi, rows, ni, isReal)) in terms.enumerated() {
      let v = infoNCE(q: nq[qi], pos: nk[pi], posRows: rows, neg: nk[ni], b: b, g: g, d: d, weight: w)
      if isReal { real += v } else { fake += v }
      share[t] = 2 * v  // weight 1 / (2G): twice the share is this rank's part of the term's mean
    }
    nq[0].backward(into: dq.real); nq[1].backward(into: dq.fake)
    nq[2].backward(into: dq.localReal); nq[3].backward(into: dq.localFake)
    nk[0].backward(into: dk.augReal); nk[1].backward(into: dk.augFake)
    nk[2].backward(into: dk.globalReal); nk[3].backward(into: dk.globalFake)
    return Value(real: real, fake: fake,
                 terms: LossTerms(globalReal: share[0], multiscaleReal: share[1], globalFake: share[2], multiscaleFake: share[3]))
  }

  /// Sum over this rank's queries of `weight * term_i`, accumulating the
  /// gradients with respect to the normalised rows.
  func infoNCE(
    q qs: Normalised, pos ps: Normalised, posRows: [Int], neg ns: Normalised, b: Int, g: Int, d: Int, weight: Double
  ) -> Double {
    let q = qs.z, pos = ps.z, neg = ns.z
    let invT = 1 / Double(temperature)
    // Negative logits S [B, G] = q neg^T / t.
    var s = [Float](repeating: 0, count: b * g)
    q.withUnsafeBufferPointer { qp in
      neg.withUnsafeBufferPointer { np in
        s.withUnsafeMutableBufferPointer { sp in
          sgemm(transB: true, m: b, n: g, k: d, alpha: Float(invT), a: qp.baseAddress!, lda: d, b: np.baseAddress!,
                ldb: d, c: sp.baseAddress!, ldc: g, parallel: false)
        }
      }
    }
    var total = 0.0
    var ds = [Float](repeating: 0, count: b * g)
    for i in 0..<b {
      let pr = posRows[i]
      var sp = 0.0
      for c in 0..<d { sp += Double(q[i * d + c]) * Double(pos[pr * d + c]) }
      sp *= invT
      var mx = sp
      for j in 0..<g { mx = max(mx, Double(s[i * g + j])) }
      var sum = exp(sp - mx)
      for j in 0..<g { sum += exp(Double(s[i * g + j]) - mx) }
      let lse = mx + log(sum)
      total += weight * (lse - sp)
      // d/ds_pos = a_pos - 1, d/ds_j = a_j (times weight), then through s = z.z'/t.
      let dsp = weight * (exp(sp - lse) - 1) * invT
      for j in 0..<g { ds[i * g + j] = Float(weight * exp(Double(s[i * g + j]) - lse) * invT) }
      for c in 0..<d {
        qs.dz[i * d + c] += Float(dsp * Double(pos[pr * d + c]))
        ps.dz[pr * d + c] += Float(dsp * Double(q[i * d + c]))
      }
    }
    // dq += dS neg ; dneg += dS^T q
    ds.withUnsafeBufferPointer { dsp in
      neg.withUnsafeBufferPointer { np in
        qs.dz.withUnsafeMutableBufferPointer { dqp in
          sgemm(m: b, n: d, k: g, a: dsp.baseAddress!, lda: g, b: np.baseAddress!, ldb: d, beta: 1,
                c: dqp.baseAddress!, ldc: d, parallel: false)
        }
      }
      q.withUnsafeBufferPointer { qp in
        ns.dz.withUnsafeMutableBufferPointer { dnp in
          sgemm(transA: true, m: g, n: d, k: b, a: dsp.baseAddress!, lda: g, b: qp.baseAddress!, ldb: d, beta: 1,
                c: dnp.baseAddress!, ldc: d, parallel: false)
        }
      }
    }
    return total
  }
}

/// Row-wise L2 normalisation `z = x / max(|x|, 1e-12)` (PyTorch `F.normalize`)
/// and its backward `dx = (dz - z (z . dz)) / |x|` (for `|x| > 1e-12`).
final class Normalised {
  let rows: Int, dim: Int
  var z: [Float]
  /// Gradient with respect to `z`, accumulated by the loss terms.
  var dz: [Float]
  var norms: [Double]
  init(rows: Int, dim: Int) {
    self.rows = rows; self.dim = dim
    z = [Float](repeating: 0, count: rows * dim)
    dz = [Float](repeating: 0, count: rows * dim)
    norms = [Double](repeating: 0, count: rows)
  }
  func set(_ x: UnsafePointer<Float>) {
    for r in 0..<rows {
      var s = 0.0
      for c in 0..<dim { s += Double(x[r * dim + c]) * Double(x[r * dim + c]) }
      let n = max(s.squareRoot(), 1e-12)
      norms[r] = n
      for c in 0..<dim { z[r * dim + c] = Float(Double(x[r * dim + c]) / n) }
    }
  }
  func backward(into dx: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
      var dot = 0.0
      for c in 0..<dim { dot += Double(z[r * dim + c]) * Double(dz[r * dim + c]) }
      let n = norms[r]
      for c in 0..<dim {
        dx[r * dim + c] = n > 1e-12 ? Float((Double(dz[r * dim + c]) - Double(z[r * dim + c]) * dot) / n) : Float(Double(dz[r * dim + c]) / n)
      }
    }
  }
}

/// A permutation of `0..<n` with no fixed point (a derangement) drawn from
/// `rng`; for `n == 1` (no derangement exists) the identity, for a failed draw
/// the roll by one, as DESIGN.md says.
public func derangement(_ n: Int, seed: UInt64) -> [Int] {
  if n <= 1 { return Array(0..<n) }
  var state = seed
  func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  for _ in 0..<100 {
    var p = Array(0..<n)
    for i in stride(from: n - 1, to: 0, by: -1) {
      let j = Int(next() % UInt64(i + 1))
      p.swapAt(i, j)
    }
    if !p.enumerated().contains(where: { $0.offset == $0.element }) { return p }
  }
  return (0..<n).map { ($0 + 1) % n }
}
