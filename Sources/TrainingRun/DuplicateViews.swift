/// Augmented views equal to their base view, as training makes them (the transform T drew
/// no operation), laid out for timing the step on random views (`cde bench`).
public enum DuplicateViews {
  /// Training's count of unchanged augmented views in a batch of `records` records:
  /// round(2B / (numTransform + 1)) of the 2B aug_real / aug_fake views.
  public static func trainingCount(records: Int, numTransform: Int = DataConfig().numTransform) -> Int {
    Int((Double(2 * records) / Double(numTransform + 1)).rounded())
  }

  /// Copies the base view over `count` augmented views of `global` (`[6, B, per]`, view order
  /// real, fake, aug_real, aug_fake, ...), alternating real and fake and spread over the
  /// records: the j-th copy is side k = j % 2 of record (j / 2 + k · B / 2) % B. Returns the
  /// `[2B]` flags (aug_real rows, then aug_fake rows) that `CoDEStep.run` takes as
  /// `unchangedAugmented`.
  public static func make(_ count: Int, in global: inout [Float], records b: Int, perView per: Int) -> [Bool] {
    var unchanged = [Bool](repeating: false, count: 2 * b)
    for j in 0..<count {
      let k = j % 2, rec = (j / 2 + k * b / 2) % b
      let base = (k * b + rec) * per, aug = ((2 + k) * b + rec) * per
      for i in 0..<per { global[aug + i] = global[base + i] }
      unchanged[k * b + rec] = true
    }
    return unchanged
  }
}
