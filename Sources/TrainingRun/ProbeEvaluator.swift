import Foundation

/// Probe evaluation during training, as the trainer sees it: a fixed list of images in
/// units of work (batches), embedded with the trainer's current parameters, then
/// classifiers fitted and scored on the embeddings.
///
/// The trainer deals the units to the ranks (contiguous ranges, `Trainer+Evaluation.swift`),
/// gathers the rows on rank 0 in unit order and calls `score` there. The list and the
/// units must be the same on every rank, and a row's embedding must not depend on which
/// rank computes it, so that N ranks evaluate as one does.
///
/// Training defines this protocol and does not implement it: the implementation
/// (`cde train`'s `TrainingProbes`) uses the Evaluation module's embedder and
/// classifiers, so Training stays free of the classifier libraries and Evaluation free
/// of training; the executable composes the two.
public protocol ProbeEvaluator: AnyObject {
  /// Embedding width D.
  var dimension: Int { get }
  /// Images in each unit, probe units first, then test units; the same on every rank.
  var unitRows: [Int] { get }
  /// Probe and test images in all ("500 probe + 300 test images").
  var summary: String { get }
  /// Embeds the images of `units` with `parameters` (the trainer's flat parameter buffer,
  /// layout of the config's model) into `out`, `D` floats per image in unit order.
  /// Returns per image nil, or the one-line reason it could not be embedded (its row is
  /// then ignored).
  func embed(units: Range<Int>, parameters: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) throws -> [String?]
  /// Rank 0: fits the classifiers on the probe rows of `embeddings` (every image in unit
  /// order, `valid[i]` false for images left out) and scores them on the test rows.
  /// Returns `classifier.subset.metric` -> value (the structure of `cde eval --json`,
  /// e.g. `linear.gen_0.acc`; NaN where undefined).
  func score(embeddings: [Float], valid: [Bool]) throws -> [String: Double]
  /// Frees what the evaluation keeps between calls (activations); called after each evaluation.
  func release()
}
