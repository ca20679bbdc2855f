import Foundation
import SafeTensors
import ViT
import TestSupport
import XCTest
@testable import Evaluation

/// Model loading (any layout, shape inferred), preprocessing and the batched embedder,
/// against transformers' ViTModel and torchvision (scripts/fixtures/eval_hf_vit.py and
/// scripts/fixtures/eval_embed.py).
final class EmbedTests: XCTestCase {
  let hfDir = fixturePath("hf-vit-small")
  let embedDir = fixturePath("embed")

  func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
  }

  /// Class-token embeddings of the fixture's pixel_values through the real load path.
  func embedIO(_ m: EmbeddingModel) throws -> [Float] {
    let io = try SafeTensorsFile(path: hfDir + "/io.safetensors")
    let x = try io.floats("pixel_values")
    return try x.withUnsafeBufferPointer { try m.embed($0.baseAddress!, count: 2, size: 32) }
  }

  func testHuggingFaceCheckpointMatchesTransformers() throws {
    let m = try EmbeddingModel(path: hfDir)
    XCTAssertEqual(m.config, ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 2, patch: 16, imageSize: 32, lnEps: 1e-12))
    let expected = try SafeTensorsFile(path: hfDir + "/io.safetensors").floats("cls")
    let got = try embedIO(m)
    XCTAssertLessThan(maxAbs(got, expected), 1e-4)
    // And the output is not trivially close: a different eps or head count changes it.
    var wrong = m.config
    wrong.heads = 1
    let other = try EmbeddingModel(weights: m.weights!, config: wrong)
    XCTAssertGreaterThan(maxAbs(try embedIO(other), expected), 1e-3)
  }

  func testTimmFileNeedsHeadsFromAConfig() throws {
    XCTAssertThrowsError(try EmbeddingModel(path: hfDir + "/timm.safetensors")) { e in
      XCTAssertTrue("\(e)".contains("cannot tell the number of attention heads of a width-32 model"), "\(e)")
      XCTAssertEqual((e as? EvaluationError)?.kind, .unknownHeads(path: hfDir + "/timm.safetensors"))
    }
    let declared = ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 2, patch: 16, imageSize: 32, lnEps: 1e-12)
    let m = try EmbeddingModel(path: hfDir + "/timm.safetensors", declared: declared)
    let expected = try SafeTensorsFile(path: hfDir + "/io.safetensors").floats("cls")
    XCTAssertLessThan(maxAbs(try embedIO(m), expected), 1e-4)
  }

  func testModelOfTheWrongShapeIsOneLine() throws {
    XCTAssertThrowsError(try EmbeddingModel(path: hfDir, declared: .tiny, declaredSource: "run.yaml")) { e in
      XCTAssertEqual("\(e)", "\(hfDir)/model.safetensors: the weights have width 32 but run.yaml says 192 (model of the wrong shape?)")
      XCTAssertEqual((e as? EvaluationError)?.kind, .shapeMismatch(path: hfDir + "/model.safetensors"))
    }
    // A tensor whose shape disagrees with the others.
    let dir = temporaryDirectory(self, prefix: "eval")
    var t = try TensorDict.read(SafeTensorsFile(path: hfDir + "/timm.safetensors"))
    t["blocks.1.attn.proj.weight"] = NamedTensor(shape: [32, 16], values: [Float](repeating: 0, count: 512))
    try t.writer().write(to: dir + "/bad.safetensors")
    let declared = ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 2, patch: 16, imageSize: 32)
    XCTAssertThrowsError(try EmbeddingModel(path: dir + "/bad.safetensors", declared: declared)) { e in
      XCTAssertTrue("\(e)".contains("blocks.1.attn.proj.weight"), "\(e)")
      XCTAssertFalse("\(e)".contains("\n"))
    }
  }

  func testRunDirectoryTakesNewestCheckpointAndItsConfig() throws {
    let run = temporaryDirectory(self, prefix: "eval")
    for step in ["step-00000002", "step-00000010"] {
      let dir = run + "/checkpoints/" + step
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      try FileManager.default.copyItem(atPath: hfDir + "/timm.safetensors", toPath: dir + "/model.safetensors")
      // As the trainer writes it: the config's model section encoded under its property names.
      var section = ModelConfig()
      section.width = 32; section.depth = 2; section.heads = 2; section.mlpRatio = 2; section.imageSize = 32; section.lnEps = 1e-12
      let json = "{\"step\": 10, \"config\": {\"model\": \(String(decoding: try JSONEncoder().encode(section), as: UTF8.self))}}"
      try Data(json.utf8).write(to: URL(fileURLWithPath: dir + "/trainer.json"))
    }
    // A newer step directory without weights (e.g. being written) is passed over.
    try FileManager.default.createDirectory(atPath: run + "/checkpoints/step-00000020", withIntermediateDirectories: true)
    let m = try EmbeddingModel(path: run)
    XCTAssertEqual(m.weights?.path, run + "/checkpoints/step-00000010/model.safetensors")
    XCTAssertEqual(m.config.heads, 2)
    XCTAssertEqual(m.config.lnEps, 1e-12)
    let expected = try SafeTensorsFile(path: hfDir + "/io.safetensors").floats("cls")
    XCTAssertLessThan(maxAbs(try embedIO(m), expected), 1e-4)
  }

  func testExportedModelEmbedsTheSame() throws {
    let m = try EmbeddingModel(path: hfDir)
    let dir = temporaryDirectory(self, prefix: "eval") + "/hf"
    try exportHuggingFace(tensors: m.tensors(), config: HFViTConfig(vit: m.config), to: dir)
    let again = try EmbeddingModel(path: dir)
    XCTAssertEqual(again.config, m.config)
    XCTAssertEqual(try embedIO(again), try embedIO(m))
  }

  func testPreprocessingMatchesTorchvision() throws {
    let items = try listImageItems([embedDir]).filter { !$0.source.hasSuffix("broken.jpg") }
    XCTAssertEqual(items.map { ($0.source as NSString).lastPathComponent }, ["a.png", "b.png", "d.png", "c.png"])
    let exp = try SafeTensorsFile(path: embedDir + "/expected.safetensors")
    let m = try EmbeddingModel(path: hfDir)
    for (pre, name, tol) in [(EmbedPreprocess.centerCrop, "center", Float(1e-6)), (.resizeCrop, "resize", 1e-6)] {
      let want = try exp.floats(name)
      var got = [Float](repeating: .nan, count: want.count)
      try got.withUnsafeMutableBufferPointer { g in
        for (i, it) in items.enumerated() {
          m.normaliser.normalise(pre.apply(try it.load(), size: 32), into: g.baseAddress! + i * 3 * 32 * 32)
        }
      }
      XCTAssertLessThanOrEqual(maxAbs(got, want), tol, name)
    }
  }

  func testEmbedderSkipsUnreadableImagesAndMatchesTransformers() throws {
    let items = try listImageItems([embedDir])
    XCTAssertEqual(items.map(\.label), [0, 0, 1, 1, 2])
    let exp = try SafeTensorsFile(path: embedDir + "/expected.safetensors")
    let m = try EmbeddingModel(path: hfDir)
    for (pre, name) in [(EmbedPreprocess.centerCrop, "cls_center"), (.resizeCrop, "cls_resize")] {
      let want = try exp.floats(name)
      for batch in [1, 3, 8] {
        var calls: [Int] = []
        let r = try ImageEmbedder(model: m, preprocess: pre, batchSize: batch).run(items) { done, total in
          XCTAssertEqual(total, 5)
          calls.append(done)
        }
        XCTAssertEqual(calls.last, 5)
        XCTAssertEqual(r.rows, [0, 1, 3, 4], "\(name) batch \(batch)")
        XCTAssertEqual(r.failures.count, 1)
        XCTAssertEqual(r.failures.first?.index, 2)
        XCTAssertTrue(r.failures.first?.message.contains("gen_0/broken.jpg: cannot decode image") == true, "\(r.failures)")
        XCTAssertLessThan(maxAbs(r.embeddings, want), 1e-4, "\(name) batch \(batch)")
      }
    }
  }

  func testListingPathsAndErrors() throws {
    let dir = temporaryDirectory(self, prefix: "eval")
    // A single file: its label comes from the path.
    let one = try listImageItems(path: embedDir + "/gen_1/c.png")
    XCTAssertEqual(one.map(\.label), [2])
    // A plain folder of images (not the test layout), searched recursively: unknown labels.
    try FileManager.default.createDirectory(atPath: dir + "/photos/sub", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: embedDir + "/real/a.png", toPath: dir + "/photos/sub/x.png")
    try FileManager.default.copyItem(atPath: embedDir + "/real/b.png", toPath: dir + "/photos/y.PNG")
    try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/photos/readme.txt"))
    let plain = try listImageItems(path: dir + "/photos")
    XCTAssertEqual(plain.map(\.source), [dir + "/photos/sub/x.png", dir + "/photos/y.PNG"])
    XCTAssertEqual(plain.map(\.label), [-1, -1])
    XCTAssertEqual(try plain[1].load().width, 32)
    // Errors: one line naming the path.
    try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
    XCTAssertThrowsError(try listImageItems([embedDir, dir + "/empty"])) { e in
      XCTAssertEqual("\(e)", "\(dir)/empty: no images found (no image files, no real/ gen_k/ folders, no .tar shards)")
    }
    XCTAssertThrowsError(try listImageItems(path: dir + "/missing.png")) { e in
      XCTAssertEqual("\(e)", "\(dir)/missing.png: no such file or directory")
    }
    // A text file given as an image fails when decoded, naming it.
    let txt = try listImageItems(path: dir + "/photos/readme.txt")
    XCTAssertThrowsError(try txt[0].load()) { e in
      XCTAssertTrue("\(e)".hasPrefix("\(dir)/photos/readme.txt: cannot decode image"), "\(e)")
    }
  }
}
