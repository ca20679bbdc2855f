import Foundation
import ViT
import XCTest

/// `ViTConfig.Section`: the one parser of a model section (YAML-decoded and JSON-decoded values).
final class ViTConfigParsingTests: XCTestCase {
  func testSectionSetsOnlyItsKeys() throws {
    let s = try ViTConfig.Section(parsing: ["width": 32, "depth": 2, "heads": 2, "mlp_ratio": 2, "ln_eps": 1e-12])
    XCTAssertEqual(s.width, 32)
    XCTAssertEqual(s.mlpRatio, 2)
    XCTAssertNil(s.patch)
    let c = s.applied(to: .tiny)
    XCTAssertEqual(c, ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 2, patch: 16, imageSize: 224, lnEps: 1e-12))
    XCTAssertEqual(try ViTConfig.Section(parsing: [:]).applied(to: .tiny), .tiny)
  }

  func testJSONNumbersAreRead() throws {
    let json = #"{"width": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.5, "patch": 16, "image_size": 32, "ln_eps": 1e-06}"#
    let m = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
    let s = try ViTConfig.Section(parsing: m, keyPrefix: "config.model.")
    XCTAssertEqual(s.applied(to: .tiny), ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 2.5, patch: 16, imageSize: 32, lnEps: 1e-6))
  }

  func testWrongTypesAndUnknownKeysAreTypedErrors() {
    func kind(_ m: [String: Any], prefix: String = "model.", ignore: Bool = false) -> ViTError.Kind? {
      do { _ = try ViTConfig.Section(parsing: m, keyPrefix: prefix, ignoreUnknownKeys: ignore); return nil } catch { return error.kind }
    }
    XCTAssertEqual(kind(["width": 32.0]), .notAnInteger(key: "model.width", value: "32.0"))
    XCTAssertEqual(kind(["heads": true]), .notAnInteger(key: "model.heads", value: "true"))
    XCTAssertEqual(kind(["heads": "2"], prefix: "config.model."), .notAnInteger(key: "config.model.heads", value: "2"))
    XCTAssertEqual(kind(["ln_eps": "small"]), .notANumber(key: "model.ln_eps", value: "small"))
    XCTAssertEqual(kind(["mlp_ratio": Double.infinity]), .notANumber(key: "model.mlp_ratio", value: "inf"))
    XCTAssertEqual(kind(["widht": 32]), .unknownKey("model.widht"))
    XCTAssertNil(kind(["widht": 32, "lr": 0.1], ignore: true))
    XCTAssertEqual(ViTError(.notAnInteger(key: "model.width", value: "32.0")).description, "model.width: expected an integer, got 32.0")
    XCTAssertEqual(ViTError(.unknownKey("model.widht")).description, "unknown key model.widht")
  }

  func testValidateRejectsNonPositiveEpsilon() {
    var c = ViTConfig.tiny
    c.lnEps = 0
    XCTAssertThrowsError(try c.validate()) {
      XCTAssertEqual("\($0)", "model config: ln_eps 0.0 must be positive")
      XCTAssertEqual(($0 as? ViTError)?.kind, .invalidConfig)
    }
  }
}
