import Foundation
import SafeTensors
import TestSupport
import XCTest
@testable import Evaluation

/// transformers ViTModel <-> timm conversion against scripts/fixtures/eval_hf_vit.py:
/// a save_pretrained directory of a small random ViTModel and the same weights under
/// timm names (verified in Python by a timm forward that reproduces transformers).
final class HFViTConversionTests: XCTestCase {
  let hfDir = fixturePath("hf-vit-small")

  func testLoadHuggingFaceDirectoryGivesTimmTensors() throws {
    let w = try LoadedWeights.load(path: hfDir)
    XCTAssertEqual(w.layout, .huggingFace)
    let cfg = try XCTUnwrap(w.hfConfig)
    XCTAssertEqual(cfg, HFViTConfig(hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64,
                                    patchSize: 16, imageSize: 32, numChannels: 3, layerNormEps: 1e-12, qkvBias: true))
    XCTAssertEqual(w.layerNormEps, 1e-12)
    let ref = try TensorDict.read(SafeTensorsFile(path: hfDir + "/timm.safetensors"))
    XCTAssertEqual(Set(w.tensors.keys), Set(ref.keys))
    for (name, t) in ref {
      XCTAssertEqual(w.tensors[name]?.shape, t.shape, name)
      XCTAssertEqual(w.tensors[name]?.values, t.values, name)
    }
    // The in-memory file a model can load from.
    let f = try w.safeTensorsFile()
    XCTAssertEqual(try f.floats("blocks.1.attn.qkv.weight"), ref["blocks.1.attn.qkv.weight"]!.values)
  }

  func testExportWritesTransformersLayout() throws {
    let dir = temporaryDirectory(self, prefix: "eval")
    let timm = try TensorDict.read(SafeTensorsFile(path: hfDir + "/timm.safetensors"))
    let cfg = HFViTConfig(hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64,
                          patchSize: 16, imageSize: 32, layerNormEps: 1e-12)
    try exportHuggingFace(tensors: timm, config: cfg, to: dir)
    let written = try SafeTensorsFile(path: dir + "/model.safetensors")
    XCTAssertEqual(written.metadata["format"], "pt")
    let ref = try SafeTensorsFile(path: hfDir + "/model.safetensors")
    let expected = Set(ref.names.filter { !$0.hasPrefix("pooler.") })
    XCTAssertEqual(Set(written.names), expected)
    for name in expected {
      XCTAssertEqual(try written.info(name).shape, try ref.info(name).shape, name)
      XCTAssertEqual(try written.floats(name), try ref.floats(name), name)
    }
    let cfgBack = try HFViTConfig(json: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")), path: "config.json")
    XCTAssertEqual(cfgBack, cfg)
    // And the exported directory loads back to the same timm tensors.
    let again = try LoadedWeights.load(path: dir)
    XCTAssertEqual(again.tensors, timm)
  }

  func testTimmFileLoadsAsIs() throws {
    let w = try LoadedWeights.load(path: hfDir + "/timm.safetensors")
    XCTAssertEqual(w.layout, .timm)
    XCTAssertNil(w.layerNormEps)
    XCTAssertEqual(w.tensors["pos_embed"]?.shape, [1, 5, 32])
  }

  func testDefaultsOfConfigJSON() throws {
    let cfg = try HFViTConfig(json: Data("{\"model_type\": \"vit\", \"hidden_size\": 192, \"num_attention_heads\": 3}".utf8), path: "c.json")
    XCTAssertEqual(cfg.layerNormEps, 1e-12)
    XCTAssertEqual(cfg.numHiddenLayers, 12)
    XCTAssertEqual(cfg.intermediateSize, 3072)
    XCTAssertTrue(cfg.json().contains("\"layer_norm_eps\": 1e-12"), cfg.json())
    XCTAssertTrue(HFViTConfig().json().contains("\"layer_norm_eps\": 1e-06"), HFViTConfig().json())
  }

  func testBadInputsGiveOneLine() throws {
    let dir = temporaryDirectory(self, prefix: "eval")
    func expectError(_ body: () throws -> Void, contains: String, line: UInt = #line) {
      XCTAssertThrowsError(try body(), line: line) { e in
        let s = "\(e)"
        XCTAssertTrue(s.contains(contains), "\(s)", line: line)
        XCTAssertFalse(s.contains("\n"), line: line)
      }
    }
    // HF weights without config.json.
    try FileManager.default.copyItem(atPath: hfDir + "/model.safetensors", toPath: dir + "/model.safetensors")
    expectError({ _ = try LoadedWeights.load(path: dir) }, contains: "config.json: missing")
    // A config that disagrees with the weights.
    try Data("{\"model_type\": \"vit\", \"hidden_size\": 32, \"num_hidden_layers\": 3, \"num_attention_heads\": 2, \"intermediate_size\": 64, \"image_size\": 32, \"patch_size\": 16}".utf8)
      .write(to: URL(fileURLWithPath: dir + "/config.json"))
    expectError({ _ = try LoadedWeights.load(path: dir) }, contains: "missing tensor encoder.layer.2.")
    try Data("{\"model_type\": \"vit\", \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"intermediate_size\": 48, \"image_size\": 32, \"patch_size\": 16}".utf8)
      .write(to: URL(fileURLWithPath: dir + "/config.json"))
    expectError({ _ = try LoadedWeights.load(path: dir) }, contains: "intermediate.dense.weight has shape [64, 32], expected [48, 32]")
    expectError({ _ = try HFViTConfig(json: Data("{\"hidden_act\": \"gelu_new\"}".utf8), path: "c.json") }, contains: "c.json: hidden_act 'gelu_new'")
    expectError({ _ = try HFViTConfig(json: Data("{\"model_type\": \"bert\"}".utf8), path: "c.json") }, contains: "model_type is 'bert'")
    expectError({ _ = try LoadedWeights.load(path: dir + "/nope") }, contains: "no such model")
    XCTAssertThrowsError(try LoadedWeights.load(path: dir + "/nope")) {
      XCTAssertEqual(($0 as? EvaluationError)?.kind, .notFound(path: dir + "/nope"))
    }
    expectError({ _ = try LoadedWeights.load(path: fixturePath("eval-probe.safetensors")) }, contains: "neither timm ViT names")
  }
}
