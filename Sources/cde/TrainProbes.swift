import Evaluation
import Foundation
import Training
import TrainingRun

/// The probe evaluation of `cde train` (`eval.*`): Training's `ProbeEvaluator` on the
/// Evaluation module's embedder and classifiers, so that an evaluation during training
/// gives what `cde embed` + `cde eval` give for the same checkpoint and images.
///
/// Images are listed once at start-up, as `cde embed` lists them (so a missing path or
/// one without labelled images fails before the first step), capped by
/// `eval.max_probe_images` / `eval.max_test_images` (`balancedSubset(cap:)`). A unit of work
/// is a batch of `batch` consecutive images of one split, probe batches first: batch
/// boundaries fall where `cde embed --batch 4` puts them, whichever rank embeds them.
final class TrainingProbes: ProbeEvaluator {
  let probe: [ImageItem]
  let test: [ImageItem]
  let model: EmbeddingModel
  let embedder: ImageEmbedder
  let kinds: [ClassifierKind]
  let unitRows: [Int]
  let probeUnits: Int
  /// Images per forward pass (`cde embed`'s default).
  static let batch = 4

  var dimension: Int { model.dimension }
  var summary: String { "\(probe.count) probe + \(test.count) test images" }

  init(config: TrainConfig) throws {
    let e = config.eval
    let ks = try e.classifiers.map { name -> ClassifierKind in
      guard let k = ClassifierKind(rawValue: name) else { throw CLIError(.invalidArgument, "eval.classifiers: unknown classifier '\(name)'") }
      return k
    }
    let p = try Self.list(e.probe, key: "eval.probe", cap: e.maxProbeImages)
    let t = try Self.list(e.test, key: "eval.test", cap: e.maxTestImages)
    let paths = { (p: [String]) in p.joined(separator: " ") }
    if !p.contains(where: { $0.label == 0 }) { throw CLIError(.noData, "eval.probe: \(paths(e.probe)): no real images to fit the classifiers on") }
    if ks.contains(where: { $0 != .svm }) && !p.contains(where: { $0.label > 0 }) {
      throw CLIError(.noData, "eval.probe: \(paths(e.probe)): no generated (gen_k) images to fit the classifiers on")
    }
    if !t.contains(where: { $0.label == 0 }) || !t.contains(where: { $0.label > 0 }) {
      throw CLIError(.noData, "eval.test: \(paths(e.test)): needs real and generated (gen_k) images to score on")
    }
    guard let pre = EmbedPreprocess(rawValue: e.preprocess.rawValue) else {
      throw CLIError(.invalidArgument, "eval.preprocess: unknown value '\(e.preprocess.rawValue)'")
    }
    let m = try EmbeddingModel(randomSeed: 0, config: config.model.vit)
    func chunks(_ n: Int) -> [Int] { stride(from: 0, to: n, by: Self.batch).map { min(Self.batch, n - $0) } }
    kinds = ks
    probe = p
    test = t
    model = m
    embedder = ImageEmbedder(model: m, preprocess: pre, batchSize: Self.batch)
    probeUnits = chunks(p.count).count
    unitRows = chunks(p.count) + chunks(t.count)
  }

  /// The labelled images of `paths` (as `cde embed` lists them), capped to `cap` (0: all);
  /// errors are one line naming the key.
  static func list(_ paths: [String], key: String, cap: Int) throws -> [ImageItem] {
    let items: [ImageItem]
    do { items = try listImageItems(paths) } catch { throw CLIError(.invalidArgument, "\(key): \(error)") }
    let labelled = items.filter { $0.label >= 0 }
    if labelled.isEmpty {
      throw CLIError(.noData, "\(key): \(paths.joined(separator: " ")): no labelled images (real/ or gen_k/ folders, or shard members)")
    }
    return labelled.balancedSubset(cap: cap)
  }

  func embed(units: Range<Int>, parameters: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) throws -> [String?] {
    model.vit.params.update(from: parameters, count: model.vit.parameterCount)
    let d = dimension
    var errors: [String?] = []
    var row = 0
    for (items, first, end) in [(probe, 0, probeUnits), (test, probeUnits, unitRows.count)] {
      let lo = max(units.lowerBound, first), hi = min(units.upperBound, end)
      guard lo < hi else { continue }
      let slice = Array(items[((lo - first) * Self.batch)..<min(items.count, (hi - first) * Self.batch)])
      let r = try embedder.run(slice)
      r.embeddings.withUnsafeBufferPointer { e in
        for (k, i) in r.rows.enumerated() { (out + (row + i) * d).update(from: e.baseAddress! + k * d, count: d) }
      }
      var failed = [String?](repeating: nil, count: slice.count)
      for f in r.failures { failed[f.index] = "\(f.source): \(f.message)" }
      errors += failed
      row += slice.count
    }
    return errors
  }

  func score(embeddings: [Float], valid: [Bool]) throws -> [String: Double] {
    let d = dimension
    func file(_ items: [ImageItem], from first: Int) throws -> EmbeddingFile {
      var e: [Float] = [], labels: [Int64] = [], sources: [String] = []
      for (i, it) in items.enumerated() where valid[first + i] {
        e += embeddings[((first + i) * d)..<((first + i + 1) * d)]
        labels.append(it.label)
        sources.append(it.source)
      }
      return try EmbeddingFile(embeddings: e, dimension: d, labels: labels, sources: sources)
    }
    let p = try file(probe, from: 0), t = try file(test, from: probe.count)
    let (report, _) = try runEvaluation(probe: p, test: t, classifiers: kinds, probePath: "eval.probe", testPath: "eval.test")
    var out: [String: Double] = [:]
    for c in report.classifiers {
      for s in c.subsets {
        let m = s.metrics, k = "\(c.name).\(s.name)."
        out[k + "real_acc"] = m.realAcc ?? .nan
        out[k + "fake_acc"] = m.fakeAcc ?? .nan
        out[k + "acc"] = m.acc ?? .nan
        out[k + "auc"] = m.auc ?? .nan
      }
    }
    return out
  }

  func release() { model.releaseActivations() }
}
