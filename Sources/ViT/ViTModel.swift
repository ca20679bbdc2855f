import Kernels
import SafeTensors
import Foundation

/// A ViT replica: flat parameter and gradient buffers described by one
/// `ParameterLayout`, and the forward/backward passes over `ViTActivations`.
public final class ViTModel {
  public let config: ViTConfig
  public let layout: ParameterLayout
  /// All parameters, `layout.total` floats.
  public let params: UnsafeMutablePointer<Float>
  /// Gradients, same layout; `backward` accumulates into them.
  public let grads: UnsafeMutablePointer<Float>

  struct Block {
    let n1w, n1b, qkvw, qkvb, projw, projb, n2w, n2b, fc1w, fc1b, fc2w, fc2b: Int
  }
  let blocks: [Block]
  /// Offsets into `params` (and `grads`) of the tensors outside the blocks: cls_token,
  /// pos_embed, patch_embed.proj.{weight,bias}, norm.{weight,bias} (the final LayerNorm).
  let classTokenOffset, posEmbedOffset, patchWeightOffset, patchBiasOffset, finalNormWeightOffset, finalNormBiasOffset: Int
  var resamplers: [Int: PosEmbedResampler] = [:]
  let resamplerLock = NSLock()

  public init(config: ViTConfig) throws {
    try config.validate()
    self.config = config
    layout = ParameterLayout(config: config)
    params = .allocate(capacity: layout.total)
    params.initialize(repeating: 0, count: layout.total)
    grads = .allocate(capacity: layout.total)
    grads.initialize(repeating: 0, count: layout.total)
    let l = layout
    classTokenOffset = l.offset("cls_token"); posEmbedOffset = l.offset("pos_embed")
    patchWeightOffset = l.offset("patch_embed.proj.weight"); patchBiasOffset = l.offset("patch_embed.proj.bias")
    finalNormWeightOffset = l.offset("norm.weight"); finalNormBiasOffset = l.offset("norm.bias")
    blocks = (0..<config.depth).map { i in
      let p = "blocks.\(i)."
      return Block(
        n1w: l.offset(p + "norm1.weight"), n1b: l.offset(p + "norm1.bias"),
        qkvw: l.offset(p + "attn.qkv.weight"), qkvb: l.offset(p + "attn.qkv.bias"),
        projw: l.offset(p + "attn.proj.weight"), projb: l.offset(p + "attn.proj.bias"),
        n2w: l.offset(p + "norm2.weight"), n2b: l.offset(p + "norm2.bias"),
        fc1w: l.offset(p + "mlp.fc1.weight"), fc1b: l.offset(p + "mlp.fc1.bias"),
        fc2w: l.offset(p + "mlp.fc2.weight"), fc2b: l.offset(p + "mlp.fc2.bias"))
    }
  }

  deinit {
    params.deallocate()
    grads.deallocate()
  }

  public var parameterCount: Int { layout.total }

  public func zeroGradients() { grads.update(repeating: 0, count: layout.total) }

  /// Resampler from the stored position grid to a `gh x gw` grid (cached).
  func resampler(_ gh: Int, _ gw: Int) -> PosEmbedResampler {
    resamplerLock.lock()
    defer { resamplerLock.unlock() }
    let key = gh * 100_000 + gw
    if let r = resamplers[key] { return r }
    let r = PosEmbedResampler(oldH: config.grid, oldW: config.grid, newH: gh, newW: gw)
    resamplers[key] = r
    return r
  }

  /// Activations for a batch of `n` images of `height x width` (multiples of the patch).
  public func makeActivations(batch n: Int, height: Int, width: Int) throws -> ViTActivations {
    guard height % config.patch == 0, width % config.patch == 0, height > 0, width > 0 else {
      throw ViTError(.imageSize(height: height, width: width), "image size \(height)x\(width) is not a positive multiple of the patch size \(config.patch)")
    }
    return ViTActivations(config: config, batch: n, height: height, width: width)
  }

  // MARK: forward

