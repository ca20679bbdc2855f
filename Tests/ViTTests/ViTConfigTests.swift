import ViT
import XCTest

/// `ViTConfig.validate()`: the engine's own check of a shape.
final class ViTConfigTests: XCTestCase {
  func testValidateRejectsNonPositiveEpsilon() {
    var c = ViTConfig.tiny
    c.lnEps = 0
    XCTAssertThrowsError(try c.validate()) {
      XCTAssertEqual("\($0)", "model config: ln_eps 0.0 must be positive")
      XCTAssertEqual(($0 as? ViTError)?.kind, .invalidConfig)
    }
  }
}
