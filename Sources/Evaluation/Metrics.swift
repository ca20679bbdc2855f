/// Classification metrics for the binary task real (0) versus fake (1).
public enum Metrics {
  /// Fraction of `predicted[i] == truth[i]`; nil when empty.
  public static func accuracy(predicted: [Int], truth: [Int]) -> Double? {
    precondition(predicted.count == truth.count)
    guard !truth.isEmpty else { return nil }
    var hit = 0
    for i in 0..<truth.count where predicted[i] == truth[i] { hit += 1 }
    return Double(hit) / Double(truth.count)
  }

  /// Area under the ROC curve of `scores` (higher = more likely positive) for the
  /// positives `truth[i] == 1`; nil unless both classes occur.
  ///
  /// Computed as the Mann-Whitney statistic with average ranks for ties,
  /// AUC = (R+ - n+ (n+ + 1) / 2) / (n+ n-), R+ = sum of the positives' ranks: a tie
  /// between a positive and a negative counts one half, which is exactly the
  /// trapezoidal area under the ROC curve with tied scores grouped
  /// (`sklearn.metrics.roc_auc_score`).
  public static func rocAUC(scores: [Double], truth: [Int]) -> Double? {
    precondition(scores.count == truth.count)
    let n = scores.count
    let nPos = truth.reduce(0) { $0 + ($1 == 1 ? 1 : 0) }
    let nNeg = n - nPos
    guard nPos > 0, nNeg > 0 else { return nil }
    let order = (0..<n).sorted { scores[$0] < scores[$1] }
    var rankSum = 0.0
    var i = 0
    while i < n {
      var j = i
      while j + 1 < n && scores[order[j + 1]] == scores[order[i]] { j += 1 }
      // Ranks i+1 ... j+1 share their average.
      let avg = Double(i + j + 2) / 2
      for k in i...j where truth[order[k]] == 1 { rankSum += avg }
      i = j + 1
    }
    let p = Double(nPos), q = Double(nNeg)
    return (rankSum - p * (p + 1) / 2) / (p * q)
  }
}
