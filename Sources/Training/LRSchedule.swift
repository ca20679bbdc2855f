import Foundation

/// Learning-rate schedule as a pure function of the step: linear warmup from
/// `warmupInit` to `base` over `warmupSteps`, then cosine from `base` to
/// `minLR` reached at `totalSteps`:
///
///     lr(s) = warmupInit + (base - warmupInit) * s / warmupSteps            s <  warmupSteps
///     lr(s) = minLR + (base - minLR) (1 + cos(pi (s - W) / (total - W))) / 2   s >= W
///
/// (The cosine starts where the warmup ends, so the curve is continuous.)
public struct LRSchedule: Codable, Equatable, Sendable {
  public var base: Double
  public var warmupSteps: Int
  public var totalSteps: Int
  public var warmupInit: Double
  public var minLR: Double

  public init(base: Double, warmupSteps: Int, totalSteps: Int, warmupInit: Double = 1e-6, minLR: Double = 0) {
    self.base = base; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    self.warmupInit = warmupInit; self.minLR = minLR
  }

  public func lr(step s: Int) -> Double {
    if s < warmupSteps {
      return warmupInit + (base - warmupInit) * Double(s) / Double(warmupSteps)
    }
    let span = max(totalSteps - warmupSteps, 1)
    let progress = min(Double(s - warmupSteps) / Double(span), 1)
    return minLR + (base - minLR) * 0.5 * (1 + cos(Double.pi * progress))
  }
}
