import Foundation
import TestSupport
import XCTest

@testable import Imaging

/// Damaged images (scripts/fixtures/damaged_images.py): every format cut at 10, 50, 90
/// and 99 % of its bytes and with 16 bytes overwritten inside the compressed data, the
/// two cases measured on D3 (JPEG cut to 3,000 bytes, PNG with a broken IDAT stream) and
/// a decompression bomb. `verdicts.json` holds Pillow's verdict for each file; ImageCodec
/// must agree with it on every file. Where Pillow accepts a damaged file, so must we,
/// and the fixture script says why (the damage cannot be seen: BMP pixels are stored raw,
/// VP8 and JPEG entropy data carry no checksum, a PNG cut at 99 % only loses its IEND).
final class DamagedImageTests: XCTestCase {
  static let dir = fixtureDirectory("Imaging/damaged").path

  func verdicts() throws -> [String: [String: Any]] {
    let data = try Data(contentsOf: URL(fileURLWithPath: DamagedImageTests.dir + "/verdicts.json"))
    return try JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
  }

  func testDecoderAgreesWithPillowOnEveryDamagedFile() throws {
    let v = try verdicts()
    XCTAssertGreaterThanOrEqual(v.count, 39)
    var refused = 0
    for (name, entry) in v.sorted(by: { $0.key < $1.key }) {
      let pillow = entry["pillow"] as! Bool
      let data = try Data(contentsOf: URL(fileURLWithPath: DamagedImageTests.dir + "/" + name))
      XCTAssertEqual(data.count, entry["bytes"] as! Int, name)
      var ours = true
      var message = ""
      do {
        let img = try ImageCodec.decode(data, name: name)
        XCTAssertEqual(img.pixels.count, img.width * img.height * 3)
      } catch {
        ours = false
        message = "\(error)"
        XCTAssertTrue(message.hasPrefix(name + ": "), message)
        XCTAssertFalse(message.contains("\n"), message)
      }
      XCTAssertEqual(ours, pillow, "\(name): cde \(ours ? "accepts" : "refuses (\(message))"), Pillow \(pillow ? "accepts" : "refuses")")
      if !ours { refused += 1 }
      if name.contains("-good.") { XCTAssertTrue(ours, name) }
    }
    // Each format's four cuts are refused (PNG: three; its 99 % cut keeps all pixel data).
    XCTAssertGreaterThanOrEqual(refused, 5 * 4 + 3 + 2 + 3)
  }

  /// The limit is read from the header: exactly at the limit decodes, one pixel less is
  /// refused; the bomb (10000x10000 in 12 KiB) is refused at Pillow's default.
  func testPixelLimitIsCheckedBeforeDecoding() throws {
    let good = try Data(contentsOf: URL(fileURLWithPath: DamagedImageTests.dir + "/png-good.png"))
    XCTAssertEqual(try ImageCodec.decode(good, name: "g", policy: DecodePolicy(maxPixels: 96 * 64)).width, 96)
    XCTAssertThrowsError(try ImageCodec.decode(good, name: "g", policy: DecodePolicy(maxPixels: 96 * 64 - 1))) {
      XCTAssertTrue("\($0)".contains("6144 pixels exceeds the limit of 6143"), "\($0)")
      XCTAssertEqual(($0 as? ImagingError)?.kind, .tooManyPixels(name: "g", pixels: 6144, limit: 6143))
    }
    let bomb = try Data(contentsOf: URL(fileURLWithPath: DamagedImageTests.dir + "/bomb-10000x10000.png"))
    XCTAssertLessThan(bomb.count, 64 << 10)
    XCTAssertEqual(DecodePolicy().maxPixels, 89_478_485)
    XCTAssertThrowsError(try ImageCodec.decode(bomb, name: "bomb.png", policy: DecodePolicy())) {
      XCTAssertTrue("\($0)".hasPrefix("bomb.png: image of 10000x10000 = 100000000 pixels exceeds"), "\($0)")
    }
  }

  /// Our own encoder's output of every format, whole, decodes; cut at several points it
  /// is refused (the stricter policy rejects no well-formed image, every truncation).
  func testOwnEncodingsDecodeWholeAndFailCut() throws {
    var px = [UInt8](repeating: 0, count: 80 * 60 * 3)
    for i in 0..<px.count { px[i] = UInt8(truncatingIfNeeded: (i &* 2654435761) >> 11) }
    let img = RGBImage(width: 80, height: 60, pixels: px)
    for fmt in ImageFormat.allCases {
      let data = try ImageCodec.encode(img, format: fmt)
      let back = try ImageCodec.decode(data, name: "whole.\(fmt.fileExtension)")
      XCTAssertEqual(back.width, 80, "\(fmt)")
      for pct in [10, 50, 90] {
        XCTAssertThrowsError(try ImageCodec.decode(Data(data.prefix(data.count * pct / 100)), name: "cut.\(fmt.fileExtension)"),
                             "\(fmt) cut at \(pct) %")
      }
    }
  }
}
