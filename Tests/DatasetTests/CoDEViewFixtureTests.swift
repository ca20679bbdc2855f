import Foundation
import Randomness
import SafeTensors
import XCTest

@testable import Dataset
@testable import Imaging

/// The views' normalisation and one whole view against the Imaging fixtures
/// (scripts/fixtures/imaging_fixtures.py: torchvision ToTensor + Normalize).
final class CoDEViewFixtureTests: XCTestCase {
  struct ImagingFixtures {
    let file = try! SafeTensorsFile(path: Fixture.imagingFixtures)
    func image(_ name: String) -> RGBImage {
      let t = try! file.info(name)
      precondition(t.dtype == .u8 && t.shape.count == 3 && t.shape[2] == 3, name)
      return RGBImage(width: t.shape[1], height: t.shape[0], pixels: [UInt8](try! file.bytes(name)))
    }
    func floats(_ name: String) -> [Float] { try! file.floats(name) }
  }
  let fx = ImagingFixtures()

  func testNormalisationBitExact() {
    let maker = CoDEViewMaker(spec: ViewSpec())
    for s in ["src", "src2"] {
      let img = fx.image(s)
      var out = [Float](repeating: 0, count: 3 * img.count)
      out.withUnsafeMutableBufferPointer { maker.normalise(img, into: $0.baseAddress!) }
      XCTAssertEqual(out, fx.floats("\(s).normalized"), s)
    }
  }

  func testComposedViewBitExact() {
    var rng = CounterRNG(seed: 0, epoch: 0, record: 0, stream: 0)
    var v = fx.image("src").resampled(width: 32, height: 32, filter: .bicubic, source: PixelRect(x: 3, y: 4, width: 34, height: 26))
    v = TransformOp.contrast.apply(v, value: TransformOp.grid(0.5, 1.5)[1], rng: &rng)
    v = TransformOp.pad.apply(v, value: TransformOp.grid(0.01, 0.25)[2], rng: &rng)
    var spec = ViewSpec(imageSize: 224, localSize: 32)
    spec.cropPct = 0.9
    v = CoDEViewMaker.resizeCenterCrop(v, shorter: spec.resizeFor(size: 32), crop: 32)
    var out = [Float](repeating: 0, count: 3 * 32 * 32)
    out.withUnsafeMutableBufferPointer { CoDEViewMaker(spec: spec).normalise(v, into: $0.baseAddress!) }
    XCTAssertEqual(out, fx.floats("view.composed"))
  }
}
