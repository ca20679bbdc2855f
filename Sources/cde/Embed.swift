import ArgumentParser
import Clock
import Evaluation
import Foundation
import Imaging
import JSONOutput
import ViT

/// The model options of `cde embed`, `cde detect` and `cde export`.
struct ModelOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Model: a timm-named .safetensors file, a checkpoint directory, a run directory (its newest checkpoint), or a Hugging Face ViTModel directory (config.json + model.safetensors).",
    valueName: "path"))
  var model: String?

  @Option(help: "YAML config whose model: section gives the ViT shape (needed only when the weights do not tell the number of heads).")
  var config: String?

  /// The model, shape from --config or inferred (see `LoadedWeights.inferConfig`).
  func load() throws -> EmbeddingModel {
    guard let model else { throw CLIError(.invalidArgument, "--model: no model given") }
    let declared = try config.map { try loadModelConfig($0) }
    return try EmbeddingModel(path: model, declared: declared, declaredSource: config ?? "--config")
  }
}

/// `cde embed`: embeddings of images, folders or shards.
struct Embed: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write the embeddings (class token after the final LayerNorm) of images, folders or shards.",
    discussion: """
      PATH is an image file, a folder (the test layout real/, gen_0/ ... gen_3/, optionally under \
      augm/ or no_augm/, or any folder of images), a WebDataset .tar shard, or a directory of shards. \
      The output holds F32 embeddings [N, D] and I64 labels [N] (0 real, k+1 for gen_k, -1 unknown, \
      from the folder or member name); its metadata lists the source of each row (file, or \
      shard:member) and the model, so that `cde eval` can save the fitted classifiers next to it. \
      Images that cannot be read are reported and left out.
      """)

  @OptionGroup var modelOptions: ModelOptions

  @Option(name: .customLong("init-seed"), help: "Use a randomly initialised model (timm's init, this seed) of the --config shape instead of --model (a baseline).")
  var initSeed: UInt64?

  @Option(help: "Output file (safetensors).") var out: String

  @Option(name: .customLong("index-dir"), help: "Directory for shard indexes (default: beside the shards).") var indexDir: String?

  @Flag(help: "No progress bar and no summary.") var quiet = false

  @OptionGroup var imageOptions: ImageOptions
  @OptionGroup var precisionOption: PrecisionOption
  @OptionGroup var compute: ComputeOptions

  @Argument(help: "Images, folders or shards.") var paths: [String]

  func validate() throws {
    if (modelOptions.model == nil) == (initSeed == nil) { throw ValidationError("give exactly one of --model and --init-seed") }
    if paths.isEmpty { throw ValidationError("give at least one image, folder or shard") }
  }

  func run() throws {
    quietImageWarnings()
    ImageCodec.policy = DecodePolicy(maxPixels: imageOptions.maxImagePixels)
    compute.apply()
    precisionOption.apply()
    let model: EmbeddingModel
    var meta: [String: String]
    if let seed = initSeed {
      model = try EmbeddingModel(randomSeed: seed, config: try loadModelConfig(modelOptions.config))
      meta = ["model": "random-init:seed=\(seed)"]
    } else {
      model = try modelOptions.load()
      meta = modelOptions.metadata(model)
    }
    try requireBatchMemory(imageOptions.batch, model: model)
    let t0 = MonotonicClock.seconds()
    let (file, items, skipped) = try embedImages(paths, model: model, metadata: meta, preprocess: imageOptions.preprocess, batch: imageOptions.batch,
                                                 indexDir: indexDir, progress: !quiet)
    try file.write(to: out)
    if !quiet {
      var counts: [Int64: Int] = [:]
      for l in file.labels { counts[l, default: 0] += 1 }
      let classes = counts.keys.sorted { ($0 < 0 ? 99 : $0) < ($1 < 0 ? 99 : $1) }
        .map { "\(EmbeddingFile.className($0)) \(counts[$0]!)" }.joined(separator: ", ")
      let secs = MonotonicClock.seconds(since: t0)
      print(String(format: "%@: %d embeddings of %d (%@)%@, %.1f images/s", out, file.count, file.dimension, classes,
                   skipped == 0 ? "" : ", \(skipped) skipped", Double(items) / max(secs, 1e-9)))
    }
  }
}