  /// Forward pass of `a.batch` images `[N, C, H, W]` (normalised pixels).
  /// Writes the embeddings (class token after the final LayerNorm) to
  /// `a.embeddings [N, D]` and keeps what the backward pass needs.
  ///
  /// Block l: `xmid = x + proj(attn(qkv(ln1(x))))`, `x' = xmid + fc2(gelu(fc1(ln2(xmid))))`.
  /// Only the class token of the last block reaches the embedding, so that
  /// block computes keys and values for all tokens but everything after the
  /// attention scores for the class row alone (same numbers, fewer FLOPs).
  public func forward(_ images: UnsafePointer<Float>, _ a: ViTActivations) {
    let c = config, d = c.width, n = a.batch, t = a.tokens, g = a.gridTokens, nt = n * t, m = c.mlpDim
    let p = UnsafePointer(params)
    precondition(Threads.count <= a.scratchThreads, "Threads.configure must be called before activations are made")
    PatchEmbed.forward(out: a.patches, cols: a.cols, images: images, w: p + patchWeightOffset, b: p + patchBiasOffset, n: n,
                       channels: c.channels, height: a.height, width: a.width, patch: c.patch, dim: d)
    let t0 = KernelProfiler.start()
    let posGrid: UnsafePointer<Float>
    if a.gridH == c.grid && a.gridW == c.grid {
      posGrid = p + posEmbedOffset + d
    } else {
      resampler(a.gridH, a.gridW).forward(dst: a.posGrid, src: p + posEmbedOffset + d, dim: d)
      posGrid = UnsafePointer(a.posGrid)
    }
    Tokens.assemble(x: a.x(0), patches: a.patches, cls: p + classTokenOffset, pos0: p + posEmbedOffset, posGrid: posGrid, n: n, grid: g, dim: d)
    KernelProfiler.stop(.tokens, t0)
    for (l, b) in blocks.enumerated() {
      let x = a.x(l), ly = a.layer(l), xn = a.x(l + 1)
      LayerNorm.forward(y: ly.ln1, mean: ly.mean1, rstd: ly.rstd1, x: x, w: p + b.n1w, b: p + b.n1b, n: nt, c: d, eps: c.lnEps)
      Linear.forward(y: ly.qkv, x: ly.ln1, w: p + b.qkvw, b: p + b.qkvb, n: nt, inF: d, outF: 3 * d, rowBlock: t)
      // Rows that continue past the attention: all tokens, or the class tokens in the last block.
      let rows: Int
      if l + 1 < c.depth {
        rows = nt
        Attention.forward(out: ly.atto, probs: ly.probs, qkv: ly.qkv, n: n, t: t, heads: c.heads, headDim: c.headDim,
                          scratch: a.attnScratch)
        Linear.forward(y: ly.xmid, x: ly.atto, w: p + b.projw, b: p + b.projb, n: nt, inF: d, outF: d, residual: x,
                       rowBlock: t)
      } else {
        rows = n
        Attention.forwardClassQuery(out: ly.atto, probs: ly.probs, qkv: ly.qkv, n: n, t: t, heads: c.heads,
                                    headDim: c.headDim)
        Tokens.pickClass(out: ly.xmid, x: x, n: n, t: t, dim: d)
        // Padding rows (see ViTActivations.classRows) start from zero every pass.
        (ly.xmid + n * d).update(repeating: 0, count: (a.classRows - n) * d)
        Linear.forward(y: ly.xmid, x: ly.atto, w: p + b.projw, b: p + b.projb, n: a.classRows, inF: d, outF: d,
                       residual: ly.xmid)
      }
      // GEMM rows: all tokens (whole images of t rows), or the padded class rows.
      let gemmRows = l + 1 < c.depth ? nt : a.classRows
      let rowBlock = l + 1 < c.depth ? t : 0
      LayerNorm.forward(y: ly.ln2, mean: ly.mean2, rstd: ly.rstd2, x: ly.xmid, w: p + b.n2w, b: p + b.n2b, n: rows, c: d, eps: c.lnEps)
      Linear.forward(y: ly.g, x: ly.ln2, w: p + b.fc1w, b: p + b.fc1b, n: gemmRows, inF: d, outF: m, rowBlock: rowBlock)
      GELU.forward(g: ly.g, derivative: ly.dgelu, x: ly.g, count: rows * m)
      Linear.forward(y: xn, x: ly.g, w: p + b.fc2w, b: p + b.fc2b, n: gemmRows, inF: m, outF: d, residual: ly.xmid,
                     rowBlock: rowBlock)
    }
    // Final LayerNorm on the class-token rows (the embedding).
    LayerNorm.forward(y: a.embeddings, mean: a.meanF, rstd: a.rstdF, x: a.x(c.depth), w: p + finalNormWeightOffset, b: p + finalNormBiasOffset,
                      n: n, c: d, eps: c.lnEps)
  }

  // MARK: backward

  /// Gradient ranges that become final in this order during `backward`
  /// (final norm, blocks from last to first, then class token, position
  /// embedding and patch embedding), as (offset, count) into `grads`.
  public var backwardBuckets: [(offset: Int, count: Int)] {
    var r: [(Int, Int)] = [(finalNormWeightOffset, layout["norm.weight"].count + layout["norm.bias"].count)]
    for l in stride(from: config.depth - 1, through: 0, by: -1) {
      let start = blocks[l].n1w
      let end = l + 1 < config.depth ? blocks[l + 1].n1w : finalNormWeightOffset
      r.append((start, end - start))
    }
    r.append((0, blocks.first?.n1w ?? finalNormWeightOffset))
    return r.map { (offset: $0.0, count: $0.1) }
  }

