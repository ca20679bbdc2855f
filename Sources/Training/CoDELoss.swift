import Kernels
import Foundation
import Randomness

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
  /// Where the G rows of a key matrix are: in blocks of `blockRows` contiguous rows of D
  /// floats, the blocks `blockStride` floats apart, so that row j starts at
  /// `base + (j / blockRows) * blockStride + (j % blockRows) * D`. The keys gathered from N
  /// ranks, rank-major `[N, 4, B, D]`, are blocks of B rows 4BD apart; `contiguous` is one
  /// `[G, D]` matrix.
  public struct RowBlocks: Sendable, Equatable {
    public var blockRows: Int, blockStride: Int
    public init(blockRows: Int, blockStride: Int) { self.blockRows = blockRows; self.blockStride = blockStride }
    /// One block: row j at `base + j * D`.
    public static let contiguous = RowBlocks(blockRows: Int.max, blockStride: 0)
    /// The keys of `ranks` ranks of `records` rows each, gathered rank-major `[N, 4, B, D]`.
    public static func rankMajor(records b: Int, dim d: Int) -> RowBlocks { RowBlocks(blockRows: b, blockStride: 4 * b * d) }
    @inline(__always) func offset(row j: Int, dim d: Int) -> Int {
      blockRows == Int.max ? j * d : (j / blockRows) * blockStride + (j % blockRows) * d
    }
  }
  /// Key embeddings of the whole global batch (G rows of D each, raw), laid out as `rows` says.
  public struct Keys {
    public var augReal, augFake, globalReal, globalFake: UnsafePointer<Float>
    public var rows: RowBlocks
    public init(augReal: UnsafePointer<Float>, augFake: UnsafePointer<Float>, globalReal: UnsafePointer<Float>, globalFake: UnsafePointer<Float>,
                rows: RowBlocks = .contiguous) {
      self.augReal = augReal; self.augFake = augFake; self.globalReal = globalReal; self.globalFake = globalFake
      self.rows = rows
    }
  }
  public struct QueryGrads {
    public var real, fake, localReal, localFake: UnsafeMutablePointer<Float>
    public init(real: UnsafeMutablePointer<Float>, fake: UnsafeMutablePointer<Float>, localReal: UnsafeMutablePointer<Float>, localFake: UnsafeMutablePointer<Float>) {
      self.real = real; self.fake = fake; self.localReal = localReal; self.localFake = localFake
    }
  }
  /// Gradients for the G rows of each key matrix, laid out as `rows` says.
  public struct KeyGrads {
    public var augReal, augFake, globalReal, globalFake: UnsafeMutablePointer<Float>
    public var rows: RowBlocks
    public init(augReal: UnsafeMutablePointer<Float>, augFake: UnsafeMutablePointer<Float>, globalReal: UnsafeMutablePointer<Float>, globalFake: UnsafeMutablePointer<Float>,
                rows: RowBlocks = .contiguous) {
      self.augReal = augReal; self.augFake = augFake; self.globalReal = globalReal; self.globalFake = globalFake
      self.rows = rows
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
  /// `perm` is the permutation of the global batch (length G). Allocates only when B, G
  /// or D differ from the previous call's.
  public func compute(
    queries q: Queries, keys k: Keys, local b: Int, global g: Int, offset: Int, dim d: Int, perm: [Int],
    dQueries dq: QueryGrads, dKeys dk: KeyGrads
  ) -> Value {
    precondition(perm.count == g, "perm has \(perm.count) entries, global batch is \(g)")
    let ws = workspace(b: b, g: g, d: d)
    // Normalised copies and norms: queries r, f, r_l, f_l; keys r', f', r_g, f_g.
    let nq = ws.queries, nk = ws.keys
    nq[0].set(q.real); nq[1].set(q.fake); nq[2].set(q.localReal); nq[3].set(q.localFake)
    nk[0].set(k.augReal, rows: k.rows); nk[1].set(k.augFake, rows: k.rows)
    nk[2].set(k.globalReal, rows: k.rows); nk[3].set(k.globalFake, rows: k.rows)
    let w = 1 / (2 * Double(g))
    // Positive rows of this rank's queries: pi(offset + i) for the global terms, offset + i for the multi-scale ones.
    for i in 0..<b {
      ws.permutedRows[i] = perm[offset + i]
      ws.directRows[i] = offset + i
    }
    // Twice a term's weighted sum (weight 1 / (2G)) is this rank's part of the term's mean.
    let globalReal = infoNCE(q: nq[0], pos: nk[0], posRows: ws.permutedRows, neg: nk[1], ws: ws, weight: w)  // InfoNCE(r, r'[pi], f')
    let multiscaleReal = infoNCE(q: nq[2], pos: nk[2], posRows: ws.directRows, neg: nk[3], ws: ws, weight: w)  // InfoNCE(r_l, r_g, f_g)
    let globalFake = infoNCE(q: nq[1], pos: nk[1], posRows: ws.permutedRows, neg: nk[0], ws: ws, weight: w)  // InfoNCE(f, f'[pi], r')
    let multiscaleFake = infoNCE(q: nq[3], pos: nk[3], posRows: ws.directRows, neg: nk[2], ws: ws, weight: w)  // InfoNCE(f_l, f_g, r_g)
    nq[0].backward(into: dq.real); nq[1].backward(into: dq.fake)
    nq[2].backward(into: dq.localReal); nq[3].backward(into: dq.localFake)
    nk[0].backward(into: dk.augReal, rows: dk.rows); nk[1].backward(into: dk.augFake, rows: dk.rows)
    nk[2].backward(into: dk.globalReal, rows: dk.rows); nk[3].backward(into: dk.globalFake, rows: dk.rows)
    return Value(real: globalReal + multiscaleReal, fake: globalFake + multiscaleFake,
                 terms: LossTerms(globalReal: 2 * globalReal, multiscaleReal: 2 * multiscaleReal,
                                  globalFake: 2 * globalFake, multiscaleFake: 2 * multiscaleFake))
  }

  /// Buffers of one shape (B queries, G keys, D dimensions), kept between calls.
  final class Workspace {
    let b: Int, g: Int, d: Int
    let queries: [Normalised], keys: [Normalised]
    /// Logits `S [B, G]` and their gradient.
    let s: UnsafeMutablePointer<Float>, ds: UnsafeMutablePointer<Float>
    let permutedRows: UnsafeMutablePointer<Int>, directRows: UnsafeMutablePointer<Int>
    init(b: Int, g: Int, d: Int) {
      self.b = b; self.g = g; self.d = d
      queries = (0..<4).map { _ in Normalised(rows: b, dim: d) }
      keys = (0..<4).map { _ in Normalised(rows: g, dim: d) }
      s = .allocate(capacity: b * g); s.initialize(repeating: 0, count: b * g)
      ds = .allocate(capacity: b * g); ds.initialize(repeating: 0, count: b * g)
      permutedRows = .allocate(capacity: b); permutedRows.initialize(repeating: 0, count: b)
      directRows = .allocate(capacity: b); directRows.initialize(repeating: 0, count: b)
    }
    deinit {
      s.deallocate(); ds.deallocate(); permutedRows.deallocate(); directRows.deallocate()
    }
  }
  var cached: Workspace?
  func workspace(b: Int, g: Int, d: Int) -> Workspace {
    if let w = cached, w.b == b, w.g == g, w.d == d { return w }
    let w = Workspace(b: b, g: g, d: d)
    cached = w
    return w
  }

  /// Sum over this rank's queries of `weight * term_i`, accumulating the
  /// gradients with respect to the normalised rows.
  func infoNCE(q qs: Normalised, pos ps: Normalised, posRows: UnsafeMutablePointer<Int>, neg ns: Normalised, ws: Workspace,
               weight: Double) -> Double {
    let b = ws.b, g = ws.g, d = ws.d
    let q = qs.z, pos = ps.z, neg = ns.z, s = ws.s, ds = ws.ds
    let invT = 1 / Double(temperature)
    // Negative logits S [B, G] = q neg^T / t.
    sgemm(transB: true, m: b, n: g, k: d, alpha: Float(invT), a: q, lda: d, b: neg, ldb: d, c: s, ldc: g, parallel: false)
    var total = 0.0
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
    sgemm(m: b, n: d, k: g, a: ds, lda: g, b: neg, ldb: d, beta: 1, c: qs.dz, ldc: d, parallel: false)
    sgemm(transA: true, m: g, n: d, k: b, a: ds, lda: g, b: q, ldb: d, beta: 1, c: ns.dz, ldc: d, parallel: false)
    return total
  }
}

/// Row-wise L2 normalisation `z = x / max(|x|, 1e-12)` (PyTorch `F.normalize`)
/// and its backward `dx = (dz - z (z . dz)) / |x|` (for `|x| > 1e-12`).
/// `z [rows, dim]` and `dz` are contiguous whatever the layout of `x` (`RowBlocks`).
final class Normalised {
  let rows: Int, dim: Int
  let z: UnsafeMutablePointer<Float>
  /// Gradient with respect to `z`, accumulated by the loss terms (zeroed by `set`).
  let dz: UnsafeMutablePointer<Float>
  let norms: UnsafeMutablePointer<Double>
  init(rows: Int, dim: Int) {
    self.rows = rows; self.dim = dim
    z = .allocate(capacity: rows * dim); z.initialize(repeating: 0, count: rows * dim)
    dz = .allocate(capacity: rows * dim); dz.initialize(repeating: 0, count: rows * dim)
    norms = .allocate(capacity: rows); norms.initialize(repeating: 0, count: rows)
  }
  deinit { z.deallocate(); dz.deallocate(); norms.deallocate() }

  func set(_ x0: UnsafePointer<Float>, rows layout: CoDELoss.RowBlocks = .contiguous) {
    dz.update(repeating: 0, count: rows * dim)
    for r in 0..<rows {
      let x = x0 + layout.offset(row: r, dim: dim)
      var s = 0.0
      for c in 0..<dim { s += Double(x[c]) * Double(x[c]) }
      let n = max(s.squareRoot(), 1e-12)
      norms[r] = n
      for c in 0..<dim { z[r * dim + c] = Float(Double(x[c]) / n) }
    }
  }
  func backward(into dx0: UnsafeMutablePointer<Float>, rows layout: CoDELoss.RowBlocks = .contiguous) {
    for r in 0..<rows {
      let dx = dx0 + layout.offset(row: r, dim: dim)
      var dot = 0.0
      for c in 0..<dim { dot += Double(z[r * dim + c]) * Double(dz[r * dim + c]) }
      let n = norms[r]
      for c in 0..<dim {
        dx[c] = n > 1e-12 ? Float((Double(dz[r * dim + c]) - Double(z[r * dim + c]) * dot) / n) : Float(Double(dz[r * dim + c]) / n)
      }
    }
  }
}

/// A permutation of `0..<n` with no fixed point (a derangement), drawn by Fisher-Yates
/// shuffles from `SplitMix64(seed:)` until one has no fixed point (at most 100 tries; then
/// the roll by one); for `n <= 1`, where no derangement exists, the identity. The CoDE
/// loss takes each global term's positive from another record of the same class this way.
///
/// Each shuffle index is `below(i + 1)`, an unbiased draw, so every derangement of `n` is
/// equally likely.
public func derangement(_ n: Int, seed: UInt64) -> [Int] {
  if n <= 1 { return Array(0..<n) }
  var rng = SplitMix64(seed: seed)
  for _ in 0..<100 {
    var p = Array(0..<n)
    for i in stride(from: n - 1, to: 0, by: -1) {
      let j = Int(rng.below(UInt64(i + 1)))
      p.swapAt(i, j)
    }
    if !p.enumerated().contains(where: { $0.offset == $0.element }) { return p }
  }
  return (0..<n).map { ($0 + 1) % n }
}
