import ArgumentParser
import Evaluation
import Foundation

/// `cde eval`: fit the probe classifiers on labelled probe embeddings and report their
/// accuracy on test embeddings, per generator and overall.
struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Fit linear / kNN / one-class SVM classifiers on probe embeddings and report per-generator accuracy on test embeddings.",
    discussion: """
      Embedding files are written by `cde embed` (safetensors: embeddings [N, D], labels [N]: \
      0 real, k+1 gen_k, -1 unknown). The fitted classifiers are saved next to the model \
      (MODEL_DIR/classifiers/<name>.safetensors) so that `cde detect` can use them: the model \
      is --model, else the one named in the probe file's metadata.
      """)

  @Option(name: .long, help: "Embeddings to fit the classifiers on.")
  var probe: String

  @Option(name: .long, help: "Embeddings to evaluate on.")
  var test: String

  @Option(name: .long, help: "Comma-separated classifiers: linear, knn, svm.")
  var classifiers: String = "linear,knn,svm"

  @Flag(name: .long, help: "Print JSON {classifier: {gen_k|all: {real_acc, fake_acc, acc, auc}}} instead of the table.")
  var json = false

  @Option(name: .long, help: "Also write the JSON report to this file (e.g. RUN/eval.json for `cde report`).")
  var output: String?

  @Option(name: .long, help: "Save the fitted classifiers next to this model (file or directory).")
  var model: String?

  @Option(name: .long, help: "Save the fitted classifiers in this directory instead.")
  var saveDir: String?

  @Flag(name: .long, help: "Do not save the fitted classifiers.")
  var noSave = false

  func run() throws {
    let kinds = try ClassifierKind.parseList(classifiers)
    let probeSet = try EmbeddingFile(path: probe)
    let testSet = try EmbeddingFile(path: test)
    let (report, fitted) = try runEvaluation(probe: probeSet, test: testSet, classifiers: kinds,
                                             probePath: probe, testPath: test)
    if json { print(report.json(), terminator: "") } else {
      let unknown = testSet.labels.filter { $0 < 0 }.count
      print("probe \(probe): \(probeSet.count) embeddings; test \(test): \(testSet.count)" + (unknown > 0 ? " (\(unknown) unlabelled, left out)" : ""))
      print(report.table(), terminator: "")
    }
    if let output {
      do { try Data(report.json().utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
        throw EvaluationError("--output \(output): cannot write: \(error.localizedDescription)")
      }
    }
    if noSave { return }
    var dir: String? = saveDir
    if dir == nil, let m = model ?? probeSet.metadata["model"], FileManager.default.fileExists(atPath: m) {
      dir = DetectorBundle.directory(forModel: m)
    }
    guard let dir else {
      FileHandle.standardError.write(Data("note: classifiers not saved (the probe file names no existing model; use --model or --save-dir)\n".utf8))
      return
    }
    let paths = try DetectorBundle(classifiers: fitted).save(to: dir)
    FileHandle.standardError.write(Data("saved \(paths.count) classifier\(paths.count == 1 ? "" : "s") in \(dir)\n".utf8))
  }
}
