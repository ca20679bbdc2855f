import Foundation

/// Best-model selection and early stopping over probe evaluations (the authors'
/// trainer: best model kept, stop after `patience` evaluations without improvement).
/// Saved in every checkpoint (`TrainerState.earlyStopping`), so a resumed run
/// continues the same count.
public struct EarlyStopping: Codable, Equatable, Sendable {
  /// The best value of the metric so far (nil before the first evaluation with a value).
  public var best: Double?
  /// The step of that evaluation.
  public var bestStep: Int?
  /// Evaluations since the best one (0 right after an improvement).
  public var stale = 0
  /// Evaluations so far.
  public var evaluations = 0

  public init() {}

  /// What one evaluation decided.
  public struct Decision: Equatable, Sendable {
    /// The value is a new best (strictly greater than every earlier one).
    public var improved: Bool
    /// `stale` reached `patience` (patience > 0).
    public var stop: Bool
  }

  /// Counts an evaluation at `step` whose metric is `value` (nil: undefined, which is
  /// never an improvement). Improvement is strict: an equal value counts as stale.
  public mutating func record(_ value: Double?, step: Int, patience: Int) -> Decision {
    evaluations += 1
    var improved = false
    if let v = value, v.isFinite, best.map({ v > $0 }) ?? true {
      best = v
      bestStep = step
      stale = 0
      improved = true
    } else {
      stale += 1
    }
    return Decision(improved: improved, stop: shouldStop(patience: patience))
  }

  /// True once `patience` (> 0) evaluations in a row brought no improvement.
  public func shouldStop(patience: Int) -> Bool { patience > 0 && stale >= patience }
}
