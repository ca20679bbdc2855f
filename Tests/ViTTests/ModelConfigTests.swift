import ViT
import XCTest

/// `ModelConfig`: the defaults are timm's ViT-Tiny, `vit` keeps every field, and `problem`
/// names the first key that does not describe a ViT.
final class ModelConfigTests: XCTestCase {
  func testDefaultsAreViTTinyAndVitKeepsEveryField() {
    XCTAssertEqual(ModelConfig().vit, .tiny)
    XCTAssertNil(ModelConfig().problem)
    var m = ModelConfig()
    m.width = 32; m.depth = 2; m.heads = 2; m.mlpRatio = 2.5; m.patch = 8; m.imageSize = 32; m.lnEps = 1e-12
    XCTAssertEqual(m.vit, ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 2.5, patch: 8, imageSize: 32, channels: 3, lnEps: 1e-12))
    XCTAssertNil(m.problem)
  }

  func testProblemNamesTheFirstFailingKey() {
    func problem(_ change: (inout ModelConfig) -> Void) -> String? {
      var m = ModelConfig()
      change(&m)
      return m.problem.map { "\($0.key): \($0.why)" }
    }
    XCTAssertEqual(problem { $0.width = 0 }, "model.width: must be positive")
    XCTAssertEqual(problem { $0.depth = -1 }, "model.depth: must be positive")
    XCTAssertEqual(problem { $0.heads = 5 }, "model.heads: must be positive and divide model.width (192)")
    XCTAssertEqual(problem { $0.mlpRatio = 0.3 }, "model.mlp_ratio: must be positive and give a whole MLP width")
    XCTAssertEqual(problem { $0.mlpRatio = .nan }, "model.mlp_ratio: must be positive and give a whole MLP width")
    XCTAssertEqual(problem { $0.patch = 0 }, "model.patch: must be positive")
    XCTAssertEqual(problem { $0.imageSize = 100 }, "model.image_size: must be a positive multiple of model.patch (16)")
    XCTAssertEqual(problem { $0.lnEps = 0 }, "model.ln_eps: must be positive")
    XCTAssertEqual(problem { $0.width = 0; $0.lnEps = 0 }, "model.width: must be positive")
  }
}
