import Foundation
import Randomness
import SafeTensors
import TestSupport
import XCTest

@testable import Imaging

/// Fixtures from scripts/fixtures/imaging_fixtures.py (Pillow / torchvision).
final class Fixtures {
  static let shared = Fixtures()
  let file: SafeTensorsFile
  let cases: [[String: Any]]

  init() {
    let path = fixturePath("Imaging", "imaging_fixtures.safetensors")
    file = try! SafeTensorsFile(path: path)
    let json = file.metadata["cases"]!.data(using: .utf8)!
    cases = try! JSONSerialization.jsonObject(with: json) as! [[String: Any]]
  }

  func image(_ name: String) -> RGBImage {
    let t = try! file.info(name)
    precondition(t.dtype == .u8 && t.shape.count == 3 && t.shape[2] == 3, name)
    return RGBImage(width: t.shape[1], height: t.shape[0], pixels: [UInt8](try! file.bytes(name)))
  }

  func bytes(_ name: String) -> Data { try! file.bytes(name) }
  func floats(_ name: String) -> [Float] { try! file.floats(name) }
  func cases(op: String) -> [[String: Any]] { cases.filter { ($0["op"] as! String) == op } }
}

final class ImagingFixtureTests: XCTestCase {
  let fx = Fixtures.shared

  func source(_ c: [String: Any]) -> RGBImage { fx.image(c["src"] as! String) }
  func value(_ c: [String: Any]) -> Double { (c["value"] as? NSNumber)?.doubleValue ?? 0 }
  func int(_ c: [String: Any], _ k: String) -> Int { (c[k] as! NSNumber).intValue }

  /// Checks every case of `op` with `make`, within `maxAbs` per byte and `maxFrac` of
  /// differing bytes.
  func check(_ op: String, maxAbs: Int = 0, maxFrac: Double = 0, maxMean: Double = 0,
             _ make: ([String: Any]) -> RGBImage, file: StaticString = #filePath, line: UInt = #line) {
    let cs = fx.cases(op: op)
    XCTAssertFalse(cs.isEmpty, "no fixtures for \(op)", file: file, line: line)
    for c in cs {
      let name = c["name"] as! String
      let got = make(c), want = fx.image(name)
      guard let d = RGBImage.difference(got, want) else {
        XCTFail("\(name): size \(got.width)x\(got.height), expected \(want.width)x\(want.height)", file: file, line: line)
        continue
      }
      XCTAssert(d.maxAbs <= maxAbs && d.fracDiff <= maxFrac && d.meanAbs <= maxMean,
                "\(name): \(d)", file: file, line: line)
    }
  }

  // MARK: Resampling (exact: same fixed-point arithmetic as Pillow)

  func testResizeBicubicExact() {
    check("resize") { self.source($0).resized(width: self.int($0, "w"), height: self.int($0, "h"), filter: .bicubic) }
  }

  func testResizeBilinearAndLanczosExact() {
    check("resize_bilinear") { self.source($0).resized(width: self.int($0, "w"), height: self.int($0, "h"), filter: .bilinear) }
    check("resize_lanczos") { self.source($0).resized(width: self.int($0, "w"), height: self.int($0, "h"), filter: .lanczos) }
  }

  func testTorchvisionResizeCenterCropExact() {
    check("resize_center_crop") {
      self.source($0).resizedCenterCropped(shorter: self.int($0, "shorter"), crop: self.int($0, "crop"))
    }
  }

  func testResizedCropExact() {
    check("resized_crop") { c in
      let s = self.int(c, "size")
      return self.source(c).resampled(width: s, height: s, filter: .bicubic,
                                      source: PixelRect(x: self.int(c, "left"), y: self.int(c, "top"),
                                                        width: self.int(c, "width"), height: self.int(c, "height")))
    }
  }

  // MARK: The nineteen operations of T

  func apply(_ op: TransformOp, _ c: [String: Any]) -> RGBImage {
    var rng = CounterRNG(seed: 0, epoch: 0, record: 0, stream: 0)
    return op.apply(source(c), value: value(c), rng: &rng)
  }

  func testBlur() { check("blur") { self.apply(.blur, $0) } }
  func testBrightness() { check("brightness") { self.apply(.brightness, $0) } }
  func testAspectRatio() { check("aspectRatio") { self.apply(.aspectRatio, $0) } }
  func testPixelization() { check("pixelization") { self.apply(.pixelization, $0) } }
  func testRotation() { check("rotation") { self.apply(.rotation, $0) } }
  func testContrast() { check("contrast") { self.apply(.contrast, $0) } }
  func testSaturation() { check("saturation") { self.apply(.saturation, $0) } }
  func testGrayscale() { check("grayscale") { self.apply(.grayscale, $0) } }
  func testHFlip() { check("hflip") { self.apply(.hflip, $0) } }
  func testOpacity() { check("opacity") { self.apply(.opacity, $0) } }
  func testOverlayStripes() { check("overlayStripes") { self.apply(.overlayStripes, $0) } }
  func testPad() { check("pad") { self.apply(.pad, $0) } }
  func testResizeOp() { check("resizeOp") { self.apply(.resize, $0) } }
  func testScale() { check("scale") { self.apply(.scale, $0) } }
  func testSharpen() { check("sharpen") { self.apply(.sharpen, $0) } }
  func testSkew() { check("skew") { self.apply(.skew, $0) } }

  func testRandomCropAtGivenOffsets() {
    check("randomCrop") { self.source($0).randomCrop(size: self.int($0, "value"), top: self.int($0, "top"), left: self.int($0, "left")) }
  }

  /// JPEG: libvips + libjpeg-turbo 2.1 against Pillow's bundled libjpeg-turbo; same
  /// quantisation tables and 4:2:0, different builds: within 2 levels per byte.
  func testJPEGReencoding() { check("jpeg", maxAbs: 2, maxFrac: 0.1, maxMean: 0.1) { self.apply(.jpeg, $0) } }

  func testGridsMatchTorchLinspace() {
    for op in TransformOp.allCases where !op.isContinuous && op.range != nil {
      let (a, b) = op.range!
      let want = fx.floats("grid.\(op)").map(Double.init)
      XCTAssertEqual(TransformOp.grid(a, b), want, "grid of \(op)")
    }
  }

  // MARK: Decoding

  func testDecodeAllEncodings() throws {
    for c in fx.cases(op: "decode") {
      let name = c["name"] as! String
      let got = try ImageCodec.decode(fx.bytes("file.\(name)"), name: name)
      let want = fx.image("decoded.\(name)")
      guard let d = RGBImage.difference(got, want) else { XCTFail("\(name): size \(got.width)x\(got.height)"); continue }
      if name.hasSuffix(".jpg") {
        // Different libjpeg-turbo builds (IDCT, upsampling): within 2 levels.
        XCTAssert(d.maxAbs <= 2 && d.meanAbs <= 0.1, "\(name): \(d)")
      } else {
        XCTAssertEqual(d.maxAbs, 0, "\(name): \(d)")
      }
    }
  }

  func testSourcePNGsDecodeExactly() throws {
    for s in ["src", "src2"] {
      XCTAssertEqual(try ImageCodec.decode(fx.bytes("\(s).png"), name: s), fx.image(s))
    }
  }
}
