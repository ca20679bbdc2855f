import Foundation

/// Rank 0's watch for CoDE's collapse plateau: the state where every embedding is the
/// same vector, each InfoNCE term sits at `ln(1 + G)` and the total loss at `2 ln(1 + G)`
/// (docs/learnability.md, "CoDE's global term collapses before it finds a cue").
///
/// Rule, applied to each logged step (`observe` is called once per log):
/// - a log is *on the plateau* when `loss_collapse_ratio = L / (2 ln(1 + G)) > 0.97` and
///   `emb_mean_cos > 0.95` (a NaN figure is not on the plateau);
/// - an *episode* starts at the third consecutive log on the plateau: `observe` returns
///   one warning line then, and nothing for the following logs of the episode;
/// - the episode ends at the first log with `loss_collapse_ratio < 0.95` or
///   `emb_mean_cos < 0.90` (a margin below the entry thresholds, so that a run hovering
///   at a threshold does not warn again and again). Only then can a new episode start,
///   after three more consecutive logs on the plateau.
/// The state is not checkpointed: a resumed run starts outside any episode.
public struct PlateauDetector: Sendable {
  public static let enterRatio = 0.97, enterMeanCos = 0.95
  public static let exitRatio = 0.95, exitMeanCos = 0.90
  public static let consecutiveLogs = 3

  /// Consecutive logs on the plateau so far (outside an episode), and the first one's step.
  public private(set) var consecutive = 0
  public private(set) var firstStep = 0
  /// Whether the run is in an episode (warned, not yet left).
  public private(set) var inEpisode = false
  /// Episodes warned about so far.
  public private(set) var episodes = 0

  public init() {}

  /// Feeds one log's figures; returns the warning when this log starts an episode.
  /// `metrics` must hold `loss`, `loss_collapse`, `loss_collapse_ratio`, `emb_mean_cos`;
  /// the four loss terms, `emb_centroid_cos` and `emb_dim_std` are quoted when present.
  public mutating func observe(step: Int, metrics m: [String: Double]) -> String? {
    let ratio = m["loss_collapse_ratio"] ?? .nan, cos = m["emb_mean_cos"] ?? .nan
    if inEpisode {
      if ratio < Self.exitRatio || cos < Self.exitMeanCos {
        inEpisode = false
        consecutive = 0
      }
      return nil
    }
    guard ratio > Self.enterRatio, cos > Self.enterMeanCos else {
      consecutive = 0
      return nil
    }
    if consecutive == 0 { firstStep = step }
    consecutive += 1
    guard consecutive >= Self.consecutiveLogs else { return nil }
    inEpisode = true
    episodes += 1
    return Self.message(step: step, firstStep: firstStep, logs: consecutive, metrics: m)
  }

  static func message(step: Int, firstStep: Int, logs: Int, metrics m: [String: Double]) -> String {
    func f(_ k: String, _ fmt: String = "%.4f") -> String { m[k].map { String(format: fmt, $0) } ?? "?" }
    var s = "warning: collapse plateau: \(logs) consecutive logs (steps \(firstStep)-\(step)) with "
    s += "loss \(f("loss")) = \(f("loss_collapse_ratio", "%.3f")) x 2 ln(1+G) and mean embedding cosine \(f("emb_mean_cos"))"
    if m["loss_global_real"] != nil {
      s += "; terms (global real/fake, multi-scale real/fake) \(f("loss_global_real", "%.3f"))/\(f("loss_global_fake", "%.3f"))"
      s += " \(f("loss_multiscale_real", "%.3f"))/\(f("loss_multiscale_fake", "%.3f")) against ln(1+G) = \(f("loss_collapse", "%.3f"))"
    }
    if m["emb_centroid_cos"] != nil {
      s += "; real-fake centroid cosine \(f("emb_centroid_cos")), per-dimension std \(f("emb_dim_std", "%.2e"))"
    }
    return s + ": the embeddings are nearly all equal and carry little to tell real from generated"
  }
}
