// Evaluation module: embedding files, the three CoDE probe classifiers (logistic
// regression, 1-NN cosine, one-class SVM), metrics, per-generator reports, the
// Hugging Face ViTModel <-> timm layout conversion and the HTML run report.
//
// Labels throughout: 0 real, k + 1 for generator gen_k, -1 unknown. The binary task
// is real (0) versus fake (label > 0); unknown rows are left out of fitting and scoring.
import CodedError
import Foundation

/// Errors of this module: a `kind` that callers and tests can tell apart, and a
/// `description` of one line naming the file, key or option. Errors of the files this
/// module reads through other modules (SafeTensorsError, ViTError, CheckpointLayoutError)
/// reach the caller as they are.
public typealias EvaluationError = CodedError<EvaluationErrorKind>

/// The failure cases of the Evaluation module.
public enum EvaluationErrorKind: Equatable, Sendable {
  /// A file or directory at `path` that cannot be read, created or written.
  case io(path: String)
  /// A model, image, run or config.json at `path` that does not exist.
  case notFound(path: String)
  /// A file at `path` of a kind or layout that is not read (PyTorch pickles, other
  /// model names, other classifiers).
  case unsupported(path: String)
  /// A file at `path` of the right kind whose contents are wrong (a tensor's shape or
  /// dtype, metadata, a config.json field, a model section).
  case badFile(path: String)
  /// Weights at `path` whose shape differs from the declared model's.
  case shapeMismatch(path: String)
  /// Weights at `path` that do not tell the number of attention heads.
  case unknownHeads(path: String)
  /// Embeddings of another dimension than the probe's or the classifier's.
  case dimensionMismatch
  /// No rows, images or classifiers to fit, score or report on.
  case noData
  /// liblinear or libsvm refused the problem or failed.
  case classifierFailed
  /// An argument outside what the function takes.
  case invalidArgument
}
