import Kernels

/// Everything one forward pass keeps for its backward pass, for a fixed batch
/// shape `[N, C, H, W]`, in one allocation reused across steps.
///
/// Per block l (T = 1 + G tokens, D width, M MLP width, H heads):
/// `x_l [N,T,D]` (block input), `ln1 [N,T,D]`, `mean1, rstd1 [N*T]`,
/// `qkv [N,T,3D]`, `probs [N,H,T,T]`, `atto [N,T,D]`, `xmid [N,T,D]`,
/// `ln2 [N,T,D]`, `mean2, rstd2 [N*T]`, `h [N,T,M]` (fc1 output),
/// `g [N,T,M]` (GELU output); plus `x_depth`, the patch columns, and the
/// backward scratch buffers.
public final class ViTActivations {
  public let batch: Int, height: Int, width: Int
  public let gridH: Int, gridW: Int
  public var gridTokens: Int { gridH * gridW }
  public var tokens: Int { gridH * gridW + 1 }

  struct Layer {
    let ln1, mean1, rstd1, qkv, probs, atto, xmid, ln2, mean2, rstd2, h, g: UnsafeMutablePointer<Float>
  }

  let arena: UnsafeMutablePointer<Float>
  public let arenaCount: Int
  let xs: [UnsafeMutablePointer<Float>]
  let layers: [Layer]
  let cols, patches, posGrid: UnsafeMutablePointer<Float>
  /// `[N, D]`: the class token after the final LayerNorm.
  public let embeddings: UnsafeMutablePointer<Float>
  let meanF, rstdF: UnsafeMutablePointer<Float>
  let dres, dsmall, dbig, attnScratch: UnsafeMutablePointer<Float>
  /// Worker count the attention scratch was sized for.
  let scratchThreads: Int

  init(config c: ViTConfig, batch n: Int, height: Int, width: Int) {
    batch = n; self.height = height; self.width = width
    gridH = height / c.patch; gridW = width / c.patch
    let g = gridH * gridW, t = g + 1, d = c.width, m = c.mlpDim, nt = n * t
    var sizes: [Int] = []
    // Layout: x_0..x_depth, layers, then the rest (order of `take` below).
    for _ in 0...c.depth { sizes.append(nt * d) }
    let perLayer = [nt * d, nt, nt, nt * 3 * d, n * c.heads * t * t, nt * d, nt * d, nt * d, nt, nt, nt * m, nt * m]
    for _ in 0..<c.depth { sizes += perLayer }
    let threads = max(Threads.count, 1)
    scratchThreads = threads
    let tail = [n * g * c.patchDim, n * g * d, g * d, n * d, n, n, nt * d, nt * d, nt * max(3 * d, m), threads * t * t]
    sizes += tail
    arenaCount = sizes.reduce(0, +)
    let base = UnsafeMutablePointer<Float>.allocate(capacity: arenaCount)
    base.initialize(repeating: 0, count: arenaCount)
    arena = base
    var off = 0
    func take(_ k: Int) -> UnsafeMutablePointer<Float> {
      defer { off += k }
      return base + off
    }
    xs = (0...c.depth).map { _ in take(nt * d) }
    layers = (0..<c.depth).map { _ in
      Layer(ln1: take(nt * d), mean1: take(nt), rstd1: take(nt), qkv: take(nt * 3 * d), probs: take(n * c.heads * t * t),
            atto: take(nt * d), xmid: take(nt * d), ln2: take(nt * d), mean2: take(nt), rstd2: take(nt),
            h: take(nt * m), g: take(nt * m))
    }
    cols = take(n * g * c.patchDim)
    patches = take(n * g * d)
    posGrid = take(g * d)
    embeddings = take(n * d)
    meanF = take(n)
    rstdF = take(n)
    dres = take(nt * d)
    dsmall = take(nt * d)
    dbig = take(nt * max(3 * d, m))
    attnScratch = take(threads * t * t)
  }

  deinit { arena.deallocate() }

  @inline(__always) func x(_ l: Int) -> UnsafeMutablePointer<Float> { xs[l] }
  @inline(__always) func layer(_ l: Int) -> Layer { layers[l] }

  /// False when `Threads.count` grew after these activations were made.
  public var scratchThreadsOK: Bool { Threads.count <= scratchThreads }

  /// Bytes held by this activation set.
  public var bytes: Int { arenaCount * 4 }
}
