import Foundation
import SafeTensors
import TestSupport
import ViT
import XCTest

/// The model's weights I/O and parameter layout (small ViT of the CoDE step tests, timm's names).
final class ViTModelTests: XCTestCase {
  static let smallConfig = ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 4, patch: 16, imageSize: 48)

  /// timm's state dict (names, shapes) round-trips through our safetensors writer.
  func testWeightsRoundTrip() throws {
    let model = try ViTModel(config: Self.smallConfig)
    try model.load(path: fixturePath("Engine", "model_small.safetensors"))
    let path = NSTemporaryDirectory() + "/cde-roundtrip-\(getpid()).safetensors"
    defer { unlink(path) }
    try model.save(path: path)
    let m2 = try ViTModel(config: Self.smallConfig)
    try m2.load(path: path)
    XCTAssertEqual(Array(UnsafeBufferPointer(start: model.params, count: model.parameterCount)),
                   Array(UnsafeBufferPointer(start: m2.params, count: m2.parameterCount)))
    let ref = try SafeTensorsFile(path: fixturePath("Engine", "model_small.safetensors"))
    let ours = try SafeTensorsFile(path: path)
    XCTAssertEqual(Set(ref.tensors.keys), Set(ours.tensors.keys))
    for (k, v) in ref.tensors { XCTAssertEqual(ours.tensors[k]?.shape, v.shape, k) }
  }

  func testParameterCountOfViTTiny() throws {
    XCTAssertEqual(ParameterLayout(config: .tiny).total, 5_524_416)
  }

  func testWrongShapeIsAClearError() throws {
    let model = try ViTModel(config: ViTConfig(width: 64, depth: 2, heads: 2, imageSize: 48))
    XCTAssertThrowsError(try model.load(path: fixturePath("Engine", "model_small.safetensors"))) { e in
      XCTAssertTrue("\(e)".contains("cls_token") && "\(e)".contains("model_small.safetensors"), "\(e)")
      guard case .unreadableTensor(.wrongShape(_, "cls_token"))? = (e as? ViTError)?.kind else {
        return XCTFail("\(e): not a ViTError.unreadableTensor of cls_token")
      }
    }
    XCTAssertThrowsError(try model.makeActivations(batch: 1, height: 40, width: 48)) { e in
      XCTAssertEqual((e as? ViTError)?.kind, .imageSize(height: 40, width: 48))
    }
  }
}
