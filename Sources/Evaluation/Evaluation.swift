// Evaluation module: embedding files, the three CoDE probe classifiers (logistic
// regression, 1-NN cosine, one-class SVM), metrics, per-generator reports, the
// Hugging Face ViTModel <-> timm layout conversion and the HTML run report.
//
// Labels throughout: 0 real, k + 1 for generator gen_k, -1 unknown. The binary task
// is real (0) versus fake (label > 0); unknown rows are left out of fitting and scoring.
import Foundation

/// Errors of this module. `description` is one line naming the file, key or option.
public struct EvaluationError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
