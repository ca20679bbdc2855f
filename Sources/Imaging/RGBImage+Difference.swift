import Foundation

extension RGBImage {
  /// Pixel comparison summary of two images of one size, over their W x H x 3 bytes:
  /// largest absolute difference max|a - b|, mean absolute difference sum|a - b| / (3 W H),
  /// and the fraction of bytes that differ.
  public struct PixelDifference: Sendable, CustomStringConvertible {
    public var maxAbs = 0, meanAbs = 0.0, fracDiff = 0.0
    public var description: String {
      "max \(maxAbs), mean \(String(format: "%.4f", meanAbs)), differing \(String(format: "%.4f", fracDiff))"
    }
  }

  /// The difference of `a` and `b`; nil when their sizes differ.
  public static func difference(_ a: RGBImage, _ b: RGBImage) -> PixelDifference? {
    guard a.width == b.width, a.height == b.height else { return nil }
    var d = PixelDifference(), sum = 0, nd = 0
    for i in 0..<a.pixels.count {
      let e = abs(Int(a.pixels[i]) - Int(b.pixels[i]))
      d.maxAbs = max(d.maxAbs, e); sum += e; if e != 0 { nd += 1 }
    }
    d.meanAbs = Double(sum) / Double(max(1, a.pixels.count))
    d.fracDiff = Double(nd) / Double(max(1, a.pixels.count))
    return d
  }
}
