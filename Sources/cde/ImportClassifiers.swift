import ArgumentParser
import Evaluation
import Foundation

/// `cde import-classifiers`: scikit-learn pickles (the CoDE release's classifiers) as the
/// classifier files `cde detect` and `cde eval` use.
struct ImportClassifiers: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import-classifiers",
    abstract: "Convert scikit-learn classifier pickles (joblib) into cde classifier files for `cde detect`.",
    discussion: """
      Accepts what the CoDE authors publish (aimagelab/CoDE, sklearn/): LogisticRegression \
      (linear), KNeighborsClassifier with n_neighbors 1 and metric cosine (knn), OneClassSVM \
      with kernel poly (svm); other estimators or parameters are refused. The pickles are read \
      by scripts/sklearn_classifiers.py (python3 on PATH or CDE_PYTHON; pip install \
      scikit-learn joblib, preferably scikit-learn 1.3.2 as the release), which checks the \
      exported arrays against the estimator's own predictions. The files are written to \
      MODEL/classifiers/ (linear.safetensors, knn.safetensors, svm.safetensors), where \
      `cde detect --model MODEL` looks, or to --out. Decisions then equal the estimator's \
      predict: for the linear and kNN classifiers the class --fake-label is fake; the \
      one-class SVM's +1 (inlier) is real and -1 fake.
      """)

  @Option(help: ArgumentHelp("The model the classifiers were fitted for (e.g. the Hugging Face ViTModel folder); they are saved in MODEL/classifiers and their dimension is checked against it.", valueName: "path"))
  var model: String?

  @Option(help: "Save the classifier files in this directory instead.") var out: String?

  @Option(name: .customLong("fake-label"), help: "Class label of the fake images in the linear and kNN pickles (the other class is real).")
  var fakeLabel: String = "1"

  @Argument(help: "joblib pickles (.sav, .joblib, .pkl).") var pickles: [String]

  func validate() throws {
    if model == nil && out == nil { throw ValidationError("give --model (save in MODEL/classifiers) or --out DIR") }
    if pickles.isEmpty { throw ValidationError("give at least one pickle") }
    for p in pickles where !FileManager.default.fileExists(atPath: p) { throw ValidationError("\(p): no such file") }
  }

  func run() throws {
    do { try execute() } catch is PythonTool.ExitStatus { throw ExitCode(1) }  // the tool printed its error line
  }

  func execute() throws {
    let tool = try PythonTool.locate("sklearn_classifiers.py")
    var dimension: Int? = nil
    if let model {
      let m = try ModelOptions.parse(["--model", model]).load()
      dimension = m.dimension
    }
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("cde-import-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    var fitted: [AnyClassifier] = []
    var from: [String] = []
    for (i, p) in pickles.enumerated() {
      let arrays = (tmp as NSString).appendingPathComponent("\(i).safetensors")
      _ = try tool.output(["export", p, arrays, "--fake-label", fakeLabel])
      let c = try AnyClassifier.fromScikitLearnExport(path: arrays)
      if let j = fitted.firstIndex(where: { $0.kind == c.kind }) {
        throw CLIError(.invalidArgument, "\(p): a second \(c.kind.rawValue) classifier (the first is \(from[j]))")
      }
      if let d = dimension, c.dimension != d {
        throw CLIError(.dimensionMismatch, "\(p): fitted on embeddings of dimension \(c.dimension), the model \(model!) gives \(d)")
      }
      fitted.append(c)
      from.append(p)
    }
    let dir = out ?? DetectorBundle.directory(forModel: model!)
    let paths = try DetectorBundle(classifiers: fitted).save(to: dir)
    for (c, (src, dst)) in zip(fitted, zip(from, paths)) {
      print("\(c.kind.rawValue): \(src) -> \(dst) (dimension \(c.dimension)\(Self.describe(c)))")
    }
  }

  static func describe(_ c: AnyClassifier) -> String {
    switch c {
    case .linear: return ""
    case .knn(let k): return ", \(k.count) fitted samples"
    case .svm(let s): return ", \(s.supportCount) support vectors, degree \(s.degree), gamma \(s.gamma), coef0 \(s.coef0)"
    }
  }
}
