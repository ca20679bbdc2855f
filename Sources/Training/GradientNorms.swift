import Foundation
import ViT

/// L2 norms of the parameter gradient by part of the ViT, `|g|_2 = sqrt(sum g_i^2)`
/// over the tensors of each group (timm names, `ParameterLayout`):
///
///     grad_norm_patch_embed  cls_token, pos_embed, patch_embed.proj.{weight,bias}
///     grad_norm_block_K      every tensor of blocks.K (norm1, attn, norm2, mlp)
///     grad_norm_final_norm   norm.{weight,bias} (the final LayerNorm)
///     grad_norm              all parameters (sqrt of the sum of the groups' squares)
///
/// Read after the all-reduce (`CoDEStep.backward` leaves the gradient of the global
/// batch's loss, summed over ranks, in `model.grads`), so every rank and every rank
/// count sees the same figures up to the summation order of the all-reduce.
public struct GradientNorms {
  /// Group names in output order (without the total).
  public let groups: [String]
  /// (group index, offset, count) of each layout entry.
  let spans: [(group: Int, offset: Int, count: Int)]

  public init(layout: ParameterLayout, depth: Int) {
    let groups = ["grad_norm_patch_embed"] + (0..<depth).map { "grad_norm_block_\($0)" } + ["grad_norm_final_norm"]
    var spans: [(Int, Int, Int)] = []
    for e in layout.entries {
      let g: Int
      if e.name.hasPrefix("blocks.") {
        let k = Int(e.name.dropFirst(7).prefix { $0 != "." }) ?? 0
        g = 1 + k
      } else if e.name.hasPrefix("norm.") {
        g = depth + 1
      } else {
        g = 0
      }
      spans.append((g, e.offset, e.count))
    }
    self.groups = groups
    self.spans = spans
  }

  /// Metric names: the groups, then `grad_norm`.
  public var names: [String] { groups + ["grad_norm"] }

  /// `names.count` norms of `grads` (same layout), the total last.
  public func measure(_ grads: UnsafePointer<Float>) -> [Double] {
    var sq = [Double](repeating: 0, count: groups.count)
    for s in spans {
      var acc = 0.0
      let p = grads + s.offset
      for i in 0..<s.count { acc += Double(p[i]) * Double(p[i]) }
      sq[s.group] += acc
    }
    let total = sq.reduce(0, +)
    return sq.map { $0.squareRoot() } + [total.squareRoot()]
  }

  /// `final_ln_weight_norm = |norm.weight|_2`: the L2 norm of the final LayerNorm's weight
  /// (the per-dimension scale of every embedding before the loss normalises it).
  public static func finalNormWeightNorm(params: UnsafePointer<Float>, layout: ParameterLayout) -> Double {
    guard let e = layout.entry("norm.weight") else { return .nan }
    var acc = 0.0
    for i in 0..<e.count { acc += Double(params[e.offset + i]) * Double(params[e.offset + i]) }
    return acc.squareRoot()
  }
}