  /// Backward pass for the batch last run through `forward` with `a`:
  /// given `dEmbedding [N, D]`, accumulates every parameter gradient into `grads`.
  /// `onBucketDone(i)` is called when the gradients of `backwardBuckets[i]`
  /// have received this pass's contribution (to start their all-reduce early).
  public func backward(_ a: ViTActivations, dEmbedding: UnsafePointer<Float>, onBucketDone: ((Int) -> Void)? = nil) {
    let c = config, d = c.width, n = a.batch, t = a.tokens, g = a.gridTokens, nt = n * t, m = c.mlpDim
    let p = UnsafePointer(params), gr = grads
    precondition(Threads.count <= a.scratchThreads, "Threads.configure must be called before activations are made")
    let dResidual = a.dResidual, dSublayer = a.dSublayer, dHidden = a.dHidden, dcls = a.dcls, part = a.partial
    LayerNorm.backward(dx: dcls, dw: gr + finalNormWeightOffset, db: gr + finalNormBiasOffset, dy: dEmbedding, x: a.x(c.depth), mean: a.meanF,
                       rstd: a.rstdF, w: p + finalNormWeightOffset, n: n, c: d, accumulate: false, partial: part)
    onBucketDone?(0)
    for l in stride(from: c.depth - 1, through: 0, by: -1) {
      let b = blocks[l], ly = a.layer(l)
      let last = l == c.depth - 1
      // Gradient of the block output (class rows only in the last block).
      let rows = last ? n : nt
      let dxRows = last ? a.classRows : nt
      let dout = last ? dcls : dResidual
      let rowBlock = last ? 0 : t  // whole images of t rows (see sgemm)
      // x_{l+1} = xmid + fc2(gelu(fc1(ln2(xmid))))
      Linear.backward(dx: dHidden, dw: gr + b.fc2w, db: gr + b.fc2b, dy: dout, x: ly.g, w: p + b.fc2w, n: rows, inF: m,
                      outF: d, partial: part, dxRows: dxRows, rowBlock: rowBlock)
      GELU.backward(dx: dHidden, dy: dHidden, derivative: ly.dgelu, count: rows * m)
      Linear.backward(dx: dSublayer, dw: gr + b.fc1w, db: gr + b.fc1b, dy: dHidden, x: ly.ln2, w: p + b.fc1w, n: rows, inF: d,
                      outF: m, partial: part, dxRows: dxRows, rowBlock: rowBlock)
      LayerNorm.backward(dx: dout, dw: gr + b.n2w, db: gr + b.n2b, dy: dSublayer, x: ly.xmid, mean: ly.mean2,
                         rstd: ly.rstd2, w: p + b.n2w, n: rows, c: d, partial: part)
      // xmid = x_l + proj(attn(qkv(ln1(x_l))))
      Linear.backward(dx: dSublayer, dw: gr + b.projw, db: gr + b.projb, dy: dout, x: ly.atto, w: p + b.projw, n: rows,
                      inF: d, outF: d, partial: part, dxRows: dxRows, rowBlock: rowBlock)
      if last {
        Attention.backwardClassQuery(dqkv: dHidden, dOut: dSublayer, probs: ly.probs, qkv: ly.qkv, scratch: a.attnScratch,
                                     n: n, t: t, heads: c.heads, headDim: c.headDim)
        // dx_l: the class rows get d xmid through the skip connection, the others start at 0.
        parallelChunks(n) { s, e in
          for img in s..<e {
            let r = dResidual + img * t * d
            r.update(from: dcls + img * d, count: d)
            (r + d).update(repeating: 0, count: (t - 1) * d)
          }
        }
      } else {
        Attention.backward(dqkv: dHidden, dOut: dSublayer, probs: ly.probs, qkv: ly.qkv, scratch: a.attnScratch, n: n, t: t,
                           heads: c.heads, headDim: c.headDim)
      }
      Linear.backward(dx: dSublayer, dw: gr + b.qkvw, db: gr + b.qkvb, dy: dHidden, x: ly.ln1, w: p + b.qkvw, n: nt, inF: d,
                      outF: 3 * d, partial: part, rowBlock: t)
      LayerNorm.backward(dx: dResidual, dw: gr + b.n1w, db: gr + b.n1b, dy: dSublayer, x: a.x(l), mean: ly.mean1,
                         rstd: ly.rstd1, w: p + b.n1w, n: nt, c: d, partial: part)
      onBucketDone?(c.depth - l)
    }
    let t0 = KernelProfiler.start()
    let identity = a.gridH == c.grid && a.gridW == c.grid
    let dPosGrid = identity ? gr + posEmbedOffset + d : a.posGrid
    if !identity { a.posGrid.update(repeating: 0, count: g * d) }
    Tokens.backward(dPatches: a.patches, dCls: gr + classTokenOffset, dPos0: gr + posEmbedOffset, dPosGrid: dPosGrid, dx: dResidual, n: n, grid: g, dim: d)
    if !identity { resampler(a.gridH, a.gridW).backward(dSrc: gr + posEmbedOffset + d, dDst: a.posGrid, dim: d) }
    KernelProfiler.stop(.tokens, t0)
    PatchEmbed.backward(dw: gr + patchWeightOffset, db: gr + patchBiasOffset, dOut: a.patches, cols: a.cols, rows: n * g, k: c.patchDim, dim: d)
    onBucketDone?(c.depth + 1)
  }
}