extension ModelOptions {
  /// The metadata `cde embed` records for a loaded model: its path, file and layout.
  func metadata(_ model: EmbeddingModel) -> [String: String] {
    var meta: [String: String] = ["model": absolutePath(self.model!)]
    if let w = model.weights {
      meta["model_file"] = absolutePath(w.path)
      meta["model_layout"] = w.layout.rawValue
    }
    return meta
  }
}

/// Embeddings of images, folders or shards with `model`, as `cde embed` writes them (also
/// what `cde eval` runs on image folders): labels from the folder or member names, sources,
/// and `metadata` plus producer, preprocess, image_size, ln_eps and the skipped images.
/// Unreadable images are reported on stderr and left out; none readable is an error.
/// Returns the embeddings, the number of images listed and the number skipped.
func embedImages(_ paths: [String], model: EmbeddingModel, metadata: [String: String], preprocess pre: EmbedPreprocess,
                 batch: Int, indexDir: String?, progress: Bool) throws -> (EmbeddingFile, Int, Int) {
  let items = try listImageItems(paths, indexDirectory: indexDir)
  var meta = metadata
  meta["producer"] = "cde embed"
  meta["preprocess"] = pre.rawValue
  meta["image_size"] = "\(model.imageSize)"
  meta["ln_eps"] = "\(model.config.lnEps)"
  let bar = ProgressBar(total: items.count, enabled: progress)
  let result = try ImageEmbedder(model: model, preprocess: pre, batchSize: batch).run(items) { done, total in
    bar.update(done)
  }
  bar.finish()
  for f in result.failures { printErr("skipped \(f.message)") }
  guard !result.rows.isEmpty else {
    throw CLIError(.noData, "\(paths.joined(separator: " ")): no image could be read (\(result.failures.count) failed)")
  }
  if !result.failures.isEmpty {
    meta["skipped"] = try JSONOutput.string(result.failures.map { $0.source })
  }
  let file = try EmbeddingFile(embeddings: result.embeddings, dimension: result.dimension,
                               labels: result.rows.map { items[$0].label }, sources: result.rows.map { items[$0].source },
                               metadata: meta)
  return (file, items.count, result.failures.count)
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
final class ProgressBar {
  let total: Int
  let enabled: Bool
  /// What is counted ("images", "rows").
  let unit: String
  let start = MonotonicClock.seconds()
  var last = -Double.infinity

  init(total: Int, enabled: Bool, unit: String = "images") {
    self.total = total
    self.enabled = enabled && isatty(2) != 0
    self.unit = unit
  }

  func update(_ done: Int) {
    guard enabled else { return }
    let now = MonotonicClock.seconds()
    if done < total && now - last < 0.1 { return }
    last = now
    let width = 30, filled = total > 0 ? width * done / total : width
    let secs = now - start, rate = Double(done) / max(secs, 1e-9)
    let eta = rate > 0 ? Double(total - done) / rate : 0
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    FileHandle.standardError.write(Data(String(format: "\r[%@] %d/%d %@, %.1f/s, %.0f s left ", bar, done, total, unit, rate, eta).utf8))
  }

  func finish() {
    if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
  }
}

func absolutePath(_ p: String) -> String {
  URL(fileURLWithPath: p).standardizedFileURL.path
}

/// --batch against memory for the loaded model: two input batches [batch, 3, S, S] and
/// the forward activations of one.
func requireBatchMemory(_ batch: Int, model: EmbeddingModel) throws {
  let s = Double(model.imageSize)
  let bytes = Double(batch) * (2 * Double(model.config.channels) * s * s * 4 + vitActivationBytes(model.config, imageSize: model.imageSize))
  do { try requireMemory("--batch", batch, bytes: bytes, what: "the inputs and activations of \(batch) images at \(model.imageSize) px") } catch let e as ValidationError {
    throw CLIError(.invalidArgument, e.message)
  }
}

/// libvips prints its own warnings about damaged files to stderr (several lines per
/// file); the decoder's error already names the file and the reason, so they are
/// silenced unless the user set VIPS_WARNING.
func quietImageWarnings() {
  setenv("VIPS_WARNING", "0", 0)
}
