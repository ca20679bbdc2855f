import ArgumentParser
import Evaluation
import Foundation
import Imaging
import JSONOutput

/// `cde detect`: real or fake, with a score, for image files.
struct Detect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Say real or fake for each image, with a score, using a model and the classifiers `cde eval` fitted for it.",
    discussion: """
      Prints one line per image: "fake  +2.3140  PATH" (with several classifiers, a header line \
      and one label and score per classifier, in the order of --classifier). The score is positive for fake and negative \
      for real: the logit of the logistic regression, the cosine distance to the nearest real probe \
      minus the distance to the nearest fake probe (kNN), minus the one-class SVM decision value. \
      --json prints one JSON object per line instead. An image that cannot be read is reported on \
      its own line (stderr, or {"image", "error"} with --json) and the others go on; the exit \
      status is 1 only when no image could be classified. Folders and shards are accepted too.
      """)

  @OptionGroup var modelOptions: ModelOptions

  @Option(help: "Classifiers to apply (comma-separated: linear, knn, svm, or all).") var classifier: String = "linear"

  @Option(name: .customLong("classifiers-dir"), help: "Directory of fitted classifiers (default: MODEL_DIR/classifiers, as `cde eval` saves them).")
  var classifiersDir: String?

  @Flag(help: "One JSON object per line: {\"image\": PATH, \"<classifier>\": {\"label\": \"real\"|\"fake\", \"score\": S}}.")
  var json = false

  @OptionGroup var imageOptions: ImageOptions
  @OptionGroup var precisionOption: PrecisionOption
  @OptionGroup var compute: ComputeOptions

  @Argument(help: "Image files (or folders, shards).") var images: [String]

  func validate() throws {
    if modelOptions.model == nil { throw ValidationError("--model is required") }
    if images.isEmpty { throw ValidationError("give at least one image") }
  }

  func run() throws {
    // "all": every classifier saved for the model.
    let kinds: [ClassifierKind]? = classifier == "all" ? nil : try ClassifierKind.parseList(classifier, option: "--classifier")
    let bundle: DetectorBundle
    if let classifiersDir {
      bundle = try DetectorBundle.load(directory: classifiersDir, kinds: kinds)
    } else {
      bundle = try DetectorBundle.load(modelPath: modelOptions.model!, kinds: kinds)
    }
    quietImageWarnings()
    ImageCodec.policy = DecodePolicy(maxPixels: imageOptions.maxImagePixels)
    compute.apply()
    precisionOption.apply()
    let model = try modelOptions.load()
    try requireBatchMemory(imageOptions.batch, model: model)
    if let c = bundle.classifiers.first(where: { $0.dimension != model.dimension }) {
      throw CLIError(.dimensionMismatch, "the \(c.kind.rawValue) classifier was fitted on embeddings of dimension \(c.dimension), the model gives \(model.dimension)")
    }

    // Each argument on its own: a missing file or empty folder is one error line, not the end.
    var items: [ImageItem] = []
    var outcomes: [(source: String, item: Int?, error: String?)] = []
    for p in images {
      do {
        for it in try listImageItems(path: p) {
          outcomes.append((it.source, items.count, nil))
          items.append(it)
        }
      } catch { outcomes.append((p, nil, "\(error)")) }
    }
    let result = try ImageEmbedder(model: model, preprocess: imageOptions.preprocess, batchSize: imageOptions.batch).run(items)
    var failed: [Int: String] = [:]
    for f in result.failures { failed[f.index] = f.message }
    let detections = result.rows.isEmpty ? [] : try bundle.detect(embeddings: result.embeddings, count: result.rows.count)
    var rowOf: [Int: Int] = [:]
    for (r, i) in result.rows.enumerated() { rowOf[i] = r }

    var classified = 0
    if !json && detections.count > 1 {
      print(detections.map { $0.kind.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  image")
    }
    for o in outcomes {
      let error = o.error ?? o.item.flatMap { failed[$0] }
      if let error {
        if json {
          print(jsonLine(["image": o.source, "error": error]))
        } else {
          printErr("error: \(error)")
        }
        continue
      }
      let r = rowOf[o.item!]!
      classified += 1
      if json {
        var obj: [String: Any] = ["image": o.source]
        for d in detections {
          obj[d.kind.rawValue] = ["label": d.predictions.labels[r] == 1 ? "fake" : "real", "score": d.predictions.scores[r]]
        }
        print(jsonLine(obj))
      } else {
        let cols = detections.map { d in
          (d.predictions.labels[r] == 1 ? "fake" : "real") + String(format: " %+8.4f", d.predictions.scores[r])
        }
        print(cols.joined(separator: "  ") + "  " + o.source)
      }
    }
    // Every problem was reported on its own line above.
    if classified == 0 { throw ExitCode(1) }
  }

  func jsonLine(_ obj: [String: Any]) -> String {
    (try? JSONOutput.string(obj)) ?? "{}"
  }
}
