import Kernels

/// Everything one forward pass keeps for its backward pass, for a fixed batch
/// shape `[N, C, H, W]`, in one allocation reused across steps.
///
/// Per block l < depth-1 (T = 1 + G tokens, D width, M MLP width, H heads):
/// `x_l [N,T,D]` (block input), `ln1 [N,T,D]`, `mean1, rstd1 [N*T]`,
/// `qkv [N,T,3D]`, `probs [N,H,T,T]` (rows padded, `Attention.probsCount`), `atto [N,T,D]`, `xmid [N,T,D]`,
/// `ln2 [N,T,D]`, `mean2, rstd2 [N*T]`, `dgelu [N,T,M]` (GELU derivative at
/// the fc1 output), `g [N,T,M]` (GELU output).
///
/// The last block feeds only its class token to the final LayerNorm, so after
/// its qkv projection it works on the class rows alone: `probs [N,H,T]`,
/// `atto, xmid, ln2 [R,D]`, `mean2, rstd2 [N]`, `dgelu, g [R,M]`, and its
/// output `x_depth [R,D]`, with `R = classRows >= N` (rows N..<R are padding). Plus the patch columns and the backward scratch.
public final class ViTActivations {
  /// Images the buffers were sized for.
  public let capacity: Int
  /// Images the next forward pass runs on (`capacity` unless `setBatch` lowered it):
  /// every buffer is image-major, so a smaller batch uses the first rows of each.
  public private(set) var batch: Int
  public let height: Int, width: Int
  public let gridH: Int, gridW: Int
  public var gridTokens: Int { gridH * gridW }
  public var tokens: Int { gridH * gridW + 1 }

  struct Layer {
    let ln1, mean1, rstd1, qkv, probs, atto, xmid, ln2, mean2, rstd2, dgelu, g: UnsafeMutablePointer<Float>
  }

  let arena: UnsafeMutablePointer<Float>
  public let arenaCount: Int
  let xs: [UnsafeMutablePointer<Float>]
  let layers: [Layer]
  let cols, patches, posGrid: UnsafeMutablePointer<Float>
  /// `[N, D]`: the class token after the final LayerNorm.
  public let embeddings: UnsafeMutablePointer<Float>
  let meanF, rstdF: UnsafeMutablePointer<Float>
  /// Backward scratch: `dResidual [N*T, D]` (gradient of the residual stream between
  /// blocks), `dSublayer [N*T, D]` (gradient at a sublayer's D-wide input or output:
  /// LayerNorm output, attention output), `dHidden [N*T, max(3D, M)]` (gradient of the
  /// wide activations: qkv, MLP hidden), `dcls [N, D]`, attention
  /// `[threads, Attention.scratchCount]`, reduction partials.
  let dResidual, dSublayer, dHidden, dcls, attnScratch, partial: UnsafeMutablePointer<Float>
  /// Rows of the last block's class-row buffers: the batch padded to
  /// `minClassRows`. OpenBLAS takes a different "small matrix" code path with
  /// different rounding when M*N*K is small, so GEMMs over only a few class rows
  /// would make an image's embedding depend on how many images share its
  /// batch (e.g. on the number of ranks). Padded GEMMs keep every row's result
  /// equal to the one of a large call; the padding rows hold finite values that
  /// nothing reads and are left out of every gradient sum.
  let classRows: Int
  static let minClassRows = 64
  /// Worker count the attention scratch was sized for.
  let scratchThreads: Int

  /// Runs the next forward (and its backward) on `n <= capacity` images.
  public func setBatch(_ n: Int) {
    precondition(n >= 1 && n <= capacity, "batch \(n) outside 1...\(capacity)")
    batch = n
  }

  init(config c: ViTConfig, batch n: Int, height: Int, width: Int) {
    capacity = n; batch = n; self.height = height; self.width = width
    gridH = height / c.patch; gridW = width / c.patch
    classRows = Swift.max(n, ViTActivations.minClassRows)
    let g = gridH * gridW, t = g + 1, d = c.width, m = c.mlpDim, nt = n * t, h = c.heads
    let probsCount: Int = Attention.probsCount(n: n, t: t, heads: h, headDim: c.headDim)
    func full() -> [Int] { [nt * d, nt, nt, nt * 3 * d, probsCount, nt * d, nt * d, nt * d, nt, nt, nt * m, nt * m] }
    let cr = Swift.max(n, ViTActivations.minClassRows)
    func last() -> [Int] { [nt * d, nt, nt, nt * 3 * d, n * h * t, cr * d, cr * d, cr * d, n, n, cr * m, cr * m] }
    let threads = max(Threads.count, 1)
    scratchThreads = threads
    let partialCount = max(LayerNorm.scratchCount(n: nt, c: d), Linear.scratchCount(n: nt, outF: max(3 * d, m)))
    var sizes: [Int] = []
    for _ in 0..<c.depth { sizes.append(nt * d) }
    sizes.append(cr * d)
    for l in 0..<c.depth { sizes += l == c.depth - 1 ? last() : full() }
    let attnCount: Int = threads * Attention.scratchCount(t: t, heads: h, headDim: c.headDim)
    let rowsMax: Int = Swift.max(nt, cr)
    let dHiddenCount: Int = rowsMax * Swift.max(3 * d, m)
    let tail: [Int] = [n * g * c.patchDim, n * g * d, g * d, n * d, n, n, nt * d, rowsMax * d, dHiddenCount, cr * d]
    sizes += tail
    sizes += [attnCount, partialCount]
    arenaCount = sizes.reduce(0, +)
    let base = UnsafeMutablePointer<Float>.allocate(capacity: arenaCount)
    base.initialize(repeating: 0, count: arenaCount)
    arena = base
    var off = 0
    func take(_ k: Int) -> UnsafeMutablePointer<Float> {
      defer { off += k }
      return base + off
    }
    xs = (0...c.depth).map { l in take(l == c.depth ? cr * d : nt * d) }
    layers = (0..<c.depth).map { l in
      let s = l == c.depth - 1 ? last() : full()
      return Layer(ln1: take(s[0]), mean1: take(s[1]), rstd1: take(s[2]), qkv: take(s[3]), probs: take(s[4]),
                   atto: take(s[5]), xmid: take(s[6]), ln2: take(s[7]), mean2: take(s[8]), rstd2: take(s[9]),
                   dgelu: take(s[10]), g: take(s[11]))
    }
    cols = take(n * g * c.patchDim)
    patches = take(n * g * d)
    posGrid = take(g * d)
    embeddings = take(n * d)
    meanF = take(n)
    rstdF = take(n)
    dResidual = take(nt * d)
    dSublayer = take(rowsMax * d)
    dHidden = take(dHiddenCount)
    dcls = take(cr * d)
    attnScratch = take(attnCount)
    partial = take(partialCount)
  }

  deinit { arena.deallocate() }

  @inline(__always) func x(_ l: Int) -> UnsafeMutablePointer<Float> { xs[l] }
  @inline(__always) func layer(_ l: Int) -> Layer { layers[l] }

  /// False when `Threads.count` grew after these activations were made.
  public var scratchThreadsOK: Bool { Threads.count <= scratchThreads }

  /// Bytes held by this activation set.
  public var bytes: Int { arenaCount * 4 }
}
