import ArgumentParser
import Evaluation
import Foundation

/// `cde eval`: fit the probe classifiers on labelled probe embeddings and report their
/// accuracy on test embeddings, per generator and overall (balanced). Probe and test are
/// embedding files of `cde embed`, or images that it embeds itself with --model.
struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Fit linear / kNN / one-class SVM classifiers on probe embeddings and report per-generator accuracy on test embeddings.",
    discussion: """
      --probe and --test are embedding files written by `cde embed` (.safetensors: embeddings \
      [N, D], labels [N]: 0 real, k+1 gen_k, -1 unknown), or images that are embedded first with \
      --model (and --config, --preprocess, --batch as in `cde embed`): a folder in the test layout \
      (real/, gen_0/ ...), a WebDataset .tar shard or a directory of shards, labelled by folder or \
      member name. The "all" row is balanced: accuracy = (real accuracy + fake accuracy) / 2, \
      fake accuracy and AUC the means over the generators, so that answering "fake" for \
      everything scores 50 % whatever the class sizes; in --json it carries "balanced": true. \
      The fitted classifiers are saved next to the model (MODEL_DIR/classifiers/<name>.safetensors) \
      so that `cde detect` can use them: the model is --model, else the one named in the probe \
      file's metadata.
      """)

  @Option(name: .long, help: "Embeddings (.safetensors of `cde embed`) or images (test-layout folder, shards; needs --model) to fit the classifiers on.")
  var probe: String

  @Option(name: .long, help: "Embeddings or images to evaluate on (as --probe).")
  var test: String

  @Option(name: .long, help: "Comma-separated classifiers: linear, knn, svm.")
  var classifiers: String = "linear,knn,svm"

  @Flag(name: .long, help: "Print JSON {classifier: {gen_k|all: {real_acc, fake_acc, acc, auc}}} instead of the table (all: balanced).")
  var json = false

  @Option(name: .long, help: "Also write the JSON report to this file (e.g. RUN/eval.json for `cde report`).")
  var output: String?

  /// --model: embeds image inputs, and the fitted classifiers are saved next to it; --config.
  @OptionGroup var modelOptions: ModelOptions

  @Option(help: "Image inputs: center-crop (the authors' inference) or resize-crop (the training base view), as `cde embed`.")
  var preprocess: EmbedPreprocess = .centerCrop

  @Option(help: "Image inputs: images per forward pass.") var batch: Int = 4

  @Option(name: .customLong("index-dir"), help: "Image inputs: directory for shard indexes (default: beside the shards).")
  var indexDir: String?

  @OptionGroup var precisionOption: PrecisionOption
  @OptionGroup var compute: ComputeOptions

  @Option(name: .long, help: "Save the fitted classifiers in this directory instead.")
  var saveDir: String?

  @Flag(name: .long, help: "Do not save the fitted classifiers.")
  var noSave = false

  func validate() throws {
    if batch < 1 { throw ValidationError("--batch must be at least 1") }
    for (option, path) in [("--probe", probe), ("--test", test)] where !Self.isEmbeddingFile(path) && modelOptions.model == nil {
      throw ValidationError("\(option) \(path) is not an embedding file (.safetensors): give --model to embed its images, or embed them first with `cde embed`")
    }
  }

  /// Inputs named *.safetensors are embedding files; anything else is images.
  static func isEmbeddingFile(_ path: String) -> Bool { path.lowercased().hasSuffix(".safetensors") }

  /// The embeddings of an input: read (embedding file) or computed with the model (images).
  func embeddings(_ path: String, model: () throws -> EmbeddingModel) throws -> EmbeddingFile {
    if Self.isEmbeddingFile(path) { return try EmbeddingFile(path: path) }
    let m = try model()
    return try embedImages([path], model: m, metadata: modelOptions.metadata(m), preprocess: preprocess, batch: batch,
                           indexDir: indexDir, progress: !json).0
  }

  func run() throws {
    let kinds = try ClassifierKind.parseList(classifiers)
    var loaded: EmbeddingModel? = nil
    func model() throws -> EmbeddingModel {
      if let loaded { return loaded }
      quietImageWarnings()
      compute.apply()
      precisionOption.apply()
      let m = try modelOptions.load()
      loaded = m
      return m
    }
    let probeSet = try embeddings(probe, model: model)
    let testSet = try embeddings(test, model: model)
    let (report, fitted) = try runEvaluation(probe: probeSet, test: testSet, classifiers: kinds,
                                             probePath: probe, testPath: test)
    if json { print(report.json(), terminator: "") } else {
      let unknown = testSet.labels.filter { $0 < 0 }.count
      print("probe \(probe): \(probeSet.count) embeddings; test \(test): \(testSet.count)" + (unknown > 0 ? " (\(unknown) unlabelled, left out)" : ""))
      print(report.table(), terminator: "")
    }
    if let output {
      do { try Data(report.json().utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
        throw EvaluationError(.io(path: output), "--output \(output): cannot write: \(error.localizedDescription)")
      }
    }
    if noSave { return }
    var dir: String? = saveDir
    if dir == nil, let m = modelOptions.model ?? probeSet.metadata["model"], FileManager.default.fileExists(atPath: m) {
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
